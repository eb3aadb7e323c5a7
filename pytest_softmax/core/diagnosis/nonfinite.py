"""Where NaN/Inf first appears, and why: the layer's own variables (an
infinite kernel entry, a negative variance statistic, a scale that is not
positive), a fully masked row, a value that does not fit the layer's dtype,
an exp() overflow, a division by zero.

Rules about the mechanism, read from the probed values, not from layer
names: the layer's variables as the probe summarized them (in
:mod:`.state_rules`), the row a
softmax was fed (all -inf: 0/0), the dtype the layer computes in and its
largest finite value, the magnitudes that fed it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...adapters.base.arrays import as_float64
from ...adapters.base.records import (
    CONTAINER,
    OTHER,
    LayerRecord,
    ProbeResult,
)
from ...tolerance import normalize_dtype_name
from .finding import Finding
from .state_rules import negative_variance, nonfinite_variable, nonpositive_parameter
from .table import LayerTable, layer_name, upstream

LOW_PRECISION = ("float16", "bfloat16")
# A mask value that fits each dtype, for the advice (float16 tops out at 65504).
_FITTING_MASK = {"float16": "-3e4", "bfloat16": "-1e9", "float32": "-1e9", "float64": "-1e9"}


def first_nonfinite(result: ProbeResult) -> LayerRecord | None:
    """The first layer, in execution order, whose output holds NaN or +Inf
    although the model's inputs were finite.  A layer whose only non-finite
    values are -inf is an additive mask doing its job; it is blamed only when
    nothing after it goes further."""
    if not result.inputs_finite:
        return None
    candidates = [r for r in result.records if r.site.kind != CONTAINER and r.nonfinite]
    by_path = result.by_path()
    return next((r for r in candidates if not (_only_negative_infinity(r) and _fed_a_mask(r, by_path, result))),
                candidates[0] if candidates else None)


def _fed_a_mask(record: LayerRecord, by_path: dict[str, LayerRecord], result: ProbeResult) -> bool:
    """Whether a layer was given a mask (a boolean, integer or 0/1 tensor):
    its -inf values then mark masked positions, not a division by zero."""
    for producer in record.site.producers:
        feeder = by_path.get(producer)
        if feeder is not None and feeder.output is not None and _is_mask(feeder.output):
            return True
        if feeder is None and _is_integer(result.input_dtypes.get(producer, "")):
            return True
    return False


def _is_integer(dtype: str) -> bool:
    return dtype == "bool" or dtype.startswith(("int", "uint"))


def _is_mask(values: np.ndarray) -> bool:
    if _is_integer(values.dtype.name):
        return True
    return bool(values.size) and bool(np.isin(as_float64(values), (0.0, 1.0)).all())


def explain_nonfinite(record: LayerRecord, by_path: dict[str, LayerRecord], table: LayerTable,
                      input_max_abs: dict[str, float], input_dtypes: dict[str, str] | None = None) -> Finding:
    finding = _explain_nonfinite(record, by_path, table, input_max_abs)
    masks = _mask_inputs(record, by_path, input_dtypes or {}) if finding.cause.startswith("every position") else []
    if not masks:
        return finding
    named = " and ".join(masks)
    return Finding(f"{finding.line} (the mask comes from {named})", f"{finding.cause}: {named} masks a whole row",
                   finding.fix)


def _mask_inputs(record: LayerRecord, by_path: dict[str, LayerRecord], dtypes: dict[str, str]) -> list[str]:
    """The model inputs of a mask dtype (bool) or named as a mask that fed
    ``record``, directly or through other layers (integer ids are not masks)."""
    found: dict[str, None] = {}
    queue, seen = list(record.site.producers), set()
    while queue:
        producer = queue.pop(0)
        if producer in seen:
            continue
        seen.add(producer)
        if producer in by_path:
            queue.extend(by_path[producer].site.producers)
        elif dtypes.get(producer) == "bool" or "mask" in producer.lower():
            found[producer] = None
    return list(found)


def _explain_nonfinite(record: LayerRecord, by_path: dict[str, LayerRecord], table: LayerTable,
                       input_max_abs: dict[str, float]) -> Finding:
    feeders = [by_path[p] for p in record.site.producers if p in by_path]
    magnitudes = {f.site.path: f.max_abs for f in feeders}
    magnitudes.update({p: input_max_abs[p] for p in record.site.producers if p in input_max_abs})
    fed = ", ".join(
        f"{layer_name(by_path[p]) if p in by_path else p} ({_magnitude_text(by_path.get(p), magnitudes[p])})"
        for p in record.site.producers if p in magnitudes
    ) or "values computed outside any layer"
    for feeder in feeders:
        table.add(feeder, "fed it (finite)" if not feeder.nonfinite else "fed it (-inf: a mask)")
    table.add(record, "at fault: first NaN/Inf")
    inputs = "its inputs are" if not any(f.nonfinite for f in feeders) else "the model's inputs are"
    head = (f"{layer_name(record)} is the first layer whose output holds NaN/Inf ({record.nonfinite} values in the "
            f"probed rows) although {inputs} finite; fed by {fed}")
    largest = max((m for m in magnitudes.values() if not math.isnan(m)), default=0.0)
    for rule in (nonfinite_variable, negative_variance, _fully_masked, _dtype_overflow, _nan_before_softmax,
                 nonpositive_parameter):
        found = rule(record, head, by_path, largest)
        if found is not None:
            return found
    return _generic(record, head, largest)


def _magnitude_text(record: LayerRecord | None, magnitude: float) -> str:
    if math.isnan(magnitude):
        return "every value -inf"
    finite = "finite" if record is None or not record.nonfinite else "-inf where masked"
    return f"{finite}, max |value| {magnitude:.4g}"


def _fully_masked(record: LayerRecord, head: str, by_path: dict[str, LayerRecord],
                  largest: float) -> Finding | None:
    """A softmax (or exp/sum) fed a row whose every entry is -inf (or, for a
    hand-written exp/sum, so negative that exp() is 0): 0/0 = NaN."""
    fed, op = _softmax_feed(record, by_path)
    if fed is None or fed.ndim < 1 or fed.shape[-1] == 0:
        return None
    values = as_float64(fed)
    dtype = _dtype_name(fed.dtype)
    row = _first_row(np.isneginf(values).all(axis=-1))
    how = "all -inf"
    if row is None and op == "exp":
        floor = _exp_underflow(dtype)
        row = _first_row((values < floor).all(axis=-1))
        how = f"all below {floor:.3g}, so exp() is 0 for each"
    if row is None:
        return None
    where = f"row {list(row)}" if row else "its row"
    if how != "all -inf":
        return Finding(
            f"{head}: every entry of {where} of the exp() input is so negative ({how}) that exp(x) / sum(exp(x)) "
            f"is 0/0 = NaN (a row masked everywhere with a large negative does this too): use keras.ops.softmax, "
            "which subtracts the row maximum first, and handle rows that have no valid position",
            f"exp() underflows to 0 for a whole row in {dtype}: 0/0 in a hand-written softmax",
            "use keras.ops.softmax, which subtracts the row maximum")
    source = _negative_infinity_source(record, by_path)
    line = (f"{head}: every position of {where} of the softmax input is masked ({how}), and a softmax over a "
            f"row with no unmasked position is 0/0 = NaN{source}: mask with a large finite negative that fits "
            f"{dtype} (e.g. {_FITTING_MASK.get(dtype, '-1e9')}) instead of -inf, use Keras' "
            "Softmax()(scores, mask=mask) (it writes zeros for a fully masked row), or handle rows that have no "
            "valid position (e.g. padding-only sequences) before the softmax")
    cause = "every position masked: softmax of all -inf is 0/0"
    low = next((d for d in LOW_PRECISION if f"computes in {d}" in source), None)
    if low is not None:
        cause = f"{cause}; a mask constant past {low}'s max {_float_max(low):.6g} became -inf"
    return Finding(line, cause, f"mask with a finite value that fits {dtype} (e.g. {_FITTING_MASK.get(dtype, '-1e9')}), "
                   "Softmax()(scores, mask=mask), or handle rows with no valid position")


def _dtype_overflow(record: LayerRecord, head: str, by_path: dict[str, LayerRecord],
                    largest: float) -> Finding | None:
    """A value that does not fit the low-precision dtype the layer computes
    in: a constant such as -1e9, an exp() past log(max), a product past max."""
    dtype = _dtype_name(record.softmax_input.dtype) if record.softmax_input is not None else ""
    if dtype not in LOW_PRECISION:
        dtype = record.site.dtype if record.site.dtype in LOW_PRECISION else ""
    # bfloat16 has float32's range: computing in float32 would not help.
    if not dtype or _float_max(dtype) >= _float_max("float32") / 2:
        return None
    limit, exp_limit = _float_max(dtype), math.log(_float_max(dtype))
    fed = as_float64(record.softmax_input) if record.softmax_input is not None else None
    fed_max = float(np.nanmax(fed[np.isfinite(fed)], initial=-np.inf)) if fed is not None and fed.size else -np.inf
    cause = f"{dtype} overflow: a value past {limit:.6g} became Inf"
    if record.softmax_op == "exp" and fed_max > exp_limit:
        what = f"an exp() of values up to {fed_max:.4g} overflows {dtype} past {exp_limit:.3g}"
        cause = f"{dtype} overflow: exp() past {exp_limit:.3g} became Inf"
    else:
        what = (f"a value past {dtype}'s largest finite value {limit:.6g} (a constant such as -1e9 for a mask, an "
                f"exp() past {exp_limit:.3g}, a product or sum past {limit:.6g}; its inputs reach {largest:.4g}) "
                "becomes Inf, and Inf - Inf or 0 * Inf then gives NaN")
    line = (f"{head}: it computes in {dtype}, and {what}: compute this layer in float32 (dtype='float32' on the "
            f"layer), use keras.ops.softmax (it subtracts the maximum, so it stays finite), or use constants "
            f"that fit {dtype} (e.g. {_FITTING_MASK[dtype]} as a mask value)")
    return Finding(line, cause, f"compute this layer in float32 (dtype='float32'), use keras.ops.softmax, or "
                   f"constants that fit {dtype}")


def _nan_before_softmax(record: LayerRecord, head: str, by_path: dict[str, LayerRecord],
                        largest: float) -> Finding | None:
    """The softmax was already fed NaN, made inside the layer from finite
    inputs: with -inf beside it, mask arithmetic (0 * -inf, -inf - -inf)."""
    if record.softmax_input is None:
        return None
    fed = as_float64(record.softmax_input)
    if not np.isnan(fed).any():
        return None
    if np.isneginf(fed).any() or np.isposinf(fed).any():
        return Finding(
            f"{head}: the values its softmax was fed already hold NaN next to -inf: mask arithmetic with an "
            "infinite constant (0 * -inf where a position is kept, or -inf - -inf) makes NaN before the softmax: "
            "select instead of multiplying (keras.ops.where(mask, scores, -1e9)), use a finite constant, or "
            "Keras' Softmax()(scores, mask=mask)",
            "mask arithmetic with -inf (0 * -inf) made NaN before the softmax",
            "select with keras.ops.where(mask, scores, -1e9) instead of multiplying by -inf")
    return Finding(f"{head}: the values its softmax was fed already hold NaN (made in this layer before the "
                   "softmax): look for 0 * inf, inf - inf, a division by zero or log(0) there",
                   "NaN made before the softmax inside the layer",
                   "find the 0 * inf, inf - inf, division by zero or log(0) before that layer's softmax")


def _generic(record: LayerRecord, head: str, largest: float) -> Finding:
    dtype = record.site.dtype or "float32"
    limit = math.log(_float_max(dtype))
    if largest > math.sqrt(_float_max(dtype)):
        return Finding(
            f"{head}: values that large overflow {dtype} when multiplied or squared (max {_float_max(dtype):.3g}); "
            "scale or normalize the input, or compute this layer in float32/float64",
            f"{dtype} overflow of large inputs", "scale or normalize the input, or compute this layer in float32")
    exp_fed = record.softmax_op == "exp" and record.softmax_input is not None
    fed_max = float(np.nanmax(as_float64(record.softmax_input), initial=-np.inf)) if exp_fed else largest
    if record.site.kind == OTHER and fed_max > limit and (not record.infinite or exp_fed):
        return Finding(
            f"{head}: an exp() overflows in {dtype} past {limit:.3g}, so a hand-written exp(x) / sum(exp(x)) gives "
            "Inf/Inf = NaN: use keras.ops.softmax, which subtracts the maximum first",
            f"exp() overflow past {limit:.3g} in a hand-written softmax",
            "use keras.ops.softmax, which subtracts the row maximum")
    if record.site.is_softmax_site:
        return Finding(f"{head}: the softmax itself produced NaN/Inf; its input reaches {largest:.4g}",
                       "the softmax produced NaN/Inf", "keep the softmax's input finite, or compute it in float32")
    return Finding(f"{head}: look for a division by zero (e.g. a zero temperature), log(0) or sqrt(<0) in it; "
                   "the layers after it only pass the NaN/Inf on",
                   "first NaN/Inf: a division by zero, log(0) or sqrt(<0)?",
                   "guard that layer's division, log or sqrt (e.g. a small epsilon, or a non-zero temperature)")


def _softmax_feed(record: LayerRecord, by_path: dict[str, LayerRecord]) -> tuple[np.ndarray | None, str]:
    """The values the softmax in ``record`` normalized: recorded by the probe,
    else, for a softmax layer fed by one producer, that producer's output.
    (Any other layer's input is not assumed to feed an exp(): a division by
    zero fed very negative logits is not an underflow.)"""
    if record.softmax_input is not None:
        return record.softmax_input, record.softmax_op
    if record.site.is_softmax_site and len(record.site.producers) == 1 and record.site.producers[0] in by_path:
        producer = by_path[record.site.producers[0]]
        if producer.output is not None and record.site.softmax_axes in (None, (-1,)):
            return producer.output, "softmax"
    return None, ""


def _negative_infinity_source(record: LayerRecord, by_path: dict[str, LayerRecord]) -> str:
    """Where the -inf came from, when a low-precision layer made it (a mask
    constant that overflowed)."""
    for source in upstream(record, by_path):
        if source.output is not None and np.isneginf(as_float64(source.output)).any():
            if source.site.dtype in LOW_PRECISION:
                return (f" (the -inf comes from {layer_name(source)}, which computes in {source.site.dtype}: its "
                        f"largest finite value is {_float_max(source.site.dtype):.6g}, so a mask constant such as "
                        "-1e9 overflows to -inf there)")
            return f" (the -inf comes from {layer_name(source)})"
    dtype = _dtype_name(record.softmax_input.dtype) if record.softmax_input is not None else record.site.dtype
    if dtype in LOW_PRECISION:
        return (f" (it computes in {dtype}, largest finite value {_float_max(dtype):.6g}: a mask constant such as "
                "-1e9 overflows to -inf)")
    return ""


def _only_negative_infinity(record: LayerRecord) -> bool:
    if record.output is None:
        return False
    values = as_float64(record.output)
    bad = values[~np.isfinite(values)]
    return bool(bad.size) and bool(np.all(bad == -np.inf))


def _first_row(flags: Any) -> tuple[int, ...] | None:
    if not np.any(flags):
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(flags)), np.shape(flags)))


def _dtype_name(dtype: Any) -> str:
    return normalize_dtype_name(dtype)


# numpy's finfo does not know bfloat16 (an ml_dtypes type): its limits, by name.
_BFLOAT16_MAX, _BFLOAT16_SMALLEST = 3.3895313892515355e38, 9.183549615799121e-41


def _float_max(dtype: str) -> float:
    if dtype == "bfloat16":
        return _BFLOAT16_MAX
    try:
        return float(np.finfo(np.dtype(dtype)).max)
    except (TypeError, ValueError):
        return float(np.finfo(np.float32).max)


def _exp_underflow(dtype: str) -> float:
    """Below this, exp() rounds to 0 in ``dtype``."""
    if dtype == "bfloat16":
        return math.log(_BFLOAT16_SMALLEST / 2)
    try:
        tiny = float(np.finfo(np.dtype(dtype)).smallest_subnormal)
    except (TypeError, ValueError):
        tiny = float(np.finfo(np.float32).smallest_subnormal)
    return math.log(tiny / 2)
