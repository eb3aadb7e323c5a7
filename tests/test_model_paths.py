"""Which files a ``--softmax-model`` path names: symbolic links, odd names,
and paths outside the rootdir (issue 12, items 4, 6 and 8)."""

from __future__ import annotations

import os

import pytest

COLLECT = ("-p", "no:cacheprovider", "--collect-only", "-q")


def _models_folder(pytester: pytest.Pytester) -> None:
    # Collection never reads the file, so a placeholder stands for a model.
    models = pytester.mkdir("models")
    (models / "clf.keras").write_bytes(b"PK placeholder")


@pytest.mark.parametrize(
    "links",
    [
        {"again": "."},
        {"again": ".", "more": "."},  # two loops made collection hang (exponential walk)
        {"alias.keras": "clf.keras"},
        {"again": ".", "alias.keras": "clf.keras", "up": ".."},
    ],
    ids=["link-to-dot", "two-links-to-dot", "link-to-file", "links-everywhere"],
)
def test_symbolic_links_never_collect_a_model_twice(pytester: pytest.Pytester, links: dict[str, str]) -> None:
    _models_folder(pytester)
    for name, target in links.items():
        os.symlink(target, pytester.path / "models" / name)
    pytester.makepyfile(test_plain="def test_plain(): pass")
    # No file argument: pytest walks the folder itself too, and used to
    # follow the loops as well.  A subprocess, so a regression times out
    # instead of hanging the suite.
    result = pytester.runpytest_subprocess(*COLLECT, "--softmax-model", "models", timeout=120)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["test_plain.py::test_plain", "softmax::models/clf.keras", "2 tests collected*"])
    assert result.stdout.str().count("softmax::") == 1


def test_a_model_named_twice_through_links_and_globs_is_one_item(pytester: pytest.Pytester) -> None:
    _models_folder(pytester)
    os.symlink("models", pytester.path / "same")
    result = pytester.runpytest(*COLLECT, "--softmax-model", "models", "--softmax-model", "same/*.keras",
                                "--softmax-model", "models/clf.keras")
    result.stdout.fnmatch_lines(["softmax::models/clf.keras", "1 test collected*"])


def test_a_model_file_whose_name_is_not_utf8_is_one_error_everywhere(pytester: pytest.Pytester) -> None:
    # Linux file names are bytes; Python hands this one over with a lone
    # surrogate ('m\udcff odd.keras'), which a strict encode refuses.
    with open(os.path.join(os.fsencode(pytester.path), b"m\xff odd.keras"), "wb") as handle:
        handle.write(b"not a zip archive")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--softmax-model", ".", "--softmax-report", "r.json", "--junitxml", "j.xml",
    )
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "Traceback" not in output and "UnicodeEncodeError" not in output, output
    result.stdout.fnmatch_lines(["*pytest-softmax: model file * is not a Keras archive*"])

    import json
    import xml.etree.ElementTree as ET

    (check,) = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["checks"]
    assert check["verdict"] == "error" and "odd.keras" in check["nodeid"]
    (case,) = ET.parse(pytester.path / "j.xml").getroot().iter("testcase")
    assert "odd.keras" in case.get("name", "")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["softmax_verdict"] == "error"


def test_the_example_database_namespace_takes_any_node_id() -> None:
    from hypothesis.database import InMemoryExampleDatabase

    from pytest_softmax.core.database import NamespacedDatabase

    inner = InMemoryExampleDatabase()
    odd = NamespacedDatabase(inner, "test_x.py::test[m\udcff odd.keras]")
    other = NamespacedDatabase(inner, "test_x.py::test[m\udcfe odd.keras]")
    odd.save(b"k", b"v")
    assert list(odd.fetch(b"k")) == [b"v"] and list(other.fetch(b"k")) == []


def test_printable_names_spell_undecodable_bytes() -> None:
    from pytest_softmax.plugin.collection import printable

    assert printable(os.fsdecode(b"m\xff odd.keras")) == "m\\xff odd.keras"
    assert printable("caf\u00e9.keras") == "caf\u00e9.keras"
    assert printable("\ud800.keras") == "\\ud800.keras"


def test_a_model_outside_the_project_that_moves_the_ini_file_is_warned_about(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = pytester.mkdir("project")
    (project / "pytest.ini").write_text("[pytest]\nsoftmax_max_examples = 3\n")
    pytester.mkdir("elsewhere")
    (pytester.path / "elsewhere" / "m.keras").write_bytes(b"PK placeholder")
    monkeypatch.chdir(project)

    # Two arguments: pytest took the path into account for its rootdir.
    moved = pytester.runpytest(*COLLECT, "--softmax-model", "../elsewhere/m.keras")
    moved.stdout.fnmatch_lines([
        ("*PytestConfigWarning: pytest-softmax: --softmax-model ../elsewhere/m.keras lies outside *project, "
        "and given as a separate argument pytest also took it as a test path*the ini file in use is none "
        "instead of *project/pytest.ini*Write --softmax-model=../elsewhere/m.keras (with =)*"),
    ])

    joined = pytester.runpytest(*COLLECT, "--softmax-model=../elsewhere/m.keras")
    joined.stdout.no_fnmatch_line("*PytestConfigWarning*")
    inside = pytester.runpytest(*COLLECT, "--softmax-model", str(project / "pytest.ini"))
    inside.stdout.no_fnmatch_line("*PytestConfigWarning*")
