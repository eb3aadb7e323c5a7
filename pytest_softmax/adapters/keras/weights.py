"""A Keras model's variables as the checks need them.

Non-finite variables, named by the layer that owns them, are read once per
check, before the search: a kernel holding NaN after a diverged training
run can be hidden by the forward pass itself (TensorFlow fuses
MatMul+BiasAdd+ReLU in graph mode, and on some CPUs the fused kernel turns
NaN into 0, as ``model.predict`` runs it), so the outputs alone cannot be
trusted to show it.  (Whether an infinite value fails the check is the engine's call.)

When a failure is explained, the probe also summarizes each probed layer's
variables (:func:`variable_summaries`): the diagnosis reads there why a
layer fed finite inputs made NaN (a negative ``moving_variance``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..base import NonFiniteWeight
from ..base.arrays import add_to_digest, can_be_nonfinite
from ..base.records import POSITIVE_PARAMETER, VARIANCE_STATISTIC, LayerRecord, VariableSummary
from .probe import layer_paths

# Variables meant to stay positive, by their name in a layer: a learned
# scale or temperature taken under a log, a root or a division.
POSITIVE_NAMES = frozenset({"scale", "temperature", "std", "stddev", "sigma"})


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


def weights_digest(model: Any) -> str:
    """A digest of every variable's path, shape, dtype and value: equal for
    two calls exactly when no weight changed in between."""
    import keras

    from .numpy_values import to_numpy

    # SHA-1 as a change detector (twice blake2b's speed here), not for security.
    digest = hashlib.sha1(usedforsecurity=False)
    for variable in getattr(model, "variables", []):
        add_to_digest(digest, to_numpy(variable.value if isinstance(variable, keras.Variable) else variable),
                      label=str(getattr(variable, "path", getattr(variable, "name", ""))))
    return digest.hexdigest()


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


def attach_variables(model: Any, records: list[LayerRecord]) -> None:
    """Fill each record's ``variables`` from the layer that made it (a
    layer called twice, ``path#2``, has the same variables)."""
    layers = dict(layer_paths(model))
    for record in records:
        layer = layers.get(record.site.path.split("#", 1)[0])
        if layer is not None and not _is_model(layer):
            record.variables = variable_summaries(layer)


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def variable_summaries(layer: Any) -> tuple[VariableSummary, ...]:
    """What each float variable of ``layer`` holds, in counts."""
    summaries = []
    for variable in getattr(layer, "weights", []):
        values = _values(variable)
        if values is None:
            continue
        widened = values.astype(np.float64)
        finite = widened[np.isfinite(widened)]
        name = str(getattr(variable, "name", None) or "variable")
        summaries.append(VariableSummary(
            name=name, size=int(values.size), nan=int(np.isnan(widened).sum()), inf=int(np.isinf(widened).sum()),
            negative=int((finite < 0).sum()), zero=int((finite == 0).sum()),
            minimum=float(finite.min()) if finite.size else float("nan"), role=_role(layer, name),
        ))
    return tuple(summaries)


def _role(layer: Any, name: str) -> str:
    """What a variable is for, where Keras' layers (or its name) say it."""
    import keras

    if isinstance(layer, keras.layers.BatchNormalization) and name == "moving_variance":
        return VARIANCE_STATISTIC
    if "variance" in name:  # keras.layers.Normalization's 'variance', a custom layer's running variance
        return VARIANCE_STATISTIC
    return POSITIVE_PARAMETER if name.lower() in POSITIVE_NAMES else ""


def _values(variable: Any) -> np.ndarray | None:
    """A float variable's values as numpy; ``None`` for other dtypes or an
    unreadable variable."""
    import keras

    from .numpy_values import to_numpy

    try:
        values = to_numpy(variable.value if isinstance(variable, keras.Variable) else variable)
    except Exception:  # noqa: BLE001 - a variable that cannot be read says nothing
        return None
    return values if can_be_nonfinite(values.dtype) and values.size else None


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
