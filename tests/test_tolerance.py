"""Unit tests for pytest_softmax.tolerance (fast; no TensorFlow)."""

from __future__ import annotations

import ast
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_softmax import tolerance
from pytest_softmax.tolerance import (
    MACHINE_EPSILON,
    SUPPORTED_DTYPES,
    accumulation_dtype,
    default_tolerance,
    normalize_dtype_name,
)

NS = (1, 2, 3, 10, 100, 1000, 10_000, 32_000, 128_000, 1_000_000)


def test_machine_epsilon_values() -> None:
    assert MACHINE_EPSILON == {
        "float16": 2.0**-10,
        "bfloat16": 2.0**-7,
        "float32": 2.0**-23,
        "float64": 2.0**-52,
    }
    assert MACHINE_EPSILON["float32"] == float(np.finfo(np.float32).eps)
    assert MACHINE_EPSILON["float64"] == float(np.finfo(np.float64).eps)
    assert MACHINE_EPSILON["float16"] == float(np.finfo(np.float16).eps)


def test_supported_dtypes() -> None:
    assert SUPPORTED_DTYPES == ("float16", "bfloat16", "float32", "float64")
    assert isinstance(SUPPORTED_DTYPES, tuple)


def test_module_imports_standard_library_only() -> None:
    # Imported at pytest start-up: numpy/tensorflow would slow every run.
    tree = ast.parse(Path(tolerance.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported, "expected some imports"
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_tolerance_is_positive_float(dtype: str) -> None:
    for n in NS:
        tol = default_tolerance(dtype, n)
        assert isinstance(tol, float)
        assert 0 < tol < 1
        assert math.isfinite(tol)


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_monotone_non_decreasing_in_n_classes(dtype: str) -> None:
    ns = list(range(1, 300)) + list(NS) + [2**k for k in range(21)]
    ns.sort()
    tols = [default_tolerance(dtype, n) for n in ns]
    assert all(a <= b for a, b in itertools.pairwise(tols))


@given(
    dtype=st.sampled_from(SUPPORTED_DTYPES),
    n1=st.integers(min_value=1, max_value=10**7),
    n2=st.integers(min_value=1, max_value=10**7),
)
def test_monotone_property(dtype: str, n1: int, n2: int) -> None:
    lo, hi = sorted((n1, n2))
    assert default_tolerance(dtype, lo) <= default_tolerance(dtype, hi)


@pytest.mark.parametrize("n", NS)
def test_ordering_by_precision(n: int) -> None:
    tol = {d: default_tolerance(d, n) for d in SUPPORTED_DTYPES}
    assert tol["float64"] < tol["float32"] < tol["float16"] < tol["bfloat16"]


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_tolerance_scales_with_eps_for_few_classes(dtype: str) -> None:
    # A tolerance must be a handful of ulps, not a fixed absolute number.
    eps = MACHINE_EPSILON[dtype]
    assert 1 * eps <= default_tolerance(dtype, 2) <= 64 * eps


def test_known_values() -> None:
    # eps_out * 8 + eps_acc * (22 + n / 128); eps_acc = float32 for 16-bit.
    e32 = 2.0**-23
    assert default_tolerance("float32", 128) == pytest.approx(31 * e32)
    assert default_tolerance("float64", 1280) == pytest.approx(40 * 2.0**-52)
    assert default_tolerance("float16", 2) == pytest.approx(8 * 2.0**-10 + (22 + 2 / 128) * e32)
    assert default_tolerance("bfloat16", 2) == pytest.approx(8 * 2.0**-7 + (22 + 2 / 128) * e32)


def test_accumulation_dtype() -> None:
    assert accumulation_dtype("float16") == "float32"
    assert accumulation_dtype("bfloat16") == "float32"
    assert accumulation_dtype("float32") == "float32"
    assert accumulation_dtype(np.float64) == "float64"


@pytest.mark.parametrize("bad", ["int32", "float8_e4m3fn", "complex64", "", "mixed_float16", 3, None])
def test_unknown_dtype_raises_value_error_naming_dtype_and_supported(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        default_tolerance(bad, 10)
    message = str(info.value)
    assert repr(bad) in message
    for name in SUPPORTED_DTYPES:
        assert name in message


def test_numpy_integer_dtype_rejected() -> None:
    with pytest.raises(ValueError, match="int64.*supported dtypes are: float16, bfloat16, float32, float64"):
        normalize_dtype_name(np.dtype("int64"))


@pytest.mark.parametrize("n", [0, -1, -128_000])
def test_n_classes_below_one_raises(n: int) -> None:
    with pytest.raises(ValueError, match=rf"n_classes must be >= 1.*got {n}"):
        default_tolerance("float32", n)


@pytest.mark.parametrize("n", [2.5, 10.0, "10", True, None])
def test_non_integer_n_classes_raises_type_error(n: object) -> None:
    with pytest.raises(TypeError, match="n_classes must be an integer"):
        default_tolerance("float32", n)  # type: ignore[arg-type]


def test_numpy_integer_n_classes_accepted() -> None:
    assert default_tolerance("float32", np.int64(1000)) == default_tolerance("float32", 1000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.dtype("float32"), "float32"),
        (np.dtype(np.float16), "float16"),
        (np.dtype("<f8"), "float64"),
        (np.dtype(">f4"), "float32"),
        (np.float64, "float64"),
        (np.float32, "float32"),
        (np.zeros(3, np.float16).dtype, "float16"),
    ],
)
def test_normalize_numpy_dtypes(dtype: object, expected: str) -> None:
    assert normalize_dtype_name(dtype) == expected


def test_normalize_ml_dtypes_bfloat16() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert normalize_dtype_name(np.dtype(ml_dtypes.bfloat16)) == "bfloat16"
    assert normalize_dtype_name(ml_dtypes.bfloat16) == "bfloat16"
    assert normalize_dtype_name(np.zeros(2, ml_dtypes.bfloat16).dtype) == "bfloat16"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("float32", "float32"),
        ("float16", "float16"),
        ("bfloat16", "bfloat16"),
        ("float64", "float64"),
        ("<dtype: 'float16'>", "float16"),
        ("<dtype: 'bfloat16'>", "bfloat16"),
        ("tf.float32", "float32"),
        ("torch.bfloat16", "bfloat16"),
        ("  Float32 ", "float32"),
        ("<f4", "float32"),
        ("f8", "float64"),
        ("half", "float16"),
        ("double", "float64"),
    ],
)
def test_normalize_strings(text: str, expected: str) -> None:
    assert normalize_dtype_name(text) == expected


