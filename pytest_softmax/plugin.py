"""pytest hooks, options, marker and fixtures of pytest-softmax.

This module is the ``pytest11`` entry point and is imported by every pytest
run in an environment where the plugin is installed, so it imports only the
standard library and pytest.  numpy, Hypothesis and TensorFlow are imported
inside the functions that run a check, i.e. only when a test asks for one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from . import collection, json_report, results, summary
from .settings import (
    MARKER_SIGNATURE,
    SETTINGS,
    MarkerSettings,
    SessionSettings,
    SettingError,
    load_session_settings,
    parse_marker,
    parse_overrides,
    resolve,
    unknown_ini_key_error,
)

if TYPE_CHECKING:
    from .report import SoftmaxReport

MARKER_NAME = "softmax_invariant"
MARKER_HELP = (
    f"{MARKER_SIGNATURE}: check that the model's outputs are probability distributions "
    "(finite, within [0, 1], summing to 1 along axis) on inputs Hypothesis generates from its "
    "input signature. model is a keras.Model, a zero-argument callable returning one, or a path to "
    "a .keras/.h5 file or SavedModel directory; omitted, the test's `model` fixture is used."
)

session_settings_key = pytest.StashKey[SessionSettings]()


@dataclass(frozen=True)
class PlannedCheck:
    """A marked test's check, decided at setup and run after the test body."""

    marker: MarkerSettings
    model: Any


planned_check_key = pytest.StashKey[PlannedCheck]()
marker_settings_key = pytest.StashKey["MarkerSettings | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("softmax", "softmax invariants (pytest-softmax)")
    for setting in SETTINGS:
        if setting.has_flag:
            group.addoption(
                setting.flag, dest=f"softmax_{setting.name}", default=None,
                metavar=setting.metavar, help=setting.help,
            )
        parser.addini(setting.ini_key, help=setting.help, default=None)
    collection.add_options(group, parser)
    json_report.add_options(group)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER_HELP}")
    try:
        config.stash[session_settings_key] = load_session_settings(
            get_flag=lambda name: config.getoption(f"softmax_{name}", None),
            get_ini=lambda key: _read_ini(config, key),
            ini_path=config.inipath,
        )
    except SettingError as exc:
        raise pytest.UsageError(f"pytest-softmax: {exc}") from None
    _reject_unknown_ini_keys(config)
    collection.configure(config)
    json_report.configure(config)
    # Gathers the checks carried by every report, a worker's too (needs config,
    # which pytest_runtest_logreport does not get).
    config.pluginmanager.register(results.ReportCollector(config), results.COLLECTOR_NAME)


def _reject_unknown_ini_keys(config: pytest.Config) -> None:
    import warnings

    with warnings.catch_warnings():
        # ``inicfg`` is deprecated in pytest 9 and gone in 10; without it
        # pytest's own "unknown config option" warning still applies.
        warnings.simplefilter("ignore")
        inicfg = dict(getattr(config, "inicfg", None) or {})
    for key in inicfg:
        if not str(key).startswith("softmax_"):
            continue
        try:
            config.getini(key)
        except ValueError:
            value = getattr(inicfg[key], "value", inicfg[key])
            raise pytest.UsageError(
                f"pytest-softmax: {unknown_ini_key_error(key, value, config.inipath)}"
            ) from None


def _read_ini(config: pytest.Config, key: str) -> object:
    value = config.getini(key)
    return value if value not in ("", []) else None


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    session = config.stash.get(session_settings_key, None)
    if session is None or not summary.wants_header(config):
        return None
    return [_settings_header(session, config)]


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    # Marked tests are only known after collection: show the settings then,
    # unless the header already did.
    session = config.stash.get(session_settings_key, None)
    if session is None or summary.wants_header(config) or not summary.wants_header(config, items):
        return []
    return [_settings_header(session, config)]


def _settings_header(session: SessionSettings, config: pytest.Config) -> str:
    resolved = resolve(session)
    atol = "dtype-aware default" if resolved.atol is None and resolved.ini_atol is None else (
        resolved.atol if resolved.atol is not None else resolved.ini_atol)
    per_dtype = "".join(f", atol[{d}]={v:g}" for d, v in session.atol_by_dtype.items())
    seed = config.getoption("hypothesis_seed", None)
    if seed is None:
        seed = "derandomized by the Hypothesis profile" if _profile_derandomizes() else "random per check"
    return (
        f"softmax: atol={atol}{per_dtype}, rtol={resolved.rtol:g}, max_examples={resolved.max_examples}, "
        f"batch_size={resolved.batch_size}, hypothesis seed={seed}"
    )


def _profile_derandomizes() -> bool:
    # Only when Hypothesis is already imported (its own plugin usually has
    # done it): the header must not be the reason it gets imported.
    hypothesis = sys.modules.get("hypothesis")
    settings = getattr(hypothesis, "settings", None)
    try:
        return bool(settings is not None and settings().derandomize)
    except Exception:  # a profile that cannot be read is Hypothesis' error to report
        return False


def _session(config: pytest.Config) -> SessionSettings:
    return config.stash.get(session_settings_key, SessionSettings())


def _fail_setup(message: str) -> None:
    __tracebackhide__ = True
    pytest.fail(f"pytest-softmax: {message}", pytrace=False)


