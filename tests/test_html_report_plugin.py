"""``--softmax-html`` / ``softmax_html`` through pytest (issue 19): the page a
run writes, where it may write it (the same care as the JSON report), Ctrl-C,
and the chart on pytest-html's rows."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import importing

from pytest_softmax.plugin.html_report import GENERATOR, PLUGIN_NAME, HtmlReport

QUICK = ("-p", "no:cacheprovider")
PLAIN_TEST = "def test_plain(): pass"
EXAMPLE = Path(__file__).parents[1] / "examples" / "test_models.py"
HEAVY = ("tensorflow", "keras", "numpy")


def sections(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<section class="check v-(\w+)" id="check-\d+"><h2>([^<]*)</h2>', page)


def charts(page: str) -> list[ET.Element]:
    """Every per-layer chart of the page, parsed."""
    return [ET.fromstring(svg) for svg in re.findall(r'<svg [^>]*class="layer-chart".*?</svg>', page, re.DOTALL)]


def bars(chart: ET.Element, kind: str = "layer-mark") -> list[ET.Element]:
    return [n for n in chart.iter() if kind in n.get("class", "").split()]


def fault_of(chart: ET.Element) -> list[str | None]:
    return [bar.get("data-layer") for bar in bars(chart) if "fault" in bar.get("class", "").split()]


# --- what the page shows -------------------------------------------------------------------


def test_the_bundled_example_shows_the_lstm_failure_first_with_its_layer_highlighted(
    pytester: pytest.Pytester,
) -> None:
    # In a process of its own, as a user runs it: the model's layer names
    # are then the ones Keras gives a first model (in-process runs number them).
    pytester.makepyfile(test_models=EXAMPLE.read_text())
    result = pytester.runpytest_subprocess(*QUICK, "--softmax-html", "report.html", "--softmax-report",
                                           "report.json")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([f"*softmax html report: {pytester.path / 'report.html'}*"])
    page = (pytester.path / "report.html").read_text()
    assert GENERATOR in page.split("</head>", 1)[0]
    assert [verdict for verdict, _ in sections(page)] == ["failed", "passed", "passed", "passed"]
    assert sections(page)[0][1] == "test_models.py::test_seed_lstm_is_caught"
    (chart,) = charts(page)
    document = json.loads((pytester.path / "report.json").read_text())
    failed = next(c for c in document["checks"] if c["verdict"] == "failed")
    # The same layers as the JSON report carries, one bar each, the LSTM at fault.
    assert [bar.get("data-layer") for bar in bars(chart)] == [row["name"] for row in failed["layer_profile"]]
    assert fault_of(chart) == ["sequential/lstm"]
    assert "layer at fault: sequential/lstm (LSTM) (softmax inside the LSTM cell" in page
    # The edge phase finds this one: its failing row is rebuilt by an EdgeRows line.
    assert "rebuild: pytest_softmax.EdgeRows(" in page
    assert html.escape(failed["message"]) in page  # the terminal's message, whole
    # Every pass shows its margin and its histogram of row errors.
    assert page.count('class="margin"') == 3 and page.count('class="margin-chart"') == 3


def test_a_deeper_model_shows_where_the_error_starts_inside_a_nested_block(pytester: pytest.Pytester) -> None:
    importing(pytester, "deep_zoo").makepyfile(test_encoder="""
        import pytest
        from deep_zoo import nested_encoder

        @pytest.mark.softmax_invariant(model=nested_encoder)
        def test_encoder():
            pass
    """)
    result = pytester.runpytest(*QUICK, "--softmax-html", "report.html", "--softmax-report", "report.json")
    result.assert_outcomes(failed=1)
    page = (pytester.path / "report.html").read_text()
    (chart,) = charts(page)
    names = [bar.get("data-layer") for bar in bars(chart)]
    assert fault_of(chart) == ["encoder/block_2/attention"]
    start = names.index("encoder/block_2/attention")
    # Finite before the attention, NaN from it to the head: the strip starts at the fault.
    assert [m.get("data-layer") for m in bars(chart, "nonfinite-mark")] == names[start:]
    assert names[0] == "encoder/padding" and names[-1] == "encoder/probs" and "encoder/block_1/ffn" in names[:start]
    sites = [m.get("data-layer") for m in bars(chart, "site-mark")]
    assert sites == ["encoder/block_2/attention", "encoder/probs"]
    profile = json.loads((pytester.path / "report.json").read_text())["checks"][0]["layer_profile"]
    assert [row["nonfinite"] > 0 for row in profile] == [i >= start for i in range(len(names))]
    assert "layer at fault: encoder/block_2/attention (MaskedSelfAttention) (every position masked" in page


# --- option, ini key, help -----------------------------------------------------------------


def test_the_flag_and_the_ini_key_share_one_help_text(pytester: pytest.Pytester) -> None:
    from pytest_softmax.plugin.html_report import HTML_HELP

    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    start = HTML_HELP[:60]
    assert text.count(start) == 2  # once under the flag, once under the ini key
    result.stdout.fnmatch_lines(["*--softmax-html=PATH*", "*softmax_html (string):*"])


def test_the_ini_key_writes_the_page_relative_to_the_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makeini("[pytest]\nsoftmax_html = reports/page.html\n")
    pytester.makepyfile(test_plain=PLAIN_TEST)
    (pytester.path / "sub").mkdir()
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest(*QUICK, str(pytester.path / "test_plain.py"))
    assert result.ret == pytest.ExitCode.OK
    page = (pytester.path / "reports" / "page.html").read_text()
    assert GENERATOR in page and "0 softmax checks" in page
    assert not (pytester.path / "sub" / "reports").exists()


def test_the_ini_key_given_with_dash_o_is_relative_to_where_pytest_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    result = pytester.runpytest(*QUICK, "-o", "softmax_html=out/page.html")
    assert result.ret == pytest.ExitCode.OK
    assert GENERATOR in (pytester.path / "out" / "page.html").read_text()


def test_a_plain_run_with_the_page_imports_no_heavy_library(pytester: pytest.Pytester) -> None:
    modules_file = pytester.path / "modules.json"
    pytester.makeconftest(
        "import json, sys\n\ndef pytest_unconfigure(config):\n"
        f"    with open({str(modules_file)!r}, 'w') as f:\n        json.dump(sorted(sys.modules), f)\n")
    pytester.makepyfile(test_plain=PLAIN_TEST)
    result = pytester.runpytest_subprocess(*QUICK, "--softmax-html", "page.html")
    assert result.ret == pytest.ExitCode.OK
    assert GENERATOR in (pytester.path / "page.html").read_text()
    loaded = set(json.loads(modules_file.read_text()))
    assert "pytest_softmax.core.html_report" in loaded  # the page was built in this process
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []


# --- where it may write --------------------------------------------------------------------


@pytest.mark.parametrize("other", ["--softmax-report", "--junitxml", "--html"])
def test_a_path_another_report_writes_is_refused_at_start_up(pytester: pytest.Pytester, other: str) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    result = pytester.runpytest(*QUICK, f"{other}=out.html", "--softmax-html", "./sub/../out.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # The JSON report is configured first and names the page; other outputs are named by the page.
    refusal = ("--softmax-report out.html: --softmax-html" if other == "--softmax-report"
               else f"--softmax-html ./sub/../out.html: {other}")
    result.stderr.fnmatch_lines([f"*pytest-softmax: {refusal} writes the same file; give each report its own path*"])
    assert not (pytester.path / "out.html").exists()


def test_the_ini_key_colliding_with_the_json_report_is_refused_naming_the_ini_file(
    pytester: pytest.Pytester,
) -> None:
    ini = pytester.makeini("[pytest]\nsoftmax_html = out.json\n")
    pytester.makepyfile(test_plain=PLAIN_TEST)
    result = pytester.runpytest(*QUICK, "--softmax-report", "out.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([(f"*pytest-softmax: softmax_html = out.json (in {ini}): --softmax-report writes "
                                  "the same file*")])


def test_a_foreign_file_is_refused_at_start_up_and_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    foreign = pytester.path / "index.html"
    foreign.write_text("<html>someone's dashboard</html>")
    result = pytester.runpytest(*QUICK, "--softmax-html", "index.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([("*pytest-softmax: --softmax-html index.html: the file exists and is not a "
                                  "pytest-softmax HTML report; the plugin never overwrites other files*")])
    assert foreign.read_text() == "<html>someone's dashboard</html>"


def test_a_file_written_at_the_path_during_the_run_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
        def test_plain():
            with open("page.html", "w") as out:
                out.write("another tool's page")
    """)
    result = pytester.runpytest(*QUICK, "--softmax-html", "page.html")
    assert (pytester.path / "page.html").read_text() == "another tool's page"
    result.stdout.fnmatch_lines([("*pytest-softmax: --softmax-html *page.html: a file that is not a pytest-softmax "
                                  "HTML report appeared there during the run; it was left as it is and the page was "
                                  "NOT written*")])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_an_earlier_page_is_replaced_and_a_directory_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    for _ in range(2):
        assert pytester.runpytest(*QUICK, "--softmax-html", "page.html").ret == pytest.ExitCode.OK
    assert GENERATOR in (pytester.path / "page.html").read_text()
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith(".softmax")) == []
    (pytester.path / "adir").mkdir()
    result = pytester.runpytest(*QUICK, "--softmax-html", "adir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--softmax-html adir: is a directory; give a file path*"])


