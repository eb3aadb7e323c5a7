"""Where ``--softmax-report`` may write: refused at start-up when the path
cannot take the report or another output of the run writes it, and never
written over a file that appeared there during the run (issue 12, items 7
and 10)."""

from __future__ import annotations

import json

import pytest

QUICK = ("-p", "no:cacheprovider")
PLAIN_TEST = "def test_plain(): pass"


@pytest.mark.parametrize("other", ["--junitxml", "--junit-xml", "--log-file"])
def test_a_report_path_another_output_uses_is_refused_at_start_up(pytester: pytest.Pytester, other: str) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    result = pytester.runpytest(*QUICK, f"{other}=out.xml", "--softmax-report", "./sub/../out.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    flag = "--log-file" if other == "--log-file" else "--junitxml"
    result.stderr.fnmatch_lines([f"*pytest-softmax: --softmax-report ./sub/../out.xml: {flag} writes the same file*"])
    assert not (pytester.path / "out.xml").exists() or "pytest-softmax" not in (pytester.path / "out.xml").read_text()


def test_a_file_created_at_the_report_path_during_the_run_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
        def test_plain():
            with open("r.json", "w") as out:
                out.write("someone else's results")
    """)
    result = pytester.runpytest(*QUICK, "--softmax-report", "r.json")
    assert (pytester.path / "r.json").read_text() == "someone else's results"
    result.stdout.fnmatch_lines([("*pytest-softmax: --softmax-report *r.json: a file that is not a pytest-softmax "
                                 "report appeared there during the run; it was left as it is and the report was NOT "
                                 "written: give the report a path no other tool writes")])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_an_earlier_report_is_still_replaced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    for _ in range(2):
        result = pytester.runpytest(*QUICK, "--softmax-report", "r.json")
        assert result.ret == pytest.ExitCode.OK
    assert json.loads((pytester.path / "r.json").read_text())["tool"] == "pytest-softmax"


def test_a_report_path_under_a_file_is_refused_at_start_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    (pytester.path / "afile").write_text("data")
    result = pytester.runpytest(*QUICK, "--softmax-report", "afile/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-softmax: --softmax-report afile/r.json: *afile is a file, not a directory*"])
    assert (pytester.path / "afile").read_text() == "data"


def test_a_report_name_longer_than_the_file_system_allows_is_refused_at_start_up(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain=PLAIN_TEST)
    result = pytester.runpytest(*QUICK, "--softmax-report", "r" * 300 + ".json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*the name '{'r' * 40}'... is 305 bytes long, more than the file system allows*"])


def test_a_report_name_at_the_limit_is_written(pytester: pytest.Pytester) -> None:
    # 255 bytes, the most a name may have here: the old temporary name (the
    # target's name plus a prefix and a suffix) no longer fitted from 249.
    pytester.makepyfile(test_plain=PLAIN_TEST)
    name = "r" * 250 + ".json"
    result = pytester.runpytest(*QUICK, "--softmax-report", name)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert json.loads((pytester.path / name).read_text())["tool"] == "pytest-softmax"
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith(".")) == []


def test_the_refusal_at_session_end_is_shown_in_bold_red(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
        def test_plain():
            with open("r.json", "w") as out:
                out.write("someone else's results")
    """)
    result = pytester.runpytest(*QUICK, "--color=yes", "--softmax-report", "r.json")
    assert "\x1b[31m\x1b[1mpytest-softmax: --softmax-report " in result.stdout.str()
