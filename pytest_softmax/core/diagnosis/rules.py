"""The rules that name the layer at fault, over a probe of every layer.

Tried in order: the first layer whose output holds NaN/Inf although its
inputs are finite (see :mod:`.nonfinite`: a fully masked row, a value past
the dtype's range, an ``exp`` overflow in a hand-written softmax); a
softmax regrouped on its way to the output (:mod:`.regroup`); then, from
the layer that produced the output and looking through shape-only layers:
a softmax inside a gated recurrent cell; a softmax over another axis; a
masked softmax's all-zero row; a layer after a softmax that changes the
sums; no softmax at all (logits, sigmoid, log_softmax...).  Every rule
returns its line and the cause in a few words.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ...adapters.base import is_log_output_name
from ...adapters.base.records import (
    CONTAINER,
    PASSTHROUGH,
    RECURRENT,
    LayerRecord,
    ProbeResult,
    normalize_axes,
)
from ...settings import how_to_set
from ..report import LayerResult, Violation
from .finding import Finding
from .nonfinite import explain_nonfinite, first_nonfinite
from .regroup import explain_regrouped
from .table import LayerTable, axes_text, layer_name, upstream, within

# A row whose every score is at most this was masked everywhere (masks add
# -1e4 .. -1e9, or -inf; real logits stay far above).
MASK_VALUE_BELOW = -1e4


@dataclass
class Explanation:
    """What the rules found: the diagnosis lines, the table of layers
    examined, and the cause in a few words (``None``: no rule fired)."""

    lines: list[str]
    rows: list[LayerResult]
    cause: str | None = None
    fix: str = ""


def explain(result: ProbeResult, violation: Violation, output_index: int | None,
            *, skip_structure: bool = False) -> Explanation:
    """The diagnosis lines, the table of layers examined and the cause."""
    by_path = result.by_path()
    table = LayerTable(by_path, violation.axis, violation.tolerance)
    lines = list(result.limitations)
    cause: str | None = None
    fix = ""
    nonfinite = first_nonfinite(result)
    if nonfinite is not None:
        finding = explain_nonfinite(nonfinite, by_path, table, result.input_max_abs, result.input_dtypes)
        lines.append(finding.line)
        cause, fix = finding.cause, finding.fix
    if violation.site:
        record = by_path.get(violation.site)
        if record is not None:
            table.add(record, "at fault: internal softmax")
            if nonfinite is None and _over_batch_axis(record):
                finding = _batch_axis(record)
                lines.append(finding.line)
                cause, fix = finding.cause, finding.fix
            elif nonfinite is None:
                lines.append(f"{layer_name(record)} is a softmax inside the model whose rows do not sum to 1 along "
                             f"its own axis {axes_text(record)} (masked rows excepted)")
                cause = f"internal softmax rows do not sum to 1 along axis {axes_text(record)}"
        return Explanation(lines, table.rows, cause, fix)
    producer = result.output_producers[output_index] if output_index is not None and output_index < len(
        result.output_producers) else None
    if producer is None or producer not in by_path:
        lines.append(
            f"cannot name the layer that made output {violation.output!r}: it is computed outside any layer "
            "(in the model's own call()); split that computation into a layer to localize it"
        )
        return Explanation(lines, table.rows, cause or "computed outside any layer", fix)
    if nonfinite is None and not skip_structure:
        regrouped = explain_regrouped(by_path[producer], violation, by_path, table)
        if regrouped is not None:
            lines.append(regrouped.line)
            return Explanation(lines, table.rows, regrouped.cause, regrouped.fix)
    root, looked_through = _look_through(by_path[producer], by_path)
    for record in looked_through:
        table.add(record, "looked through")
    if nonfinite is None and not skip_structure:
        structure = _explain_structure(root, violation, by_path, table)
        if structure is not None:
            lines.append(structure.line)
            cause, fix = structure.cause, structure.fix
    elif root.site.path not in table.seen:
        table.add(root, "produces the output")
    return Explanation(lines, table.rows, cause, fix)


def _explain_structure(cause: LayerRecord, violation: Violation, by_path: dict[str, LayerRecord],
                       table: LayerTable) -> Finding | None:
    site = cause.site
    if site.kind != CONTAINER and not site.is_softmax_site and cause.output is not None:
        checked = normalize_axes(violation.axis, cause.output.ndim)
        masked = _masked_zero_row(cause, checked, table) if checked is not None else None
        if masked is not None:
            return masked
    if site.kind == CONTAINER:
        table.add(cause, "cannot look inside")
        return Finding(f"cannot name the layer at fault inside {layer_name(cause)}: its output is computed in its "
                       "own call() outside its sublayers; move that computation into a layer to localize it",
                       "computed in call() outside its sublayers",
                       "move the computation in call() into a layer, then check again")
    if site.kind == RECURRENT and site.activation == "softmax" and site.gated:
        table.add(cause, "at fault: softmax inside the cell")
        return _recurrent(cause)
    if site.is_softmax_site and site.is_log_softmax and not is_log_output_name(violation.output):
        table.add(cause, "at fault: log_softmax")  # log-probabilities checked as probabilities
        return _no_softmax(cause)
    if site.is_softmax_site:
        return _softmax_output(cause, violation, table)
    upstream = _nearest_softmax(cause, by_path)
    if upstream is not None and upstream.site.call and not _same_shape(upstream, cause):
        # Recorded calls (PyTorch) see every op: an attention softmax is upstream
        # of everything after it.  Only values of the softmax's own shape are
        # its distribution changed (a transformer's logits are not).
        upstream = None
    if upstream is not None:
        chain = _chain(upstream, cause, by_path)
        culprit = next((r for r in chain[1:] if r.site.kind != PASSTHROUGH
                        and not within(r.sum_error(violation.axis), violation.tolerance)), cause)
        table.add(upstream, "softmax ok" if within(upstream.sum_error(upstream.site.softmax_axes or -1),
                                                    violation.tolerance) else "softmax, not normalized")
        for record in chain[1:]:
            if record is not culprit:
                table.add(record, "after the softmax")
        table.add(culprit, "at fault: changes the sums")
        return Finding(
            f"{layer_name(culprit)} comes after the softmax {layer_name(upstream)} and changes its row sums "
            f"(max |sum - 1| = {culprit.sum_error(violation.axis):.4g} after it, "
            f"{upstream.sum_error(upstream.site.softmax_axes or -1):.2g} before): apply the softmax last, or "
            "drop or renormalize that layer",
            f"changes the sums of softmax {upstream.site.path!r} after it",
            "apply the softmax last, or drop or renormalize that layer")
    table.add(cause, "at fault: no softmax")
    return _no_softmax(cause)


def _softmax_output(cause: LayerRecord, violation: Violation, table: LayerTable) -> Finding:
    site = cause.site
    axes = normalize_axes(site.softmax_axes or (-1,), cause.output.ndim) if cause.output is not None else None
    checked = normalize_axes(violation.axis, cause.output.ndim) if cause.output is not None else None
    if axes is not None and checked is not None and axes != checked and _over_batch_axis(cause):
        table.add(cause, "at fault: batch axis")
        return _batch_axis(cause)
    if axes is not None and checked is not None and axes != checked:
        table.add(cause, "at fault: other axis")
        return Finding(
            f"{layer_name(cause)} normalizes over axis {axes_text(cause)} but the output is checked along "
            f"axis {violation.axis}: make the softmax run over the class axis (e.g. Softmax(axis=-1)) or "
            f"check along it with {how_to_set('axis', str(site.softmax_axes[0] if site.softmax_axes else -1))}",
            f"softmax over axis {axes_text(cause)}, checked along axis {violation.axis}",
            f"Softmax(axis={violation.axis}) over the class axis, or check along axis {axes_text(cause)}")
    masked = _masked_zero_row(cause, axes, table) if axes is not None else None
    if masked is not None:
        return masked
    table.add(cause, "softmax, not normalized")
    return Finding(
        f"{layer_name(cause)} is the softmax that makes the output, and its rows are not normalized along "
        f"axis {violation.axis} (max |sum - 1| = {cause.sum_error(violation.axis):.4g})",
        "the softmax's rows are not normalized",
        "compute the softmax in float32, or raise the tolerance if its dtype cannot do better")


def _over_batch_axis(record: LayerRecord) -> bool:
    """A softmax over axis 0 of a batch-first tensor: over the examples of the batch."""
    site = record.site
    if record.output is None or record.output.ndim < 2 or not site.batch_first:
        return False
    axes = normalize_axes(site.softmax_axes or (-1,), record.output.ndim)
    return axes is not None and 0 in axes


def _batch_axis(record: LayerRecord) -> Finding:
    implicit = " (the implicit dim of a 0-, 1- or 3-D input is 0)" if "implicit" in record.site.call else ""
    return Finding(
        f"{layer_name(record)} normalizes over axis 0, the batch axis{implicit}: each probability then depends on "
        "the other examples of the batch, and no example's row sums to 1: normalize over the class axis "
        "(dim=-1)",
        "softmax over the batch axis (dim 0)", "softmax over the class axis: dim=-1")


def _masked_zero_row(cause: LayerRecord, axes: tuple[int, ...], table: LayerTable) -> Finding | None:
    """An all-zero output row where every position was masked: a Keras
    Softmax called with a mask writes one by design, and so does a custom
    layer that multiplies its softmax by the mask after feeding it a row of
    mask values (all -inf, or all very negative)."""
    zero_row = _all_zero_row(cause, axes)
    if zero_row is None:
        return None
    fed = cause.softmax_input
    mask_values = fed is not None and fed.size > 0 and bool(
        (np.asarray(fed, dtype=np.float64) <= MASK_VALUE_BELOW).all(axis=-1).any())
    if not (cause.site.masked or mask_values):
        return None
    table.add(cause, "at fault: fully masked row")
    how = "was given a mask that hides" if cause.site.masked else "fed its softmax mask values at"
    return Finding(
        f"{layer_name(cause)} {how} every position of row {list(zero_row)}, so that row is written as all zeros "
        "(sum 0, not 1): if such rows are expected (e.g. padding-only queries), accept them with "
        "allow_masked_rows=True in the marker (softmax_allow_masked_rows = true in the ini file, "
        "--softmax-allow-masked-rows=true), or leave this output out with outputs=[...]; otherwise make sure "
        "every row keeps at least one unmasked position",
        "every position masked, so the row is all zeros",
        "if such rows are expected: allow_masked_rows=True (ini softmax_allow_masked_rows = true)")


def _all_zero_row(record: LayerRecord, axes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The first row of ``record`` (along ``axes``) that is all zeros: a real
    softmax never writes one (its largest entry is at least 1/n)."""
    if record.output is None or 0 in axes:
        return None
    values = np.asarray(record.output, dtype=np.float64)
    zero = np.all(values == 0.0, axis=axes)
    if not zero.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(zero)), zero.shape))