# --- Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_still_writes_a_complete_page_of_the_checks_that_ran(pytester: pytest.Pytester) -> None:
    importing(pytester, "model_zoo").makepyfile(test_interrupted="""
        import pytest
        from model_zoo import lstm_softmax

        @pytest.mark.softmax_invariant(model=lstm_softmax)
        def test_a_checked():
            pass

        def test_b_interrupted():
            raise KeyboardInterrupt
    """)
    result = pytester.runpytest_inprocess(*QUICK, "--softmax-html", "page.html", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    page = (pytester.path / "page.html").read_text()
    assert page.rstrip().endswith("</html>")
    assert sections(page) == [("failed", "test_interrupted.py::test_a_checked")]
    assert fault_of(charts(page)[0]) == ["seed_lstm/lstm"]


def test_ctrl_c_while_the_page_is_written_keeps_the_previous_page(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_softmax.plugin import html_report

    target = pytester.path / "page.html"
    target.write_text(f"<!DOCTYPE html><html><head>{GENERATOR}</head><body>the last run</body></html>")
    before = target.read_text()

    def interrupted(handle: Any, text: str) -> None:
        handle.write(text[: len(text) // 2])  # half a page...
        raise KeyboardInterrupt  # ...then Ctrl-C

    monkeypatch.setattr(html_report, "_write", interrupted)
    config = pytester.parseconfigure("--softmax-html", str(target))
    writer = config.pluginmanager.get_plugin(PLUGIN_NAME)
    assert isinstance(writer, HtmlReport)
    with pytest.raises(KeyboardInterrupt):
        writer.pytest_sessionfinish(SimpleNamespace(exitstatus=0), 0)  # type: ignore[arg-type]
    assert target.read_text() == before
    assert sorted(p.name for p in pytester.path.iterdir() if p.name != "pytest.ini") == ["page.html"]


# --- pytest-html ----------------------------------------------------------------------------


def pytest_html_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """pytest-html's per-test data, as its page holds it (a JSON blob)."""
    blob = re.search(r'data-jsonblob="([^"]*)"', path.read_text())
    assert blob, "not a pytest-html report"
    tests: dict[str, list[dict[str, Any]]] = json.loads(html.unescape(blob.group(1)))["tests"]
    return tests


def test_pytest_html_rows_of_failing_checks_carry_the_chart(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_html", reason="pytest-html is not installed: its rows cannot be checked")
    pytester.makepyfile(test_models=EXAMPLE.read_text())
    result = pytester.runpytest(*QUICK, "--html", "tests.html", "--self-contained-html")
    result.assert_outcomes(passed=3, failed=1)
    rows = pytest_html_rows(pytester.path / "tests.html")
    extras = {test: [e for row in runs for e in row.get("extras", [])] for test, runs in rows.items()}
    failing = extras.pop("test_models.py::test_seed_lstm_is_caught")
    (chart_extra,) = [e for e in failing if e["format_type"] == "html"]
    (chart,) = charts(chart_extra["content"])
    (fault,) = fault_of(chart)  # Keras numbers the names of models built again in one process
    assert re.fullmatch(r"sequential(_\d+)?/lstm(_\d+)?", str(fault)), fault
    assert "<style>" in chart_extra["content"]  # styled where it is shown, without the page's stylesheet
    assert extras and all(found == [] for found in extras.values())  # passes get no chart


def test_without_pytest_html_in_use_reports_get_no_extras(pytester: pytest.Pytester) -> None:
    importing(pytester, "model_zoo").makeconftest("""
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(item, call):
            report = yield
            if report.when == "call":
                with open("extras.txt", "a") as out:
                    out.write(f"{bool(getattr(report, 'softmax_checks', None))} {getattr(report, 'extras', None)}\\n")
            return report
    """)
    pytester.makepyfile(test_failing="""
        import pytest
        from model_zoo import lstm_softmax

        @pytest.mark.softmax_invariant(model=lstm_softmax)
        def test_fails():
            pass
    """)
    pytester.runpytest(*QUICK).assert_outcomes(failed=1)
    assert (pytester.path / "extras.txt").read_text() == "True None\n"
