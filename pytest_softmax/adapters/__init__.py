"""Framework adapters.  :func:`adapt` turns whatever the user passed as a
model (an object, a zero-argument callable, or a path) into a
:class:`ModelAdapter`; only this package imports a framework."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext

from .base import InputSpec, ModelAdapter, OutputSpec

__all__ = ["InputSpec", "ModelAdapter", "OutputSpec", "adapt", "preserved_state"]


def adapt(model: object, *, safe_mode: bool = True) -> ModelAdapter:
    """The adapter for ``model``; raises ``SoftmaxSetupError`` with a message
    naming what was passed and what is accepted."""
    if isinstance(model, ModelAdapter):
        return model
    from . import keras_adapter

    adapter: ModelAdapter = keras_adapter.adapt(model, safe_mode=safe_mode)
    return adapter


def preserved_state(adapter: ModelAdapter) -> AbstractContextManager[object]:
    """A context that puts back global framework state, the random
    generators and the model's non-trainable variables when a check ends."""
    if "keras" not in sys.modules and "tensorflow" not in sys.modules:
        return nullcontext()  # a non-Keras adapter: no framework state to guard
    from .keras_state import preserved_state as keras_preserved_state

    return keras_preserved_state(getattr(adapter, "model", None))
