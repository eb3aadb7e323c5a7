"""A softmax regrouped on its way to the output.

``Dense(768, activation='softmax')`` then ``Reshape((64, 12))``: the softmax
normalizes 768 values, and the output cuts them into 64 rows of 12, each
summing to about 1/64.  Recognized by the mechanism, not by layer class:
walking back from the output, every layer between it and the softmax only
rearranges values (its output holds exactly the values of its inputs:
Reshape, Flatten, Permute, Concatenate, a custom layer that reshapes), and
the softmax's own rows do sum to 1.
"""

from __future__ import annotations

import numpy as np

from ...adapters.base.arrays import as_float64
from ...adapters.base.records import OTHER, PASSTHROUGH, LayerRecord, normalize_axes
from ...tolerance import default_tolerance, normalize_dtype_name
from ..report import Violation
from .finding import Finding
from .table import LayerTable, axes_text, layer_name, within

MAX_STEPS = 32


def explain_regrouped(producer: LayerRecord, violation: Violation, by_path: dict[str, LayerRecord],
                      table: LayerTable) -> Finding | None:
    """The regrouping finding, or ``None`` when the output is not a
    rearranged softmax."""
    found = _regrouped(producer, by_path, violation.tolerance)
    if found is None:
        return _regrouped_inside(producer, violation, table)
    softmax, axes, chain = found
    n_values = int(np.prod([softmax.output.shape[a] for a in axes])) if softmax.output is not None else 0
    table.add(softmax, "at fault: softmax regrouped")
    for record in chain:
        table.add(record, "regroups the softmax output")
    regroupers = ", ".join(layer_name(r) for r in reversed(chain))
    m = violation.n_classes
    share = (f" ({m} of the {n_values} values: 1/{n_values // m} on average)" if n_values > m and n_values % m == 0
             else f" ({m // n_values} softmaxes per row)" if m > n_values and m % n_values == 0 else "")
    sums = _row_sums(producer, violation.axis)
    seen = "" if sums is None else (f", so each row sums to {sums[0]:.3g}" if sums[1] - sums[0] < 5e-3 * max(
        abs(sums[1]), 1e-12) else f", so rows sum to {sums[0]:.3g}-{sums[1]:.3g}")
    where = (f"normalizes over axis {axes_text(softmax)}" if softmax.site.softmax_axes else
             "normalizes (its rows sum to 1 along the last axis)")
    line = (f"{layer_name(softmax)} {where}: each softmax covers {n_values} values, but {regroupers} regroup"
            f"{'s' if len(chain) == 1 else ''} them into output rows of {violation.n_classes} along axis "
            f"{violation.axis}{seen}{share}, not 1: apply the softmax after the regrouping, over the class axis "
            f"(drop the softmax from {layer_name(softmax)}, regroup the logits, then Softmax(axis={violation.axis})); "
            "if each part is a distribution of its own, make the parts separate outputs")
    cause = (f"softmax over {n_values} values regrouped into rows of {violation.n_classes} by "
             f"{chain[-1].site.layer_class} {chain[-1].site.path!r}")
    return Finding(line, cause, f"regroup the logits first, then Softmax(axis={violation.axis}) over the class axis")


def _regrouped_inside(record: LayerRecord, violation: Violation, table: LayerTable) -> Finding | None:
    """A layer whose own call() computes a softmax and then reshapes or
    transposes it: its output holds exactly the softmax's values, in other
    rows."""
    fed, output = record.softmax_input, record.output
    # A softmax layer over another axis is the other-axis rule's business.
    if record.site.kind != OTHER or record.softmax_op != "softmax" or fed is None or output is None or fed.ndim < 1 or output.ndim < 1:
        return None
    batch = output.shape[0]
    if fed.shape[0] != batch or fed.size != output.size or fed.size == 0:
        return None
    logits = as_float64(fed)
    if not np.isfinite(logits).all():
        return None
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = shifted / shifted.sum(axis=-1, keepdims=True)
    mine = np.sort(as_float64(output).reshape(batch, -1), axis=1)
    if not np.allclose(mine, np.sort(probs.reshape(batch, -1), axis=1), rtol=1e-3, atol=1e-6):
        return None
    n_values, m = int(fed.shape[-1]), violation.n_classes
    if n_values == m:
        return None
    table.add(record, "at fault: softmax regrouped inside")
    return Finding(
        f"{layer_name(record)} computes a softmax over {n_values} values in its own call() and then regroups "
        f"them into output rows of {m} along axis {violation.axis}, so the rows do not sum to 1: apply the "
        f"softmax after the reshape, over the class axis (e.g. keras.ops.softmax(reshaped, axis={violation.axis}))",
        f"softmax over {n_values} values regrouped into rows of {m} inside {record.site.layer_class} "
        f"{record.site.path!r}",
        f"reshape first, then keras.ops.softmax(..., axis={violation.axis}) over the class axis")


