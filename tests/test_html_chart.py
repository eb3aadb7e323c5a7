"""The HTML page and its SVG charts, against report data (issue 19).

In-process and without a model: reports are built by hand, turned into the
plain dicts a check travels in (what the JSON report holds) and drawn.  The
charts are parsed as XML, so the tests read marks and attributes the way a
browser's DOM holds them, not substrings."""

from __future__ import annotations

import html
import math
import re
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest

from pytest_softmax.core.chart import STRIP_HEIGHT, bin_labels, layer_chart, margin_histogram
from pytest_softmax.core.html_report import build_page, failure_chart
from pytest_softmax.core.invariants import check_batch, row_error_counts
from pytest_softmax.core.kinds import NOT_NORMALIZED
from pytest_softmax.core.report import ROW_ERROR_BINS, LayerProfile, OutputResult, SoftmaxReport, Violation
from pytest_softmax.plugin.records import check_entry

SVG = "{http://www.w3.org/2000/svg}"
TOLERANCE = 1e-5


def layer(name: str, ratio: float, *, nonfinite: int = 0, values: int = 40, site: bool = False,
          fault: bool = False, layer_class: str = "Dense") -> LayerProfile:
    return LayerProfile(name=name, layer_class=layer_class, max_error=ratio * TOLERANCE, tolerance=TOLERANCE,
                        nonfinite=nonfinite, values=values, softmax_site=site, at_fault=fault)


PROFILE = [
    layer("net/embed", 30.0),
    layer("net/block/attention", 1.0, site=True),
    layer("net/block/mix", 10.0, fault=True),
    layer("net/pool", float("nan"), nonfinite=10, values=40),
    layer("net/probs", 0.01, site=True, layer_class="Softmax"),
]


def failing_report(profile: list[LayerProfile] = PROFILE, name: str = "net") -> SoftmaxReport:
    violation = Violation(kind=NOT_NORMALIZED, output="probs", layer_name="probs", layer_class="Softmax",
                          dtype="float32", axis=-1, n_classes=4, tolerance=TOLERANCE, error=1e-4,
                          rows_violating=3, rows=8)
    return SoftmaxReport(model_name=name, passed=False, examples=3, rows=24, worst_error=1e-4, tolerance=TOLERANCE,
                         dtype="float32", violations=[violation], layer_profile=list(profile),
                         layer_at_fault="net/block/mix (Dense)", cause="a layer after the softmax rescales it",
                         backend="tensorflow")


def passing_report(counts: tuple[int, ...], name: str = "healthy") -> SoftmaxReport:
    output = OutputResult(output="probs", layer_name="probs", layer_class="Dense", dtype="float32", axis=-1,
                          n_classes=4, atol=TOLERANCE, rtol=0.0, tolerance=TOLERANCE, rows=sum(counts),
                          worst_error=2e-7, row_error_counts=counts)
    return SoftmaxReport(model_name=name, passed=True, examples=10, rows=sum(counts), worst_error=2e-7,
                         tolerance=TOLERANCE, dtype="float32", outputs=[output], backend="jax")


def entry(nodeid: str, report: SoftmaxReport) -> dict[str, Any]:
    return check_entry(nodeid, "model_zoo.net", report)


def svg_of(markup: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", markup, re.DOTALL)
    assert found, markup[:200]
    return ET.fromstring(found.group(0))


def classes(node: ET.Element) -> set[str]:
    return set(node.get("class", "").split())


def marks(svg: ET.Element, kind: str) -> list[ET.Element]:
    return [n for n in svg.iter() if kind in classes(n)]


def chart_of(profile: list[LayerProfile]) -> ET.Element:
    return svg_of(layer_chart(entry("t.py::t", failing_report(profile))["layer_profile"], "the cause"))


def test_one_mark_per_layer_in_execution_order() -> None:
    bars = marks(chart_of(PROFILE), "layer-mark")
    assert [bar.get("data-layer") for bar in bars] == [p.name for p in PROFILE]
    xs = [float(bar.get("x", "nan")) for bar in bars]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)


def test_the_layer_at_fault_is_the_one_highlighted_with_its_figure() -> None:
    svg = chart_of(PROFILE)
    assert [m.get("data-layer") for m in marks(svg, "fault") if m.tag == f"{SVG}rect"] == ["net/block/mix"]
    assert [t.text for t in marks(svg, "label") if "fault" in classes(t)] == ["net/block/mix"]
    assert [t.text for t in marks(svg, "fault-value")] == ["10\u00d7 tolerance"]
    assert len(marks(svg, "fault-band")) == 1


