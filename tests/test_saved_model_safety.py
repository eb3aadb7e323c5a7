"""A SavedModel's graph runs when it is checked: in safe mode a graph that
writes files, calls back into Python or talks to the network is refused
before anything runs (issue 12, item 5)."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
import tensorflow as tf

from pytest_softmax import SoftmaxSetupError, check_softmax

SPEC = [tf.TensorSpec([None, 4], tf.float32, name="x")]


def _save(module: tf.Module, fn: tf.types.experimental.PolymorphicFunction, path: Path) -> Path:
    tf.saved_model.save(module, str(path), signatures={"serving_default": fn.get_concrete_function()})
    return path


def _writer(path: Path, target: Path) -> Path:
    module = tf.Module()
    module.w = tf.Variable(tf.ones([4, 3]))

    @tf.function(input_signature=SPEC)
    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        tf.io.write_file(str(target), "written by the model")
        return {"probs": tf.nn.softmax(x @ module.w)}

    module.serve = serve
    return _save(module, serve, path)


def _python_callback(path: Path) -> Path:
    module = tf.Module()

    @tf.function(input_signature=SPEC)
    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        y = tf.py_function(lambda t: t * 2.0, [x], tf.float32)
        return {"probs": tf.nn.softmax(tf.reshape(y, [-1, 4]))}

    module.serve = serve
    return _save(module, serve, path)


# TensorFlow-only by design: SavedModel directories load only on the TensorFlow backend.
@pytest.mark.tensorflow_only
def test_a_saved_model_that_writes_files_is_refused_before_it_runs(tmp_path: Path) -> None:
    target = tmp_path / "side_effect.txt"
    path = _writer(tmp_path / "writer", target)
    with pytest.raises(SoftmaxSetupError) as info:
        check_softmax(path, max_examples=2)
    message = str(info.value)
    assert "op WriteFile (node " in message and "which writes files" in message
    assert "in function '" in message and "allow it with check_softmax(model, safe_mode=False)" in message
    assert not target.exists(), "the graph ran although it was refused"

    # The opt-in loads and runs it, as documented.
    assert check_softmax(path, max_examples=2, safe_mode=False).passed
    assert target.read_text() == "written by the model"


# TensorFlow-only by design: SavedModel directories load only on the TensorFlow backend.
@pytest.mark.tensorflow_only
def test_a_saved_model_calling_back_into_python_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(SoftmaxSetupError, match=r"op EagerPyFunc \(node .*\), which calls back into Python"):
        check_softmax(_python_callback(tmp_path / "pyfunc"), max_examples=2)


# TensorFlow-only by design: SavedModel directories load only on the TensorFlow backend.
@pytest.mark.tensorflow_only
def test_a_plain_exported_keras_model_is_not_refused(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.export(str(tmp_path / "exported"), verbose=False)
    assert check_softmax(tmp_path / "exported", max_examples=2).passed


# TensorFlow-only by design: SavedModel directories load only on the TensorFlow backend.
@pytest.mark.tensorflow_only
def test_a_model_item_for_such_a_saved_model_is_refused_and_told_the_flag(
    pytester: pytest.Pytester, tmp_path: Path,
) -> None:
    target = tmp_path / "side_effect.txt"
    _writer(pytester.path / "writer", target)
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-model", "writer")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest-softmax: SavedModel *writer': its serving_default signature holds op "
                                 "WriteFile*allow it with --softmax-safe-mode=false (or softmax_safe_mode = false "
                                 "in the ini file)*"])
    assert not target.exists()
