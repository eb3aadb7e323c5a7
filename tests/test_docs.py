"""The manual's examples are code that runs, and its pages are all reachable.

docs/getting-started.md includes docs/examples/test_getting_started.py with
``pymdownx.snippets``; here that file runs as a user runs it (``pytest`` in a
fresh directory, one subprocess), so the page shows what the plugin does.
The rest is cheap text checks: the page's other Python blocks compile, every
``--8<--`` include names a file (and section) that exists, and mkdocs.yml's
nav lists every page (``mkdocs build --strict`` itself runs in CI).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
EXAMPLE = DOCS / "examples" / "test_getting_started.py"

# A snippet include line: --8<-- "path" or --8<-- "path:section".
INCLUDE = re.compile(r'^\s*-{1,2}8<-{1,2}\s+"(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"\s*$', re.MULTILINE)
PYTHON_BLOCK = re.compile(r"^```(?:python|py)\b[^\n]*\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_getting_started_examples_run_as_the_page_says(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLE, pytester.path / EXAMPLE.name)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    # The healthy model (marker and fixture), softmax_check and check_softmax
    # pass; the founding bug fails, named and explained as the page shows.
    result.assert_outcomes(failed=1, passed=4)
    result.stdout.fnmatch_lines([
        "*_ test_founding_bug_is_caught _*",
        ("softmax invariant violated: output 'lstm' (lstm: LSTM) is not normalized: max |sum - 1| = * > "
         "tolerance 3.58e-06 [[]float32, axis -1, 3 classes[]]"),
        "  layer at fault: founding_bug/lstm (LSTM) (softmax inside the LSTM cell, which gates it)",
        "  fix: LSTM(3) followed by Dense(3, activation='softmax')",
        ("  LSTM 'founding_bug/lstm' applies softmax inside its recurrent cell: the cell multiplies it by the "
         "output gate, *"),
        "*replay: rerun with: pytest 'test_getting_started.py::test_founding_bug_is_caught' --hypothesis-seed=*",
    ])
    assert "FAILED test_getting_started.py::test_founding_bug_is_caught" in result.stdout.str()


def python_blocks(page: Path) -> list[str]:
    return [m["code"] for m in PYTHON_BLOCK.finditer(page.read_text(encoding="utf-8"))]


def test_every_python_block_of_getting_started_that_is_not_an_include_compiles() -> None:
    page = DOCS / "getting-started.md"
    blocks = python_blocks(page)
    written = [code for code in blocks if not INCLUDE.search(code)]
    # The page has both kinds; if either disappears this test no longer tests it.
    assert written and len(written) < len(blocks)
    for code in written:
        compile(code, f"{page} python block", "exec")


def includes() -> list[tuple[str, str, str | None]]:
    return [(page.name, m["path"], m["section"])
            for page in sorted(DOCS.glob("*.md"))
            for m in INCLUDE.finditer(page.read_text(encoding="utf-8"))]


def test_every_snippet_include_points_to_an_existing_file_and_section() -> None:
    found = includes()
    assert ("getting-started.md", "docs/examples/test_getting_started.py", "marker") in found
    assert ("changelog.md", "CHANGELOG.md", None) in found
    for page, path, section in found:
        target = ROOT / path  # snippets' base_path is the project root
        assert target.is_file(), f"{page} includes {path}, which does not exist"
        if section is not None:
            text = target.read_text(encoding="utf-8")
            for edge in ("start", "end"):
                assert f"--8<-- [{edge}:{section}]" in text, f"{page} includes {path}:{section}: no {edge} marker"


def nav_pages() -> set[str]:
    """The pages mkdocs.yml's nav names (read as text: its material tags need
    no YAML loader, and the test suite needs no mkdocs)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.search(r"^nav:\n(?P<body>(?:[ \t]+.*\n|\n)+)", text, re.MULTILINE)
    assert nav is not None, "mkdocs.yml has no nav"
    return set(re.findall(r"([\w./-]+\.md)\s*$", nav["body"], re.MULTILINE))


def test_the_nav_lists_every_page_and_only_pages_that_exist() -> None:
    pages = {p.name for p in DOCS.glob("*.md")}
    listed = nav_pages()
    assert pages - listed == set(), "pages missing from mkdocs.yml's nav (orphans)"
    assert listed - pages == set(), "nav entries with no page"
    assert {"index.md", "getting-started.md", "pytorch.md", "html-report.md", "changelog.md"} <= listed


def test_ci_runs_the_readme_commands_verbatim() -> None:
    """CI proves what a newcomer runs: each of the README's two commands
    appears in .ci/run exactly as written."""
    readme_commands = [line for line in (ROOT / "README.md").read_text().splitlines()
                       if line.startswith("python3 -m venv ")]
    ci_script = (ROOT / ".ci" / "run").read_text()
    assert len(readme_commands) == 2
    for command in readme_commands:
        assert command in ci_script, command