def test_softmax_sites_are_marked_and_coloured_by_their_verdict() -> None:
    svg = chart_of(PROFILE)
    assert [m.get("data-layer") for m in marks(svg, "site-mark")] == ["net/block/attention", "net/probs"]
    by_layer = {m.get("data-layer"): classes(m) for m in marks(svg, "layer-mark")}
    assert {"site", "within"} <= by_layer["net/probs"]
    assert "reference" in by_layer["net/embed"]  # not a distribution: drawn for reference only
    assert "unknown" in by_layer["net/pool"]  # NaN max error: a mark all the same


def test_errors_are_on_a_log_scale_with_the_tolerance_line_at_one() -> None:
    svg = chart_of(PROFILE)
    tops = {m.get("data-layer"): float(m.get("y", "nan")) for m in marks(svg, "layer-mark")}
    line = marks(svg, "tolerance")[0]
    assert float(line.get("y1", "nan")) == pytest.approx(tops["net/block/attention"], abs=0.06)  # ratio 1
    decade = tops["net/block/attention"] - tops["net/block/mix"]  # ratio 10: one decade up
    assert decade > 0
    assert tops["net/embed"] == pytest.approx(tops["net/block/mix"] - decade * math.log10(3), abs=0.1)
    assert tops["net/probs"] == pytest.approx(tops["net/block/attention"] + 2 * decade, abs=0.1)


def test_the_share_of_non_finite_values_is_drawn_per_layer() -> None:
    strip = marks(chart_of(PROFILE), "nonfinite-mark")
    assert [m.get("data-layer") for m in strip] == ["net/pool"]
    assert float(strip[0].get("height", "nan")) == pytest.approx(STRIP_HEIGHT * 10 / 40, abs=0.06)


def test_names_are_escaped_in_the_chart_and_the_page() -> None:
    odd = [layer('a<b&"c"/d', 5.0, fault=True, site=True), layer("</svg><script>x()</script>", 1.0)]
    report = failing_report(odd, name="<model>")
    page = build_page([entry('t.py::test["<&>"]', report)])
    assert "<script>x()" not in page and "<model>" not in page and '["<&>"]' not in page
    svg = svg_of(failure_chart(entry("t.py::t", report)))
    assert [m.get("data-layer") for m in marks(svg, "layer-mark")] == ['a<b&"c"/d', "</svg><script>x()</script>"]


def test_failures_come_first_then_checks_that_could_not_run_then_passes() -> None:
    from pytest_softmax.plugin.records import error_entry

    checks = [entry("a.py::test_passes", passing_report((3, 0, 0, 0, 0, 0, 0, 0))),
              error_entry("b.py::test_cannot_load", "x.keras", "pytest-softmax: cannot load x.keras"),
              entry("z.py::test_fails", failing_report())]
    page = build_page(checks)
    sections = re.findall(r'<section class="check v-(\w+)" id="check-\d+"><h2>([^<]*)</h2>', page)
    assert sections == [("failed", "z.py::test_fails"), ("error", "b.py::test_cannot_load"),
                        ("passed", "a.py::test_passes")]
    rows = re.findall(r'<tr class="v-(\w+)">', page)
    assert rows == ["failed", "error", "passed"]
    assert "cannot load x.keras" in page


def test_a_failure_shows_its_message_fault_line_and_rebuild_lines() -> None:
    from pytest_softmax.core.report import InputSummary

    report = failing_report()
    report.failing_input = [InputSummary(name="tokens", dtype="int32", shape=(2, 5), description="constant 0",
                                         rebuild="pytest_softmax.ArrayRecipe(pattern='constant')", min_value=0,
                                         max_value=0)]
    page = build_page([entry("t.py::t", report)])
    assert "layer at fault: net/block/mix (Dense) (a layer after the softmax rescales it)" in page
    assert "tokens: rebuild: pytest_softmax.ArrayRecipe(pattern=&#x27;constant&#x27;)" in page
    assert f'<pre class="message">{html.escape(str(report))}</pre>' in page  # the terminal's message, whole


