"""The ``--softmax-html`` page: every check of a run in one self-contained
HTML file (styles, charts and its one small script inline; nothing fetched
when it is viewed).

Built from the plain dicts the checks travel in (the JSON report's
``checks``), so it is a pure function of report data, testable without
pytest.  Failures come first; each shows the message as the terminal does,
the failing input's rebuild lines and the per-layer chart
(:mod:`pytest_softmax.core.chart`); a passing check shows its margin.
Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .chart import layer_chart, margin_histogram
from .kinds import NOT_FINITE

VERDICT_ORDER = {"failed": 0, "error": 1, "passed": 2}

PAGE_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1f2937;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cbd5e1}main{padding:16px 24px;max-width:1200px}
.totals span{display:inline-block;margin-right:14px;font-weight:600}
.failed{color:#b91c1c}.error{color:#b45309}.passed{color:#15803d}
table.checks{border-collapse:collapse;width:100%;background:#fff;margin:12px 0 20px}
table.checks th,table.checks td{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}
table.checks th{background:#eef1f4;font-weight:600}td.num{font-variant-numeric:tabular-nums;text-align:right}
section.check{background:#fff;border:1px solid #e5e7eb;border-left:6px solid #15803d;margin:0 0 18px;padding:10px 16px}
section.check.v-failed{border-left-color:#b91c1c}section.check.v-error{border-left-color:#b45309}
section.check h2{font-size:16px;margin:4px 0 6px;word-break:break-all}
.fault-line{font-weight:600;color:#b91c1c}.meta{color:#4b5563}
pre{background:#f3f4f6;padding:8px 10px;overflow-x:auto;font-size:12.5px;white-space:pre-wrap;word-break:break-word}
label.filter{display:block;margin:8px 0}
"""
# What the charts need, also inlined into pytest-html rows.
CHART_STYLE = """
.chart{overflow-x:auto}.legend{color:#4b5563;font-size:12.5px}
.legend i{display:inline-block;width:12px;height:12px;vertical-align:-1px;margin:0 4px 0 10px}
svg .plot,svg .strip{fill:#fafafa;stroke:#d1d5db}svg .grid{stroke:#e5e7eb}
svg text{font:11px system-ui,sans-serif;fill:#374151}svg .tick{text-anchor:end}
svg .label{text-anchor:end}svg .label.fault{fill:#b91c1c;font-weight:700}
svg .layer-mark.within{fill:#22c55e}svg .layer-mark.over{fill:#f59e0b}svg .layer-mark.unknown{fill:#d1d5db}
svg .layer-mark.reference{fill:#93c5fd}
svg .layer-mark.fault{fill:#dc2626;stroke:#7f1d1d;stroke-width:2}
svg .fault-band{fill:#fecaca;opacity:.6}svg .nonfinite-mark{fill:#7c3aed}svg .site-mark{fill:#0f766e}
svg .fault-value{fill:#7f1d1d;font-weight:700;text-anchor:middle;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .tolerance{stroke:#111827;stroke-width:1.5;stroke-dasharray:6 4}svg .tolerance-label{font-weight:600}
svg .bin-mark{fill:#60a5fa}svg .bin-mark.over{fill:#dc2626}svg .count,svg .bin{text-anchor:middle}
svg .margin-chart .tolerance-label{text-anchor:end}
.fault-line{font-weight:600;color:#b91c1c}
"""

# The page's only script: hide passing checks on request, or when the page
# is opened as page.html#failures (a link a CI job can post).  The page is
# complete without it.
SCRIPT = """
var failuresOnly = document.getElementById('failures-only');
function showFailuresOnly(hide) {
  failuresOnly.checked = hide;
  document.querySelectorAll('.v-passed').forEach(function (node) { node.hidden = hide; });
}
failuresOnly.addEventListener('change', function () { showFailuresOnly(failuresOnly.checked); });
if (window.location.hash === '#failures') { showFailuresOnly(true); }
"""

LEGEND = (
    '<p class="legend"><i style="background:#dc2626"></i>layer at fault'
    '<i style="background:#f59e0b"></i>softmax site over the tolerance'
    '<i style="background:#22c55e"></i>softmax site within it'
    '<i style="background:#93c5fd"></i>other layer (its rows need not sum to 1)'
    '<i style="background:#d1d5db"></i>no finite sum along the axis'
    '<i style="background:#7c3aed"></i>share of NaN/Inf'
    '<i style="background:#0f766e;transform:rotate(45deg);width:9px;height:9px"></i>softmax site'
    " \u2014 dashed line: the tolerance; hover a bar for its figures</p>"
)


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _number(value: object, digits: int = 3) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.{digits}g}"
    return "-"


