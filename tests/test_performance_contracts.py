"""What makes the plugin fast and light, as contracts (no timings here; the
figures live in ``benchmarks/``):

* a pytest run that checks no model imports no heavy library;
* one compiled forward trace per model and signature, shared by tests and
  parametrizations, and not renewed by variable-length inputs;
* generated large tensors are varied, reproducible and still shrink to a
  one-line description;
* TensorFlow takes a generated batch as it is, without a copy, and copies
  every array it could not use in place.
"""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import Phase, given, settings

from pytest_softmax import SoftmaxInvariantError, check_softmax
from pytest_softmax.adapters.base import InputSpec
from pytest_softmax.adapters.keras import adapter as keras_adapter
from pytest_softmax.core.inputs.batches import GeneratedBatch
from pytest_softmax.core.inputs.fill import RANDOM_BLOCK
from pytest_softmax.core.inputs.recipes import ArrayRecipe
from pytest_softmax.core.inputs.strategies import generated_batches

HEAVY = ("tensorflow", "keras", "numpy", "torch", "jax")

MODULES_CONFTEST = """
import json, sys

def pytest_unconfigure(config):
    with open({path!r}, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


@pytest.mark.parametrize("args", [["--collect-only"], []], ids=["collect-only", "run"])
def test_plain_run_imports_no_heavy_library(pytester: pytest.Pytester, args: list[str]) -> None:
    modules_file = pytester.path / "modules.json"
    pytester.makeconftest(MODULES_CONFTEST.format(path=str(modules_file)))
    # Settings in the ini file are validated at start-up, still without numpy.
    pytester.makeini("[pytest]\nsoftmax_atol = 1e-5\nsoftmax_max_examples = 20\n")
    pytester.makepyfile(test_plain="def test_arithmetic():\n    assert 1 + 1 == 2\n")

    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")

    assert result.ret == 0
    loaded = set(json.loads(modules_file.read_text()))
    assert "pytest_softmax.plugin" in loaded, "the plugin was not loaded: the test would prove nothing"
    imported = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert imported == []


def _small_lstm(length: int | None) -> keras.Model:
    return keras.Sequential([
        keras.Input((length, 6)), keras.layers.LSTM(4), keras.layers.Dense(3, activation="softmax"),
    ])


def _traces(model: keras.Model) -> int:
    return int(keras_adapter._FORWARD_CACHE[model].experimental_get_tracing_count())


@pytest.mark.tensorflow_only  # counts the traces of the cached tf.function
def test_one_trace_shared_by_tests_and_parametrizations(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import keras
        import pytest
        from pytest_softmax.adapters.keras import adapter as keras_adapter

        MODEL = keras.Sequential([
            keras.Input((5, 6)), keras.layers.LSTM(4), keras.layers.Dense(3, activation="softmax"),
        ])

        @pytest.mark.softmax_invariant(model=MODEL, max_examples=5)
        def test_first():
            pass

        @pytest.mark.parametrize("batch_size", [4, 7])
        def test_parametrized(softmax_check, batch_size):
            assert softmax_check(MODEL, max_examples=5, batch_size=batch_size).passed

        def test_traced_once():
            assert keras_adapter._FORWARD_CACHE[MODEL].experimental_get_tracing_count() == 1
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


@pytest.mark.tensorflow_only  # counts the traces of the cached tf.function
def test_variable_length_inputs_do_not_retrace(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _small_lstm(length=None)
    lengths: list[int] = []
    forward = keras_adapter.KerasModelAdapter.forward

    def recording_forward(self: keras_adapter.KerasModelAdapter, inputs: list[np.ndarray]) -> list[np.ndarray]:
        lengths.append(int(inputs[0].shape[1]))
        return forward(self, inputs)

    monkeypatch.setattr(keras_adapter.KerasModelAdapter, "forward", recording_forward)
    check_softmax(model, max_examples=30, batch_size=4)

    assert len(set(lengths)) >= 3, "the search did not vary the sequence length"
    assert _traces(model) == 1


def _distinct_fraction(image: np.ndarray) -> float:
    return np.unique(image).size / image.size


@pytest.mark.parametrize("pattern", ["normal", "uniform"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_random_tensors_are_varied_and_reproducible(pattern: str, dtype: str) -> None:
    recipe = ArrayRecipe(pattern, scale=10.0, offset=0.5, seed=7)
    shape = (32, 224, 224, 3)
    assert np.prod(shape) > 4 * RANDOM_BLOCK  # the tiled path, not one block

    batch = recipe.expand(shape, dtype)

    assert batch.dtype == np.dtype(dtype) and batch.shape == shape
    assert all(_distinct_fraction(batch[i]) > 0.9 for i in (0, 13, 31))
    assert len({batch[i].tobytes() for i in range(32)}) == 32, "rows of a batch repeat"
    np.testing.assert_array_equal(batch, recipe.expand(shape, dtype))


def _doubling_forward() -> Any:
    import tensorflow as tf

    from pytest_softmax.adapters.keras.backends.tensorflow import TracedForward

    return TracedForward(tf.function(lambda x: [x * 2], input_signature=[tf.TensorSpec((None, 6), tf.float32)]))


@pytest.mark.tensorflow_only  # TensorFlow's DLPack import
def test_tensorflow_takes_a_generated_batch_without_a_copy() -> None:
    import tensorflow as tf

    forward = _doubling_forward()
    batch = ArrayRecipe("normal", seed=4).expand((8, 6), "float32")

    tensor = forward._tensor(batch, tf.float32)
    batch[0, 0] = 42.0

    assert float(tensor[0, 0]) == 42.0, "the batch was copied"
    before = batch.copy()
    np.testing.assert_array_equal(forward([batch])[0], before * 2)
    np.testing.assert_array_equal(batch, before)  # shared, and only read


def _unaligned(values: np.ndarray) -> np.ndarray:
    raw = np.empty(values.size + 1, dtype=values.dtype)
    start = 1 if raw.ctypes.data % 64 == 0 else 0
    shifted = raw[start:start + values.size].reshape(values.shape)
    shifted[...] = values
    assert shifted.ctypes.data % 64 != 0
    return shifted


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False  # aligned as generated: numpy refuses to export it
    return values


@pytest.mark.tensorflow_only  # TensorFlow's DLPack import
@pytest.mark.parametrize("make", [
    _unaligned,  # TensorFlow aborts the process on an unaligned shared buffer
    _read_only,
    lambda values: values.astype(np.float64),  # another dtype than the signature's
    lambda values: np.asfortranarray(values),
    lambda values: values[:0],
], ids=["unaligned", "read-only", "float64-for-float32", "fortran-order", "empty"])
def test_tensorflow_copies_every_array_it_cannot_use_in_place(make: Any) -> None:
    import tensorflow as tf

    forward = _doubling_forward()
    array = make(ArrayRecipe("normal", seed=4).expand((8, 6), "float32"))
    expected = np.asarray(array, dtype=np.float32) * 2

    tensor = forward._tensor(array, tf.float32)
    if array.size and array.flags.writeable:
        array[...] = 0  # the tensor must not see it

    np.testing.assert_array_equal(np.asarray(tensor) * 2, expected)


def test_most_generated_images_are_varied() -> None:
    """Unlike ``arrays()``, which fills most of a large tensor with one
    value, most examples the search draws are varied everywhere."""
    fractions: list[float] = []

    @settings(max_examples=100, database=None, deadline=None, derandomize=True)
    @given(generated_batches([InputSpec("image", (64, 64, 3), "float32")], 2))
    def draw(batch: GeneratedBatch) -> None:
        fractions.append(_distinct_fraction(batch.arrays[0][1]))

    draw()
    varied = sum(f > 0.5 for f in fractions) / len(fractions)
    assert varied > 0.5, f"only {varied:.0%} of generated images are varied"


def test_recipe_respects_value_limit_and_narrow_dtypes() -> None:
    big = ArrayRecipe("normal", scale=1e6, seed=3, spikes=((5, 1e9),))
    assert np.abs(big.expand((8, 1000), "float32", limit=1e3)).max() <= 1e3
    half = big.expand((8, 1000), "float16")
    assert half.dtype == np.float16 and np.isfinite(half).all()


def _fails_on_large_inputs() -> keras.Model:
    """Healthy until the mean input leaves [-40, 40]: then rows sum to 2."""
    inputs = keras.Input((96, 96, 3))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(5, kernel_initializer="ones")(mean)
    probs = keras.layers.Softmax()(logits)
    broken = keras.layers.Lambda(
        lambda t: t[1] * (1.0 + keras.ops.cast(keras.ops.max(keras.ops.abs(t[0])) > 40.0, "float32"))
    )([mean, probs])
    return keras.Model(inputs, broken)


def test_failure_on_large_input_shrinks_to_one_line() -> None:
    """The random search's shrinking, so with the edge phase (which finds
    this failure first, see the next test) left out, as a profile can."""
    settings.register_profile("softmax-search-only", phases=[p for p in Phase if p is not Phase.explicit])
    settings.load_profile("softmax-search-only")
    try:
        with pytest.raises(SoftmaxInvariantError) as caught:
            check_softmax(_fails_on_large_inputs(), max_examples=100, batch_size=32)
    finally:
        settings.load_profile("default")

    (summary,) = caught.value.report.failing_input
    assert summary.shape == (32, 96, 96, 3)
    # Shrunk from millions of numbers to a one-line recipe: a constant, no
    # noise, at most one extreme value ("constant 100" or "constant x 1,
    # spikes [0]=359426" are both minimal to Hypothesis).
    description = summary.description
    assert description.startswith("constant "), description
    assert "seed" not in description and description.count("]=") <= 1, description
    assert len(description) < 50


def test_the_edge_phase_reports_a_failure_on_large_input_as_one_constant_row() -> None:
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(_fails_on_large_inputs(), max_examples=100, batch_size=32)

    (summary,) = caught.value.report.failing_input
    assert summary.shape == (32, 96, 96, 3)
    assert summary.description == "edge row, every row: constant 1e+06"
    assert caught.value.report.examples == 0 and caught.value.report.edge_batches >= 1
