"""How a report reads in a test log.

Text layout is part of the product: the first line says what broke, where,
by how much and against which tolerance; the lines below give the details.
Keep it stable, users grep CI logs for it.  Standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..adapters.base import output_label
from .kinds import (
    MODEL_RAISED,
    NOT_FINITE,
    NOT_NORMALIZED,
    OUT_OF_RANGE,
    SINGLE_ELEMENT,
    WEIGHTS_NOT_FINITE,
)

if TYPE_CHECKING:
    from .report import LayerResult, Replay, SoftmaxReport, Violation

LAYER_TABLE_HEADER = ("layer", "class", "activation", "max |sum - 1|", "non-finite", "verdict")
DERANDOMIZED = ("the Hypothesis profile in force derandomizes the search, as its 'ci' profile does "
                "when CI is set: every run finds this same failure")


def violation_headline(violation: Violation) -> str:
    if violation.kind == MODEL_RAISED:
        return f"model raised on a generated input: {violation.message}"
    if violation.kind == WEIGHTS_NOT_FINITE:
        return f"model weights are not finite: {violation.message}"
    where = output_label(violation.output, violation.layer_name, violation.layer_class)
    if violation.site:
        where = f"internal softmax {violation.site!r} ({violation.layer_class})"
    context = f"[{violation.dtype}, axis {violation.axis}, {violation.n_classes} classes]"
    if violation.kind == NOT_NORMALIZED:
        detail = f"max |sum - 1| = {violation.error:.4g} > tolerance {violation.tolerance:.3g}"
    elif violation.kind == SINGLE_ELEMENT:
        detail = violation.message.split(":", 1)[0]
    elif violation.kind == NOT_FINITE:
        detail = f"{int(violation.error)} NaN/Inf values in {violation.rows_violating} of {violation.rows} rows"
    else:
        assert violation.kind == OUT_OF_RANGE, violation.kind
        detail = f"values outside [0, 1] by up to {violation.error:.4g} > tolerance {violation.tolerance:.3g}"
    return f"{where} is {violation.kind}: {detail} {context}"


def report_headline(report: SoftmaxReport) -> str:
    if report.violations:
        return f"softmax invariant violated: {violation_headline(report.violations[0])}"
    checked = ", ".join(o.output for o in report.outputs)
    return (
        f"softmax invariant holds for {report.model_name}: outputs {checked}; "
        f"max |sum - 1| = {report.worst_error:.3g} <= tolerance {report.tolerance:.3g} "
        f"[{report.dtype}] over {report.rows} rows in {_examples(report)}"
    )


def _examples(report: SoftmaxReport) -> str:
    """``10 examples``, and the edge phase's batches when it ran."""
    batches = f"{report.edge_batches} batch{'es' if report.edge_batches > 1 else ''}"
    edge = f" and {batches} of edge rows" if report.edge_batches else ""
    return f"{report.examples} examples{edge}"


def replay_text(replay: Replay, seed: int | None) -> str:
    """The replay line: the seed that finds the failure again, or why a
    plain rerun does."""
    if seed is not None:
        if replay.command is not None:
            return f"rerun with: {replay.command} --hypothesis-seed={seed}"
        return f"rerun with check_softmax(..., seed={seed}) (under pytest: --hypothesis-seed={seed})"
    rerun = f"rerun with: {replay.command}" if replay.command is not None else "rerun the same check"
    return f"{rerun} ({DERANDOMIZED})"


def layer_table(layers: list[LayerResult]) -> list[str]:
    """The table as aligned plain-text lines (no trailing spaces)."""
    rows = [LAYER_TABLE_HEADER] + [
        (r.path, r.layer_class, r.activation, "-" if r.worst_error != r.worst_error else f"{r.worst_error:.3g}",
         str(r.nonfinite), r.verdict)
        for r in layers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LAYER_TABLE_HEADER) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip() for row in rows]


def render_report(report: SoftmaxReport) -> str:
    lines = [report_headline(report)]
    # The cause comes second, before any secondary violation: CI pages show
    # only the first few hundred characters (the junit message attribute).
    if report.violations and report.violations[0].kind != MODEL_RAISED and report.fault_line:
        lines.append(f"  {report.fault_line}")
        if report.fix:
            lines.append(f"  fix: {report.fix}")
    lines.extend(f"  also: {violation_headline(extra)}" for extra in report.violations[1:])
    lines.extend(f"  {line}" for line in report.diagnosis)
    if report.layers:
        lines.append("  layers examined (on the failing input):")
        lines.extend(f"    {line}" for line in layer_table(report.layers))
    lines.extend(_worst_rows(report))
    lines.extend(_failing_input(report))
    if report.replay:
        lines.append(f"  replay: {report.replay}")
    lines.extend(f"  note: {note}" for note in report.notes)
    if not report.violations:
        lines.extend(
            f"  {out.where}: {out.dtype}, axis {out.axis}, {out.n_classes} classes, "
            f"max |sum - 1| = {out.worst_error:.3g}, tolerance {out.tolerance:.3g}"
            for out in report.outputs
        )
    return "\n".join(lines)


def _worst_rows(report: SoftmaxReport) -> list[str]:
    if not report.violations or report.violations[0].kind in (MODEL_RAISED, WEIGHTS_NOT_FINITE):
        return []
    first = report.violations[0]
    lines = [f"  rows violating: {first.rows_violating} of {first.rows} in the failing batch; "
             f"{report.rows} rows checked in {_examples(report)}"]
    if first.worst_row:
        values = ", ".join(f"{v:.4g}" for v in first.worst_row_values)
        more = ", ..." if len(first.worst_row_values) < first.n_classes else ""
        lines.append(f"  worst row {list(first.worst_row)}: sum = {first.worst_row_sum:.6g}; "
                     f"values [{values}{more}]")
    return lines


def _failing_input(report: SoftmaxReport) -> list[str]:
    if not report.failing_input:
        return []
    given = all(item.given for item in report.failing_input)
    if report.failing_input_origin:
        origin = report.failing_input_origin
    elif given:
        origin = "from inputs="
    elif all(item.edge for item in report.failing_input):
        origin = "edge phase, before the search; narrowed to one row when one fails alone"
    else:
        origin = "shrunk by Hypothesis"
    lines = [f"  failing input ({origin}):"]
    for item in report.failing_input:
        domain = f"; domain: {item.domain}" if item.domain else ""
        lines.append(f"    {item.name}: {item.dtype} {list(item.shape)}, {item.description}; "
                     f"values in [{item.min_value:.4g}, {item.max_value:.4g}]{domain}")
        lines.append(f"      rebuild: {item.rebuild}")
    return lines
