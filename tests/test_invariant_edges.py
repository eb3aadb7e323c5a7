"""Edges of the invariant, the tolerance and the settings that hand-made
mutants of the engine survived: each test here fails for one of them (a
dropped bound, the last example instead of the worst, a floor division, a
NaN/Inf check that lets infinity through)."""

from __future__ import annotations

import math
import re

import keras
import numpy as np
import pytest
from helpers import softmax  # noqa: E402
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_softmax import check_softmax, default_tolerance
from pytest_softmax.core.invariants import (
    MAX_ROW_VALUES_SHOWN,
    _check_all_finite,
    _check_with_nonfinite,
    check_batch,
    violations_of,
)
from pytest_softmax.core.kinds import NOT_FINITE, NOT_NORMALIZED, OUT_OF_RANGE
from pytest_softmax.settings import (
    SettingError,
    load_session_settings,
    parse_bool,
    parse_marker,
    parse_positive_int,
    parse_tolerance,
    unknown_ini_key_error,
)


def violations(output: np.ndarray, axis: int = -1, tolerance: float = 1e-6) -> dict[str, object]:
    check = check_batch(output, axis, tolerance)
    found = violations_of(check, output, axis=axis, name="probs", layer_name="probs", layer_class="Dense",
                          dtype="float64")
    return {v.kind: v for v in found}


# --- the [0, 1] range ------------------------------------------------------------


@pytest.mark.parametrize("with_nan_row", [False, True], ids=["all-finite path", "general path"])
def test_a_negative_value_in_a_row_that_sums_to_one_is_out_of_range(with_nan_row: bool) -> None:
    """Nothing above 1 and the sum exact: only the lower bound catches it."""
    rows = [[0.6, 0.6, -0.2], [0.2, 0.3, 0.5]] + ([[np.nan, 0.5, 0.5]] if with_nan_row else [])
    check = check_batch(np.array(rows), -1, 1e-6)
    assert check.out_of_range_rows == 1 and check.range_excess == pytest.approx(0.2)
    assert check.unnormalized_rows == 0 and check.min_value == pytest.approx(-0.2)
    assert check.max_value == pytest.approx(0.6)
    found = violations(np.array(rows))
    assert found[OUT_OF_RANGE].error == pytest.approx(0.2) and found[OUT_OF_RANGE].rows_violating == 1


def test_values_within_the_tolerance_of_the_bounds_pass() -> None:
    """The range check has the same slack as the sum check, no more."""
    tolerance = 1e-3
    inside = np.array([[1.0 + 5e-4, -5e-4, 0.0]])
    outside = np.array([[1.0 + 2e-3, -2e-3, 0.0]])
    assert check_batch(inside, -1, tolerance).passed
    assert check_batch(outside, -1, tolerance).out_of_range_rows == 1


# --- where the worst row is ------------------------------------------------------


def test_a_failing_check_along_axis_1_reports_the_worst_row_its_sum_and_values() -> None:
    probs = softmax(np.random.default_rng(3).normal(size=(2, 5, 4)), axis=1)
    probs[0, :, 3] *= 0.9
    probs[1, :, 2] *= 0.5  # the worst distribution: batch row 1, position 2 of the last axis
    found = violations(probs, axis=1)
    worst = found[NOT_NORMALIZED]
    assert worst.worst_row == (1, 2) and worst.rows == 8 and worst.rows_violating == 2 and worst.n_classes == 5
    assert worst.worst_row_sum == pytest.approx(0.5) and worst.error == pytest.approx(0.5)
    assert worst.worst_row_values == pytest.approx(tuple(probs[1, :, 2]))
    assert worst.axis == 1


def test_only_the_first_values_of_a_long_worst_row_are_shown() -> None:
    row = np.full((1, 20), 0.025)  # sums to 0.5
    worst = violations(row)[NOT_NORMALIZED]
    assert worst.worst_row == (0,) and len(worst.worst_row_values) == MAX_ROW_VALUES_SHOWN == 8
    assert worst.worst_row_sum == pytest.approx(0.5)


