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

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .adapters.base import InputSpec
from .fill import float_values, int_values
from .report import GIVEN_INPUT, InputSummary

FLOAT_PATTERNS = ("constant", "normal", "uniform", "ramp", "alternating")
# How often each pattern is drawn, in tenths.  Most examples are noise, as
# real inputs are; flat patterns are edge cases.  "constant" stays first, so
# a failure shrinks towards a constant tensor.
PATTERN_WEIGHTS = {"constant": 1, "normal": 4, "uniform": 3, "ramp": 1, "alternating": 1}
_WEIGHTED_PATTERNS = tuple(p for p in FLOAT_PATTERNS for _ in range(PATTERN_WEIGHTS[p]))
INT_PATTERNS = ("constant", "uniform", "edges")
# Magnitudes real inputs have (normalised features, pixels, raw counts) and
# those that push logits past float32's exp overflow (~88).
SCALES = (1.0, 0.0, 1e-3, 0.1, 10.0, 100.0, 1e3, 1e4, 1e6)
OFFSETS = (0.0, 1.0, -1.0, 0.5)
MAX_SPIKES = 4
MAX_VARIABLE_DIM = 16
DEFAULT_INT_RANGE = (0, 256)
# The largest magnitude generated.  Far past any real feature, pixel or count,
# and past the logits where float32 exp overflows, yet not so far that every
# model turns it into Inf: an input of 1e19 says nothing about a softmax.
MAX_MAGNITUDE = 1e6
_FLOAT_LIMITS = {"float16": 6.0e4, "bfloat16": MAX_MAGNITUDE, "float32": MAX_MAGNITUDE, "float64": MAX_MAGNITUDE}


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
        if target.kind in "iu":
            lo, hi = (low, high) if low is not None and high is not None else DEFAULT_INT_RANGE
            flat = int_values(self.pattern, size, target, low=lo, high=hi, offset=self.offset,
                              seed=self.seed, spikes=self.spikes)
        else:
            flat = float_values(self.pattern, size, dtype, scale=self.scale, offset=self.offset,
                                seed=self.seed, spikes=self.spikes, rows=shape[0] if shape else 1,
                                limit=limit if limit is not None else _FLOAT_LIMITS.get(dtype, MAX_MAGNITUDE))
        return flat.reshape(shape).astype(target, copy=False)

    def describe(self) -> str:
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
class GeneratedBatch:
    """One Hypothesis example: a recipe per input and the arrays they give."""

    specs: tuple[InputSpec, ...]
    recipes: tuple[ArrayRecipe | None, ...]
    arrays: tuple[np.ndarray, ...]

    def __repr__(self) -> str:
        parts = [
            f"{spec.name}={recipe.describe() if recipe else 'given'} {list(array.shape)}"
            for spec, recipe, array in zip(self.specs, self.recipes, self.arrays)
        ]
        return f"GeneratedBatch({'; '.join(parts)})"

    def summaries(self) -> list[InputSummary]:
        out = []
        for spec, recipe, array in zip(self.specs, self.recipes, self.arrays):
            numeric = np.asarray(array).dtype.kind in "biuf"  # string inputs have no value range
            finite = np.asarray(array, dtype=np.float64) if numeric else np.zeros(0)
            if recipe is None:
                description, rebuild = "given by the test", GIVEN_INPUT
            else:
                description = recipe.describe()
                bounds = f", low={spec.low}, high={spec.high}" if spec.low is not None else ""
                if spec.value_limit is not None:
                    bounds += f", limit={spec.value_limit!r}"
                rebuild = f"pytest_softmax.inputs.{recipe!r}.expand({tuple(array.shape)}, {spec.dtype!r}{bounds})"
            out.append(InputSummary(
                name=spec.name, dtype=spec.dtype, shape=tuple(int(d) for d in array.shape),
                description=description, rebuild=rebuild,
                min_value=float(finite.min()) if finite.size else 0.0,
                max_value=float(finite.max()) if finite.size else 0.0,
            ))
        return out


def value_limit(spec: InputSpec) -> float:
    limit = _FLOAT_LIMITS.get(spec.dtype, MAX_MAGNITUDE)
    return min(limit, spec.value_limit) if spec.value_limit is not None else limit


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
        st.sampled_from(_WEIGHTED_PATTERNS), st.sampled_from([s for s in SCALES if s <= limit]),
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
    if spec.is_integer:
        return _int_recipes(spec)
    if spec.dtype == "bool":
        return st.builds(ArrayRecipe, pattern=st.just("uniform"), seed=st.integers(0, 2**32 - 1))
    return _float_recipes(spec)


def concrete_shape(spec: InputSpec, batch_size: int, variable_size: int) -> tuple[int, ...]:
    return (batch_size, *(variable_size if d is None else d for d in spec.shape))


@st.composite
def generated_batches(draw: st.DrawFn, specs: Sequence[InputSpec], batch_size: int) -> GeneratedBatch:
    """A batch for every input.  One size is drawn for all variable
    dimensions, so inputs that must agree on a sequence length do."""
    variable = any(d is None for spec in specs for d in spec.shape)
    variable_size = draw(st.integers(1, MAX_VARIABLE_DIM)) if variable else 1
    recipes = tuple(draw(recipe_strategy(spec)) for spec in specs)
    arrays = tuple(
        recipe.expand(concrete_shape(spec, batch_size, variable_size), spec.dtype, spec.low, spec.high,
                      value_limit(spec))
        for spec, recipe in zip(specs, recipes)
    )
    return GeneratedBatch(tuple(specs), recipes, arrays)


def arrange_inputs(value: Any, specs: Sequence[InputSpec]) -> tuple[np.ndarray, ...]:
    """Put user-given inputs (one array, a list in input order, or a dict by
    input name) in the adapter's input order."""
    if isinstance(value, Mapping):
        missing = [s.name for s in specs if s.name not in value]
        if missing:
            raise ValueError(
                f"inputs= is missing {', '.join(missing)}; the model's inputs are "
                f"{', '.join(s.name for s in specs)}"
            )
        return tuple(np.asarray(value[s.name]) for s in specs)
    if isinstance(value, (list, tuple)):
        if len(value) != len(specs):
            raise ValueError(f"inputs= has {len(value)} arrays; the model has {len(specs)} inputs")
        return tuple(np.asarray(v) for v in value)
    if len(specs) != 1:
        raise ValueError(
            f"inputs= is one array but the model has {len(specs)} inputs "
            f"({', '.join(s.name for s in specs)}); pass a list or a dict by input name"
        )
    return (np.asarray(value),)


def user_batches(value: Any, specs: Sequence[InputSpec], batch_size: int) -> list[GeneratedBatch]:
    """Split user-given arrays into batches of at most ``batch_size`` rows."""
    arrays = arrange_inputs(value, specs)
    rows = {int(a.shape[0]) if a.ndim else 1 for a in arrays}
    if len(rows) != 1:
        raise ValueError(f"inputs= arrays disagree on the number of rows: {sorted(rows)}")
    (total,) = rows
    batches = []
    for start in range(0, max(total, 1), batch_size):
        part = tuple(a[start:start + batch_size] for a in arrays)
        batches.append(GeneratedBatch(tuple(specs), tuple(None for _ in specs), part))
    return batches
