"""Input batches: generated ones (a recipe per input and the arrays it
gives) and the arrays a test passes with ``inputs=``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...adapters.base import InputSpec
from ...adapters.base.arrays import as_float64, is_numeric
from ..kinds import GIVEN_INPUT
from ..report import InputSummary
from ..vacuous import require_given_rows
from .recipes import ArrayRecipe, EdgeRows


@dataclass(frozen=True)
class GeneratedBatch:
    """One Hypothesis example: a recipe per input and the arrays they give."""

    specs: tuple[InputSpec, ...]
    recipes: tuple[ArrayRecipe | EdgeRows | None, ...]
    arrays: tuple[np.ndarray, ...]

    def __repr__(self) -> str:
        parts = [
            f"{spec.name}={recipe.describe() if recipe else 'given'} {list(array.shape)}"
            for spec, recipe, array in zip(self.specs, self.recipes, self.arrays)
        ]
        return f"GeneratedBatch({'; '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis pretty-prints every explicit example it runs, a
        # dataclass field by field, arrays included: 2-7 ms for an edge
        # batch of a small LSTM, once per check.  The one-line form says what matters.
        printer.text(repr(self))

    def summaries(self) -> list[InputSummary]:
        out = []
        for spec, recipe, array in zip(self.specs, self.recipes, self.arrays):
            numeric = is_numeric(np.asarray(array).dtype)  # string inputs have no value range
            finite = as_float64(array) if numeric else np.zeros(0)
            if recipe is None:
                description, rebuild = "given by the test", GIVEN_INPUT
            else:
                description = recipe.describe()
                bounds = f", low={spec.low}, high={spec.high}" if spec.low is not None else ""
                if spec.value_limit is not None:
                    bounds += f", limit={spec.value_limit!r}"
                rebuild = f"pytest_softmax.{recipe!r}.expand({tuple(array.shape)}, {spec.dtype!r}{bounds})"
            out.append(InputSummary(
                name=spec.name, dtype=spec.dtype, shape=tuple(int(d) for d in array.shape),
                description=description, rebuild=rebuild,
                min_value=float(finite.min()) if finite.size else 0.0,
                max_value=float(finite.max()) if finite.size else 0.0,
                domain=spec.describe_domain(), edge=isinstance(recipe, EdgeRows),
            ))
        return out


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
    require_given_rows(total)
    batches = []
    for start in range(0, max(total, 1), batch_size):
        part = tuple(a[start:start + batch_size] for a in arrays)
        batches.append(GeneratedBatch(tuple(specs), tuple(None for _ in specs), part))
    return batches