def test_a_nan_row_and_a_row_summing_to_half_are_both_reported() -> None:
    probs = np.array([[0.25, 0.25, 0.5], [np.nan, 0.5, 0.5], [0.25, 0.25, 0.0], [0.1, 0.2, 0.7]])
    check = check_batch(probs, -1, 1e-6)
    assert (check.nonfinite_values, check.nonfinite_rows, check.unnormalized_rows) == (1, 1, 1)
    assert check.worst_index == (1,) and math.isinf(check.worst_error)
    found = violations(probs)
    assert list(found) == [NOT_FINITE, NOT_NORMALIZED]
    assert found[NOT_FINITE].error == 1 and found[NOT_FINITE].rows_violating == 1
    # The finite row's error is reported as a number, not as the NaN row's infinity.
    assert found[NOT_NORMALIZED].error == pytest.approx(0.5) and found[NOT_NORMALIZED].rows_violating == 1
    assert check.min_value == 0.0 and check.max_value == 0.7


def test_an_empty_batch_examines_no_rows() -> None:
    check = check_batch(np.zeros((0, 3)), -1, 1e-6)
    assert (check.rows, check.worst_index, check.worst_error) == (0, (), 0.0)
    assert check.passed and (check.min_value, check.max_value) == (0.0, 0.0)


def test_severity_ranks_non_finite_above_finite_and_scales_with_the_error() -> None:
    small = check_batch(np.array([[0.5, 0.5 + 2e-6]]), -1, 1e-6)
    large = check_batch(np.array([[0.5, 0.5 + 8e-6]]), -1, 1e-6)
    assert small.severity == pytest.approx(2.0) and large.severity == pytest.approx(8.0)
    out_of_range = check_batch(np.array([[1.0 + 4e-6, -4e-6]]), -1, 1e-6)
    assert out_of_range.severity == pytest.approx(4.0)
    assert check_batch(np.array([[np.nan, 1.0]]), -1, 1e-6).severity == 1e6 + 1
    # A zero tolerance must not divide by zero.
    assert math.isfinite(check_batch(np.array([[0.5, 0.6]]), -1, 0.0).severity)


# --- the fast path and the general path agree ------------------------------------

FINITE_ARRAYS = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=5),
    elements=st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0.0, 1.0, 0.5, 1.0 / 3])),
)


@settings(max_examples=300, database=None, deadline=None)
@given(values=FINITE_ARRAYS, tolerance=st.sampled_from([0.0, 1e-6, 0.05, 0.5]))
def test_the_all_finite_path_and_the_general_path_agree(values: np.ndarray, tolerance: float) -> None:
    fast = _check_all_finite(values, tolerance)
    general = _check_with_nonfinite(values, np.isfinite(values), tolerance)
    assert fast == general


@settings(max_examples=200, database=None, deadline=None)
@given(values=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)),
                         elements=st.floats(-0.5, 1.5)),
       row=st.integers(0, 5))
def test_adding_a_nan_row_only_adds_the_nan(values: np.ndarray, row: int) -> None:
    """The general path judges the finite rows exactly as the fast path does."""
    row %= values.shape[0] + 1
    with_nan = np.insert(values, row, np.full(values.shape[1], np.nan), axis=0)
    clean, dirty = check_batch(values, -1, 0.01), check_batch(with_nan, -1, 0.01)
    assert (dirty.nonfinite_values, dirty.nonfinite_rows) == (values.shape[1], 1)
    assert (dirty.out_of_range_rows, dirty.unnormalized_rows) == (clean.out_of_range_rows, clean.unnormalized_rows)
    assert (dirty.range_excess, dirty.min_value, dirty.max_value) == (clean.range_excess, clean.min_value,
                                                                      clean.max_value)
    assert dirty.worst_index == (row,) and dirty.rows == clean.rows + 1


# --- the report's worst error is over every example ----------------------------


@pytest.fixture(scope="module")
def identity_model() -> keras.Model:
    """Outputs its input: the test chooses every row the check sees."""
    return keras.Sequential([keras.Input((3,)), keras.layers.Identity(name="same")], name="identity")


def test_the_reported_worst_error_is_the_maximum_over_all_examples_not_the_last(
    identity_model: keras.Model,
) -> None:
    rows = np.array([[0.3, 0.3, 0.4 + 5e-4], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8 - 1e-4]], dtype="float32")
    report = check_softmax(identity_model, inputs=rows, batch_size=1, atol=1e-3)
    assert report.passed and report.examples == 3 and report.rows == 3
    expected = np.abs(rows.astype(np.float64).sum(axis=1) - 1).max()
    assert report.worst_error == pytest.approx(expected, rel=1e-6) and report.worst_error > 4e-4
    (output,) = report.outputs
    assert output.worst_error == report.worst_error
    assert output.min_value == pytest.approx(0.1) and output.max_value == pytest.approx(0.8 - 1e-4)


