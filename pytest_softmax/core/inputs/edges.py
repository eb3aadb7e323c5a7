"""The edge phase: structured rows tried before the random search.

A random search reaches a fully padded row, a flag that is 0 everywhere or
the largest magnitude an input takes only by luck, and a verdict that
depends on luck differs from seed to seed.  So every check starts with a
small fixed catalogue of rows built from each input's domain (zeros, ones,
large and tiny magnitudes of both signs, alternating signs, one-hot spikes;
ids at both ends of their range and between; masks full, empty, padded on
either side, with one valid position), at the largest and the smallest
length a variable dimension takes.  Rows are independent, so one batch
carries many of them: the whole catalogue costs a few forward passes.

Each batch is an :class:`EdgeRows` recipe per input and the search runs it
as one of Hypothesis' explicit examples; a failing batch is narrowed to its worst
row (:func:`narrowed`), which a one-line ``EdgeRows`` rebuilds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ...adapters.base import InputSpec
from .batches import GeneratedBatch
from .recipes import (
    DEFAULT_INT_RANGE,
    ArrayRecipe,
    EdgeRows,
    concrete_shape,
    value_limit,
    variable_size_limit,
)

# The catalogue costs at most this many forward passes (the budget):
# rows past it, with a batch size too small to hold them, are left out,
# the most telling first in each catalogue.
MAX_EDGE_PASSES = 3
# Magnitudes below the input's value limit worth a row of their own: past
# float16's exp overflow (~11), float32's (~88), and a typical feature
# range scaled up by a bad normalization.
LARGE_MAGNITUDES = (1e2, 1e4)
TINY_MAGNITUDE = 1e-6


def _constant(value: float) -> ArrayRecipe:
    return ArrayRecipe(pattern="constant", scale=value)


def float_cases(spec: InputSpec) -> list[ArrayRecipe]:
    """Rows of an input whose values mean nothing the graph says."""
    limit = value_limit(spec)
    large = [m for m in LARGE_MAGNITUDES if m < limit] + [limit]
    cases = [_constant(0.0), _constant(1.0), _constant(-1.0)]
    for magnitude in reversed(large):  # the largest first: it overflows what smaller ones do not
        cases += [_constant(magnitude), _constant(-magnitude)]
    return cases + [
        _constant(TINY_MAGNITUDE), _constant(-TINY_MAGNITUDE),
        ArrayRecipe(pattern="alternating"), ArrayRecipe(pattern="alternating", scale=limit),
        ArrayRecipe(pattern="one-hot", scale=1.0, offset=0.0), ArrayRecipe(pattern="one-hot", scale=1.0, offset=-1.0),
        ArrayRecipe(pattern="one-hot", scale=limit, offset=0.0),
        ArrayRecipe(pattern="one-hot", scale=-limit, offset=-1.0),
    ]


def _ids(offset: int) -> ArrayRecipe:
    return ArrayRecipe(pattern="constant", offset=float(offset), integer=True)


def id_cases(spec: InputSpec) -> list[ArrayRecipe]:
    """Ids at the bottom, top and middle of their range, and both ends
    alternating.  An integer input whose meaning the graph leaves open (no
    vocabulary, no mask use: a flag, a count, a validity compared with 0)
    gets 0/1 rows too: all 1, and one 1 among zeros at either end."""
    low, high = (spec.low, spec.high) if spec.low is not None and spec.high is not None else DEFAULT_INT_RANGE
    top = max(high - low - 1, 0)
    cases = [_ids(0), _ids(top), _ids(top // 2), ArrayRecipe(pattern="edges", integer=True)]
    if spec.high is None:  # meaning left open
        cases[1:1] = [_ids(1)]
        cases += [ArrayRecipe(pattern="one-hot", offset=0.0, integer=True),
                  ArrayRecipe(pattern="one-hot", offset=-1.0, integer=True)]
    return cases


def mask_cases(spec: InputSpec) -> list[ArrayRecipe]:
    """Nothing masked, everything masked (a fully padded row), padding on
    the right and on the left, a single valid position."""
    return [ArrayRecipe(pattern=p, integer=spec.is_integer)
            for p in ("ones", "zeros", "right-padding", "left-padding", "single")]


def cases_for(spec: InputSpec) -> list[ArrayRecipe]:
    if spec.is_mask:
        return mask_cases(spec)
    if spec.is_ids:
        return id_cases(spec)
    return float_cases(spec)


def edge_lengths(specs: Sequence[InputSpec]) -> list[int]:
    """The sizes a variable dimension takes in the edge phase: its largest
    and its smallest (1); a single 1 for inputs without one."""
    if not any(d is None for spec in specs for d in spec.shape):
        return [1]
    longest = variable_size_limit(specs)
    return [longest, 1] if longest > 1 else [1]


def edge_batches(specs: Sequence[InputSpec], batch_size: int) -> list[GeneratedBatch]:
    """The edge phase's batches: every input's catalogue laid out row by row
    (row ``r`` takes case ``r`` of each input, each catalogue in turn), for
    each edge length, within :data:`MAX_EDGE_PASSES` forward passes."""
    catalogues = [cases_for(spec) for spec in specs]
    rows = max((len(c) for c in catalogues), default=0)
    lengths = edge_lengths(specs)
    per_length = max(1, MAX_EDGE_PASSES // len(lengths))
    batches = []
    for length in lengths:
        for start in range(0, rows, batch_size)[:per_length]:
            recipes = tuple(EdgeRows(tuple(c[(start + j) % len(c)] for j in range(min(len(c), batch_size))))
                            for c in catalogues)
            batches.append(_built(specs, recipes, batch_size, length))
    return batches


def _built(specs: Sequence[InputSpec], recipes: tuple[EdgeRows, ...], batch_size: int,
           length: int) -> GeneratedBatch:
    arrays = tuple(recipe.expand(concrete_shape(spec, batch_size, length), spec.dtype, spec.low, spec.high,
                                 value_limit(spec))
                   for spec, recipe in zip(specs, recipes))
    return GeneratedBatch(tuple(specs), recipes, arrays)


def narrowed(batch: GeneratedBatch, severity: float,
             evaluate: Callable[[GeneratedBatch], tuple[bool, float]]) -> GeneratedBatch | None:
    """The worst row of a failing edge batch, as a batch of that row
    repeated, or None when that row does not fail on its own.

    ``severity`` is the batch's (its worst row's); ``evaluate`` tells whether
    a batch fails and its severity.  Rows are independent and a batch's
    severity is its worst row's, so the half holding the worst row is the
    one whose severity is the whole batch's: halving finds it in about
    log2(rows) forward passes, spent only on a failure.  The report then
    describes the row it shows (its worst error is that row's)."""
    edge_rows = [r for r in batch.recipes if isinstance(r, EdgeRows)]
    if len(edge_rows) != len(batch.recipes):
        return None
    batch_size = int(batch.arrays[0].shape[0]) if batch.arrays and batch.arrays[0].ndim else 1
    # Row r of the batch takes case r of each input in turn: rows repeat after lcm(case counts).
    candidates = list(range(min(batch_size, math.lcm(*(len(r.cases) for r in edge_rows)))))
    while len(candidates) > 1:
        half = candidates[:len(candidates) // 2]
        _, half_severity = evaluate(_rows_of(batch, edge_rows, half))
        candidates = half if half_severity >= severity else candidates[len(half):]
    single = _rows_of(batch, edge_rows, candidates)
    return single if evaluate(single)[0] else None


def _rows_of(batch: GeneratedBatch, edge_rows: list[EdgeRows], rows: list[int]) -> GeneratedBatch:
    """A batch of only ``rows`` of ``batch``, in turn."""
    recipes = tuple(EdgeRows(tuple(r.cases[i % len(r.cases)] for i in rows)) for r in edge_rows)
    batch_size = int(batch.arrays[0].shape[0]) if batch.arrays and batch.arrays[0].ndim else 1
    length = _variable_length(batch)
    return _built(batch.specs, recipes, batch_size, length)


def _variable_length(batch: GeneratedBatch) -> int:
    """The size the batch gave its variable dimensions (1 when none)."""
    for spec, array in zip(batch.specs, batch.arrays):
        for axis, dim in enumerate(spec.shape, start=1):
            if dim is None:
                return int(array.shape[axis])
    return 1
