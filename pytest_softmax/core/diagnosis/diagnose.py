"""Name the layer at fault and say why.

Framework-neutral rules over a :class:`~pytest_softmax.adapters.base.records.ProbeResult`
(every layer's output on the failing input) and the failing violation.  Each
rule returns one line a user can act on; :func:`diagnose` fills
``report.diagnosis`` and the ``report.layers`` table.  The probe is built
only here, after a failure, so healthy runs never pay for it.

Rules, in the order they are tried:

* a softmax over a single element (no probe needed): the axis has size 1
  for every input, fixed by the model (see ``core/single_element.py``);
* low precision (no probe needed): a float16/bfloat16 output judged by a
  tolerance stricter than that dtype allows;
* first non-finite layer, with finite inputs (and an ``exp`` overflow in a
  hand-written softmax);
* starting from the layer that produced the output, looking through
  shape-only layers: a softmax inside a gated recurrent cell; a softmax over
  another axis; a layer after a softmax that changes the sums; no softmax
  at all (logits, sigmoid, log_softmax, relu...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ...adapters.base import LayerProbing, ModelAdapter, OutputChoosing, OutputSpec
from ...adapters.base.records import LayerRecord, ProbeResult
from ...errors import SoftmaxSetupError
from ...tolerance import default_tolerance
from ..kinds import MODEL_RAISED, NOT_FINITE, SINGLE_ELEMENT
from ..report import LayerProfile, SoftmaxReport, Violation
from ..sites import SiteChecker
from .phrases import in_framework_terms
from .rules import explain

MAX_PROBED_ROWS = 8
LOW_PRECISION = ("float16", "bfloat16")


def diagnose(adapter: ModelAdapter, report: SoftmaxReport, failing_inputs: Sequence[np.ndarray] | None,
             sites: SiteChecker | None = None, *,
             probe: Callable[[Sequence[np.ndarray]], ProbeResult] | None = None) -> None:
    """Explain ``report``'s first violation (if any) in place; ``probe``
    replaces the adapter's own (the eager probe, where the compiled one
    would hide the NaN)."""
    if sites is not None and report.passed:
        report.notes.extend(sites.notes())
    if report.passed or not report.violations or failing_inputs is None:
        return
    first = report.violations[0]
    if first.kind == MODEL_RAISED:
        return
    if first.kind == SINGLE_ELEMENT:  # known without running a layer: the shape says it all
        report.diagnosis.append(single_element_line(first))
        report.layer_at_fault = f"{first.site or first.layer_name} ({first.layer_class})"
        return
    precision = low_precision(first)
    if precision:
        report.diagnosis.append(precision)
        report.cause = (f"{first.dtype} output judged by a tolerance stricter than {first.dtype} allows")
        report.fix = f"keep the final softmax in float32, or raise softmax_atol_{first.dtype}"
    if not isinstance(adapter, LayerProbing):
        report.diagnosis.append(
            f"cannot name the layer at fault: {adapter.name!r} does not expose its layers to the probe"
        )
        return
    try:
        result = (probe or adapter.probe)(_probe_rows(failing_inputs, first))
    except Exception as exc:  # noqa: BLE001 - explaining must never hide the failure itself
        report.notes.append(f"the per-layer probe failed ({type(exc).__name__}: {exc}); no layer diagnosis")
        return
    output_index = _output_index(adapter, first)
    try:
        found = explain(result, first, output_index, skip_structure=bool(precision))
    except Exception as exc:  # noqa: BLE001 - explaining must never hide the failure itself
        report.notes.append(f"the layer diagnosis failed ({type(exc).__name__}: {exc})")
        return
    found = in_framework_terms(found, result.framework)
    report.diagnosis.extend(found.lines)
    report.layers = found.rows
    report.cause = found.cause or report.cause
    report.fix = found.fix or report.fix
    at_fault = next((row for row in found.rows if row.verdict.startswith("at fault")), None)
    report.layer_at_fault = f"{at_fault.path} ({at_fault.layer_class})" if at_fault else None
    report.layer_profile = layer_profile(result, first, at_fault.path if at_fault else None)


def low_precision(violation: Violation) -> str | None:
    """Rule 6: the tolerance in force is stricter than the dtype allows."""
    if violation.dtype not in LOW_PRECISION or violation.kind == NOT_FINITE or violation.site:
        return None
    allowed = default_tolerance(violation.dtype, max(violation.n_classes, 2))
    if violation.tolerance >= allowed:
        return None
    within = " (it is within what the dtype allows)" if violation.error <= allowed else ""
    return (
        f"low precision: the output is {violation.dtype} (a mixed-precision policy?) and the tolerance in force, "
        f"{violation.tolerance:.3g}, is stricter than {violation.dtype} allows ({allowed:.3g}){within}: keep the "
        f"final softmax in float32 (e.g. Dense(..., activation='softmax', dtype='float32')) or raise "
        f"softmax_atol_{violation.dtype}"
    )


def _probe_rows(inputs: Sequence[np.ndarray], violation: Violation) -> list[np.ndarray]:
    """At most a few rows of the failing batch, the worst row among them."""
    rows = int(np.asarray(inputs[0]).shape[0]) if len(inputs) and np.ndim(inputs[0]) else 0
    if rows <= MAX_PROBED_ROWS:
        return list(inputs)
    worst = violation.worst_row[0] if violation.worst_row else 0
    keep = sorted({worst, *range(MAX_PROBED_ROWS - 1)})
    return [np.asarray(x)[keep] for x in inputs]


def _output_index(adapter: ModelAdapter, violation: Violation) -> int | None:
    try:
        specs = list(adapter.output_specs())
        if isinstance(adapter, OutputChoosing):  # exp(output) of a log_softmax output is only among these
            specs += _default_outputs(adapter)
    except Exception:  # noqa: BLE001 - no index: the output is then not localized
        return None
    return next((s.index for s in specs if s.name == violation.output), None)


def _default_outputs(adapter: OutputChoosing) -> list[OutputSpec]:
    try:
        return list(adapter.default_outputs())
    except SoftmaxSetupError:  # no softmax anywhere: the user named the outputs
        return []


def single_element_line(violation: Violation) -> str:
    """Rule 7: a softmax over an axis the model fixes to size 1."""
    where = violation.site or violation.layer_name
    cause = violation.message.split(": ", 1)[-1]
    return f"{violation.layer_class} {where!r} normalizes over a single element: {cause}"


def layer_profile(result: ProbeResult, violation: Violation, at_fault: str | None) -> list[LayerProfile]:
    """Every probed layer call, in execution order, as the per-layer chart
    draws it: the sums are taken along the checked axis (a softmax site's
    along its own), as the layer table does."""
    profile = []
    for record in result.records:
        site = record.site
        axes = site.softmax_axes if site.is_softmax_site and site.softmax_axes else violation.axis
        profile.append(LayerProfile(
            name=site.path, layer_class=site.layer_class, max_error=record.sum_error(axes),
            tolerance=violation.tolerance, nonfinite=record.nonfinite,
            values=int(record.output.size) if record.output is not None else 0,
            softmax_site=_is_softmax_site(record), at_fault=site.path == at_fault,
        ))
    return profile


def _is_softmax_site(record: LayerRecord) -> bool:
    """A layer whose rows are meant to sum to 1 somewhere inside: a softmax
    layer or activation, one inside a recurrent cell, or a softmax (or a
    hand-written exp/sum) the probe saw in a custom layer's call()."""
    return record.site.is_softmax_site or record.site.activation == "softmax" or bool(record.softmax_op)
