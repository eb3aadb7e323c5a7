"""Framework adapters.  :func:`adapt` turns whatever the user passed as a
model (an object, a zero-argument callable, or a path) into a
:class:`ModelAdapter`; only this package imports a framework."""

from __future__ import annotations

from .base import InputSpec, ModelAdapter, OutputSpec

__all__ = ["InputSpec", "ModelAdapter", "OutputSpec", "adapt"]


def adapt(model: object, *, safe_mode: bool = True) -> ModelAdapter:
    """The adapter for ``model``; raises ``SoftmaxSetupError`` with a message
    naming what was passed and what is accepted."""
    if isinstance(model, ModelAdapter):
        return model
    from . import keras_adapter

    return keras_adapter.adapt(model, safe_mode=safe_mode)