def _marker_settings(item: pytest.Item) -> MarkerSettings | None:
    """The item's ``softmax_invariant`` marker, parsed once and kept in its
    stash (the autouse fixture and ``softmax_check`` both need it)."""
    if marker_settings_key not in item.stash:
        mark = item.get_closest_marker(MARKER_NAME)
        item.stash[marker_settings_key] = parse_marker(mark.args, mark.kwargs) if mark else None
    return item.stash[marker_settings_key]


@pytest.fixture(autouse=True)
def _softmax_invariant_marker(request: pytest.FixtureRequest) -> None:
    """Resolve the marked test's model at setup, so a missing or broken
    model is a setup error of that test, not a failure of its body."""
    __tracebackhide__ = True
    problem: str | None = None
    try:
        marker = _marker_settings(request.node)
    except SettingError as exc:
        problem = str(exc)
    if problem is not None:
        _fail_setup(problem)
    if marker is None:
        return
    source = marker.model
    if source is None:
        try:
            source = request.getfixturevalue("model")
        except pytest.FixtureLookupError:
            problem = (
                f"@pytest.mark.{MARKER_NAME} on {request.node.nodeid} has no model: pass one "
                f"(@pytest.mark.{MARKER_NAME}(model=...) with a keras.Model, a factory or a path) "
                "or define a `model` fixture"
            )
        if problem is not None:
            _fail_setup(problem)
    from .adapters.keras_adapter import resolve_model
    from .report import SoftmaxSetupError

    try:
        model = resolve_model(source, safe_mode=resolve(_session(request.config), marker).safe_mode)
    except SoftmaxSetupError as exc:
        problem = with_cause(str(exc), exc, request.config)
    if problem is not None:
        _fail_setup(problem)
    request.node.stash[planned_check_key] = PlannedCheck(marker=marker, model=model)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    planned = item.stash.get(planned_check_key, None)
    if planned is not None:
        _run_planned(item, planned)
    return result


def _seed(config: pytest.Config) -> int | None:
    raw = config.getoption("hypothesis_seed", None)
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        # Hypothesis accepts any string as a seed; hash it the same stable way.
        import hashlib

        return int.from_bytes(hashlib.sha256(str(raw).encode()).digest()[:4], "big")


def _check(item: pytest.Item, model: Any, marker: MarkerSettings,
           overrides: dict[str, Any] | None = None) -> SoftmaxReport:
    __tracebackhide__ = True
    from .engine import run_check
    from .report import SoftmaxInvariantError

    settings = resolve(_session(item.config), marker, overrides)
    try:
        report = run_check(
            model, settings, seed=_seed(item.config), namespace=item.nodeid, safe_mode=settings.safe_mode,
            replay_hint=results.replay_hint(item),
        )
    except SoftmaxInvariantError as exc:
        # Recorded for the summary, the JSON report and junit (see results.py).
        results.record_report(item, exc.report)
        raise
    results.record_report(item, report)
    return report


def _run_planned(item: pytest.Item, planned: PlannedCheck) -> None:
    __tracebackhide__ = True
    from .report import SoftmaxInvariantError, SoftmaxSetupError

    message = None
    try:
        _check(item, planned.model, planned.marker)
    except SoftmaxInvariantError as exc:
        message = str(exc)
    except SoftmaxSetupError as exc:
        message = with_cause(f"pytest-softmax: {exc}", exc, item.config)
    if message is not None:
        # Outside the except block, so the report is not followed by a
        # "during handling of the above exception" copy of itself.
        pytest.fail(message, pytrace=False)


@pytest.fixture
def softmax_check(request: pytest.FixtureRequest) -> Callable[..., SoftmaxReport]:
    """``softmax_check(model, **overrides) -> SoftmaxReport``: check a model
    with this test's settings (marker > command line > ini > default);
    ``overrides`` take the marker's keyword arguments."""
    problem: str | None = None
    try:
        marker = _marker_settings(request.node) or MarkerSettings()
    except SettingError as exc:
        problem = str(exc)
    if problem is not None:
        _fail_setup(problem)
    item = request.node

    def softmax_check(model: Any, **overrides: Any) -> SoftmaxReport:
        __tracebackhide__ = True
        try:
            parsed = parse_overrides(overrides, "softmax_check()")
        except SettingError as exc:
            raise TypeError(str(exc)) from None
        return _check(item, model, marker, parsed)

    return softmax_check


def with_cause(message: str, exc: BaseException, config: pytest.Config) -> str:
    """The plugin's message first; with ``--tb=long`` the framework's own
    exception follows it, for whoever needs the full story."""
    if config.getoption("tbstyle", "auto") != "long":
        return message
    from .model_errors import chained_traceback

    cause = chained_traceback(exc)
    return f"{message}\n\nThe original exception (shown for --tb=long):\n{cause}" if cause else message


# --- CI integration (collection.py, results.py, summary.py, json_report.py)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    # tryfirst: the generated items must exist before -k, -m, --lf and
    # --deselect filter the list.
    collection.add_items(session, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None],
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    results.attach(item, call, report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not results.is_worker(session.config):
        json_report.write(session.config, results.collected(session.config), _session(session.config),
                          int(exitstatus))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    summary.terminal_summary(terminalreporter, config)
    json_report.terminal_summary(terminalreporter, config)
