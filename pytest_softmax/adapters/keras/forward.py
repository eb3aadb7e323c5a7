"""A forward pass that works whenever the model works.

The backend's compiled form is tried first.  If it raises on a batch, the
model is called directly on the same batch: when that works too, the
compiled form (not the model) is at fault, for example a ``tf.function``
traced with a ``None`` time dimension that ``TimeDistributed`` cannot slice.
The forward then falls back, for this model and the rest of the session, to
a trace per concrete shape (where the backend has one) or to the eager call,
and says so in a report note.  When the direct call raises as well, the
model itself fails on that input, and the compiled form's error is raised
as the model's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends import COMPILED, EAGER, PER_SHAPE, Backend, Forward, RunFunction
from .errors import first_line


class ModelForward:
    """One model's forward pass on one backend, in the best form that runs it."""

    def __init__(self, backend: Backend, model: Any, run: RunFunction, compiled: Forward) -> None:
        self.backend = backend
        self.model = model
        self.run = run
        self.form = COMPILED
        self._forward = compiled
        self.note: str | None = None

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        try:
            return self._forward(inputs)
        except Exception as exc:
            if self.form == EAGER:
                raise
            fallen = self._fall_back(inputs, exc)
            if fallen is None:
                raise
            return fallen

    def _fall_back(self, inputs: Sequence[np.ndarray], failure: Exception) -> list[np.ndarray] | None:
        """The outputs from a form that runs this batch, switching to it;
        ``None`` when the model fails on this batch whatever runs it."""
        eager = self.backend.eager(self.model, self.run)
        try:
            outputs = eager(inputs)
        except Exception:  # noqa: BLE001 - the model's own failure on this input: its first error is raised
            return None
        failed_form = self.form
        per_shape = self.backend.per_shape(self.model, self.run) if self.form == COMPILED else None
        self.form, self._forward = EAGER, eager
        if per_shape is not None:
            outputs, self.form, self._forward = _first_that_runs(inputs, outputs, per_shape, eager)
        how = ("traced once per concrete input shape" if self.form == PER_SHAPE
               else "called eagerly (no compiled form)")
        described = self.backend.compiled_description if failed_form == COMPILED else "the per-shape trace"
        self.note = (f"the compiled forward ({described}) cannot run this model ({first_line(failure)}), "
                     f"while the model itself can: it runs {how} on the {self.backend.name} backend")
        return outputs


def _first_that_runs(inputs: Sequence[np.ndarray], eager_outputs: list[np.ndarray], per_shape: Forward,
                     eager: Forward) -> tuple[list[np.ndarray], str, Forward]:
    """The per-shape trace if it runs this batch, else the eager call."""
    try:
        return per_shape(inputs), PER_SHAPE, per_shape
    except Exception:  # noqa: BLE001 - the eager call runs it: keep that
        return eager_outputs, EAGER, eager
