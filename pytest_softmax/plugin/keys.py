"""Names and stash keys the pytest layer's modules share (pytest and the
standard library only), so that no module imports back into the plugin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ..settings import MarkerSettings, SessionSettings

if TYPE_CHECKING:
    from ..core.report import SoftmaxReport

MARKER_NAME = "softmax_invariant"
SETUP_PREFIX = "pytest-softmax: "


@dataclass(frozen=True)
class PlannedCheck:
    """A marked test's check, decided at setup and run after the test body:
    the parsed marker and the model, already adapted (loaded once)."""

    marker: MarkerSettings
    adapter: Any


session_settings_key = pytest.StashKey[SessionSettings]()
marker_settings_key = pytest.StashKey["MarkerSettings | None"]()
planned_check_key = pytest.StashKey[PlannedCheck]()
# Reports of the checks run by one test (the softmax_check fixture can run several).
recorded_key = pytest.StashKey[list["SoftmaxReport"]]()
# The message of a check that could not start, set where the plugin fails a
# test for that reason (the report of that phase then carries an error entry).
setup_problem_key = pytest.StashKey[str]()
# The command line that reruns a generated --softmax-model item alone; other
# items are rerun by node id.
replay_command_key = pytest.StashKey[str]()
