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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

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
    path that holds something else, cannot be written, or is another output
    of this run; register the writer only then."""
    raw = config.getoption("softmax_report", None)
    if not raw or is_worker(config):
        return
    path = (config.invocation_params.dir / os.path.expanduser(raw)).resolve()
    problem = report_path_problem(path) or shared_with(config, path, "softmax_report")
    if problem:
        raise pytest.UsageError(f"pytest-softmax: --softmax-report {raw}: {problem}")
    if path.is_dir():
        raise pytest.UsageError(f"pytest-softmax: --softmax-report {raw}: is a directory; give a file path")
    if path.exists() and not is_own_report(path):
        raise pytest.UsageError(
            f"pytest-softmax: --softmax-report {raw}: the file exists and is not a pytest-softmax "
            "report; the plugin never overwrites other files: remove it or choose another path"
        )
    config.pluginmanager.register(JsonReport(config, path), PLUGIN_NAME)


# Options of pytest and of common plugins that name a file the run writes:
# (dest, the option as the user types it).
OTHER_OUTPUTS = (
    ("xmlpath", "--junitxml"),
    ("report_log", "--report-log"),
    ("resultlog", "--resultlog"),
    ("json_report_file", "--json-report-file"),
    ("htmlpath", "--html"),
    ("log_file", "--log-file"),
    ("softmax_report", "--softmax-report"),
    ("softmax_html", "--softmax-html"),
)


def shared_with(config: pytest.Config, path: Path, own: str) -> str | None:
    """The other output of this run that would write ``path``, if any: the
    report would silently replace it (or be replaced by it).  ``own`` is
    the asking report's option (dest), not compared with itself."""
    for dest, flag in OTHER_OUTPUTS:
        if dest == own:
            continue
        other = config.getoption(dest, None)
        if not isinstance(other, (str, os.PathLike)) or not os.fspath(other):
            continue
        where = (config.invocation_params.dir / os.path.expanduser(os.fspath(other))).resolve()
        if where == path:
            return f"{flag} writes the same file; give each report its own path"
    return None


def report_path_problem(path: Path) -> str | None:
    """Why ``path`` cannot receive the report, found before the tests run
    rather than after them: a parent that is a file, a name longer than the
    file system allows, a directory that cannot be written."""
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory; choose a path in a directory"
    limit = _name_max(existing)
    for part in path.relative_to(existing).parts:
        if len(os.fsencode(part)) > limit:
            return (f"the name {part[:40]!r}... is {len(os.fsencode(part))} bytes long, more than the "
                    f"file system allows ({limit}); choose a shorter name")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write in {existing} (permission denied); choose a writable directory"
    return None


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows): the common limit
        return 255


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
    document["sources"] = {name: str(source) for name, source in session.sources.items()}
    # Settings added to SessionSettings later are reported without edits here.
    for name, value in plain(session).items():
        if name not in document:
            document[name] = plain(getattr(resolved, name, value))
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

    replace_atomically(path, _dumper(document))


def _dumper(document: dict[str, Any]) -> Callable[[TextIO], None]:
    def dump(handle: TextIO) -> None:
        json.dump(document, handle, indent=2, allow_nan=False)
        handle.write("\n")

    return dump


def replace_atomically(path: Path, write: Callable[[TextIO], None]) -> None:
    """Let ``write`` fill a temporary file next to ``path``, then rename it
    over ``path``: a crash or Ctrl-C while writing leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short name of its own: the target's name may already use the whole
    # file-name limit, and a prefix added to it would not fit.
    temporary = path.with_name(f".softmax-report.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for
    # any file the user's tools write (tempfile would make it private).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class SessionEndFile:
    """A report file written at the end of the session, on the controller
    only, atomically, and never over a file another tool put at its path
    during the run.  Subclasses say what they write and how they recognise
    their own file."""

    option = ""  # the flag, for messages
    what = ""  # "report", "page"
    kind = ""  # "a pytest-softmax report", for the refusal
    summary = ""  # the summary line's label

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.written = False
        self.refused: str | None = None

    def is_own(self, path: Path) -> bool:
        raise NotImplementedError

    def render(self, exit_status: int) -> Callable[[TextIO], None]:
        """What fills the file, as a function of the open handle."""
        raise NotImplementedError

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Checked again now: a file another tool created (or replaced) at
        # this path during the run is the user's, not ours to overwrite.
        if self.path.exists() and not self.is_own(self.path):
            self.refused = (
                f"pytest-softmax: {self.option} {self.path}: a file that is not {self.kind} appeared there "
                f"during the run; it was left as it is and the {self.what} was NOT written: give the "
                f"{self.what} a path no other tool writes"
            )
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        replace_atomically(self.path, self.render(int(exitstatus)))
        self.written = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written:
            terminalreporter.write_sep("-", f"{self.summary}: {self.path}")
        elif self.refused:
            terminalreporter.write_line(self.refused, red=True, bold=True)


class JsonReport(SessionEndFile):
    """Writes the document at the end of the session (on the controller only)."""

    option = "--softmax-report"
    what = "report"
    kind = "a pytest-softmax report"
    summary = "softmax report"

    def is_own(self, path: Path) -> bool:
        return is_own_report(path)

    def render(self, exit_status: int) -> Callable[[TextIO], None]:
        return _dumper(build(collected(self.config),
                             settings_document(session_settings(self.config), self.config), exit_status))