def test_a_nan_example_does_not_hide_the_worst_finite_error(identity_model: keras.Model) -> None:
    from pytest_softmax import SoftmaxInvariantError

    rows = np.array([[0.3, 0.3, 0.4 + 5e-4], [np.nan, 0.5, 0.5]], dtype="float32")
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(identity_model, inputs=rows, batch_size=1, atol=1e-3)
    report = caught.value.report
    assert report.worst_error == pytest.approx(5e-4, rel=1e-3)
    (output,) = report.outputs
    assert (output.rows, output.nonfinite, output.unnormalized_rows) == (2, 1, 0)


# --- the default tolerance, exactly ----------------------------------------------


def test_default_tolerance_for_1000_float32_classes_is_exact() -> None:
    # eps_out * A + eps_acc * (B + n / C), A = 8, B = 22, C = 128 (tolerance.py's
    # documented formula); 1000 / 128 is not a whole number, so a floor
    # division or a rounded class count would show.
    eps = 2.0**-23
    assert default_tolerance("float32", 1000) == eps * 8.0 + eps * (22.0 + 1000 / 128.0)
    assert default_tolerance("float32", 1000) == 37.8125 * 2.0**-23


def test_default_tolerance_for_16_bit_outputs_accumulated_in_float32_is_exact() -> None:
    assert default_tolerance("bfloat16", 1000) == 2.0**-7 * 8.0 + 2.0**-23 * (22.0 + 1000 / 128.0)
    assert default_tolerance("float16", 3) == 2.0**-10 * 8.0 + 2.0**-23 * (22.0 + 3 / 128.0)


def test_the_logsumexp_allowance_is_exact_and_capped() -> None:
    base = default_tolerance("float16", 10)
    eps = 2.0**-10
    # LOGSUMEXP_SAFETY = 4: expm1(4 * eps * (max_abs_logit + ln n + 1) / 2)
    assert default_tolerance("float16", 10, max_abs_logit=20.0) == base + math.expm1(
        4.0 * eps * (20.0 + math.log(10) + 1.0) / 2.0)
    assert default_tolerance("float16", 10, max_abs_logit=0) == base + math.expm1(
        4.0 * eps * (math.log(10) + 1.0) / 2.0)
    # An exponent past 700 is capped there, so the tolerance stays finite.
    assert default_tolerance("bfloat16", 10, max_abs_logit=1e9) == default_tolerance("bfloat16", 10) + math.expm1(
        700.0)


# --- infinite tolerances are usage errors -----------------------------------------


@pytest.mark.parametrize("raw", ["inf", "-inf", "Infinity", float("inf"), "nan"])
def test_an_infinite_or_nan_tolerance_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="is not finite; use a non-negative float"):
        parse_tolerance(raw)


def test_tolerance_parsing_accepts_zero_and_refuses_negatives_and_booleans() -> None:
    assert parse_tolerance("0") == 0.0 and parse_tolerance(" 1e-5 ") == 1e-5
    with pytest.raises(ValueError, match="is negative"):
        parse_tolerance("-1e-9")
    with pytest.raises(ValueError, match="is not a number"):
        parse_tolerance(True)


def test_an_infinite_tolerance_in_the_ini_file_or_on_the_command_line_names_its_source() -> None:
    with pytest.raises(SettingError, match=r"--softmax-atol: 'inf' is not finite"):
        load_session_settings(lambda name: "inf" if name == "atol" else None, lambda key: None, None)
    with pytest.raises(SettingError, match=r"ini key softmax_atol = 'inf' in tox.ini: 'inf' is not finite"):
        load_session_settings(lambda name: None, lambda key: "inf" if key == "softmax_atol" else None, "tox.ini")


@pytest.mark.parametrize(("ini", "flag", "expected"), [
    ("softmax_atol = inf", None, "*softmax_atol = 'inf' in *tox.ini: 'inf' is not finite*"),
    ("softmax_atol_float32 = inf", None, "*softmax_atol_float32 = 'inf' in *tox.ini: 'inf' is not finite*"),
    (None, "--softmax-atol=inf", "*--softmax-atol: 'inf' is not finite*"),
    (None, "--softmax-rtol=inf", "*--softmax-rtol: 'inf' is not finite*"),
])
def test_infinite_tolerances_stop_pytest_at_start_up(pytester: pytest.Pytester, ini: str | None, flag: str | None,
                                                     expected: str) -> None:
    if ini:
        (pytester.path / "tox.ini").write_text(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", *([flag] if flag else []))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-softmax: {expected}"])


