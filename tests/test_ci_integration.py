"""pytest-softmax in CI: zero-code model items, the terminal summary, the
settings header, the JSON report, junit properties, pytest-xdist and replay,
each run through pytester the way a CI job runs pytest."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import model_zoo
import pytest

FAST = ("-p", "no:cacheprovider", "--softmax-max-examples=10")


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model files written once per session, as a training job writes them."""
    folder = tmp_path_factory.mktemp("saved_models")
    model_zoo.lstm_softmax().save(folder / "lstm.keras")  # fails: softmax inside the LSTM cell
    model_zoo.lstm_dense_softmax().save(folder / "clf.keras")  # passes
    model_zoo.dense_logits().save(folder / "logits.keras")  # fails: no softmax at all
    return folder


def place(pytester: pytest.Pytester, saved: Path, *names: str, under: str = "") -> None:
    """Copy saved models into the test folder (``names`` may rename: 'src:dst')."""
    target = pytester.path / under
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        source, _, destination = name.partition(":")
        shutil.copy(saved / source, target / (destination or source))


def load_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {check["nodeid"]: check["verdict"] for check in document["checks"]}


# --- zero-code items --------------------------------------------------------


def test_one_model_file_in_a_bare_folder_is_one_passing_check(
    pytester: pytest.Pytester, saved_models: Path,
) -> None:
    place(pytester, saved_models, "clf.keras")
    result = pytester.runpytest(*FAST, "-v", "--softmax-model", "clf.keras")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*collected 1 item", "softmax::clf.keras PASSED*"])


def test_failing_model_file_fails_with_the_report_and_a_replay_command(
    pytester: pytest.Pytester, saved_models: Path,
) -> None:
    place(pytester, saved_models, "lstm.keras", under="models")
    result = pytester.runpytest(*FAST, "--softmax-model", "models/lstm.keras")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*softmax check of models/lstm.keras*",
        "softmax invariant violated: output 'lstm' (lstm: LSTM) is not normalized: *",
        ("*replay: rerun with: pytest --softmax-model models/lstm.keras -k models/lstm.keras "
         "--hypothesis-seed=*"),
    ])
    # The failure text is the report itself, not a traceback into the plugin.
    assert "collection.py" not in result.stdout.str()


def test_directories_globs_and_the_ini_key_give_one_item_per_model(
    pytester: pytest.Pytester, saved_models: Path,
) -> None:
    place(pytester, saved_models, "clf.keras", "lstm.keras", under="models")
    place(pytester, saved_models, "clf.keras:old.keras", under="models/archive")
    place(pytester, saved_models, "logits.keras", under="exported")
    (pytester.path / "models" / "notes.txt").write_text("not a model")
    pytester.makeini("[pytest]\nsoftmax_models = models/*.keras\n    exported\n")
    pytester.makepyfile(test_plain="def test_plain(): pass")

    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q",
                                "--softmax-model", "models/archive")
    result.stdout.fnmatch_lines([
        "test_plain.py::test_plain",
        "softmax::models/archive/old.keras",
        "softmax::models/clf.keras",
        "softmax::models/lstm.keras",
        "softmax::exported/logits.keras",
        "5 tests collected*",
    ])
    assert "notes.txt" not in result.stdout.str()

    # Like testpaths, the ini key applies when pytest is given no file arguments.
    only_file = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "test_plain.py")
    only_file.stdout.fnmatch_lines(["test_plain.py::test_plain", "1 test collected*"])


def test_a_path_that_names_no_model_stops_pytest_at_start_up(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-model", "missing.keras")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-softmax: --softmax-model: 'missing.keras' does not exist*"])

    pytester.makeini("[pytest]\nsoftmax_models = build/*.keras\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini softmax_models in *tox.ini: 'build/*.keras' matches no file*"])


