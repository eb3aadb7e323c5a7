"""The ``--softmax-report`` document field by field, as a CI job reads it:
schema version, totals, sorted checks, the settings in force and where each
came from, and the file itself (created with its folder, one JSON document
ending in a newline, permissions from the umask)."""

from __future__ import annotations

import datetime
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

TWO_CHECKS = """
    import pytest, model_zoo
    @pytest.mark.softmax_invariant(model=model_zoo.lambda_softmax)
    def test_b_healthy():
        pass
    @pytest.mark.softmax_invariant(model=model_zoo.dense_logits)
    def test_a_logits():
        pass
    def test_not_a_check():
        pass
"""


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def test_the_document_of_a_run_with_flags(zoo: pytest.Pytester) -> None:
    zoo.makepyfile(test_user=TWO_CHECKS)
    result = zoo.runpytest("-p", "no:cacheprovider", "--softmax-report", "out/nested/r.json",
                           "--softmax-max-examples=5", "--softmax-atol=1e-4", "--hypothesis-seed=3")
    result.assert_outcomes(passed=2, failed=1)
    path = zoo.path / "out" / "nested" / "r.json"
    result.stdout.fnmatch_lines([f"*- softmax report: {path} -*"])
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "version": 1,\n  "tool": "pytest-softmax",')
    document = load(path)
    assert (document["version"], document["tool"], document["exit_status"]) == (1, "pytest-softmax", 1)
    try:
        version = metadata.version("pytest-softmax")
    except metadata.PackageNotFoundError:
        version = "unknown"
    assert document["tool_version"] == version
    created = datetime.datetime.fromisoformat(document["created"])
    assert created.utcoffset() == datetime.timedelta(0) and created.microsecond == 0
    assert abs(datetime.datetime.now(datetime.timezone.utc) - created) < datetime.timedelta(minutes=10)
    assert document["totals"] == {"checks": 2, "passed": 1, "failed": 1, "error": 0}
    assert [c["nodeid"] for c in document["checks"]] == ["test_user.py::test_a_logits", "test_user.py::test_b_healthy"]
    assert document["settings"] == {
        "atol": 1e-4, "atol_by_dtype": {}, "rtol": 0.0, "max_examples": 5, "batch_size": 32, "safe_mode": True,
        "allow_masked_rows": False, "axis": -1, "outputs": None,
        "sources": {"atol": "--softmax-atol", "max_examples": "--softmax-max-examples"},
        "hypothesis_seed": "3", "hypothesis_profile": None,
    }
    # The per-layer data behind the HTML chart: every probed layer of the
    # failure, the blamed one marked; a pass's rows counted in the histogram bins.
    logits, healthy = document["checks"]
    profile = logits["layer_profile"]
    assert profile and all(set(row) == {"name", "layer_class", "max_error", "tolerance", "nonfinite", "values",
                                        "softmax_site", "at_fault"} for row in profile)
    assert [f"{row['name']} ({row['layer_class']})" for row in profile if row["at_fault"]] == [logits["layer_at_fault"]]
    assert {row["tolerance"] for row in profile} == {logits["tolerance"]}
    assert healthy["layer_profile"] == []
    for output in healthy["outputs"]:
        assert sum(output["row_error_counts"]) == output["rows"]
        assert len(output["row_error_counts"]) == len(output["row_error_bins"])
    assert logits["message"].splitlines()[0] == logits["headline"]
    # The umask decides the permissions, as for any file the user's tools write.
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left


def test_the_settings_from_an_ini_file_and_their_sources(zoo: pytest.Pytester) -> None:
    zoo.makeini("""
        [pytest]
        softmax_atol = 2e-3
        softmax_atol_float16 = 5e-3
        softmax_batch_size = 4
        softmax_safe_mode = false
    """)
    zoo.makepyfile(test_user=TWO_CHECKS)
    zoo.runpytest("-p", "no:cacheprovider", "--softmax-report", "r.json", "--softmax-max-examples=3",
                  "--hypothesis-profile=default").assert_outcomes(passed=2, failed=1)
    settings = load(zoo.path / "r.json")["settings"]
    assert settings == {
        "atol": 2e-3, "atol_by_dtype": {"float16": 5e-3}, "rtol": 0.0, "max_examples": 3, "batch_size": 4,
        "safe_mode": False, "allow_masked_rows": False, "axis": -1, "outputs": None,
        "sources": {"atol": "ini softmax_atol", "atol_float16": "ini softmax_atol_float16",
                    "batch_size": "ini softmax_batch_size", "safe_mode": "ini softmax_safe_mode",
                    "max_examples": "--softmax-max-examples"},
        "hypothesis_seed": None, "hypothesis_profile": "default",
    }


def test_a_run_with_nothing_to_check_still_writes_an_empty_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    pytester.runpytest("-p", "no:cacheprovider", "--softmax-report", "r.json").assert_outcomes(passed=1)
    document = load(pytester.path / "r.json")
    assert document["checks"] == [] and document["exit_status"] == 0
    assert document["totals"] == {"checks": 0, "passed": 0, "failed": 0, "error": 0}
    assert document["settings"]["atol"] is None and document["settings"]["sources"] == {}


def test_a_report_path_that_is_a_directory_stops_pytest_at_start_up(pytester: pytest.Pytester) -> None:
    (pytester.path / "reports").mkdir()
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-report", "reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-softmax: --softmax-report reports: is a directory; give a file path"])


def test_the_report_option_is_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--softmax-report=PATH*", "*write every softmax check of the run to PATH as*"])


def test_an_earlier_report_of_the_plugin_is_replaced_and_another_tool_s_json_is_not(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_plain(): pass")
    earlier = pytester.path / "r.json"
    earlier.write_text('{"version": 1, "tool": "pytest-softmax", "checks": [{"nodeid": "stale"}]}', encoding="utf-8")
    pytester.runpytest("-p", "no:cacheprovider", "--softmax-report", "r.json").assert_outcomes(passed=1)
    assert load(earlier)["checks"] == [] and "created" in load(earlier)

    other = pytester.path / "other.json"
    other.write_text('{"version": 1, "tool": "pytest-other", "checks": []}', encoding="utf-8")
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-report", "other.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert load(other) == {"version": 1, "tool": "pytest-other", "checks": []}


def test_without_hypothesis_pytest_plugin_the_seed_and_profile_are_null(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--softmax-report", "r.json")
    result.assert_outcomes(passed=1)
    settings = load(pytester.path / "r.json")["settings"]
    assert settings["hypothesis_seed"] is None and settings["hypothesis_profile"] is None


def test_a_source_tree_without_installed_metadata_reports_an_unknown_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_softmax.plugin import json_report

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert json_report.build([], {}, 0)["tool_version"] == "unknown"


def test_a_document_holding_nan_is_refused_and_the_previous_report_kept(tmp_path: Path) -> None:
    """JSON has no NaN: writing one would give readers a file they cannot
    parse, so the write fails and leaves the earlier report as it was."""
    from pytest_softmax.plugin import json_report

    target = tmp_path / "r.json"
    json_report.write_atomic(target, {"tool": "pytest-softmax", "checks": []})
    before = target.read_text(encoding="utf-8")
    with pytest.raises(ValueError):
        json_report.write_atomic(target, {"tool": "pytest-softmax", "worst_error": float("nan")})
    assert target.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
