"""One rule for softmaxes over a single element, at the outputs and inside
the model.

A softmax over an axis of size 1 is the constant 1, whatever its input.
When the model fixes that size (``Dense(1, activation='softmax')``, a
``Softmax`` over a one-unit axis) it is a defect, and the check fails with
advice that fits the layer: attention-like weights (the output has other
axes, such as a sequence) should be normalized over the sequence axis; a
one-unit classifier head should be a sigmoid or a softmax over two classes.
A variable-length axis that happens to have length 1 in one batch is a
correct softmax (a one-step sequence) and raises nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from .kinds import SINGLE_ELEMENT
from .report import Violation

Shape = tuple[int | None, ...]


def fixed_single_element(static_shape: Shape | None, axes: Sequence[int], actual_shape: Sequence[int]) -> bool:
    """Whether the softmax axes have size 1 for every input: fixed to 1 by
    the model.  Without a static shape, a size-1 axis is taken as fixed."""
    rank = len(actual_shape)
    if any(actual_shape[a % rank] != 1 for a in axes):
        return False
    if static_shape is None or len(static_shape) != rank:
        return True
    return all(static_shape[a % rank] == 1 for a in axes)


def advice(static_shape: Shape | None, axes: Sequence[int], actual_shape: Sequence[int]) -> str:
    """What to do instead, by where the softmax is."""
    rank = len(actual_shape)
    shape = static_shape if static_shape is not None and len(static_shape) == rank else tuple(actual_shape)
    normalized = {a % rank for a in axes}
    others = [i for i in range(1, rank) if i not in normalized and shape[i] != 1]
    if others:
        sequence = others[0]
        return (f"these look like attention weights: normalize over the sequence axis instead, e.g. "
                f"Softmax(axis={sequence}) (or keras.ops.softmax(x, axis={sequence})), so the weights over "
                "the positions sum to 1")
    return ("a one-unit classifier head: use Dense(1, activation='sigmoid') for a yes/no output, or "
            "Dense(2, activation='softmax') for two classes")


def single_element_violation(*, output: str, layer_name: str, layer_class: str, dtype: str, axis: int,
                             rows: int, site: str = "", static_shape: Shape | None,
                             axes: Sequence[int], actual_shape: Sequence[int]) -> Violation:
    shown = list(static_shape) if static_shape is not None else list(actual_shape)
    return Violation(
        kind=SINGLE_ELEMENT, output=output, layer_name=layer_name, layer_class=layer_class, dtype=dtype,
        axis=axis, n_classes=1, tolerance=0.0, error=0.0, rows_violating=rows, rows=rows, site=site,
        message=(f"size 1 along axis {axis} for every input (shape {shown}): its result is the constant 1 and "
                 f"carries no information; {advice(static_shape, axes, actual_shape)}"),
    )
