"""The rules that name the layer at fault, over a probe of every layer.

Tried in order: the first layer whose output holds NaN/Inf although its
inputs are finite (with an ``exp`` overflow in a hand-written softmax, or
values past the dtype's range); then, from the layer that produced the
output and looking through shape-only layers: a softmax inside a gated
recurrent cell; a softmax over another axis; a layer after a softmax that
changes the sums; no softmax at all (logits, sigmoid, log_softmax...).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ...settings import how_to_set
from ..probing import CONTAINER, OTHER, PASSTHROUGH, RECURRENT, LayerRecord, ProbeResult, normalize_axes
from ..report import LayerResult, Violation
from .table import LayerTable, axes_text, layer_name, within


def explain(result: ProbeResult, violation: Violation, output_index: int | None,
            *, skip_structure: bool = False) -> tuple[list[str], list[LayerResult]]:
    """The diagnosis lines and the table of layers examined."""
    by_path = result.by_path()
    table = LayerTable(by_path, violation.axis, violation.tolerance)
    lines = list(result.limitations)
    nonfinite = first_nonfinite(result)
    if nonfinite is not None:
        lines.append(_explain_nonfinite(nonfinite, by_path, table, result.input_max_abs))
    if violation.site:
        record = by_path.get(violation.site)
        if record is not None:
            table.add(record, "at fault: internal softmax")
            if nonfinite is None:
                lines.append(f"{layer_name(record)} is a softmax inside the model whose rows do not sum to 1 along "
                             f"its own axis {axes_text(record)} (masked rows excepted)")
        return lines, table.rows
    producer = result.output_producers[output_index] if output_index is not None and output_index < len(
        result.output_producers) else None
    if producer is None or producer not in by_path:
        lines.append(
            f"cannot name the layer that made output {violation.output!r}: it is computed outside any layer "
            "(in the model's own call()); split that computation into a layer to localize it"
        )
        return lines, table.rows
    cause, looked_through = _look_through(by_path[producer], by_path)
    for record in looked_through:
        table.add(record, "looked through")
    if nonfinite is None and not skip_structure:
        line = _explain_structure(cause, violation, by_path, table)
        if line:
            lines.append(line)
    elif cause.site.path not in table.seen:
        table.add(cause, "produces the output")
    return lines, table.rows


def first_nonfinite(result: ProbeResult) -> LayerRecord | None:
    """Rule 4: the first layer, in execution order, whose output holds NaN
    or Inf although the model's inputs were finite."""
    if not result.inputs_finite:
        return None
    return next((r for r in result.records if r.site.kind != CONTAINER and r.nonfinite), None)


def _explain_nonfinite(record: LayerRecord, by_path: dict[str, LayerRecord], table: LayerTable,
                       input_max_abs: dict[str, float]) -> str:
    feeders = [by_path[p] for p in record.site.producers if p in by_path]
    magnitudes = {f.site.path: f.max_abs for f in feeders}
    magnitudes.update({p: input_max_abs[p] for p in record.site.producers if p in input_max_abs})
    fed = ", ".join(
        f"{layer_name(by_path[p]) if p in by_path else p} (finite, max |value| {magnitudes[p]:.4g})"
        for p in record.site.producers if p in magnitudes
    ) or "values computed outside any layer"
    for feeder in feeders:
        table.add(feeder, "fed it (finite)")
    table.add(record, "at fault: first NaN/Inf")
    head = (f"{layer_name(record)} is the first layer whose output holds NaN/Inf ({record.nonfinite} values in the "
            f"probed rows) although its inputs are finite; fed by {fed}")
    dtype = record.site.dtype or "float32"
    limit = _exp_limit(dtype)
    largest = max(magnitudes.values(), default=0.0)
    if largest > math.sqrt(_float_max(dtype)):
        return (f"{head}: values that large overflow {dtype} when multiplied or squared (max {_float_max(dtype):.3g}); "
                "scale or normalize the input, or compute this layer in float32/float64")
    if record.site.kind == OTHER and largest > limit and not record.infinite:
        return (f"{head}: an exp() overflows in {record.site.dtype or 'float32'} past {limit:.3g}, so a "
                "hand-written exp(x) / sum(exp(x)) gives Inf/Inf = NaN: use keras.ops.softmax, which "
                "subtracts the maximum first")
    if record.site.is_softmax_site:
        return f"{head}: the softmax itself produced NaN/Inf; its input reaches {largest:.4g}"
    return (f"{head}: look for a division by zero (e.g. a zero temperature), log(0) or sqrt(<0) in it; "
            "the layers after it only pass the NaN/Inf on")


