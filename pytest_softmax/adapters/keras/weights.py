"""Non-finite variables of a Keras model, named by the layer that owns them.

Read once per check, before the search: a kernel holding NaN after a
diverged training run can be hidden by the forward pass itself (TensorFlow
fuses MatMul+BiasAdd+ReLU in graph mode, and the fused kernel turns NaN
into 0, as ``model.predict`` does), so the outputs alone cannot be trusted
to show it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base.arrays import can_be_nonfinite
from ..base import NonFiniteWeight
from .probe import layer_paths


def nonfinite_weights(model: Any) -> list[NonFiniteWeight]:
    """Every variable holding NaN/Inf, once, under the innermost layer that
    owns it (a nested model's layers are walked, built-in layers are not)."""
    import keras

    found: list[NonFiniteWeight] = []
    seen: set[int] = set()
    # Innermost first: a nested model lists its sublayers' weights as its own.
    for path, layer in sorted(layer_paths(model), key=lambda item: -item[0].count("/")):
        if isinstance(layer, keras.Model):
            continue
        trainable_ids = {id(v) for v in layer.trainable_weights}
        for variable in layer.weights:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            problem = _check(variable, path, type(layer).__name__, id(variable) in trainable_ids)
            if problem is not None:
                found.append(problem)
    return found


def nonfinite_saved_variables(loaded: Any) -> list[NonFiniteWeight]:
    """The same for a loaded SavedModel, which has variables but no layers:
    each is named by its own path (``model/dense/kernel:0``)."""
    trainable_ids = {id(v) for v in getattr(loaded, "trainable_variables", [])}
    found = []
    for variable in getattr(loaded, "variables", []):
        name = str(getattr(variable, "name", "variable")).split(":")[0]
        path, _, short = name.rpartition("/")
        problem = _check(variable, path or name, "SavedModel variable", id(variable) in trainable_ids, short)
        if problem is not None:
            found.append(problem)
    return found


def _check(variable: Any, path: str, layer_class: str, trainable: bool,
           name: str | None = None) -> NonFiniteWeight | None:
    import keras

    from .numpy_values import to_numpy

    try:
        # A torch tensor's own route to numpy (Keras' warns under numpy 2).
        values = to_numpy(variable.value if isinstance(variable, keras.Variable) else variable)
    except Exception:  # noqa: BLE001 - a variable that cannot be read is not this check's business
        return None
    if not can_be_nonfinite(values.dtype) or values.size == 0:
        return None
    # The common case, all finite, in the variable's own dtype: no copy.
    if np.isfinite(values).all():
        return None
    widened = values.astype(np.float64)
    nan, inf = int(np.isnan(widened).sum()), int(np.isinf(widened).sum())
    name = name or str(getattr(variable, "name", None) or "variable")
    return NonFiniteWeight(layer_path=path, layer_class=layer_class, variable=name, nan=nan, inf=inf,
                           size=int(values.size), trainable=trainable)
