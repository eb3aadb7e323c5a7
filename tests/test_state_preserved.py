"""Nothing lost, nothing changed: after a check passes, fails or is
interrupted, the model and the process's global state are as before."""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
if ON_TENSORFLOW:
    import tensorflow as tf

from pytest_softmax import SoftmaxInvariantError, SoftmaxSetupError, check_softmax

TESTS_DIR = Path(__file__).parent


def lstm_softmax() -> keras.Model:
    """The founding bug: fails the check."""
    inp = keras.Input((3, 2))
    return keras.Model(inp, keras.layers.LSTM(3, activation="softmax")(inp))


def healthy_with_batchnorm() -> keras.Model:
    inp = keras.Input((4,))
    x = keras.layers.BatchNormalization()(keras.layers.Dense(8)(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


class Interrupting(keras.layers.Layer):
    """Changes global state and the model's seed state, then is interrupted,
    as a user pressing Ctrl-C in the middle of a check would."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seeds = keras.random.SeedGenerator(7)
        self.armed = False

    def call(self, x: Any) -> Any:
        if not self.armed:  # building the model, not checking it
            return x
        self.seeds.next()
        keras.config.set_floatx("float16")
        keras.config.set_dtype_policy("mixed_float16")
        if ON_TENSORFLOW:
            tf.config.run_functions_eagerly(True)
        np.random.random()
        random.random()
        raise KeyboardInterrupt


def interrupted() -> keras.Model:
    inp = keras.Input((4,))
    layer = Interrupting()
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(layer(inp)))
    layer.armed = True
    return model


def noisy() -> keras.Model:
    importlib.import_module("sys").path.insert(0, str(TESTS_DIR))
    import error_models

    return error_models.noisy()


def snapshot(model: keras.Model) -> dict[str, Any]:
    return {
        "weights": [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in model.variables],
        "names": [v.path for v in model.variables],
        "layers": [layer.name for layer in model.layers],
        "config": model.get_config(),
        "floatx": keras.config.floatx(),
        "policy": keras.config.dtype_policy().name,
        "backend": keras.config.backend(),
        "eager": tf.config.functions_run_eagerly() if ON_TENSORFLOW else None,
    }


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    weights_before, weights_after = before.pop("weights"), after.pop("weights")
    assert before == after
    assert len(weights_before) == len(weights_after)
    for a, b in zip(weights_before, weights_after):
        np.testing.assert_array_equal(a, b)


def run(model: keras.Model, **kwargs: Any) -> None:
    try:
        check_softmax(model, max_examples=10, **kwargs)
    except (SoftmaxInvariantError, SoftmaxSetupError):
        pass


@pytest.mark.parametrize(
    ("factory", "outcome"),
    [(healthy_with_batchnorm, "pass"), (lstm_softmax, "fail"), (noisy, "setup error"), (interrupted, "interrupt")],
)
def test_model_and_keras_settings_unchanged(factory: Callable[[], keras.Model], outcome: str) -> None:
    model = factory()
    before = snapshot(model)
    if outcome == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            check_softmax(model, max_examples=10)
    elif outcome == "pass":
        check_softmax(model, max_examples=10)
    elif outcome == "fail":
        with pytest.raises(SoftmaxInvariantError):
            check_softmax(model, max_examples=10)
    else:
        with pytest.raises(SoftmaxSetupError):
            check_softmax(model, max_examples=10)
    assert_same(before, snapshot(model))


@pytest.mark.parametrize("factory", [healthy_with_batchnorm, lstm_softmax, interrupted])
def test_user_random_seeds_unchanged(factory: Callable[[], keras.Model]) -> None:
    """What the user's seeded generators produce next is what they would
    have produced without the check in between."""
    model = factory()

    def draws() -> tuple[Any, ...]:
        framework = tf.random.uniform([3]).numpy().tolist() if ON_TENSORFLOW else []
        return (random.random(), np.random.random(3).tolist(), framework,
                keras.ops.convert_to_numpy(keras.random.uniform((3,))).tolist())

    keras.utils.set_random_seed(1234)
    expected = draws()
    keras.utils.set_random_seed(1234)
    try:
        run(model)
    except KeyboardInterrupt:
        pass
    assert draws() == expected


def test_mixed_precision_and_float64_settings_survive(tmp_path: Path) -> None:
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = healthy_with_batchnorm()
        run(model)
        assert keras.config.dtype_policy().name == "mixed_float16"
    finally:
        keras.config.set_dtype_policy("float32")
    keras.config.set_floatx("float64")
    try:
        run(healthy_with_batchnorm())
        assert keras.config.floatx() == "float64"
    finally:
        keras.config.set_floatx("float32")


@pytest.mark.tensorflow_only  # a TensorFlow setting
def test_eager_mode_set_by_the_user_survives() -> None:
    tf.config.run_functions_eagerly(True)
    try:
        run(healthy_with_batchnorm())
        assert tf.config.functions_run_eagerly()
    finally:
        tf.config.run_functions_eagerly(False)


def test_a_run_writes_nothing_but_hypothesis_database(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(TESTS_DIR)
    importlib.import_module("error_models")
    model_file = pytester.path / "model.keras"
    import error_models

    error_models.save(error_models.healthy(), model_file)
    stamp = model_file.stat().st_mtime_ns
    pytester.makepyfile(
        "import pytest\n"
        f"@pytest.mark.softmax_invariant({str(model_file)!r}, max_examples=5)\n"
        "def test_file():\n    pass\n"
    )
    before = {p for p in pytester.path.rglob("*") if "__pycache__" not in p.parts}
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    after = {p for p in pytester.path.rglob("*") if "__pycache__" not in p.parts}
    new = {p.relative_to(pytester.path).parts[0] for p in after - before}
    assert new <= {".hypothesis"}, new
    assert model_file.stat().st_mtime_ns == stamp
