"""The diagnosis' value tests on hand-made layer records, without a model:
what counts as a layer that only moves values (a softmax regrouped on its
way to the output), and the numbers the regrouping message quotes.

The model-level tests of the same rules are in test_diagnosis*.py; these pin
the comparisons themselves (which batch axis, which tolerance, which dtype's
rounding), in-process and fast.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_softmax.core.diagnosis.regroup import _epsilon, _normalized_axes, _rearranges, _row_sums
from pytest_softmax.adapters.base.records import OTHER, PASSTHROUGH, SOFTMAX, LayerRecord, LayerSite


def record(output: np.ndarray | None, kind: str = OTHER, path: str = "layer", **site: object) -> LayerRecord:
    return LayerRecord(LayerSite(path=path, name=path, layer_class="Custom", kind=kind, **site), output)  # type: ignore[arg-type]


ROWS = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])


class TestRearranges:
    def test_a_passthrough_layer_with_one_feeder_is_looked_through_whatever_its_values(self) -> None:
        assert _rearranges(record(None, PASSTHROUGH), [record(ROWS)])

    def test_a_passthrough_layer_with_two_feeders_is_judged_on_its_values(self) -> None:
        assert not _rearranges(record(ROWS * 2, PASSTHROUGH), [record(ROWS), record(ROWS)])

    def test_a_transpose_within_each_example_moves_values(self) -> None:
        assert _rearranges(record(ROWS[:, ::-1].copy()), [record(ROWS)])

    def test_values_moved_between_examples_are_not_a_rearrangement(self) -> None:
        assert not _rearranges(record(ROWS[::-1].copy()), [record(ROWS)])

    def test_a_concatenation_of_two_feeders_holds_their_values(self) -> None:
        left, right = ROWS[:, :1].copy(), ROWS[:, 1:].copy()
        assert _rearranges(record(ROWS), [record(right), record(left)])

    def test_a_one_value_per_example_feeder_counts(self) -> None:
        """A feeder of shape (batch,) reshaped to (batch, 1)."""
        column = np.array([0.25, 0.75])
        assert _rearranges(record(column.reshape(2, 1)), [record(column)])

    def test_one_value_in_one_example_is_compared_too(self) -> None:
        assert _rearranges(record(np.array([[0.5]])), [record(np.array([0.5]))])
        assert not _rearranges(record(np.array([[0.5]])), [record(np.array([0.25]))])

    @pytest.mark.parametrize("feeder", [None, np.float64(0.5)], ids=["no output", "a scalar"])
    def test_a_feeder_without_a_batch_axis_is_not_compared(self, feeder: np.ndarray | None) -> None:
        assert not _rearranges(record(ROWS), [record(feeder)])
        assert not _rearranges(record(None), [record(ROWS)])
        assert not _rearranges(record(np.float64(0.5)), [record(ROWS)])

    def test_feeders_with_another_batch_size_are_not_compared(self) -> None:
        assert not _rearranges(record(ROWS), [record(ROWS[:1].copy())])

    def test_non_finite_values_are_never_a_rearrangement(self) -> None:
        with_nan = ROWS.copy()
        with_nan[0, 0] = np.nan
        assert not _rearranges(record(with_nan), [record(with_nan.copy())])

    def test_a_float64_copy_must_be_exact_and_a_float16_cast_may_round(self) -> None:
        nudged = ROWS * (1 + 1e-6)
        assert not _rearranges(record(nudged), [record(ROWS)])
        half = ROWS.astype(np.float16)
        assert _rearranges(record(half), [record(ROWS)])

    def test_another_count_of_values_is_not_a_rearrangement(self) -> None:
        assert not _rearranges(record(ROWS[:, :2].copy()), [record(ROWS)])


@pytest.mark.parametrize(
    ("dtype", "eps"),
    [("float64", 2.0 ** -52), ("float32", 2.0 ** -23), ("float16", 2.0 ** -10), ("int32", 2.0 ** -7)],
)
def test_rounding_allowed_between_layers_is_the_dtype_epsilon(dtype: str, eps: float) -> None:
    assert _epsilon(np.dtype(dtype)) == eps


def test_bfloat16_rounding_is_its_own_epsilon() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert _epsilon(np.dtype(ml_dtypes.bfloat16)) == 2.0 ** -7


class TestNormalizedAxes:
    def test_a_softmax_site_is_normalized_along_its_own_axes(self) -> None:
        columns = np.stack([ROWS.T, ROWS.T])  # (2, 3, 2): each column of an example sums to 1
        assert _normalized_axes(record(columns, SOFTMAX, softmax_axes=(-2,)), 1e-6) == (1,)
        assert _normalized_axes(record(columns, SOFTMAX, softmax_axes=(-1,)), 1e-6) is None
        assert _normalized_axes(record(columns, SOFTMAX), 1e-6) is None  # no axes given: the last one

    def test_a_custom_layer_is_normalized_along_its_last_axis(self) -> None:
        assert _normalized_axes(record(ROWS), 1e-6) == (1,)
        assert _normalized_axes(record(ROWS, PASSTHROUGH), 1e-6) is None

    def test_rows_that_do_not_sum_to_one_or_hold_negatives_are_not_a_softmax(self) -> None:
        assert _normalized_axes(record(ROWS * 1.01), 1e-6) is None
        assert _normalized_axes(record(ROWS * 1.01), 0.02) == (1,)  # within the check's tolerance
        assert _normalized_axes(record(np.array([[1.2, -0.2]])), 1e-6) is None
        assert _normalized_axes(record(np.array([[1.0]])), 1e-6) is None  # one class
        assert _normalized_axes(record(np.array([0.5, 0.5])), 1e-6) is None  # no class axis


def test_row_sums_are_the_least_and_largest_finite_sum_along_the_axis() -> None:
    values = np.array([[0.5, 0.25], [0.25, 0.25], [np.nan, 1.0]])
    assert _row_sums(record(values), -1) == (0.5, 0.75)
    assert _row_sums(record(values), 1) == (0.5, 0.75)
    assert _row_sums(record(values), 2) is None
    assert _row_sums(record(np.array([0.5])), -1) is None
    assert _row_sums(record(np.full((2, 2), np.nan)), -1) is None


def test_a_mask_input_is_integer_or_holds_only_zeros_and_ones() -> None:
    from pytest_softmax.core.diagnosis.nonfinite import _is_mask

    assert _is_mask(np.array([[3, 7]], "int32"))
    assert _is_mask(np.array([[True, False]]))
    assert _is_mask(np.array([[0.0, 1.0, 1.0]], "float32"))
    assert not _is_mask(np.array([[0.0, 0.5]], "float32"))
    assert not _is_mask(np.zeros((0, 3), "float32"))


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.13, "0.13"), (0.5, "0.50"), (0.997, "0.997"), (1.003, "1.003"), (0.9996, "0.9996"),
     (0.99996, "1.00"), (1.0, "1.00")],
)
def test_a_row_sum_that_misses_one_is_never_printed_as_one(value: float, text: str) -> None:
    # The recurrent-cell message says "rows sum to <low>-<high> here, not 1":
    # a gated row at 0.997 printed as "1.00" contradicted it (CI, torch backend).
    from pytest_softmax.core.diagnosis.rules import _sum_text

    assert _sum_text(value) == text
