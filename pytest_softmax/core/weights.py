"""Weights checked first: a model whose variables hold NaN or Inf fails
before the search, naming the layer and the variable.

The outputs cannot be trusted to show a diverged weight: in graph mode
TensorFlow fuses MatMul+BiasAdd+ReLU, and the fused kernel turns a NaN
kernel's output into 0 (``model.predict`` does the same), so a model with
NaN weights can return finite, normalized rows.  Reading the variables
costs one copy of each, once per check.
"""

from __future__ import annotations

from ..adapters.base import ModelAdapter, NonFiniteWeight, WeightInspecting
from .kinds import WEIGHTS_NOT_FINITE
from .report import SoftmaxReport, Violation

MAX_LISTED = 6


def weights_failure(adapter: ModelAdapter) -> SoftmaxReport | None:
    """A failing report when a variable holds NaN/Inf, else ``None``
    (also for adapters that cannot show their variables)."""
    if not isinstance(adapter, WeightInspecting):
        return None
    try:
        bad = adapter.nonfinite_weights()
    except Exception:  # noqa: BLE001 - unreadable variables: the search still checks the outputs
        return None
    if not bad:
        return None
    first = bad[0]
    more = f"; {len(bad) - 1} more variable{'s' if len(bad) > 2 else ''} too" if len(bad) > 1 else ""
    violation = Violation(
        kind=WEIGHTS_NOT_FINITE, output="", layer_name=first.layer_path, layer_class=first.layer_class, dtype="",
        axis=-1, n_classes=0, tolerance=0.0, error=float(sum(w.nan + w.inf for w in bad)), rows_violating=0,
        rows=0, message=f"{_describe(first)}{more}",
    )
    what = "NaN" if first.nan else "Inf"
    return SoftmaxReport(
        model_name=adapter.name, passed=False, examples=0, rows=0, worst_error=float("nan"),
        tolerance=float("nan"), dtype="", violations=[violation],
        diagnosis=[*(_describe(w) for w in bad[:MAX_LISTED]), _advice()],
        layer_at_fault=f"{first.layer_path} ({first.layer_class})",
        cause=f"non-finite weights: {first.variable} holds {what}",
        fix="retrain (lower the learning rate, clip gradients) or load a checkpoint from before it diverged",
    )


def _describe(weight: NonFiniteWeight) -> str:
    counts = " and ".join(f"{n} {kind}" for n, kind in ((weight.nan, "NaN"), (weight.inf, "Inf")) if n)
    kind = "trainable" if weight.trainable else "non-trainable"
    return (f"{weight.layer_class} {weight.layer_path!r}: {kind} variable {weight.variable!r} holds {counts} "
            f"of {weight.size} values")


def _advice() -> str:
    return ("weights are checked before any input is tried, because the forward pass can hide them "
            "(TensorFlow's fused MatMul+ReLU turns NaN into 0, as model.predict does): training diverged "
            "(lower the learning rate, clip gradients, look for log(0) or a division by zero in the loss) or "
            "the model was saved after it did; retrain or load a checkpoint from before")
