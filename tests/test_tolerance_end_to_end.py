"""The default tolerance through the whole check, in every dtype: a correct
softmax never raises a false alarm, and an error of 10x the tolerance is
always caught."""

from __future__ import annotations

import functools

import keras
import pytest

from pytest_softmax import SoftmaxInvariantError, check_softmax, default_tolerance

# JAX computes in float64 only with JAX_ENABLE_X64 (otherwise it truncates to float32, with a warning).
NO_FLOAT64 = pytest.mark.skipif(
    keras.backend.backend() == "jax" and __import__("os").environ.get("JAX_ENABLE_X64", "") not in ("1", "true", "True"),
    reason="JAX without JAX_ENABLE_X64 computes float64 models in float32",
)
DTYPES = ("float16", "bfloat16", "float32", pytest.param("float64", marks=NO_FLOAT64))


@functools.cache
def dense_softmax(dtype: str, n_classes: int, error_factor: float = 1.0) -> keras.Model:
    layers = [keras.Input((6,)), keras.layers.Dense(n_classes, activation="softmax", dtype=dtype, name="probs")]
    if error_factor != 1.0:
        layers.append(keras.layers.Lambda(lambda p: p * error_factor, dtype=dtype, name="skew"))
    return keras.Sequential(layers, name=f"dense_softmax_{dtype}_{n_classes}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 1000, 32_000])
def test_a_correct_softmax_passes_in_every_dtype(dtype: str, n_classes: int) -> None:
    report = check_softmax(dense_softmax(dtype, n_classes), max_examples=12, batch_size=8)
    assert report.dtype == dtype
    assert report.tolerance == default_tolerance(dtype, n_classes)
    assert report.worst_error <= report.tolerance


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_error_of_ten_times_the_tolerance_is_caught(dtype: str) -> None:
    tolerance = default_tolerance(dtype, 10)
    model = dense_softmax(dtype, 10, error_factor=1.0 + 10 * tolerance)
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(model, max_examples=5, batch_size=8)
    first = caught.value.report.violations[0]
    assert first.kind == "not normalized" and first.dtype == dtype
    assert first.error > 5 * tolerance
