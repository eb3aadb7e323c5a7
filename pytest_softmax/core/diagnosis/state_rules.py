"""NaN made by a layer's own state: the rules that read the variables the
probe summarized for the first layer whose output holds NaN/Inf although
its inputs are finite (an infinite kernel entry, a negative variance
statistic under a square root, a scale that is not positive under a log).

Each rule takes the layer's record, the diagnosis line's head, the records
by path and the largest input magnitude (the signature every rule of
:func:`.nonfinite.explain_nonfinite` shares), and returns a
:class:`.finding.Finding` or ``None`` when it does not apply.
"""

from __future__ import annotations

from collections.abc import Callable

from ...adapters.base.records import POSITIVE_PARAMETER, VARIANCE_STATISTIC, LayerRecord, VariableSummary
from .finding import Finding


def nonfinite_variable(record: LayerRecord, head: str, by_path: dict[str, LayerRecord],
                        largest: float) -> Finding | None:
    """The layer's own variable holds NaN or Inf: finite inputs times an
    infinite weight are Inf, and 0 * Inf or Inf - Inf are NaN."""
    bad = next((v for v in record.variables if v.nonfinite), None)
    if bad is None:
        return None
    what = "NaN" if bad.nan else "Inf"
    counts = " and ".join(f"{n} {kind}" for n, kind in ((bad.nan, "NaN"), (bad.inf, "Inf")) if n)
    return Finding(
        f"{head}: its own variable {bad.name!r} holds {counts} of {bad.size} values, and finite inputs times an "
        "infinite weight give Inf, 0 * Inf and Inf - Inf give NaN: retrain (lower the learning rate, clip "
        f"gradients) or replace the non-finite entries of {bad.name!r} with finite values",
        f"its variable {bad.name} holds {what}",
        f"retrain, or replace the non-finite entries of {bad.name} with finite values")


def negative_variance(record: LayerRecord, head: str, by_path: dict[str, LayerRecord],
                       largest: float) -> Finding | None:
    """A stored variance statistic below zero: the normalization divides by
    sqrt(variance + epsilon), and the root of a negative number is NaN."""
    bad = _first_with(record, VARIANCE_STATISTIC, lambda v: v.negative > 0)
    if bad is None:
        return None
    return Finding(
        f"{head}: its stored variance statistic {bad.name!r} holds {bad.negative} negative value"
        f"{'s' if bad.negative > 1 else ''} of {bad.size} (down to {bad.minimum:.4g}); the layer divides by "
        "sqrt(variance + epsilon), and the square root of a negative number is NaN: recompute the statistics "
        "(run training data through the layer with training=True, or adapt() it again), or clip "
        f"{bad.name!r} to >= 0",
        f"negative {bad.name} ({bad.minimum:.3g}) under a square root",
        f"recompute the statistics (training=True passes or adapt()), or clip {bad.name} to >= 0")


def nonpositive_parameter(record: LayerRecord, head: str, by_path: dict[str, LayerRecord],
                           largest: float) -> Finding | None:
    """A scale or temperature meant to stay positive holds values <= 0:
    under a log or a root that is NaN (or -inf), a division by 0 is Inf."""
    bad = _first_with(record, POSITIVE_PARAMETER, lambda v: v.negative + v.zero > 0)
    if bad is None:
        return None
    count = bad.negative + bad.zero
    return Finding(
        f"{head}: its variable {bad.name!r}, a scale meant to stay positive, holds {count} value"
        f"{'s' if count > 1 else ''} <= 0 of {bad.size} (down to {bad.minimum:.4g}): a log or square root of it "
        f"is NaN (log(0) is -inf), a division by 0 is Inf: keep {bad.name!r} positive (the exp() or softplus() of "
        "a free weight, or clip it) and retrain",
        f"{bad.name} <= 0 under a log, root or division",
        f"keep {bad.name} positive (exp() or softplus() of a free weight, or clip it) and retrain")


def _first_with(record: LayerRecord, role: str, wrong: Callable[[VariableSummary], bool]) -> VariableSummary | None:
    return next((v for v in record.variables if v.role == role and wrong(v)), None)
