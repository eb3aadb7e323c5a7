"""Array helpers every part of the engine shares, written once.

What counts as a float array (bfloat16 from ml_dtypes included: numpy
reports its kind as ``'V'``), widening to float64 for sums, and the row-sum
error ``|sum - 1|`` itself, and feeding an array to a digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


def is_float(dtype: Any) -> bool:
    """Whether arrays of ``dtype`` hold real floats (bfloat16 included)."""
    dtype = np.dtype(dtype)
    return bool(dtype.kind == "f" or dtype.name == "bfloat16")


def can_be_nonfinite(dtype: Any) -> bool:
    """Real or complex floats: the dtypes that can hold NaN or Inf."""
    return is_float(dtype) or np.dtype(dtype).kind == "c"


def is_numeric(dtype: Any) -> bool:
    """Booleans, integers and floats: values with a range worth printing."""
    dtype = np.dtype(dtype)
    return dtype.kind in "biu" or is_float(dtype)


def as_float64(values: Any) -> np.ndarray:
    """Widen any float output (bfloat16 included) to float64, so sums add no
    rounding of their own that would be blamed on the model."""
    return np.asarray(values).astype(np.float64)


def row_sum_errors(values: np.ndarray, axis: int | Sequence[int] = -1) -> np.ndarray:
    """``|sum - 1|`` of every row along ``axis``, in float64.  A row holding
    +Inf and -Inf sums to NaN: that is the verdict, not a numpy warning for
    the user's warnings summary."""
    # No copy when the values are float64 already (the invariant widens them once).
    widened = np.asarray(values).astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        summed = widened.sum(axis=axis if isinstance(axis, int) else tuple(axis))
    errors: np.ndarray = np.abs(summed - 1.0)
    return errors


def nonfinite_count(values: Any) -> int:
    """NaN and Inf values in a float array; 0 for any other dtype."""
    array = np.asarray(values)
    if not can_be_nonfinite(array.dtype):
        return 0
    widened = array if array.dtype.kind == "c" else as_float64(array)
    return int((~np.isfinite(widened)).sum())


class Digest(Protocol):
    """What :func:`add_to_digest` needs of a ``hashlib`` object."""

    def update(self, data: Any, /) -> None: ...


def add_to_digest(digest: Digest, array: Any, label: str = "") -> None:
    """Feed ``array``'s shape, dtype and bytes (and ``label``, a name for
    it) to ``digest``: equal arrays feed equal bytes, whatever their
    memory layout."""
    values = np.ascontiguousarray(array)
    digest.update(f"{label}|{values.shape}|{values.dtype.str}|".encode())
    digest.update(values.reshape(-1).view(np.uint8).data)
