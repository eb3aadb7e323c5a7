"""Hypothesis strategies for model inputs, built from the input signature.

A batch for a vision model holds millions of numbers: far more than
Hypothesis can draw one by one (and ``arrays()`` fills most of such a tensor
with one repeated value).  So Hypothesis draws a compact *recipe* per input
(a pattern, a scale, an offset, a seed and a few extreme values at chosen
places) and numpy expands it.  Every part of a recipe shrinks towards the
simplest input (a constant zero tensor), so a failure shrinks to a case that
fits on one line and can be rebuilt exactly from that line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...adapters.base import InputSpec
from .fill import float_values, int_values, mask_values

FLOAT_PATTERNS = ("constant", "normal", "uniform", "ramp", "alternating")
# How often each pattern is drawn, in tenths.  Most examples are noise, as
# real inputs are; flat patterns are edge cases.  "constant" stays first, so
# a failure shrinks towards a constant tensor.
PATTERN_WEIGHTS = {"constant": 1, "normal": 4, "uniform": 3, "ramp": 1, "alternating": 1}
WEIGHTED_PATTERNS = tuple(p for p in FLOAT_PATTERNS for _ in range(PATTERN_WEIGHTS[p]))
INT_PATTERNS = ("constant", "uniform", "edges")
# Masks: nothing masked first (a failure shrinks towards it), padded rows
# most often, as real batches are; everything masked is an edge case.
MASK_PATTERNS = ("ones", "padding", "zeros")
MASK_WEIGHTS = {"ones": 3, "padding": 6, "zeros": 1}
# The patterns built from a random generator: the only ones that need a seed.
SEEDED_PATTERNS = frozenset({"normal", "uniform", "padding"})
WEIGHTED_MASK_PATTERNS = tuple(p for p in MASK_PATTERNS for _ in range(MASK_WEIGHTS[p]))
# Fixed masks only the edge phase builds (core/inputs/edges.py).
EDGE_MASK_PATTERNS = ("right-padding", "left-padding", "single")
ALL_MASK_PATTERNS = frozenset(MASK_PATTERNS + EDGE_MASK_PATTERNS)
# Magnitudes real inputs have (normalised features, pixels, raw counts) and
# those that push logits past float32's exp overflow (~88).
SCALES = (1.0, 0.0, 1e-3, 0.1, 10.0, 100.0, 1e3, 1e4, 1e6)
OFFSETS = (0.0, 1.0, -1.0, 0.5)
MAX_SPIKES = 4
# Variable dimensions (sequence lengths): lengths a sequence model sees in
# practice, at least 2 so that a softmax over them means something; length 1
# is drawn now and then as the edge case it is.
MIN_VARIABLE_DIM = 2
MAX_VARIABLE_DIM = 16
DEFAULT_INT_RANGE = (0, 256)
# The largest magnitude generated.  Far past any real feature, pixel or count,
# and past the logits where float32 exp overflows, yet not so far that every
# model turns it into Inf: an input of 1e19 says nothing about a softmax.
MAX_MAGNITUDE = 1e6
FLOAT_LIMITS = {"float16": 6.0e4, "bfloat16": MAX_MAGNITUDE, "float32": MAX_MAGNITUDE, "float64": MAX_MAGNITUDE}


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The numpy dtype used to build arrays for ``name``; bfloat16 is built
    in float32 and cast by the adapter."""
    return np.dtype("float32") if name == "bfloat16" else np.dtype(name)


