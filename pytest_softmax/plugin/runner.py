"""Running a check for a pytest item: settings from the session and the
marker, the seed from ``--hypothesis-seed``, the replay command, and the
report recorded on the item.

pytest and the standard library at import; the engine is imported inside
the functions, i.e. only when a test asks for a check.
"""

from __future__ import annotations

import hashlib
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ..settings import MarkerSettings, Mode, SessionSettings, checking_in, resolve
from .keys import (
    SETUP_PREFIX,
    PlannedCheck,
    recorded_key,
    replay_command_key,
    session_settings_key,
    setup_problem_key,
)

if TYPE_CHECKING:
    from ..core.report import SoftmaxReport


def session_settings(config: pytest.Config) -> SessionSettings:
    return config.stash.get(session_settings_key, SessionSettings())


def fail_setup(item: pytest.Item, message: str) -> NoReturn:
    """Fail the current phase because the check could not start."""
    __tracebackhide__ = True
    text = message if message.startswith(SETUP_PREFIX) else f"{SETUP_PREFIX}{message}"
    item.stash[setup_problem_key] = text
    pytest.fail(text, pytrace=False)


def plan_check(item: pytest.Item, marker: MarkerSettings, source: object) -> PlannedCheck:
    """Load and adapt the marked test's model now, at setup: a missing or
    broken model is a setup error of that test, not a failure of its body."""
    __tracebackhide__ = True
    from ..adapters.registry import adapt
    from ..errors import SoftmaxSetupError

    problem: str | None = None
    try:
        with checking_in(Mode.MARKER):
            adapter = adapt(source, safe_mode=resolve(session_settings(item.config), marker).safe_mode)
    except SoftmaxSetupError as exc:
        problem = with_cause(str(exc), exc, item.config)
    if problem is not None:
        fail_setup(item, problem)
    return PlannedCheck(marker=marker, adapter=adapter)


def seed_option(config: pytest.Config) -> int | None:
    raw = config.getoption("hypothesis_seed", None)
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        # Hypothesis accepts any string as a seed; hash it the same stable way.
        return int.from_bytes(hashlib.sha256(str(raw).encode("utf-8", "surrogatepass")).digest()[:4], "big")


def replay_command(item: pytest.Item) -> str:
    """The command line that reruns this item alone."""
    return item.stash.get(replay_command_key, None) or f"pytest {item.nodeid!r}"


def record_report(item: pytest.Item, report: SoftmaxReport) -> None:
    item.stash.setdefault(recorded_key, []).append(report)


def run_item_check(item: pytest.Item, model: Any, marker: MarkerSettings,
                   overrides: dict[str, Any] | None = None, mode: Mode = Mode.MARKER) -> SoftmaxReport:
    """Check ``model`` with the item's settings; the report (passing or
    failing) is recorded for the summary, the JSON report and junit."""
    __tracebackhide__ = True
    from ..core.report import Replay
    from ..core.search import run_check
    from ..errors import SoftmaxInvariantError

    settings = resolve(session_settings(item.config), marker, overrides, mode)
    try:
        report = run_check(model, settings, seed=seed_option(item.config), namespace=item.nodeid,
                           replay=Replay(command=replay_command(item)))
    except SoftmaxInvariantError as exc:
        record_report(item, exc.report)
        raise
    record_report(item, report)
    return report


def run_planned(item: pytest.Item, planned: PlannedCheck) -> None:
    """The marked test's check, after its body; a failure fails the test."""
    __tracebackhide__ = True
    from ..errors import SoftmaxInvariantError, SoftmaxSetupError

    message = problem = None
    try:
        run_item_check(item, planned.adapter, planned.marker)
    except SoftmaxInvariantError as exc:
        message = str(exc)
    except SoftmaxSetupError as exc:
        problem = with_cause(f"{SETUP_PREFIX}{exc}", exc, item.config)
    # Outside the except blocks, so the report is not followed by a "during
    # handling of the above exception" copy of itself.
    if problem is not None:
        fail_setup(item, problem)
    if message is not None:
        pytest.fail(message, pytrace=False)


def with_cause(message: str, exc: BaseException, config: pytest.Config) -> str:
    """The plugin's message first; with ``--tb=long`` the framework's own
    exception follows it, for whoever needs the full story."""
    if config.getoption("tbstyle", "auto") != "long":
        return message
    cause = exc.__cause__ or exc.__context__
    if cause is None:
        return message
    text = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)).rstrip()
    return f"{message}\n\nThe original exception (shown for --tb=long):\n{text}"