def test_a_failure_without_probed_layers_says_so_instead_of_drawing() -> None:
    page = build_page([entry("t.py::t", failing_report([]))])
    assert "no per-layer picture" in page and "layer-chart" not in page.split("</style>", 1)[1]


def test_a_pass_shows_its_margin_and_a_histogram_of_row_errors() -> None:
    counts = (50, 20, 10, 0, 0, 0, 0, 0)
    page = build_page([entry("t.py::test_ok", passing_report(counts))])
    assert "margin: the worst row is 50x inside the tolerance" in page
    svg = svg_of(page.split('class="check v-passed"', 1)[1])
    bins = marks(svg, "bin-mark")
    assert len(bins) == len(ROW_ERROR_BINS) and "over" in classes(bins[-1])
    heights = [float(b.get("height", "nan")) for b in bins]
    assert heights[0] > heights[1] > heights[2] > 0 and heights[3:] == [0.0] * 5
    assert [t.text for t in svg.iter(f"{SVG}text") if "bin" in classes(t)] == bin_labels()


def test_no_histogram_when_no_row_was_counted() -> None:
    assert margin_histogram([0] * len(ROW_ERROR_BINS)) == "" and margin_histogram([]) == ""


def test_row_errors_are_counted_in_log_spaced_bins_of_the_tolerance() -> None:
    tolerance = 1e-4
    ratios = np.array([0.0, 1e-6, 2e-6, 5e-3, 0.5, 1.0, 1.5, 40.0])
    assert row_error_counts(ratios * tolerance, tolerance) == (2, 1, 0, 0, 1, 0, 2, 2)


def test_a_batch_check_counts_every_finite_row_once() -> None:
    rows = np.array([[0.5, 0.5], [0.5, 0.5 + 3e-7], [0.2, 0.3], [np.nan, 1.0]])
    check = check_batch(rows, -1, 1e-6)
    assert sum(check.error_counts) == 3  # the NaN row is counted as non-finite, not binned
    assert check.error_counts[0] == 1 and check.error_counts[6] == 1 and check.error_counts[7] == 1


def test_the_json_entry_carries_the_chart_data() -> None:
    data = entry("t.py::t", failing_report())
    assert [row["name"] for row in data["layer_profile"]] == [p.name for p in PROFILE]
    pool = data["layer_profile"][3]
    assert pool == {"name": "net/pool", "layer_class": "Dense", "max_error": None, "tolerance": TOLERANCE,
                    "nonfinite": 10, "values": 40, "softmax_site": False, "at_fault": False}
    passed = entry("t.py::ok", passing_report((1, 2, 3, 0, 0, 0, 0, 0)))
    assert passed["outputs"][0]["row_error_counts"] == [1, 2, 3, 0, 0, 0, 0, 0]
    assert passed["outputs"][0]["row_error_bins"] == list(ROW_ERROR_BINS)
    assert data["message"] == str(failing_report())


def test_a_long_model_keeps_one_mark_per_layer_and_labels_only_the_fault_and_the_sites() -> None:
    many = [layer(f"net/dense_{i}", 3.0) for i in range(60)]
    many[41] = layer("net/attention", 0.5, site=True)
    many[50] = layer("net/broken", 1e4, fault=True)
    svg = chart_of(many)
    assert len(marks(svg, "layer-mark")) == 60
    assert [t.text for t in marks(svg, "label")] == ["net/attention", "net/broken"]
    assert float(svg.get("width", "0")) <= 1000 + 1  # the plot fits a page; more layers scroll


def _box(svg: ET.Element) -> tuple[float, float]:
    _, _, width, height = (float(v) for v in svg.get("viewBox", "").split())
    assert float(svg.get("width", "nan")) == width and float(svg.get("height", "nan")) == height
    return width, height


def _rects(svg: ET.Element) -> list[ET.Element]:
    return [n for n in svg.iter() if n.tag == f"{SVG}rect"]


@pytest.mark.parametrize("profile", [PROFILE, [layer(f"net/l{i}", 2.0 ** (i % 9 - 4)) for i in range(60)]],
                         ids=["five layers", "sixty layers"])