def test_selection_and_lf_and_maxfail_apply_to_generated_items(
    pytester: pytest.Pytester, saved_models: Path,
) -> None:
    place(pytester, saved_models, "clf.keras", "lstm.keras", "logits.keras")
    models = ["--softmax-max-examples=10", "--softmax-model", "."]

    first = pytester.runpytest(*models)
    first.assert_outcomes(passed=1, failed=2)

    last_failed = pytester.runpytest(*models, "--lf", "-v")
    last_failed.assert_outcomes(failed=2, deselected=1)

    by_keyword = pytester.runpytest(*models, "-k", "clf", "-p", "no:cacheprovider")
    by_keyword.assert_outcomes(passed=1, deselected=2)

    deselected = pytester.runpytest(*models, "--deselect", "softmax::lstm.keras", "-p", "no:cacheprovider")
    deselected.assert_outcomes(passed=1, failed=1, deselected=1)

    stop_first = pytester.runpytest(*models, "-x", "-k", "not clf", "-p", "no:cacheprovider")
    stop_first.assert_outcomes(failed=1, deselected=1)


def test_model_file_that_cannot_load_is_an_error_in_summary_and_report(pytester: pytest.Pytester) -> None:
    (pytester.path / "broken.keras").write_text("not a zip archive")
    result = pytester.runpytest(*FAST, "--softmax-model", "broken.keras", "--softmax-report", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*= softmax invariants =*",
        "ERROR  softmax::broken.keras: pytest-softmax: *broken.keras*",
        "1 check, 1 error",
    ])
    (check,) = load_json(pytester.path / "r.json")["checks"]
    assert check["verdict"] == "error" and "broken.keras" in check["headline"]


def test_model_suffixes_match_the_loader() -> None:
    from pytest_softmax.adapters.keras.formats import MODEL_SUFFIXES as KERAS_SUFFIXES
    from pytest_softmax.plugin.collection import MODEL_SUFFIXES

    assert set(KERAS_SUFFIXES) <= set(MODEL_SUFFIXES)


# --- terminal summary and header --------------------------------------------

MARKED_TESTS = """
    import pytest, model_zoo

    @pytest.mark.softmax_invariant(model=model_zoo.lambda_softmax)
    def test_marked_healthy():
        pass

    def test_two_fixture_checks(softmax_check):
        softmax_check(model_zoo.lstm_dense_softmax)
        softmax_check(model_zoo.dense_logits)
"""


def test_summary_lists_failures_first_and_folds_passes(zoo: pytest.Pytester, saved_models: Path) -> None:
    place(zoo, saved_models, "clf.keras", "lstm.keras")
    zoo.makepyfile(test_user=MARKED_TESTS)
    result = zoo.runpytest(*FAST, "--softmax-model", "clf.keras", "--softmax-model", "lstm.keras")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*= softmax invariants =*",
        ("FAILED softmax::lstm.keras: output 'lstm' [[]float32[]] max |sum - 1| = * > *; "
         "* examples, * edge batch*, * rows; layer at fault: *lstm (LSTM) (softmax inside the LSTM cell, "
         "which gates it)"),
        "       rerun with: pytest --softmax-model lstm.keras -k lstm.keras --hypothesis-seed=*",
        "FAILED test_user.py::test_two_fixture_checks: output * [[]float32[]] max |sum - 1| = * > *",
        "       rerun with: pytest 'test_user.py::test_two_fixture_checks' --hypothesis-seed=*",
        "5 checks, 2 failed, 3 passed; closest pass: * (-v lists passed checks)",
    ])
    section = result.stdout.str().split("softmax invariants")[1]
    assert "PASSED" not in section.split("short test summary")[0]

    verbose = zoo.runpytest(*FAST, "-v", "--softmax-model", "clf.keras", "--softmax-model", "lstm.keras")
    verbose.stdout.fnmatch_lines([
        "*= softmax invariants =*",
        "FAILED softmax::lstm.keras*",
        "*",
        "FAILED test_user.py::test_two_fixture_checks*",
        "*",
        "PASSED softmax::clf.keras: output * <= *",
        "PASSED test_user.py::test_marked_healthy: *",
        "PASSED test_user.py::test_two_fixture_checks: *",
        "5 checks, 2 failed, 3 passed",
    ])


