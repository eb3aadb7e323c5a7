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
