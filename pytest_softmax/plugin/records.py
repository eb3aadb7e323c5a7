"""What each check found, as plain data that travels on pytest's reports.

A check's :class:`~pytest_softmax.core.report.SoftmaxReport` is recorded on its
item when the engine returns (or raises).  When pytest builds the test report,
the record becomes a plain dict (str, int, float, None, lists, dicts) set as
the report's ``softmax_checks`` attribute: pytest reports carry extra
attributes and pytest-xdist serialises them, so the controller receives every
worker's checks.  The terminal summary, the JSON report and the junit
properties are all built from these dicts, never from live objects.

Standard library and pytest only: imported at start-up.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .keys import planned_check_key, recorded_key, setup_problem_key

if TYPE_CHECKING:
    from ..core.report import SoftmaxReport

PASSED, FAILED, ERROR = "passed", "failed", "error"
REPORT_ATTRIBUTE = "softmax_checks"
COLLECTOR_NAME = "softmax-results"

_sent_key = pytest.StashKey[int]()


def plain(value: Any) -> Any:
    """JSON- and execnet-safe copy of report data: dataclasses become dicts,
    tuples lists, and non-finite floats None (JSON has no NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _layer_at_fault(report: SoftmaxReport) -> str | None:
    """The layer the report blames: the diagnosis' answer, else the output
    layer that broke."""
    return report.blamed_layer


def check_entry(nodeid: str, source: str, report: SoftmaxReport) -> dict[str, Any]:
    """One check as a plain dict: the record behind the summary, the JSON
    report and the junit properties."""
    from ..core.report import ROW_ERROR_BINS

    data = plain(report)
    failed_output = report.violations[0].output if report.violations else ""
    for result, out in zip(report.outputs, data.get("outputs", [])):
        out["tolerance"] = plain(result.tolerance)
        out["passed"] = result.passed
        # The lower bounds of the row_error_counts bins, in tolerances.
        out["row_error_bins"] = list(ROW_ERROR_BINS)
    entry: dict[str, Any] = {
        "nodeid": nodeid,
        "model_source": source,
        "model": data.pop("model_name"),
        "verdict": PASSED if report.passed else FAILED,
        "headline": report.headline,
        "checked_outputs": [failed_output] if failed_output else [o.output for o in report.outputs],
        "layer_at_fault": _layer_at_fault(report),
        "cause": report.cause,
        # What broke, where and why, on one line (what a CI page shows first).
        "summary": report.headline + (f"; {report.fault_line}" if not report.passed and report.fault_line else ""),
        # The whole message, as the terminal shows it.
        "message": str(report),
    }
    data.pop("passed", None)
    data.pop("layer_at_fault", None)
    data.pop("cause", None)
    entry.update(data)
    return entry


def error_entry(nodeid: str, source: str, message: str) -> dict[str, Any]:
    """A check that could not run (unloadable model, no usable output...)."""
    headline = message.strip().splitlines()[0] if message.strip() else "check could not run"
    return {
        "nodeid": nodeid, "model_source": source, "model": None, "verdict": ERROR,
        "headline": headline, "message": message.strip(), "checked_outputs": [], "layer_at_fault": None, "cause": None, "summary": headline,
    }


def _source_of(item: pytest.Item, report: SoftmaxReport | None) -> str:
    source = getattr(item, "source", None)
    if source is not None and hasattr(source, "name"):
        return str(source.name)
    planned = item.stash.get(planned_check_key, None)
    marked = planned.marker.model if planned is not None else None
    if marked is None:
        if planned is not None:
            return "model fixture"
        return f"softmax_check({report.model_name})" if report is not None else "unknown"
    if isinstance(marked, (str, bytes)) or hasattr(marked, "__fspath__"):
        return str(marked)
    name = getattr(marked, "__qualname__", None) or getattr(marked, "name", None)
    return f"{getattr(marked, '__module__', '')}.{name}".lstrip(".") if name else type(marked).__name__


def _is_setup_problem(item: pytest.Item, call: pytest.CallInfo[None]) -> str | None:
    """The message of a check that could not start, if that is why this
    phase failed: a SoftmaxSetupError, or the plugin's own setup failure."""
    from ..errors import SoftmaxSetupError

    problem = item.stash.get(setup_problem_key, None)
    if problem is not None:
        del item.stash[setup_problem_key]
        return problem
    if call.excinfo is not None and isinstance(call.excinfo.value, SoftmaxSetupError):
        return f"pytest-softmax: {call.excinfo.value}"
    return None


def attach(item: pytest.Item, call: pytest.CallInfo[None], test_report: pytest.TestReport) -> None:
    """Turn the checks recorded since the last phase into dicts on this
    phase's report, and their key figures into junit properties."""
    recorded = item.stash.get(recorded_key, [])
    sent = item.stash.get(_sent_key, 0)
    entries = [check_entry(item.nodeid, _source_of(item, r), r) for r in recorded[sent:]]
    item.stash[_sent_key] = len(recorded)
    if not entries and not recorded and test_report.failed:
        problem = _is_setup_problem(item, call)
        if problem is not None:
            entries = [error_entry(item.nodeid, _source_of(item, None), problem)]
    if not entries:
        return
    setattr(test_report, REPORT_ATTRIBUTE, entries)
    # junit writes the properties of the teardown report, which pytest builds
    # later from item.user_properties: add them there, not to this report.
    for entry in entries:
        item.user_properties.extend(junit_properties(entry))


def junit_properties(entry: Mapping[str, Any]) -> list[tuple[str, object]]:
    props: list[tuple[str, object]] = [("softmax_verdict", entry["verdict"])]
    for key in ("worst_error", "tolerance", "dtype", "seed"):
        if entry.get(key) not in (None, ""):
            props.append((f"softmax_{key}", entry[key]))
    if entry.get("layer_at_fault"):
        props.append(("softmax_layer_at_fault", entry["layer_at_fault"]))
    return props


class ReportCollector:
    """Keeps the checks each report carries, from this process or from a
    pytest-xdist worker (whose reports the controller receives here too).
    Registered as a plugin in ``pytest_configure``, unregistered at
    ``pytest_unconfigure``."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.entries.extend(getattr(report, REPORT_ATTRIBUTE, None) or [])


def collected(config: pytest.Config) -> list[dict[str, Any]]:
    collector = config.pluginmanager.get_plugin(COLLECTOR_NAME)
    return collector.entries if isinstance(collector, ReportCollector) else []


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
