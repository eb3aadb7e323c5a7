"""Weights judged by what they do.

A variable holding NaN fails the check before the search, naming the layer
and the variable: NaN is what a diverged training leaves, and the outputs
cannot be trusted to show it (in graph mode TensorFlow fuses
MatMul+BiasAdd+ReLU, and on some CPUs the fused kernel turns a NaN
kernel's output into 0, as ``model.predict`` runs it).

An infinite value is not always a fault: a ``-inf`` bias entry switches a
class off (its probability is exactly 0, the rows still sum to 1), a
``-inf`` row of an embedding table serves as an additive mask.  For those
the outputs decide: a passing report notes the infinite variables, a
failing one names them in its diagnosis.  Reading the variables costs one
copy of each, once per check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..adapters.base import ModelAdapter, NonFiniteWeight, WeightInspecting
from .kinds import WEIGHTS_NOT_FINITE
from .report import SoftmaxReport, Violation

MAX_LISTED = 6


@dataclass(frozen=True)
class WeightsSeen:
    """What the variables hold: ``failure`` is the failing report when one
    holds NaN; ``infinite`` the variables holding Inf and no NaN."""

    failure: SoftmaxReport | None = None
    infinite: list[NonFiniteWeight] = field(default_factory=list)

    def annotate(self, report: SoftmaxReport) -> None:
        """Name the infinite variables in ``report``: a note when it passed
        (they did no harm on any input tried), a diagnosis line when it
        failed (and the cause, when no rule explained the failure)."""
        if not self.infinite:
            return
        listed = "; ".join(_describe(w) for w in self.infinite[:MAX_LISTED]) + _more(self.infinite)
        if report.passed:
            report.notes.append(f"infinite weights, allowed because the outputs stayed distributions on every "
                                f"input tried (a -inf bias switching a class off, a -inf mask row): {listed}")
            return
        report.diagnosis.append(f"the model holds infinite weights (allowed only where the outputs stay "
                                f"distributions, which they do not here): {listed}")
        if report.cause is None:
            first = self.infinite[0]
            report.layer_at_fault = report.layer_at_fault or f"{first.layer_path} ({first.layer_class})"
            report.cause = f"infinite weights: {first.variable} holds Inf"
            report.fix = report.fix or ("replace the infinite entries with large finite values, or retrain "
                                        "(lower the learning rate, clip gradients)")


def inspect_weights(adapter: ModelAdapter) -> WeightsSeen:
    """The model's non-finite variables, judged (nothing for adapters that
    cannot show their variables, or whose variables cannot be read)."""
    if not isinstance(adapter, WeightInspecting):
        return WeightsSeen()
    try:
        bad = adapter.nonfinite_weights()
    except Exception:  # noqa: BLE001 - unreadable variables: the search still checks the outputs
        return WeightsSeen()
    diverged = [w for w in bad if w.nan]
    infinite = [w for w in bad if not w.nan]
    return WeightsSeen(_failure(adapter, diverged, infinite) if diverged else None, infinite)


def _failure(adapter: ModelAdapter, diverged: list[NonFiniteWeight],
             infinite: list[NonFiniteWeight]) -> SoftmaxReport:
    first = diverged[0]
    more = f"; {len(diverged) - 1} more variable{'s' if len(diverged) > 2 else ''} too" if len(diverged) > 1 else ""
    violation = Violation(
        kind=WEIGHTS_NOT_FINITE, output="", layer_name=first.layer_path, layer_class=first.layer_class, dtype="",
        axis=-1, n_classes=0, tolerance=0.0, error=float(sum(w.nan + w.inf for w in diverged)), rows_violating=0,
        rows=0, message=f"{_describe(first)}{more}",
    )
    listed = "; ".join(_describe(w) for w in infinite[:MAX_LISTED]) + _more(infinite)
    also = [f"also infinite (allowed on their own where the outputs stay distributions): {listed}"] if infinite else []
    return SoftmaxReport(
        model_name=adapter.name, passed=False, examples=0, rows=0, worst_error=float("nan"),
        tolerance=float("nan"), dtype="", violations=[violation],
        diagnosis=[*(_describe(w) for w in diverged[:MAX_LISTED]), *also, _advice()],
        layer_at_fault=f"{first.layer_path} ({first.layer_class})",
        cause=f"non-finite weights: {first.variable} holds NaN",
        fix="retrain (lower the learning rate, clip gradients) or load a checkpoint from before it diverged",
    )


def _describe(weight: NonFiniteWeight) -> str:
    counts = " and ".join(f"{n} {kind}" for n, kind in ((weight.nan, "NaN"), (weight.inf, "Inf")) if n)
    kind = "trainable" if weight.trainable else "non-trainable"
    return (f"{weight.layer_class} {weight.layer_path!r}: {kind} variable {weight.variable!r} holds {counts} "
            f"of {weight.size} values")


def _more(weights: list[NonFiniteWeight]) -> str:
    hidden = len(weights) - MAX_LISTED
    return f"; {hidden} more variable{'s' if hidden > 1 else ''}" if hidden > 0 else ""


def _advice() -> str:
    return ("weights holding NaN are checked before any input is tried, because the forward pass can hide them "
            "(TensorFlow's fused MatMul+ReLU turns NaN into 0 on some CPUs, as model.predict does): training diverged "
            "(lower the learning rate, clip gradients, look for log(0) or a division by zero in the loss) or "
            "the model was saved after it did; retrain or load a checkpoint from before")