def _recurrent(record: LayerRecord) -> Finding:
    site = record.site
    sums = _row_sums(record)
    if sums is None:
        seen = "rows do not sum to 1"
    elif sums[1] - sums[0] < 0.005:
        seen = f"rows sum to {_sum_text(sums[0])} here"
    else:
        seen = f"rows sum to {_sum_text(sums[0])}-{_sum_text(sums[1])} here"
    how = {
        "GRU": "interpolates it with the previous state (rows can sum below or above 1)",
        "LSTM": "multiplies it by the output gate",
        "ConvLSTM1D": "multiplies it by the output gate", "ConvLSTM2D": "multiplies it by the output gate",
        "ConvLSTM3D": "multiplies it by the output gate",
    }.get(site.layer_class, "gates it")
    units = record.output.shape[-1] if record.output is not None else "units"
    return Finding(
        f"{layer_name(record)} applies softmax inside its recurrent cell: the cell {how}, so {seen}, not 1; "
        f"use {site.layer_class}({units}) followed by Dense({units}, activation='softmax')",
        f"softmax inside the {site.layer_class} cell, which gates it",
        f"{site.layer_class}({units}) followed by Dense({units}, activation='softmax')")


def _no_softmax(record: LayerRecord) -> Finding:
    site, name = record.site, layer_name(record)
    activation = site.activation
    if site.layer_class == "Lambda":
        function = f" (function {site.function})" if site.function else ""
        return Finding(f"{name}{function} makes the output and no softmax comes before it: end the "
                       "model with keras.ops.softmax or a Softmax layer", "no softmax before the output",
                       "end the model with keras.ops.softmax or a Softmax layer")
    if activation in (None, "linear"):
        what = "logits (linear activation)" if activation == "linear" else "unnormalized values"
        return Finding(
            f"{name} outputs {what}, not probabilities: add activation='softmax' (or a Softmax layer), or, "
            "if logits are intended (from_logits=True losses), do not check this output as a distribution: "
            f"choose the outputs to check with {how_to_set('outputs', '[...]', 'NAME')}",
            f"no softmax: outputs {what}", "add activation='softmax' or a Softmax layer")
    if activation == "sigmoid":
        return Finding(
            f"{name} uses sigmoid: independent per-class probabilities (multi-label), which need not sum "
            "to 1: use softmax for one distribution over classes, or leave this output out: "
            f"{how_to_set('outputs', '[...]', 'NAME')}",
            "sigmoid, not softmax", "softmax for one distribution, or leave this output out")
    if activation == "log_softmax":
        return Finding(f"{name} uses log_softmax: the output holds log-probabilities, whose exp() sums to 1: use "
                       "softmax, or check exp(output) instead", "log_softmax: log-probabilities",
                       "softmax, or check exp(output)")
    return Finding(f"{name} uses {activation}, which does not make a distribution: end with activation='softmax', "
                   "or check a different invariant for this output", f"{activation}, no softmax",
                   "activation='softmax' at the end, or leave this output out")