def test_summary_stays_short_for_many_checks() -> None:
    from pytest_softmax.plugin.terminal import MAX_FAILURES, summary_lines

    def entry(i: int, verdict: str) -> dict[str, Any]:
        return {"nodeid": f"t.py::test_{i:03d}", "verdict": verdict, "headline": "", "checked_outputs": ["o"],
                "dtype": "float32", "worst_error": 0.5 if verdict == "failed" else 1e-7, "tolerance": 1e-6,
                "examples": 10, "rows": 320, "layer_at_fault": None, "replay": "rerun with: ..."}

    entries = [entry(i, "failed" if i % 10 == 0 else "passed") for i in range(500)]
    lines = [text for text, _ in summary_lines(entries, verbose=False)]
    assert len(lines) == 2 * MAX_FAILURES + 2
    assert lines[0].startswith("FAILED t.py::test_000")
    assert lines[-2] == f"... and {50 - MAX_FAILURES} more (-v lists them all)"
    assert lines[-1].startswith("500 checks, 50 failed, 450 passed")
    assert len(summary_lines(entries, verbose=True)) == 50 * 2 + 450 + 1


def test_no_summary_and_no_header_when_nothing_is_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "softmax invariants" not in result.stdout.str()
    assert "softmax: atol=" not in result.stdout.str()


def test_header_shows_settings_and_seed_when_there_is_something_to_check(
    zoo: pytest.Pytester, saved_models: Path,
) -> None:
    place(zoo, saved_models, "clf.keras")
    result = zoo.runpytest(*FAST, "--softmax-model", "clf.keras", "--hypothesis-seed=7", "--softmax-atol=1e-4")
    result.stdout.fnmatch_lines([
        "softmax: atol=0.0001, rtol=0, max_examples=10, batch_size=32, hypothesis seed=7",
        "rootdir: *",
    ])
    # Marked tests are known after collection: the header follows the count.
    zoo.makepyfile(test_user=MARKED_TESTS)
    result = zoo.runpytest(*FAST, "test_user.py", "-k", "healthy")
    result.stdout.fnmatch_lines([
        "collected 2 items / 1 deselected / 1 selected",
        ("softmax: atol=dtype-aware default, rtol=0, max_examples=10, batch_size=32, "
         "hypothesis seed=random per check"),
    ])


# --- JSON report -------------------------------------------------------------


def test_json_report_holds_every_check(zoo: pytest.Pytester, saved_models: Path) -> None:
    place(zoo, saved_models, "lstm.keras", under="models")
    zoo.makepyfile(test_user=MARKED_TESTS)
    result = zoo.runpytest(*FAST, "--softmax-model", "models", "--hypothesis-seed=11",
                           "--softmax-report", "reports/softmax.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*softmax report: *reports*softmax.json*"])
    document = load_json(zoo.path / "reports" / "softmax.json")
    assert document["version"] == 1 and document["tool"] == "pytest-softmax"
    assert document["exit_status"] == pytest.ExitCode.TESTS_FAILED
    assert document["settings"]["max_examples"] == 10 and document["settings"]["hypothesis_seed"] == "11"
    assert document["settings"]["sources"]["max_examples"] == "--softmax-max-examples"
    assert document["totals"] == {"checks": 4, "passed": 2, "failed": 2, "error": 0}
    assert [c["nodeid"] for c in document["checks"]] == [
        "softmax::models/lstm.keras",
        "test_user.py::test_marked_healthy",
        "test_user.py::test_two_fixture_checks",
        "test_user.py::test_two_fixture_checks",
    ]
    lstm = document["checks"][0]
    assert lstm["verdict"] == "failed" and lstm["model_source"] == "models/lstm.keras"
    assert lstm["layer_at_fault"].endswith("lstm (LSTM)")
    assert lstm["seed"] == 11 and lstm["replay"].endswith("--hypothesis-seed=11")
    (output,) = lstm["outputs"]
    assert output["output"] == "lstm" and output["dtype"] == "float32" and not output["passed"]
    assert output["worst_error"] > output["tolerance"] == lstm["tolerance"]
    # Caught by the edge phase, before the search: its batches are counted apart.
    assert output["nonfinite"] == 0 and lstm["rows"] >= 32 and lstm["examples"] + lstm["edge_batches"] >= 1
    assert lstm["failing_input"] and lstm["duration"] > 0
    assert {"diagnosis", "layers", "violations"} <= set(lstm)
    healthy = document["checks"][1]
    assert healthy["verdict"] == "passed" and healthy["model_source"] == "model_zoo.lambda_softmax"
    assert healthy["worst_error"] <= healthy["tolerance"] and healthy["layer_at_fault"] is None
    assert healthy["examples"] == 10 and healthy["rows"] > 0


