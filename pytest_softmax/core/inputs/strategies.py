"""Hypothesis strategies for model inputs, built from the input signature.

A recipe is drawn per input in one composite (each Hypothesis draw costs
about as much as a small model's forward pass), and numpy expands it.
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
    WEIGHTED_MASK_PATTERNS,
    WEIGHTED_PATTERNS,
    ArrayRecipe,
    concrete_shape,
    value_limit,
    variable_size_limit,
)

# Each Hypothesis draw costs tens of microseconds, as much as a small
# model's forward pass: a recipe is drawn in one composite, with a plain
# count of spikes (which shrinks to none) rather than lists or one_of.
_SEEDS = st.integers(0, 2**32 - 1)
_POSITIONS = st.integers(0, 2**31 - 1)
_SPIKE_COUNTS = st.integers(0, MAX_SPIKES)


@st.composite
def _recipes(
    draw: st.DrawFn,
    patterns: st.SearchStrategy[str],
    scales: st.SearchStrategy[float],
    offsets: st.SearchStrategy[float],
    spike_values: st.SearchStrategy[float],
    integer: bool,
) -> ArrayRecipe:
    pattern, scale, offset, seed = draw(patterns), draw(scales), draw(offsets), draw(_SEEDS)
    spikes = tuple((draw(_POSITIONS), draw(spike_values)) for _ in range(draw(_SPIKE_COUNTS)))
    return ArrayRecipe(pattern=pattern, scale=scale, offset=offset, seed=seed, spikes=spikes, integer=integer)


def _float_recipes(spec: InputSpec) -> st.SearchStrategy[ArrayRecipe]:
    limit = value_limit(spec)
    spike_values = st.one_of(
        st.sampled_from([v for v in (0.0, 1.0, -1.0, 1e3, -1e3, 1e4, -1e4) if abs(v) <= limit]),
        st.floats(-limit, limit, allow_nan=False, allow_infinity=False),
    )
    return _recipes(
        st.sampled_from(WEIGHTED_PATTERNS), st.sampled_from([s for s in SCALES if s <= limit]),
        st.sampled_from(OFFSETS), spike_values, integer=False,
    )


def _int_recipes(spec: InputSpec) -> st.SearchStrategy[ArrayRecipe]:
    low, high = (spec.low, spec.high) if spec.low is not None and spec.high is not None else DEFAULT_INT_RANGE
    span = max(high - low, 1)
    return _recipes(
        st.sampled_from(INT_PATTERNS), st.just(1.0), st.integers(0, span - 1).map(float),
        st.sampled_from([0.0, float(span - 1)]), integer=True,
    )


@functools.lru_cache(maxsize=256)
def recipe_strategy(spec: InputSpec) -> st.SearchStrategy[ArrayRecipe]:
    if spec.is_mask:
        return st.builds(ArrayRecipe, pattern=st.sampled_from(WEIGHTED_MASK_PATTERNS), seed=_SEEDS,
                         integer=st.just(spec.is_integer))
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


