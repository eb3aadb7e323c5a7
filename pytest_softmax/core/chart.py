"""Small inline SVG charts of a check, drawn by hand from report data.

Two pictures, both plain strings of SVG built from the plain dicts a check
carries (what the JSON report holds), so they render offline, in any
browser, with nothing to install and nothing imported at start-up:

* :func:`layer_chart`: the layers of the failing input in execution order,
  one bar per layer giving its max ``|row sum - 1|`` as a multiple of the
  tolerance on a log scale (the tolerance is the line at 1), a strip below
  giving its share of NaN/Inf values, softmax sites marked with a diamond
  and the layer at fault drawn in red;
* :func:`margin_histogram`: a passing output's rows counted by
  ``|row sum - 1| / tolerance``, in the log-spaced bins the search keeps.

Every layer's bar carries ``class="layer-mark"`` and ``data-layer``, the
layer at fault also ``fault``: the tests (and a reader's devtools) find them
by those.  Standard library only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .report import ROW_ERROR_BINS

PLOT_HEIGHT = 200
STRIP_HEIGHT = 36
LEFT = 64
RIGHT = 72  # room for the tolerance line's label
MIN_PLOT_WIDTH = 360
TOP = 28
MAX_WIDTH = 1000
LABELLED_LAYERS = 40  # beyond this many, only the fault and softmax sites are labelled
LABEL_CHARACTERS = 28


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _ratio(layer: Mapping[str, Any]) -> float | None:
    """max error / tolerance; None when unknown (no axis to sum along, or
    every row non-finite)."""
    error, tolerance = layer.get("max_error"), layer.get("tolerance")
    if not isinstance(error, (int, float)) or not isinstance(tolerance, (int, float)) or tolerance <= 0:
        return None
    if math.isnan(error) or math.isnan(tolerance):
        return None
    return float(error) / float(tolerance)


def _decades(ratios: Sequence[float]) -> tuple[int, int]:
    """The log10 range of the axis: at least 1e-6 .. 10 so the tolerance
    line is always inside, widened to every finite nonzero ratio (bounded:
    a ratio of 1e300 needs no decade of its own)."""
    logs = [math.log10(r) for r in ratios if r > 0 and math.isfinite(r)]
    low = max(min([-6, *[math.floor(v) for v in logs]]), -16)
    high = min(max([1, *[math.ceil(v) for v in logs]]), 16)
    return low, high


def _share(layer: Mapping[str, Any]) -> float:
    values, nonfinite = layer.get("values") or 0, layer.get("nonfinite") or 0
    return min(float(nonfinite) / float(values), 1.0) if values else 0.0


def layer_chart(layers: Sequence[Mapping[str, Any]], cause: str | None = None) -> str:
    """The per-layer chart of a failing check, as one ``<svg>`` element."""
    count = len(layers)
    if not count:
        return ""
    slot = max(6.0, min(36.0, (MAX_WIDTH - LEFT - RIGHT) / count))
    bar = max(slot * 0.7, 3.0)
    plot_width = max(slot * count, MIN_PLOT_WIDTH)
    slot = plot_width / count  # a short model's bars spread over the plot
    width = LEFT + plot_width + RIGHT
    labelled = count <= LABELLED_LAYERS
    longest = max((min(len(str(layer.get("name", ""))), LABEL_CHARACTERS) for layer in layers
                   if _labelled(layer, labelled)), default=0)
    # Labels slope at 40 degrees: about 0.64 of their length goes down.
    label_room = 24 + longest * 4.5
    strip_top = TOP + PLOT_HEIGHT + 10
    height = strip_top + STRIP_HEIGHT + label_room
    ratios = [_ratio(layer) for layer in layers]
    low, high = _decades([r for r in ratios if r is not None])

    def y_of(ratio: float) -> float:
        if ratio <= 0:
            return TOP + PLOT_HEIGHT
        position = (min(max(math.log10(ratio), low), high) - low) / (high - low)
        return TOP + PLOT_HEIGHT * (1 - position)

    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" class="layer-chart" role="img" width="{width:.0f}" '
         f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" data-layers="{count}">'),
        (f"<title>max |row sum - 1| / tolerance per layer, in execution order"
         f"{_text(f'; at fault: {cause}') if cause else ''}</title>"),
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_width:.1f}" height="{PLOT_HEIGHT}"/>',
    ]
    for decade in range(low, high + 1):
        y = y_of(10.0 ** decade)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_width:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}">1e{decade}</text>')
    parts.append(f'<text class="axis" x="12" y="{TOP + PLOT_HEIGHT / 2:.0f}" '
                 f'transform="rotate(-90 12 {TOP + PLOT_HEIGHT / 2:.0f})">|sum - 1| / tolerance</text>')
    # Drawn before the marks, which go on top of it.
    parts.append(f'<rect class="strip" x="{LEFT}" y="{strip_top}" width="{plot_width:.1f}" '
                 f'height="{STRIP_HEIGHT}"/><text class="tick" x="{LEFT - 6}" y="{strip_top + STRIP_HEIGHT / 2 + 4:.0f}">'
                 "NaN/Inf</text>")
    for index, (layer, ratio) in enumerate(zip(layers, ratios)):
        x = LEFT + slot * index + (slot - bar) / 2
        parts.extend(_layer_marks(layer, ratio, x, bar, y_of, strip_top))
        if _labelled(layer, labelled):
            cx = x + bar / 2
            label = str(layer.get("name", ""))
            short = label if len(label) <= LABEL_CHARACTERS else "\u2026" + label[-LABEL_CHARACTERS + 1:]
            parts.append(f'<text class="label{" fault" if layer.get("at_fault") else ""}" x="{cx:.1f}" '
                         f'y="{strip_top + STRIP_HEIGHT + 12}" transform="rotate(-40 {cx:.1f} '
                         f'{strip_top + STRIP_HEIGHT + 12})">{_text(short)}</text>')
    tolerance_y = y_of(1.0)
    parts.append(f'<line class="tolerance" x1="{LEFT}" x2="{LEFT + plot_width:.1f}" y1="{tolerance_y:.1f}" '
                 f'y2="{tolerance_y:.1f}"/><text class="tolerance-label" x="{LEFT + plot_width + 6:.1f}" '
                 f'y="{tolerance_y + 4:.1f}">tolerance</text>')
    parts.append("</svg>")
    return "".join(parts)


def _labelled(layer: Mapping[str, Any], all_labelled: bool) -> bool:
    return all_labelled or bool(layer.get("at_fault")) or bool(layer.get("softmax_site"))


def _layer_marks(layer: Mapping[str, Any], ratio: float | None, x: float, bar: float, y_of: Any,
                 strip_top: float) -> list[str]:
    """One layer's bar (its error), its NaN/Inf share and its site marker."""
    name = _text(layer.get("name", ""))
    kinds = ["layer-mark"]
    if layer.get("at_fault"):
        kinds.append("fault")
    if layer.get("softmax_site"):
        kinds.append("site")
    share = _share(layer)
    error = layer.get("max_error")
    if ratio is None:
        kinds.append("unknown")
        top, bottom = TOP + PLOT_HEIGHT - 6, TOP + PLOT_HEIGHT
        figure = "no sum along the checked axis" if share == 0 else "every row non-finite"
    else:
        top, bottom = y_of(ratio), TOP + PLOT_HEIGHT
        # Only a softmax site's rows are meant to sum to 1: other layers'
        # sums are drawn for reference, in a neutral colour.
        kinds.append(("over" if ratio > 1 else "within") if layer.get("softmax_site") else "reference")
        figure = f"max |sum - 1| = {error:.3g} = {ratio:.3g} x tolerance"
    tooltip = (f"{layer.get('name', '')} ({layer.get('layer_class', '')}): {figure}; "
               f"non-finite {layer.get('nonfinite', 0)} of {layer.get('values', 0)} values"
               f"{'; softmax site' if layer.get('softmax_site') else ''}{'; AT FAULT' if layer.get('at_fault') else ''}")
    marks = []
    if layer.get("at_fault"):  # a band down the whole plot: the fault is found at a glance
        marks.append(f'<rect class="fault-band" x="{x - 2:.1f}" y="{TOP}" width="{bar + 4:.1f}" '
                     f'height="{strip_top + STRIP_HEIGHT - TOP}"/>')
    marks += [(f'<rect class="{" ".join(kinds)}" data-layer="{name}" x="{x:.1f}" y="{top:.1f}" width="{bar:.1f}" '
              f'height="{max(bottom - top, 1.5):.1f}"><title>{_text(tooltip)}</title></rect>')]
    if layer.get("at_fault"):
        value = f"{_short(ratio)}\u00d7 tolerance" if ratio is not None else "at fault"
        if share > 0:
            value = f"{share:.0%} NaN/Inf" if ratio is None else f"{value}, {share:.0%} NaN/Inf"
        marks.append(f'<text class="fault-value" x="{x + bar / 2:.1f}" y="{max(top - 5, TOP - 2):.1f}">'
                     f"{_text(value)}</text>")
    if share > 0:
        height = STRIP_HEIGHT * share
        marks.append(f'<rect class="nonfinite-mark" data-layer="{name}" x="{x:.1f}" '
                     f'y="{strip_top + STRIP_HEIGHT - height:.1f}" width="{bar:.1f}" height="{height:.1f}">'
                     f"<title>{share:.0%} of the values are NaN/Inf</title></rect>")
    if layer.get("softmax_site"):
        cx, cy = x + bar / 2, TOP - 10
        marks.append(f'<path class="site-mark" data-layer="{name}" d="M{cx:.1f} {cy - 6:.1f} L{cx + 5:.1f} {cy:.1f} '
                     f'L{cx:.1f} {cy + 6:.1f} L{cx - 5:.1f} {cy:.1f} Z"><title>softmax site</title></path>')
    return marks