def test_json_report_never_replaces_a_file_it_did_not_write(
    pytester: pytest.Pytester, saved_models: Path,
) -> None:
    place(pytester, saved_models, "clf.keras")
    foreign = pytester.path / "results.json"
    foreign.write_text('{"someone": "else"}')
    result = pytester.runpytest(*FAST, "--softmax-model", "clf.keras", "--softmax-report", "results.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--softmax-report results.json: the file exists and is not a pytest-softmax*"])
    assert foreign.read_text() == '{"someone": "else"}'

    # Its own earlier report is replaced.
    foreign.unlink()
    for _ in range(2):
        result = pytester.runpytest(*FAST, "--softmax-model", "clf.keras", "--softmax-report", "results.json")
        result.assert_outcomes(passed=1)
    assert verdicts(load_json(foreign)) == {"softmax::clf.keras": "passed"}


def test_json_report_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_softmax.plugin import json_report

    target = tmp_path / "softmax.json"
    json_report.write_atomic(target, {"tool": "pytest-softmax", "version": 1, "checks": []})
    before = target.read_text()

    def interrupted(document: object, handle: Any, **kwargs: Any) -> None:
        handle.write('{"tool": "pytest-softmax", "checks": [')  # half a document...
        raise KeyboardInterrupt  # ...then Ctrl-C

    monkeypatch.setattr(json, "dump", interrupted)  # the module json_report writes with
    with pytest.raises(KeyboardInterrupt):
        json_report.write_atomic(target, {"tool": "pytest-softmax", "version": 1, "checks": [1]})
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["softmax.json"]


# --- junit --------------------------------------------------------------------