def _regrouped(producer: LayerRecord, by_path: dict[str, LayerRecord],
               tolerance: float) -> tuple[LayerRecord, tuple[int, ...], list[LayerRecord]] | None:
    chain: list[LayerRecord] = []
    record = producer
    for _ in range(MAX_STEPS):
        axes = _normalized_axes(record, tolerance)
        if axes is not None:
            return (record, axes, chain) if chain else None
        feeders = [by_path[p] for p in record.site.producers if p in by_path]
        if not feeders or not _rearranges(record, feeders):
            return None
        chain.append(record)
        record = feeders[0]
    return None


def _normalized_axes(record: LayerRecord, tolerance: float) -> tuple[int, ...] | None:
    """The axes along which ``record`` is a softmax whose rows sum to 1: a
    softmax site, or a custom layer whose output rows are distributions."""
    output = record.output
    if output is None or output.ndim < 2 or output.size == 0:
        return None
    if record.site.is_softmax_site:
        axes = normalize_axes(record.site.softmax_axes or (-1,), output.ndim)
    elif record.site.kind == OTHER:
        axes = (output.ndim - 1,)
    else:
        return None
    if axes is None:
        return None
    n = int(np.prod([output.shape[a] for a in axes]))
    allowed = max(tolerance, default_tolerance(normalize_dtype_name(output.dtype), n))
    values = as_float64(output)
    if n < 2 or not np.isfinite(values).all() or values.min() < -allowed:
        return None
    return axes if within(record.sum_error(axes), allowed) else None


def _rearranges(record: LayerRecord, feeders: list[LayerRecord]) -> bool:
    """Whether ``record``'s output holds exactly its inputs' values, per
    example (a reshape, a transpose, a concatenation)."""
    if record.site.kind == PASSTHROUGH and len(feeders) == 1:
        return True
    output = record.output
    if output is None or output.ndim < 1 or any(f.output is None or f.output.ndim < 1 for f in feeders):
        return False
    batch = output.shape[0]
    if any(f.output.shape[0] != batch for f in feeders):  # type: ignore[union-attr]
        return False
    mine = np.sort(as_float64(output).reshape(batch, -1), axis=1)
    theirs = np.sort(np.concatenate([as_float64(f.output).reshape(batch, -1) for f in feeders], axis=1), axis=1)
    if mine.shape != theirs.shape or mine.size == 0 or not np.isfinite(mine).all():
        return False
    # Moved values are copied exactly; only a cast between layers (a
    # float16 layer fed by a float32 one) may round them.
    eps = max(_epsilon(x.dtype) for x in [output, *(f.output for f in feeders if f.output is not None)])
    return bool(np.allclose(mine, theirs, rtol=eps, atol=0.0))


def _epsilon(dtype: np.dtype) -> float:
    try:
        return float(np.finfo(dtype).eps)
    except (TypeError, ValueError):  # not a float numpy knows (bfloat16 among them): bfloat16's, the coarsest
        return 2.0 ** -7


def _row_sums(record: LayerRecord, axis: int) -> tuple[float, float] | None:
    output = record.output
    if output is None or output.ndim < 2 or not -output.ndim <= axis < output.ndim:
        return None
    sums = as_float64(output).sum(axis=axis)
    sums = sums[np.isfinite(sums)]
    return (float(sums.min()), float(sums.max())) if sums.size else None
