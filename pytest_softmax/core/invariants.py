"""The invariant itself, on plain numpy arrays: every value finite, within
[0, 1] and every row summing to 1 along the softmax axis.

Sums are taken in float64 whatever the output dtype: a float32 or float16
accumulation adds rounding errors of its own that would be blamed on the
model.  No framework code here, so it serves every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..adapters.base.arrays import as_float64, row_sum_errors
from .kinds import NOT_FINITE, NOT_NORMALIZED, OUT_OF_RANGE
from .report import ROW_ERROR_BINS, Violation

MAX_ROW_VALUES_SHOWN = 8


@dataclass(frozen=True)
class BatchCheck:
    """Invariant measurements on one output for one batch."""

    rows: int
    n_classes: int
    worst_error: float
    worst_index: tuple[int, ...]
    nonfinite_values: int
    nonfinite_rows: int
    range_excess: float
    out_of_range_rows: int
    unnormalized_rows: int
    min_value: float
    max_value: float
    tolerance: float
    # Finite rows per bin of ROW_ERROR_BINS (|sum - 1| / tolerance).
    error_counts: tuple[int, ...] = ()

    @property
    def passed(self) -> bool:
        return not (self.nonfinite_values or self.out_of_range_rows or self.unnormalized_rows)

    @property
    def severity(self) -> float:
        """How far past the tolerance this batch is (for Hypothesis' target):
        non-finite values rank above any finite error."""
        if self.nonfinite_values:
            return 1e6 + self.nonfinite_values
        scale = max(self.tolerance, np.finfo(np.float64).tiny)
        return float(max(self.worst_error, self.range_excess) / scale)


def rows_along(output: np.ndarray, axis: int) -> np.ndarray:
    """The output in float64 with the softmax axis last: one row per distribution."""
    values = as_float64(output)
    return values if axis in (-1, values.ndim - 1) else np.moveaxis(values, axis, -1)


def check_batch(output: np.ndarray, axis: int, tolerance: float) -> BatchCheck:
    """Measure the invariant on one output array along ``axis``; a row
    passes when ``|sum - 1|`` and its excursion outside [0, 1] are at most
    ``tolerance``."""
    values = rows_along(output, axis)
    finite = np.isfinite(values)
    if values.size and finite.all():
        return _check_all_finite(values, tolerance)
    return _check_with_nonfinite(values, finite, tolerance)


def _check_all_finite(values: np.ndarray, tolerance: float) -> BatchCheck:
    """The common case, a batch with no NaN or Inf: per-row minima and
    maxima give the range check without masked copies."""
    row_min = values.min(axis=-1)
    row_max = values.max(axis=-1)
    excess = np.maximum(np.maximum(-row_min, row_max - 1.0), 0.0)
    errors = row_sum_errors(values)
    worst_flat = int(np.argmax(errors))
    return BatchCheck(
        rows=int(errors.size),
        n_classes=int(values.shape[-1]),
        worst_error=float(errors.flat[worst_flat]),
        worst_index=tuple(int(i) for i in np.unravel_index(worst_flat, errors.shape)),
        nonfinite_values=0,
        nonfinite_rows=0,
        range_excess=float(excess.max(initial=0.0)),
        out_of_range_rows=int((excess > tolerance).sum()),
        unnormalized_rows=int((errors > tolerance).sum()),
        min_value=float(row_min.min()),
        max_value=float(row_max.max()),
        tolerance=tolerance,
        error_counts=row_error_counts(errors, tolerance),
    )


def _check_with_nonfinite(values: np.ndarray, finite: np.ndarray, tolerance: float) -> BatchCheck:
    """The general case: rows holding NaN/Inf count as non-finite (their sum
    error is infinite); the range is judged on the finite values."""
    nonfinite_per_row = (~finite).sum(axis=-1)
    clean = np.where(finite, values, 0.0)
    # The maxima start at 0: a row inside [0, 1] has no excess.
    below = (-clean).max(axis=-1, initial=0.0)
    above = (clean - 1.0).max(axis=-1, initial=0.0)
    excess = np.maximum(below, above)
    errors = np.where(nonfinite_per_row > 0, np.inf, row_sum_errors(clean))
    if errors.size:
        worst_flat = int(np.argmax(errors))
        worst_index = tuple(int(i) for i in np.unravel_index(worst_flat, errors.shape))
        worst_error = float(errors.flat[worst_flat])
    else:
        worst_index, worst_error = (), 0.0
    return BatchCheck(
        rows=int(errors.size),
        n_classes=int(values.shape[-1]),
        worst_error=worst_error,
        worst_index=worst_index,
        nonfinite_values=int(nonfinite_per_row.sum()),
        nonfinite_rows=int((nonfinite_per_row > 0).sum()),
        range_excess=float(excess.max(initial=0.0)),
        out_of_range_rows=int((excess > tolerance).sum()),
        unnormalized_rows=int((np.isfinite(errors) & (errors > tolerance)).sum()),
        # Over the finite values only: the zeros standing in for NaN/Inf are not output values.
        min_value=float(values[finite].min()) if finite.any() else 0.0,
        max_value=float(values[finite].max()) if finite.any() else 0.0,
        tolerance=tolerance,
        error_counts=row_error_counts(errors[np.isfinite(errors)], tolerance),
    )


_BIN_EDGES = np.asarray(ROW_ERROR_BINS[1:])


def row_error_counts(errors: np.ndarray, tolerance: float) -> tuple[int, ...]:
    """How many of the (finite) row errors fall in each bin of
    ``ROW_ERROR_BINS``: one pass over the errors already computed, so a
    check keeps a handful of integers per output, never its rows.  The
    bins' upper edges are inclusive: a row at exactly the tolerance passes
    and is counted below 1."""
    if tolerance > 0:
        ratios = np.ravel(errors) / tolerance
    else:  # no tolerance: every nonzero error is past it
        ratios = np.where(np.ravel(errors) > 0, np.inf, 0.0)
    bins = np.searchsorted(_BIN_EDGES, ratios, side="left")
    return tuple(int(c) for c in np.bincount(bins, minlength=len(ROW_ERROR_BINS)))


def violations_of(check: BatchCheck, output: np.ndarray, *, axis: int, name: str, layer_name: str,
                  layer_class: str, dtype: str) -> list[Violation]:
    """Describe what a failing :class:`BatchCheck` broke, worst first:
    non-finite values, then unnormalized rows, then out-of-range values."""
    if check.passed:
        return []
    values = rows_along(output, axis)
    common = _violation_fields(check, values, axis=axis, output=name, layer_name=layer_name,
                               layer_class=layer_class, dtype=dtype)
    found: list[Violation] = []
    if check.nonfinite_values:
        found.append(Violation(kind=NOT_FINITE, error=float(check.nonfinite_values),
                               rows_violating=check.nonfinite_rows, **common))
    if check.unnormalized_rows:
        found.append(Violation(kind=NOT_NORMALIZED, error=_worst_finite_error(values),
                               rows_violating=check.unnormalized_rows, **common))
    if check.out_of_range_rows:
        found.append(Violation(kind=OUT_OF_RANGE, error=check.range_excess,
                               rows_violating=check.out_of_range_rows, **common))
    return found


def _violation_fields(check: BatchCheck, values: np.ndarray, **where: Any) -> dict[str, Any]:
    """What every violation of one batch shares: where, and the worst row."""
    row = values[check.worst_index] if check.worst_index else values
    return dict(
        **where,
        n_classes=check.n_classes,
        tolerance=check.tolerance,
        rows=check.rows,
        worst_row=check.worst_index,
        worst_row_sum=float(np.sum(row)),
        worst_row_values=tuple(float(v) for v in np.ravel(row)[:MAX_ROW_VALUES_SHOWN]),
    )


def _worst_finite_error(values: np.ndarray) -> float:
    errors = row_sum_errors(values)
    finite = errors[np.isfinite(errors)]
    return float(finite.max()) if finite.size else float("nan")


def without_masked_rows(output: np.ndarray, axis: int) -> np.ndarray:
    """The output's rows along ``axis`` as a 2-D array, all-zero rows left
    out: what a masked Keras ``Softmax`` writes for a row its mask hides
    entirely, accepted when the user says such rows are expected (a real
    softmax never writes one: its largest entry is at least 1/n)."""
    values = np.moveaxis(np.asarray(output), axis, -1)
    rows = values.reshape(-1, values.shape[-1])
    kept: np.ndarray = rows[~np.all(rows == 0, axis=-1)]
    return kept
