"""Layers that carry state from one call to the next.

A stateful RNN (``stateful=True``) starts each call from the state the last
one left, so two calls on one input differ: that is not randomness, and the
message must say so (the states themselves are restored by ``state``).
"""

from __future__ import annotations

from typing import Any


def stateful_layers(model: Any) -> list[tuple[str, str]]:
    """``(name, class)`` of every stateful layer, nested models included."""
    found: list[tuple[str, str]] = []
    seen: set[int] = set()
    stack = list(getattr(model, "layers", None) or [])
    while stack:
        layer = stack.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if getattr(layer, "stateful", False) is True:
            found.append((str(layer.name), type(layer).__name__))
            continue
        stack.extend(getattr(layer, "layers", None) or [])
    return found


def carried_state_variables(model: Any) -> list[Any]:
    """The variables of every ``stateful=True`` layer, nested ones included
    (an RNN's ``states`` are not among the model's variables on JAX)."""
    import keras

    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:  # not a Keras model (a SavedModel's wrapper)
        return []
    found: list[Any] = []
    for layer in flatten(include_self=False):
        if getattr(layer, "stateful", False) is True:
            states = getattr(layer, "states", None) or []
            found.extend(v for v in [*layer.non_trainable_variables, *states] if isinstance(v, keras.Variable))
    return found