def _explain_structure(cause: LayerRecord, violation: Violation, by_path: dict[str, LayerRecord],
                       table: LayerTable) -> str | None:
    site = cause.site
    if site.kind == CONTAINER:
        table.add(cause, "cannot look inside")
        return (f"cannot name the layer at fault inside {layer_name(cause)}: its output is computed in its own "
                "call() outside its sublayers; move that computation into a layer to localize it")
    if site.kind == RECURRENT and site.activation == "softmax" and site.gated:
        table.add(cause, "at fault: softmax inside the cell")
        return _recurrent(cause)
    if site.is_softmax_site:
        axes = normalize_axes(site.softmax_axes or (-1,), cause.output.ndim) if cause.output is not None else None
        checked = normalize_axes(violation.axis, cause.output.ndim) if cause.output is not None else None
        if axes is not None and checked is not None and axes != checked:
            table.add(cause, "at fault: other axis")
            return (f"{layer_name(cause)} normalizes over axis {axes_text(cause)} but the output is checked along "
                    f"axis {violation.axis}: make the softmax run over the class axis (e.g. Softmax(axis=-1)) or "
                    f"check along it with {how_to_set('axis', str(site.softmax_axes[0] if site.softmax_axes else -1))}")
        table.add(cause, "softmax, not normalized")
        return (f"{layer_name(cause)} is the softmax that makes the output, and its rows are not normalized along "
                f"axis {violation.axis} (max |sum - 1| = {cause.sum_error(violation.axis):.4g})")
    upstream = _nearest_softmax(cause, by_path)
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
        return (f"{layer_name(culprit)} comes after the softmax {layer_name(upstream)} and changes its row sums "
                f"(max |sum - 1| = {culprit.sum_error(violation.axis):.4g} after it, "
                f"{upstream.sum_error(upstream.site.softmax_axes or -1):.2g} before): apply the softmax last, or "
                "drop or renormalize that layer")
    table.add(cause, "at fault: no softmax")
    return _no_softmax(cause)


def _recurrent(record: LayerRecord) -> str:
    site = record.site
    sums = _row_sums(record)
    if sums is None:
        seen = "rows do not sum to 1"
    elif sums[1] - sums[0] < 0.005:
        seen = f"rows sum to {sums[0]:.2f} here"
    else:
        seen = f"rows sum to {sums[0]:.2f}-{sums[1]:.2f} here"
    how = {
        "GRU": "interpolates it with the previous state (rows can sum below or above 1)",
        "LSTM": "multiplies it by the output gate",
        "ConvLSTM1D": "multiplies it by the output gate", "ConvLSTM2D": "multiplies it by the output gate",
        "ConvLSTM3D": "multiplies it by the output gate",
    }.get(site.layer_class, "gates it")
    units = record.output.shape[-1] if record.output is not None else "units"
    return (f"{layer_name(record)} applies softmax inside its recurrent cell: the cell {how}, so {seen}, not 1; "
            f"use {site.layer_class}({units}) followed by Dense({units}, activation='softmax')")


def _no_softmax(record: LayerRecord) -> str:
    site, name = record.site, layer_name(record)
    activation = site.activation
    if site.layer_class == "Lambda":
        function = f" (function {site.function})" if site.function else ""
        return (f"{name}{function} makes the output and no softmax comes before it: end the "
                "model with keras.ops.softmax or a Softmax layer")
    if activation in (None, "linear"):
        what = "logits (linear activation)" if activation == "linear" else "unnormalized values"
        return (f"{name} outputs {what}, not probabilities: add activation='softmax' (or a Softmax layer), or, "
                "if logits are intended (from_logits=True losses), do not check this output as a distribution: "
                f"choose the outputs to check with {how_to_set('outputs', '[...]', 'NAME')}")
    if activation == "sigmoid":
        return (f"{name} uses sigmoid: independent per-class probabilities (multi-label), which need not sum "
                "to 1: use softmax for one distribution over classes, or leave this output out: "
                f"{how_to_set('outputs', '[...]', 'NAME')}")
    if activation == "log_softmax":
        return (f"{name} uses log_softmax: the output holds log-probabilities, whose exp() sums to 1: use "
                "softmax, or check exp(output) instead")
    return (f"{name} uses {activation}, which does not make a distribution: end with activation='softmax', or "
            "check a different invariant for this output")


def _look_through(record: LayerRecord, by_path: dict[str, LayerRecord]) -> tuple[LayerRecord, list[LayerRecord]]:
    """From the output layer back past shape-only layers to the real cause."""
    passed: list[LayerRecord] = []
    while record.site.kind == PASSTHROUGH and len(record.site.producers) == 1 \
            and record.site.producers[0] in by_path:
        passed.append(record)
        record = by_path[record.site.producers[0]]
    return record, passed


def _nearest_softmax(start: LayerRecord, by_path: dict[str, LayerRecord]) -> LayerRecord | None:
    queue, seen = deque(start.site.producers), set()
    while queue:
        path = queue.popleft()
        if path in seen or path not in by_path:
            continue
        seen.add(path)
        record = by_path[path]
        if record.site.is_softmax_site:
            return record
        queue.extend(record.site.producers)
    return None


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


def _float_max(dtype: str) -> float:
    try:
        return float(np.finfo(np.dtype(dtype)).max)
    except TypeError:
        return float(np.finfo(np.float32).max)  # bfloat16 shares float32's range


def _exp_limit(dtype: str) -> float:
    try:
        return float(np.log(np.finfo(np.dtype(dtype)).max))
    except TypeError:
        return 88.72  # float32's, for dtypes numpy does not know (bfloat16 shares its range)


def _row_sums(record: LayerRecord) -> tuple[float, float] | None:
    if record.output is None or record.output.ndim < 2:
        return None
    sums = np.asarray(record.output, dtype=np.float64).sum(axis=-1)
    sums = sums[np.isfinite(sums)]
    return (float(sums.min()), float(sums.max())) if sums.size else None