def _look_through(record: LayerRecord, by_path: dict[str, LayerRecord]) -> tuple[LayerRecord, list[LayerRecord]]:
    """From the output layer back past shape-only layers to the real cause."""
    passed: list[LayerRecord] = []
    while record.site.kind == PASSTHROUGH and len(record.site.producers) == 1 \
            and record.site.producers[0] in by_path:
        passed.append(record)
        record = by_path[record.site.producers[0]]
    return record, passed


def _same_shape(first: LayerRecord, second: LayerRecord) -> bool:
    return first.output is not None and second.output is not None and first.output.shape == second.output.shape


def _nearest_softmax(start: LayerRecord, by_path: dict[str, LayerRecord]) -> LayerRecord | None:
    return next((record for record in upstream(start, by_path) if record.site.is_softmax_site), None)


def _chain(upstream: LayerRecord, cause: LayerRecord, by_path: dict[str, LayerRecord]) -> list[LayerRecord]:
    """The layers from ``upstream`` to ``cause`` (a shortest producer path)."""
    parent: dict[str, str] = {}
    queue, seen = deque([cause.site.path]), {cause.site.path}
    while queue:
        path = queue.popleft()
        if path == upstream.site.path:
            break
        for producer in by_path[path].site.producers:
            if producer in by_path and producer not in seen:
                seen.add(producer)
                parent[producer] = path
                queue.append(producer)
    chain, path = [upstream], upstream.site.path
    while path in parent:
        path = parent[path]
        chain.append(by_path[path])
    return chain


def _sum_text(value: float) -> str:
    """A row sum with two decimals, or up to four when two would print a sum
    that misses 1 as "1.00" (a gate of 0.997 must not read "1.00, not 1")."""
    text = f"{value:.2f}"
    distance = abs(1.0 - value)
    if text != "1.00" or distance < 1e-4:
        return text
    return f"{value:.{min(4, math.ceil(-math.log10(distance)))}f}"


def _row_sums(record: LayerRecord) -> tuple[float, float] | None:
    if record.output is None or record.output.ndim < 2:
        return None
    sums = np.asarray(record.output, dtype=np.float64).sum(axis=-1)
    sums = sums[np.isfinite(sums)]
    return (float(sums.min()), float(sums.max())) if sums.size else None