def test_junit_xml_carries_worst_error_tolerance_and_layer_at_fault(
    pytester: pytest.Pytester, saved_models: Path,
) -> None:
    place(pytester, saved_models, "clf.keras", "lstm.keras")
    result = pytester.runpytest(*FAST, "--softmax-model", ".", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")}
    properties = {
        name: {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
        for name, case in cases.items()
    }
    failing, passing = properties["lstm.keras"], properties["clf.keras"]
    assert failing["softmax_verdict"] == "failed" and failing["softmax_layer_at_fault"].endswith("lstm (LSTM)")
    assert float(failing["softmax_worst_error"]) > float(failing["softmax_tolerance"]) > 0
    assert failing["softmax_dtype"] == "float32" and failing["softmax_seed"].isdigit()
    assert passing["softmax_verdict"] == "passed" and "softmax_layer_at_fault" not in passing
    assert float(passing["softmax_worst_error"]) <= float(passing["softmax_tolerance"])


# --- pytest-xdist ---------------------------------------------------------------


def test_xdist_gives_the_serial_verdicts_and_one_report_of_every_worker(
    zoo: pytest.Pytester, saved_models: Path,
) -> None:
    place(zoo, saved_models, "clf.keras", "lstm.keras", "logits.keras", under="models")
    zoo.makepyfile(test_user=MARKED_TESTS)
    args = (*FAST, "--softmax-model", "models", "--hypothesis-seed=5")
    serial = zoo.runpytest(*args, "--softmax-report", "serial.json")
    serial.assert_outcomes(passed=2, failed=3)

    # A subprocess: xdist workers are processes of their own anyway; they
    # import model_zoo from the test folder.
    shutil.copy(Path(model_zoo.__file__), zoo.path)
    parallel = zoo.runpytest_subprocess(*args, "-n", "2", "--softmax-report", "parallel.json",
                                        "--softmax-html", "parallel.html")
    parallel.assert_outcomes(passed=2, failed=3)
    serial_doc, parallel_doc = load_json(zoo.path / "serial.json"), load_json(zoo.path / "parallel.json")
    assert verdicts(parallel_doc) == verdicts(serial_doc) and len(parallel_doc["checks"]) == 6
    assert parallel_doc["totals"] == serial_doc["totals"]
    # The command-line seed reached every worker's checks.
    assert {c["seed"] for c in parallel_doc["checks"]} == {5}
    parallel.stdout.fnmatch_lines(["*= softmax invariants =*", "6 checks, 3 failed, 3 passed*"])
    # The HTML page is drawn from the same checks, the workers' layer data included.
    page = (zoo.path / "parallel.html").read_text()
    shown = re.findall(r'<section class="check v-(\w+)" id="check-\d+"><h2>([^<]*)</h2>', page)
    assert sorted(shown) == sorted((c["verdict"], c["nodeid"]) for c in parallel_doc["checks"])
    assert [verdict for verdict, _ in shown] == sorted((verdict for verdict, _ in shown), key=["failed", "error",
                                                                                              "passed"].index)
    faults = re.findall(r'class="layer-mark fault[^"]*" data-layer="([^"]*)"', page)
    assert faults and faults == [row["name"] for c in sorted(parallel_doc["checks"], key=lambda c: c["nodeid"])
                                 if c["verdict"] == "failed" for row in c["layer_profile"] if row["at_fault"]]


# --- replay ----------------------------------------------------------------------


def test_replaying_a_failure_with_its_seed_reproduces_it(pytester: pytest.Pytester, saved_models: Path) -> None:
    """The replay line of a failure, run as printed on a machine without the
    example database, fails the same way on the same shrunk input."""
    place(pytester, saved_models, "logits.keras")
    first = pytester.runpytest(*FAST, "--softmax-model", "logits.keras")
    first.assert_outcomes(failed=1)
    replay = next(line for line in first.outlines if line.startswith("  replay: "))
    command = replay.split("rerun with: ")[1]
    assert command.startswith("pytest ")
    seed = re.search(r"--hypothesis-seed=(\d+)", command)
    assert seed is not None

    def failure_lines(result: pytest.RunResult) -> list[str]:
        """The report from its headline down to the replay line (the seed
        differs between runs only when none is given).  How many examples
        ran is left out: the first run keeps Hypothesis' example database,
        whose target front can cost an extra example, while a forced seed
        replays without it, as in Hypothesis."""
        lines = result.outlines
        start = next(i for i, line in enumerate(lines) if line.startswith("softmax invariant violated"))
        end = next(i for i, line in enumerate(lines) if line.startswith("  replay: "))
        return [re.sub(r"; \d+ rows checked in \d+ examples", "", line) for line in lines[start:end]]

    # A fresh process in a folder without an example database, as on another
    # machine: the seed alone must reproduce the failure.
    shutil.rmtree(pytester.path / ".hypothesis", ignore_errors=True)
    again = pytester.runpytest_subprocess(*FAST, *shlex.split(command)[1:])
    again.assert_outcomes(failed=1)
    assert failure_lines(again) == failure_lines(first)
    assert any("rebuild:" in line for line in failure_lines(first))
