"""Hypothesis strategies for model inputs, built from the input signature.

A recipe is drawn per input in one composite with few draws (each costs
~25 us, and Hypothesis' own work per test case ~300 us, against ~1 ms for
the small LSTM's compiled pass), and numpy expands it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from hypothesis import strategies as st

from ...adapters.base import InputSpec
from .batches import GeneratedBatch
from .recipes import (
    DEFAULT_INT_RANGE,
    INT_PATTERNS,
    MAX_SPIKES,
    MIN_VARIABLE_DIM,
    OFFSETS,
    SCALES,
    SEEDED_PATTERNS,
    WEIGHTED_MASK_PATTERNS,
    WEIGHTED_PATTERNS,
    ArrayRecipe,
    concrete_shape,
    value_limit,
    variable_size_limit,
)

# A recipe takes as few draws as its search needs: a seed only for the
# patterns that use one, a plain count of spikes that is 0 half the time and
# shrinks to 0 (rather than lists or one_of), and each spike's value from
# the edge values, with a free float only when the rare last choice asks
# for one.
_SEEDS = st.integers(0, 2**32 - 1)
_POSITIONS = st.integers(0, 2**31 - 1)
_SPIKE_DRAWS = st.integers(0, 2 * MAX_SPIKES - 1)
_FREE_VALUE = None
_MASK_PATTERNS = st.sampled_from(WEIGHTED_MASK_PATTERNS)


def _seed_for(draw: st.DrawFn, pattern: str) -> int:
    return draw(_SEEDS) if pattern in SEEDED_PATTERNS else 0


def _spike_count(drawn: int) -> int:
    """0 spikes for the lower half of the draw, then 1 to MAX_SPIKES."""
    return max(0, drawn - MAX_SPIKES + 1)


@st.composite
def _recipes(
    draw: st.DrawFn,
    patterns: st.SearchStrategy[str],
    magnitudes: st.SearchStrategy[tuple[float, float]],
    spike_edges: st.SearchStrategy[float | None],
    spike_values: st.SearchStrategy[float],
    integer: bool,
) -> ArrayRecipe:
    pattern, (scale, offset) = draw(patterns), draw(magnitudes)
    seed = _seed_for(draw, pattern)
    spikes: dict[int, float] = {}
    for _ in range(_spike_count(draw(_SPIKE_DRAWS))):
        position, value = draw(_POSITIONS), draw(spike_edges)
        # A later spike at the same place overwrites an earlier one: keep one,
        # so a shrunk failure does not list spikes that change nothing.
        spikes.pop(position, None)
        spikes[position] = draw(spike_values) if value is _FREE_VALUE else value
    return ArrayRecipe(pattern=pattern, scale=scale, offset=offset, seed=seed, spikes=tuple(spikes.items()),
                       integer=integer)


def _float_recipes(spec: InputSpec) -> st.SearchStrategy[ArrayRecipe]:
    limit = value_limit(spec)
    edges = [v for v in (0.0, 1.0, -1.0, 1e3, -1e3, 1e4, -1e4) if abs(v) <= limit]
    # Scale and offset in one draw, scale first: a failure shrinks towards
    # the smallest scale, then the first offset.  The pattern keeps a draw
    # of its own, so it shrinks apart (towards a constant) whatever the scale.
    magnitudes = [(scale, offset) for scale in SCALES if scale <= limit for offset in OFFSETS]
    return _recipes(
        st.sampled_from(WEIGHTED_PATTERNS), st.sampled_from(magnitudes),
        st.sampled_from([*edges, _FREE_VALUE]), st.floats(-limit, limit, allow_nan=False, allow_infinity=False),
        integer=False,
    )


def _int_recipes(spec: InputSpec) -> st.SearchStrategy[ArrayRecipe]:
    low, high = (spec.low, spec.high) if spec.low is not None and spec.high is not None else DEFAULT_INT_RANGE
    span = max(high - low, 1)
    return _recipes(
        st.sampled_from(INT_PATTERNS), st.integers(0, span - 1).map(lambda offset: (1.0, float(offset))),
        st.sampled_from([0.0, float(span - 1), _FREE_VALUE]), st.integers(0, span - 1).map(float), integer=True,
    )


@st.composite
def _mask_recipes(draw: st.DrawFn, integer: bool) -> ArrayRecipe:
    pattern = draw(_MASK_PATTERNS)
    return ArrayRecipe(pattern=pattern, seed=_seed_for(draw, pattern), integer=integer)


@functools.lru_cache(maxsize=256)
def recipe_strategy(spec: InputSpec) -> st.SearchStrategy[ArrayRecipe]:
    if spec.is_mask:
        return _mask_recipes(spec.is_integer)
    if spec.is_ids:
        return _int_recipes(spec)
    return _float_recipes(spec)


@st.composite
def _variable_sizes(draw: st.DrawFn, limit: int) -> int:
    """A length in [2, limit], or 1 about one time in twenty.  The rare draw
    comes first and shrinks away from 1, so a failure keeps length 1 only
    when it needs it."""
    if limit < MIN_VARIABLE_DIM or draw(st.integers(0, 19)) == 19:
        return 1
    return draw(st.integers(MIN_VARIABLE_DIM, limit))


@st.composite
def generated_batches(draw: st.DrawFn, specs: Sequence[InputSpec], batch_size: int) -> GeneratedBatch:
    """A batch for every input.  One size is drawn for all variable
    dimensions, so inputs that must agree on a sequence length do."""
    variable = any(d is None for spec in specs for d in spec.shape)
    variable_size = draw(_variable_sizes(variable_size_limit(specs))) if variable else 1
    recipes = tuple(draw(recipe_strategy(spec)) for spec in specs)
    arrays = tuple(
        recipe.expand(concrete_shape(spec, batch_size, variable_size), spec.dtype, spec.low, spec.high,
                      value_limit(spec))
        for spec, recipe in zip(specs, recipes)
    )
    return GeneratedBatch(tuple(specs), recipes, arrays)


