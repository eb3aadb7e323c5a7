"""``--softmax-report PATH``: every check of the run as one JSON document.

The document is written by the controller at the end of the session, to a
temporary file in the target's directory and then moved over the target with
``os.replace``, so a crash or Ctrl-C leaves either the previous report or a
complete new one.  The plugin only ever replaces a file it wrote: if ``PATH``
exists and is not a pytest-softmax report, pytest stops at start-up instead
of running the suite and then destroying someone's file.

The schema (``version`` 1) is documented in the README; fields are only ever
added within a version.  Standard library and pytest only.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ..settings import SessionSettings, resolve
from .records import ERROR, FAILED, PASSED, collected, is_worker, plain
from .runner import session_settings

SCHEMA_VERSION = 1
TOOL = "pytest-softmax"
REPORT_HELP = (
    "write every softmax check of the run to PATH as JSON (schema in the README); "
    "the file is replaced atomically, and only if it is missing or an earlier pytest-softmax report"
)

PLUGIN_NAME = "softmax-json-report"


def add_options(group: pytest.OptionGroup) -> None:
    group.addoption("--softmax-report", dest="softmax_report", default=None, metavar="PATH", help=REPORT_HELP)


def configure(config: pytest.Config) -> None:
    """Decide where the report goes and refuse, before any test runs, a
    path that holds something else; register the writer only then."""
    raw = config.getoption("softmax_report", None)
    if not raw or is_worker(config):
        return
    path = (config.invocation_params.dir / os.path.expanduser(raw)).resolve()
    if path.is_dir():
        raise pytest.UsageError(f"pytest-softmax: --softmax-report {raw}: is a directory; give a file path")
    if path.exists() and not is_own_report(path):
        raise pytest.UsageError(
            f"pytest-softmax: --softmax-report {raw}: the file exists and is not a pytest-softmax "
            "report; the plugin never overwrites other files: remove it or choose another path"
        )
    config.pluginmanager.register(JsonReport(config, path), PLUGIN_NAME)


def unconfigure(config: pytest.Config) -> None:
    report = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if report is not None:
        config.pluginmanager.unregister(report, PLUGIN_NAME)


def is_own_report(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("tool") == TOOL


def settings_document(session: SessionSettings, config: pytest.Config) -> dict[str, Any]:
    """The settings in force for checks that do not override them."""
    resolved = resolve(session)
    document: dict[str, Any] = {
        "atol": resolved.atol if resolved.atol is not None else resolved.ini_atol,
        "atol_by_dtype": dict(session.atol_by_dtype),
        "rtol": resolved.rtol,
        "max_examples": resolved.max_examples,
        "batch_size": resolved.batch_size,
    }
    # Settings added to SessionSettings later are reported without edits here.
    for name, value in plain(session).items():
        if name not in document and name != "sources":
            document[name] = plain(getattr(resolved, name, value))
    document["sources"] = {name: str(source) for name, source in session.sources.items()}
    document["hypothesis_seed"] = plain(config.getoption("hypothesis_seed", None))
    document["hypothesis_profile"] = plain(config.getoption("hypothesis_profile", None))
    return document


def build(entries: Sequence[dict[str, Any]], settings: dict[str, Any], exit_status: int) -> dict[str, Any]:
    from importlib import metadata

    try:
        version = metadata.version(TOOL)
    except metadata.PackageNotFoundError:  # running from a source tree
        version = "unknown"
    checks = sorted(entries, key=lambda e: str(e["nodeid"]))
    return {
        "version": SCHEMA_VERSION,
        "tool": TOOL,
        "tool_version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exit_status": int(exit_status),
        "settings": settings,
        "totals": {
            "checks": len(checks),
            **{verdict: sum(e["verdict"] == verdict for e in checks) for verdict in (PASSED, FAILED, ERROR)},
        },
        "checks": checks,
    }


def write_atomic(path: Path, document: dict[str, Any]) -> None:
    """Write next to ``path`` then rename over it: readers see the old file
    or the whole new one, never a prefix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for
    # any file the user's tools write (tempfile would make it private).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class JsonReport:
    """Writes the document at the end of the session (on the controller only)."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.written = False

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        document = build(collected(self.config), settings_document(session_settings(self.config), self.config),
                         int(exitstatus))
        write_atomic(self.path, document)
        self.written = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written:
            terminalreporter.write_sep("-", f"softmax report: {self.path}")