def test_normalize_objects_with_name_or_str() -> None:
    class NamedDType:
        name = "bfloat16"

    class TfLikeDType:
        name = None

        def __repr__(self) -> str:
            return "<dtype: 'float64'>"

    assert normalize_dtype_name(NamedDType()) == "bfloat16"
    assert normalize_dtype_name(TfLikeDType()) == "float64"


def test_max_abs_logit_allowance() -> None:
    base = default_tolerance("float32", 1000)
    assert default_tolerance("float32", 1000, max_abs_logit=None) == base
    small = default_tolerance("float32", 1000, max_abs_logit=1.0)
    large = default_tolerance("float32", 1000, max_abs_logit=100.0)
    assert base < small < large
    # ~ SAFETY * eps * (|logsumexp| + 1) / 2 with |logsumexp| <= 100 + ln(1000).
    eps = MACHINE_EPSILON["float32"]
    assert large - base == pytest.approx(4 * eps * (100 + math.log(1000) + 1) / 2, rel=1e-3)
    # Huge bfloat16 logits: the allowance saturates far above any useful check.
    assert default_tolerance("bfloat16", 10, max_abs_logit=1e6) > 1


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "3"])
def test_max_abs_logit_validation(bad: object) -> None:
    with pytest.raises(ValueError, match="max_abs_logit"):
        default_tolerance("float32", 10, max_abs_logit=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
def test_float32_numpy_softmax_within_tolerance_and_10x_error_caught(seed: int) -> None:
    n = 32_000
    rng = np.random.default_rng(seed)
    logits = np.concatenate([rng.normal(0.0, 5.0, (3, n)), rng.uniform(-5.0, 5.0, (3, n))]).astype(np.float32)
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = exps / exps.sum(axis=1, keepdims=True, dtype=np.float32)
    assert probs.dtype == np.float32

    tol = default_tolerance(probs.dtype, n)
    errors = np.abs(probs.astype(np.float64).sum(axis=1) - 1.0)
    assert np.all(errors <= tol), (errors.max(), tol)

    # A real error of 10x the tolerance, stored in float32, must be flagged.
    for sign in (1.0, -1.0):
        broken = probs.copy()
        broken[0, int(np.argmax(broken[0]))] += np.float32(sign * 10 * tol)
        error = abs(float(broken[0].astype(np.float64).sum()) - 1.0)
        assert error > tol