def ordered(checks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Failures first, then checks that could not run, then passes; by test id within each."""
    return sorted(checks, key=lambda c: (VERDICT_ORDER.get(str(c.get("verdict")), 3), str(c.get("nodeid"))))


def inline_style() -> str:
    """The charts' styles as a ``<style>`` element, for a fragment shown
    inside another page (a pytest-html row)."""
    return f"<style>{CHART_STYLE}</style>"


def build_page(checks: Sequence[Mapping[str, Any]], *, title: str = "pytest-softmax report",
               created: str = "", exit_status: int | None = None, generator: str = "") -> str:
    """The whole page, as one string; ``generator`` (a ``<meta>`` element)
    goes first in its head, where a later run looks for it."""
    listed = ordered(checks)
    totals = {v: sum(c.get("verdict") == v for c in listed) for v in ("failed", "error", "passed")}
    status = f" \u00b7 exit status {exit_status}" if exit_status is not None else ""
    rows = "".join(_summary_row(index, check) for index, check in enumerate(listed))
    sections = "".join(_section(index, check) for index, check in enumerate(listed))
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{generator}"
        f"<meta name=\"viewport\" content=\"width=device-width\"><title>{_text(title)}</title>"
        f"<style>{PAGE_STYLE}{CHART_STYLE}</style></head><body><header><h1>{_text(title)}</h1>"
        f"<p>{len(listed)} softmax checks \u00b7 {_text(created)}{status}</p></header><main>"
        f'<p class="totals"><span class="failed">{totals["failed"]} failed</span>'
        f'<span class="error">{totals["error"]} could not run</span>'
        f'<span class="passed">{totals["passed"]} passed</span></p>'
        '<label class="filter"><input type="checkbox" id="failures-only"> show failures only</label>'
        '<table class="checks"><thead><tr><th>test</th><th>model</th><th>backend</th><th>verdict</th>'
        "<th>worst |sum - 1|</th><th>tolerance</th><th>examples</th><th>rows</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{sections}</main><script>{SCRIPT}</script></body></html>\n"
    )


def _summary_row(index: int, check: Mapping[str, Any]) -> str:
    verdict = str(check.get("verdict", ""))
    return (
        f'<tr class="v-{_text(verdict)}"><td><a href="#check-{index}">{_text(check.get("nodeid", ""))}</a></td>'
        f'<td>{_text(check.get("model") or check.get("model_source") or "-")}</td>'
        f'<td>{_text(check.get("backend") or "-")}</td><td class="{_text(verdict)}">{_text(verdict)}</td>'
        f'<td class="num">{_worst(check)}</td><td class="num">{_number(check.get("tolerance"))}</td>'
        f'<td class="num">{_text(check.get("examples", "-"))}</td><td class="num">{_text(check.get("rows", "-"))}</td></tr>'
    )


def _worst(check: Mapping[str, Any]) -> str:
    """The worst |sum - 1| seen; a failure by NaN/Inf says so (its finite
    rows' worst error would read as a pass)."""
    violations = [v for v in check.get("violations") or [] if isinstance(v, Mapping)]
    if check.get("verdict") == "failed" and violations and violations[0].get("kind") == NOT_FINITE:
        return "NaN/Inf"
    return _number(check.get("worst_error"))


def _section(index: int, check: Mapping[str, Any]) -> str:
    verdict = str(check.get("verdict", ""))
    body = {"failed": _failure, "error": _error, "passed": _margin}.get(verdict, _error)(check)
    return (f'<section class="check v-{_text(verdict)}" id="check-{index}"><h2>{_text(check.get("nodeid", ""))}</h2>'
            f'<p class="meta"><span class="{_text(verdict)}">{_text(verdict)}</span> \u00b7 model '
            f'{_text(check.get("model") or "-")} from {_text(check.get("model_source") or "-")} \u00b7 backend '
            f'{_text(check.get("backend") or "-")} \u00b7 {_text(check.get("dtype") or "-")}</p>{body}</section>')


def failure_chart(check: Mapping[str, Any]) -> str:
    """The per-layer chart of a failed check with its fault line and
    legend, or a sentence saying why there is none."""
    layers = check.get("layer_profile") or []
    layer, cause = check.get("layer_at_fault"), check.get("cause")
    fault = f"layer at fault: {layer}" if layer else ""
    if cause:
        fault = f"{fault} ({cause})" if fault else f"cause: {cause}"
    heading = f'<p class="fault-line">{_text(fault)}</p>' if fault else ""
    if not layers:
        return (f'{heading}<p class="meta">no per-layer picture: the layers of {_text(check.get("model") or "the model")}'
                " were not probed on the failing input (see the message)</p>")
    return f'{heading}<div class="chart">{layer_chart(layers, check.get("cause"))}</div>{LEGEND}'


def _failure(check: Mapping[str, Any]) -> str:
    rebuild = "".join(
        f"<pre class=\"rebuild\">{_text(item.get('name', ''))}: rebuild: {_text(item.get('rebuild', ''))}</pre>"
        for item in check.get("failing_input") or [] if isinstance(item, Mapping)
    )
    return (f"{failure_chart(check)}<pre class=\"message\">{_text(check.get('message') or check.get('headline', ''))}"
            f"</pre>{rebuild}")


def _error(check: Mapping[str, Any]) -> str:
    return f"<pre class=\"message\">{_text(check.get('message') or check.get('headline', ''))}</pre>"


def _margin(check: Mapping[str, Any]) -> str:
    parts = [f"<p>{_text(check.get('headline', ''))}</p>"]
    worst, tolerance = check.get("worst_error"), check.get("tolerance")
    if isinstance(worst, (int, float)) and isinstance(tolerance, (int, float)) and tolerance > 0 and worst > 0:
        parts.append(f'<p class="margin">margin: the worst row is {tolerance / worst:.3g}x inside the tolerance '
                     f"({_number(worst)} against {_number(tolerance)})</p>")
    elif worst == 0:
        parts.append('<p class="margin">margin: every row summed to exactly 1</p>')
    for output in check.get("outputs") or []:
        if not isinstance(output, Mapping):
            continue
        chart = margin_histogram(output.get("row_error_counts") or [],
                                 f"rows of output {output.get('output', '')} by |sum - 1| / tolerance")
        if chart:
            parts.append(f'<p class="meta">output {_text(output.get("output", ""))}: rows by |sum - 1| / tolerance '
                         f'(tolerance {_number(output.get("tolerance"))})</p><div class="chart">{chart}</div>')
    return "".join(parts)
