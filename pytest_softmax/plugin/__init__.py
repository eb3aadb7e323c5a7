"""pytest hooks, options, marker and fixtures of pytest-softmax.

This package is the ``pytest11`` entry point and is imported by every pytest
run in an environment where the plugin is installed, so it imports only the
standard library and pytest.  numpy, Hypothesis and any framework are
imported by ``runner`` inside the functions that run a check, i.e. only when
a test asks for one.

The pytest layer: ``keys`` (names and stash keys shared below),
``runner`` (the check a test runs), ``collection`` (``--softmax-model``
items), ``records`` (results carried on reports), ``terminal`` (header and
summary), ``json_report`` (``--softmax-report``) and ``html_report``
(``--softmax-html``, and the chart on pytest-html's rows).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..adapters.registry import quiet_native_logs
from ..settings import (
    MARKER_SIGNATURE,
    SETTINGS,
    MarkerSettings,
    Mode,
    SettingError,
    load_session_settings,
    parse_marker,
    parse_overrides,
    unknown_ini_key_error,
)
from . import collection, html_report, json_report, records, terminal
from .keys import MARKER_NAME, marker_settings_key, planned_check_key, session_settings_key
from .runner import fail_setup, plan_check, run_item_check, run_planned

if TYPE_CHECKING:
    from ..core.report import SoftmaxReport

MARKER_HELP = (
    f"{MARKER_SIGNATURE}: check that the model's outputs are probability distributions "
    "(finite, within [0, 1], summing to 1 along axis) on inputs Hypothesis generates from its "
    "input signature. model is a keras.Model, a zero-argument callable returning one, or a path to "
    "a .keras/.h5 file or SavedModel directory; omitted, the test's `model` fixture is used."
)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # The earliest hook an installed plugin gets: before pytest imports the
    # user's conftest.py files (which often import TensorFlow) and before
    # pytest_configure, which runs after them.  A user's own
    # TF_CPP_MIN_LOG_LEVEL wins; see docs/quiet.md.
    quiet_native_logs()


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
    html_report.add_options(group, parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
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
    html_report.configure(config)
    # Gathers the checks carried by every report, a worker's too.
    config.pluginmanager.register(records.ReportCollector(), records.COLLECTOR_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    json_report.unconfigure(config)
    html_report.unconfigure(config)
    collector = config.pluginmanager.get_plugin(records.COLLECTOR_NAME)
    if collector is not None:
        config.pluginmanager.unregister(collector, records.COLLECTOR_NAME)


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
    if session is None or not terminal.wants_header(config):
        return None
    return [terminal.settings_header(session, config), terminal.backend_header()]


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    # Marked tests are only known after collection: show the settings then,
    # unless the header already did.
    session = config.stash.get(session_settings_key, None)
    if session is None or terminal.wants_header(config) or not terminal.wants_header(config, items):
        return []
    return [terminal.settings_header(session, config), terminal.backend_header()]


def _marker_settings(item: pytest.Item) -> MarkerSettings | None:
    """The item's ``softmax_invariant`` marker, parsed once and kept in its
    stash (the autouse fixture and ``softmax_check`` both need it)."""
    __tracebackhide__ = True
    if marker_settings_key not in item.stash:
        mark = item.get_closest_marker(MARKER_NAME)
        problem: str | None = None
        try:
            item.stash[marker_settings_key] = parse_marker(mark.args, mark.kwargs) if mark else None
        except SettingError as exc:
            problem = str(exc)
        if problem is not None:
            fail_setup(item, problem)
    return item.stash[marker_settings_key]


@pytest.fixture(autouse=True)
def _softmax_invariant_marker(request: pytest.FixtureRequest) -> None:
    """Resolve the marked test's model at setup, so a missing or broken
    model is a setup error of that test, not a failure of its body."""
    __tracebackhide__ = True
    item = request.node
    marker = _marker_settings(item)
    if marker is None:
        return
    source = marker.model
    if source is None:
        try:
            source = request.getfixturevalue("model")
        except pytest.FixtureLookupError:
            source = None
        if source is None:
            fail_setup(item, (
                f"@pytest.mark.{MARKER_NAME} on {item.nodeid} has no model: pass one "
                f"(@pytest.mark.{MARKER_NAME}(model=...) with a keras.Model, a factory or a path) "
                "or define a `model` fixture"
            ))
    item.stash[planned_check_key] = plan_check(item, marker, source)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    planned = item.stash.get(planned_check_key, None)
    if planned is not None:
        run_planned(item, planned)
    return result


@pytest.fixture
def softmax_check(request: pytest.FixtureRequest) -> Callable[..., SoftmaxReport]:
    """``softmax_check(model, **overrides) -> SoftmaxReport``: check a model
    with this test's settings (marker > command line > ini > default);
    ``overrides`` take the marker's keyword arguments."""
    item = request.node
    marker = _marker_settings(item) or MarkerSettings()

    def softmax_check(model: Any, **overrides: Any) -> SoftmaxReport:
        __tracebackhide__ = True
        try:
            parsed = parse_overrides(overrides, "softmax_check()")
        except SettingError as exc:
            raise TypeError(str(exc)) from None
        return run_item_check(item, model, marker, parsed, Mode.FIXTURE)

    return softmax_check


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return collection.is_link_loop(collection_path, config)


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
    records.attach(item, call, report)
    if html_report.pytest_html_active(item.config):
        html_report.attach_html_extras(report)
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    terminal.terminal_summary(terminalreporter, config)