# --- the other setting parsers ---------------------------------------------------


def test_whole_numbers_accept_integral_spellings_only() -> None:
    assert [parse_positive_int(v) for v in ("3", " 7 ", 4, 5.0)] == [3, 7, 4, 5]
    for bad, message in [(2.5, "2.5 is not a whole number"), ("x", "'x' is not a whole number; use an integer >= 1"),
                         (0, "0 must be at least 1"), ("-2", "'-2' must be at least 1"), (True, "True is not a whole")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_positive_int(bad)


def test_booleans_accept_the_usual_ini_spellings() -> None:
    assert [parse_bool(v) for v in ("1", "true", " Yes ", "ON", True)] == [True] * 5
    assert [parse_bool(v) for v in ("0", "False", "no", "off ", False)] == [False] * 5
    with pytest.raises(ValueError, match="'maybe' is not a boolean; use true or false"):
        parse_bool("maybe")


def test_marker_outputs_are_names_indices_or_lists_of_them() -> None:
    assert parse_marker((), {"outputs": ["probs", 1]}).outputs == ("probs", 1)
    assert parse_marker((), {"outputs": ("probs",)}).outputs == ("probs",)
    assert parse_marker((), {"outputs": "probs"}).outputs == "probs"
    assert parse_marker((), {"outputs": 0}).outputs == 0
    assert parse_marker((), {"safe_mode": False}).safe_mode is False
    for bad in (True, [True], 1.5, ["probs", None], {"probs": 1}):
        with pytest.raises(SettingError, match="outputs=.* is not an output name, an index, or a list of them"):
            parse_marker((), {"outputs": bad})
    with pytest.raises(SettingError, match=r"safe_mode='no' is not True or False"):
        parse_marker((), {"safe_mode": "no"})
    with pytest.raises(SettingError, match=r"axis=1.0 is not an integer axis; use e.g. axis=-1"):
        parse_marker((), {"axis": 1.0})
    with pytest.raises(SettingError, match=r"takes at most one positional argument \(the model\), got 2"):
        parse_marker(("a", "b"), {})


def test_an_unknown_ini_key_suggests_the_closest_one_and_lists_the_per_dtype_keys() -> None:
    message = str(unknown_ini_key_error("softmax_atol_float8", "1e-3", "tox.ini"))
    assert message.startswith("unknown ini key softmax_atol_float8 = '1e-3' in tox.ini; did you mean "
                              "softmax_atol_float64? per-dtype tolerances exist for softmax_atol_float16, "
                              "softmax_atol_bfloat16, softmax_atol_float32, softmax_atol_float64; all keys: "
                              "softmax_atol, softmax_rtol, softmax_max_examples")
    far = str(unknown_ini_key_error("qqq", 1, None))
    assert far.startswith("unknown ini key qqq = 1; per-dtype") and "did you mean" not in far


def test_rows_over_zero_classes_sum_to_zero_and_fail() -> None:
    check = check_batch(np.zeros((3, 0)), -1, 1e-6)
    assert (check.rows, check.n_classes, check.unnormalized_rows, check.out_of_range_rows) == (3, 0, 3, 0)
    assert check.worst_error == 1.0 and not check.passed


def test_a_non_integer_class_count_names_its_type() -> None:
    with pytest.raises(TypeError, match=r"n_classes must be an integer, got float 2\.5"):
        default_tolerance("float32", 2.5)  # type: ignore[arg-type]


def test_masked_rows_are_the_all_zero_rows_along_the_axis_and_are_left_out() -> None:
    """What ``allow_masked_rows`` sets aside: rows (along the checked axis)
    whose every value is 0; every other row is kept, as a 2-D array of rows."""
    from pytest_softmax.core.invariants import without_masked_rows

    # (batch 2, classes 3, steps 2): checked along axis 1, the classes.
    output = np.zeros((2, 3, 2))
    output[0, :, 0] = [0.2, 0.3, 0.5]
    output[1, :, 1] = [0.0, 1.0, 0.0]
    kept = without_masked_rows(output, 1)
    assert kept.tolist() == [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]
    assert without_masked_rows(output, -2).tolist() == kept.tolist()
    # Along the last axis, rows of 2: the all-zero pairs go.
    assert without_masked_rows(output, -1).tolist() == [[0.2, 0.0], [0.3, 0.0], [0.5, 0.0], [0.0, 1.0]]
    assert without_masked_rows(np.zeros((4, 3)), -1).shape == (0, 3)