@dataclass(frozen=True)
class ArrayRecipe:
    """A compact, exactly reproducible description of one input tensor."""

    pattern: str
    scale: float = 1.0
    offset: float = 0.0
    seed: int = 0
    spikes: tuple[tuple[int, float], ...] = ()
    integer: bool = False

    def expand(self, shape: Sequence[int], dtype: str, low: int | None = None,
               high: int | None = None, limit: float | None = None) -> np.ndarray:
        """Build the array.  Integer dtypes use ``[low, high)``."""
        shape = tuple(int(d) for d in shape)
        size = int(np.prod(shape, dtype=np.int64))
        target = numpy_dtype(dtype)
        if self.pattern in ALL_MASK_PATTERNS:
            return mask_values(self.pattern, shape, self.seed).astype(target, copy=False)
        if target.kind in "iu" or self.integer:
            # Ids of a float dtype (an embedding casts them) are built as int64 first.
            lo, hi = (low, high) if low is not None and high is not None else DEFAULT_INT_RANGE
            flat = int_values(self.pattern, size, target if target.kind in "iu" else np.dtype(np.int64),
                              low=lo, high=hi, offset=self.offset, seed=self.seed, spikes=self.spikes,
                              rows=shape[0] if shape else 1)
        else:
            flat = float_values(self.pattern, size, dtype, scale=self.scale, offset=self.offset,
                                seed=self.seed, spikes=self.spikes, rows=shape[0] if shape else 1,
                                limit=limit if limit is not None else FLOAT_LIMITS.get(dtype, MAX_MAGNITUDE))
        return flat.reshape(shape).astype(target, copy=False)

    def describe(self) -> str:
        if self.pattern in ALL_MASK_PATTERNS:
            return _MASK_DESCRIPTIONS.get(self.pattern, f"mask padding (ones then zeros), seed {self.seed}")
        if self.pattern == "one-hot":
            value = "1 over ids at the lowest" if self.integer else f"{self.scale:g} over zeros"
            return f"one-hot: {value}, at position {int(self.offset)} of each row"
        if self.integer:
            parts = [f"ids {self.pattern}" + (f" (offset {int(self.offset)})" if self.pattern == "constant" else "")]
            if self.pattern == "uniform":
                parts.append(f"seed {self.seed}")
            if self.spikes:
                parts.append("spikes " + ", ".join(f"[{p}]={int(v)}" for p, v in self.spikes))
            return ", ".join(parts)
        if self.pattern == "constant" and not self.spikes:
            parts = [f"constant {self.scale * (1.0 + self.offset):g}"]
        else:
            parts = [f"{self.pattern} x {self.scale:g}"]
            if self.offset:
                parts.append(f"offset {self.offset * self.scale:g}")
            if self.pattern in {"normal", "uniform"}:
                parts.append(f"seed {self.seed}")
        if self.spikes:
            spikes = ", ".join(f"[{p}]={v:g}" for p, v in self.spikes)
            parts.append(f"spikes {spikes}")
        return ", ".join(parts)


@dataclass(frozen=True)
class EdgeRows:
    """A batch of edge rows (core/inputs/edges.py), exactly reproducible:
    row ``r`` is ``cases[r % len(cases)]`` expanded as a batch of one row.
    A single case is one edge row repeated over the whole batch."""

    cases: tuple[ArrayRecipe, ...]

    def expand(self, shape: Sequence[int], dtype: str, low: int | None = None,
               high: int | None = None, limit: float | None = None) -> np.ndarray:
        shape = tuple(int(d) for d in shape)
        one_row = (1, *shape[1:])
        rows = np.concatenate([case.expand(one_row, dtype, low, high, limit) for case in self.cases])
        return rows[np.arange(shape[0]) % len(self.cases)] if shape else rows[0]

    def __repr__(self) -> str:
        # Runnable as written after "pytest_softmax." (a failure's rebuild line).
        cases = "".join(f"pytest_softmax.{case!r}, " for case in self.cases)
        return f"EdgeRows(cases=({cases.rstrip(' ')}))"

    def describe(self) -> str:
        if len(self.cases) == 1:
            return f"edge row, every row: {self.cases[0].describe()}"
        shown = "; ".join(case.describe() for case in self.cases[:3])
        more = f"; and {len(self.cases) - 3} more" if len(self.cases) > 3 else ""
        return f"{len(self.cases)} edge rows in turn: {shown}{more}"


_MASK_DESCRIPTIONS = {
    "ones": "mask all ones", "zeros": "mask all zeros (every position padded)",
    "right-padding": "mask right-padded (first half kept)", "left-padding": "mask left-padded (last half kept)",
    "single": "mask with one valid position (the first)",
}


def value_limit(spec: InputSpec) -> float:
    limit = FLOAT_LIMITS.get(spec.dtype, MAX_MAGNITUDE)
    return min(limit, spec.value_limit) if spec.value_limit is not None else limit


def variable_size_limit(specs: Sequence[InputSpec]) -> int:
    """The largest size a variable dimension may take for these inputs."""
    limits = [s.domain.max_length for s in specs if s.domain.max_length is not None]
    return max(1, min([MAX_VARIABLE_DIM, *limits]))


def concrete_shape(spec: InputSpec, batch_size: int, variable_size: int) -> tuple[int, ...]:
    return (batch_size, *(variable_size if d is None else d for d in spec.shape))