def test_every_mark_is_drawn_inside_the_picture_with_a_positive_size(profile: list[LayerProfile]) -> None:
    """What a person sees: nothing drawn off the canvas or upside down."""
    svg = chart_of(profile)
    width, height = _box(svg)
    plot = marks(svg, "plot")[0]
    plot_right = float(plot.get("x", "nan")) + float(plot.get("width", "nan"))
    assert plot_right < width  # room on the right for the tolerance label
    for rect in _rects(svg):
        x, y = float(rect.get("x", "nan")), float(rect.get("y", "nan"))
        w, h = float(rect.get("width", "nan")), float(rect.get("height", "nan"))
        assert w > 0 and h >= 0, ET.tostring(rect)
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height, ET.tostring(rect)
    for bar in marks(svg, "layer-mark"):
        # Bars stand on the plot's floor, inside its columns.
        assert float(bar.get("x", "nan")) >= float(plot.get("x", "nan"))
        assert float(bar.get("x", "nan")) + float(bar.get("width", "nan")) <= plot_right
        bottom = float(bar.get("y", "nan")) + float(bar.get("height", "nan"))
        assert bottom == pytest.approx(float(plot.get("y", "nan")) + float(plot.get("height", "nan")), abs=0.06)
    for text in (n for n in svg.iter() if n.tag == f"{SVG}text"):
        assert 0 <= float(text.get("x", "nan")) <= width and 0 <= float(text.get("y", "nan")) <= height


def test_marks_and_labels_are_centred_on_their_own_bar() -> None:
    svg = chart_of(PROFILE)
    centre = {b.get("data-layer"): float(b.get("x", "nan")) + float(b.get("width", "nan")) / 2
              for b in marks(svg, "layer-mark")}
    for site in marks(svg, "site-mark"):  # a diamond: four points around its centre
        points = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", site.get("d", ""))]
        xs = points[0::2]
        assert (min(xs) + max(xs)) / 2 == pytest.approx(centre[site.get("data-layer")], abs=0.06)
        assert min(xs) < max(xs)
    labels = [t for t in marks(svg, "label")]
    assert [float(t.get("x", "nan")) for t in labels] == pytest.approx([centre[p.name] for p in PROFILE], abs=0.06)
    strip = marks(svg, "strip")[0]
    strip_bottom = float(strip.get("y", "nan")) + float(strip.get("height", "nan"))
    assert all(float(t.get("y", "nan")) > strip_bottom for t in labels)  # labels under the NaN/Inf strip


@pytest.mark.parametrize(("ratio", "verdict"), [(1.5, "over"), (1.0, "within"), (0.5, "within")])
def test_a_softmax_site_is_over_as_soon_as_it_passes_the_tolerance(ratio: float, verdict: str) -> None:
    svg = chart_of([layer("net/attention", ratio, site=True), layer("net/head", 3.0, fault=True)])
    (site,) = (m for m in marks(svg, "layer-mark") if m.get("data-layer") == "net/attention")
    assert verdict in classes(site)


def test_a_zero_tolerance_draws_no_ratio_and_a_full_share_is_the_strip_height() -> None:
    zero = LayerProfile(name="net/x", layer_class="Dense", max_error=1e-3, tolerance=0.0, nonfinite=0, values=4,
                        softmax_site=False, at_fault=True)
    svg = chart_of([zero, layer("net/nan", float("nan"), nonfinite=40, values=40)])
    assert "unknown" in classes(marks(svg, "layer-mark")[0])  # no ratio to a zero tolerance
    (strip,) = marks(svg, "nonfinite-mark")
    assert float(strip.get("height", "nan")) == pytest.approx(STRIP_HEIGHT, abs=0.06)


def test_histogram_counts_sit_over_their_own_bars() -> None:
    svg = svg_of(margin_histogram([5, 0, 3, 0, 0, 0, 0, 1], "rows"))
    width, height = _box(svg)
    bars = marks(svg, "bin-mark")
    counts = marks(svg, "count")
    assert len(counts) == len(bars) == 8
    assert [c.text for c in counts] == ["5", "0", "3", "0", "0", "0", "0", "1"]
    for bar, count in zip(bars, counts):
        assert float(count.get("x", "nan")) == pytest.approx(
            float(bar.get("x", "nan")) + float(bar.get("width", "nan")) / 2, abs=0.6)
        assert float(count.get("y", "nan")) < float(bar.get("y", "nan"))  # above its bar
    for rect in _rects(svg):
        x, w = float(rect.get("x", "nan")), float(rect.get("width", "nan"))
        assert 0 <= x and x + w <= width
