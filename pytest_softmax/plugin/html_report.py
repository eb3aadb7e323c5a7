"""``--softmax-html PATH`` (ini ``softmax_html``): every check of the run as
one self-contained HTML page with a per-layer chart of each failure, and the
same chart on the failing test's row of pytest-html's report.

Written like the JSON report (:mod:`.json_report`): at session end, on the
controller, from the check dicts the reports carried (so pytest-xdist
workers' checks are in it), into a temporary file renamed over the target;
never over a file this plugin did not write, and refused at start-up when
another output of the run names the same path.  The page itself is built by
:mod:`pytest_softmax.core.html_report`, imported only when it is written.
Standard library and pytest only.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pytest

from .json_report import SessionEndFile, report_path_problem, shared_with
from .records import FAILED, REPORT_ATTRIBUTE, collected, is_worker

HTML_HELP = (
    "write every softmax check of the run to PATH as one self-contained HTML page, failures first, each "
    "with a per-layer chart of where the error appears; the file is replaced atomically, and only if it "
    "is missing or an earlier pytest-softmax page"
)
PLUGIN_NAME = "softmax-html-report"
INI_KEY = "softmax_html"
# In the page's <head>: how a later run knows the file is its own to replace.
GENERATOR = '<meta name="generator" content="pytest-softmax html report">'


def add_options(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    group.addoption("--softmax-html", dest="softmax_html", default=None, metavar="PATH", help=HTML_HELP)
    parser.addini(INI_KEY, help=HTML_HELP, default=None)


def _target(config: pytest.Config) -> tuple[str, Path] | None:
    """Where the page goes, as the user wrote it and resolved: the flag
    relative to the current directory, the ini value relative to the ini
    file's directory (as pytest reads paths in ini files)."""
    raw = config.getoption("softmax_html", None)
    if raw:
        return f"--softmax-html {raw}", (config.invocation_params.dir / os.path.expanduser(raw)).resolve()
    value = config.getini(INI_KEY)
    if not value or not isinstance(value, str):
        return None
    if config.inipath is None:  # set with -o: relative to where pytest runs
        return f"{INI_KEY} = {value}", (config.invocation_params.dir / os.path.expanduser(value)).resolve()
    return (f"{INI_KEY} = {value} (in {config.inipath})",
            (config.inipath.parent / os.path.expanduser(value)).resolve())


def configure(config: pytest.Config) -> None:
    """Refuse, before any test runs, a path that holds another file, cannot
    be written, or is another output of this run; register the writer then."""
    target = _target(config)
    if target is None or is_worker(config):
        return
    origin, path = target
    problem = report_path_problem(path) or shared_with(config, path, "softmax_html")
    if problem is None and path.is_dir():
        problem = "is a directory; give a file path"
    if problem is None and path.exists() and not is_own_page(path):
        problem = ("the file exists and is not a pytest-softmax HTML report; the plugin never overwrites other "
                   "files: remove it or choose another path")
    if problem:
        raise pytest.UsageError(f"pytest-softmax: {origin}: {problem}")
    config.pluginmanager.register(HtmlReport(config, path), PLUGIN_NAME)


def unconfigure(config: pytest.Config) -> None:
    report = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if report is not None:
        config.pluginmanager.unregister(report, PLUGIN_NAME)


def is_own_page(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            head = handle.read(4096)
    except (OSError, ValueError):
        return False
    return GENERATOR in head


class HtmlReport(SessionEndFile):
    """Writes the page at the end of the session (on the controller only)."""

    option = "--softmax-html"
    what = "page"
    kind = "a pytest-softmax HTML report"
    summary = "softmax html report"

    def is_own(self, path: Path) -> bool:
        return is_own_page(path)

    def render(self, exit_status: int) -> Callable[[TextIO], None]:
        from ..core.html_report import build_page

        page = build_page(
            collected(self.config), created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            exit_status=exit_status, generator=GENERATOR,
        )
        return lambda handle: _write(handle, page)


def _write(handle: TextIO, text: str) -> None:
    handle.write(text)


def pytest_html_active(config: pytest.Config) -> bool:
    """pytest-html is installed, not disabled, and asked for a report."""
    return bool(config.getoption("htmlpath", None)) and config.pluginmanager.has_plugin("html")


def attach_html_extras(report: pytest.TestReport) -> None:
    """Add the per-layer chart of each failed check this report carries to
    its pytest-html row (``report.extras``, which pytest-html renders and
    pytest-xdist carries).  Called only when pytest-html is in use, so
    importing it here costs nothing it has not already paid."""
    failed = [c for c in getattr(report, REPORT_ATTRIBUTE, None) or [] if c.get("verdict") == FAILED]
    if not failed:
        return
    from pytest_html import extras

    from ..core.html_report import failure_chart, inline_style

    for check in failed:
        fragment = f"<div class=\"softmax-chart\">{inline_style()}{failure_chart(check)}</div>"
        # pytest-html reads the list from this attribute, which pytest's
        # TestReport does not declare.
        setattr(report, "extras", [*getattr(report, "extras", []), extras.html(fragment)])  # noqa: B010