def _short(number: float) -> str:
    """``1.3e5`` rather than ``1.32e+05``: read at a glance."""
    return f"{number:.2g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def bin_labels() -> list[str]:
    """``<= 1e-6``, ``1e-6-1e-5``, ... ``1e-1-1``, ``> 1``: the bins of the
    margin histogram, in multiples of the tolerance (short enough to sit
    under their bars)."""
    edges = [_decade(edge) for edge in ROW_ERROR_BINS[1:]]
    return [f"\u2264 {edges[0]}", *(f"{low}\u2013{high}" for low, high in itertools.pairwise(edges)), f"> {edges[-1]}"]


def _decade(value: float) -> str:
    exponent = round(math.log10(value))
    return "1" if exponent == 0 else f"1e{exponent}"


def margin_histogram(counts: Sequence[int], title: str = "") -> str:
    """Rows per bin of ``|row sum - 1| / tolerance``, as one ``<svg>``."""
    if not counts or not any(counts):
        return ""
    labels = bin_labels()
    slot, plot, top, left = 78, 90, 18, 10
    width, height = left + slot * len(counts) + 10, top + plot + 34
    peak = max(counts)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="margin-chart" role="img" width="{width}" '
              f'height="{height}" viewBox="0 0 {width} {height}"><title>{_text(title or "rows by error")}</title>')]
    for index, (count, label) in enumerate(zip(counts, labels)):
        x = left + slot * index
        bar = plot * (math.log1p(count) / math.log1p(peak)) if count else 0.0
        over = index == len(counts) - 1
        parts.append(f'<rect class="bin-mark{" over" if over else ""}" x="{x + 8}" y="{top + plot - bar:.1f}" '
                     f'width="{slot - 16}" height="{bar:.1f}"><title>{count} rows</title></rect>'
                     f'<text class="count" x="{x + slot / 2:.0f}" y="{top + plot - bar - 4:.1f}">{count}</text>'
                     f'<text class="bin" x="{x + slot / 2:.0f}" y="{top + plot + 16}">{_text(label)}</text>')
    tolerance_x = left + slot * (len(counts) - 1)
    parts.append(f'<line class="tolerance" x1="{tolerance_x}" x2="{tolerance_x}" y1="{top - 6}" '
                 f'y2="{top + plot}"/><text class="tolerance-label" x="{tolerance_x - 4}" y="{top - 8}">tolerance'
                 f'</text><text class="axis" x="{left}" y="{height - 2}">|row sum - 1| / tolerance</text></svg>')
    return "".join(parts)
