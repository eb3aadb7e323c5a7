"""The exceptions a check raises.

Importable without numpy or a framework: the pytest layer catches them,
and users catch them around :func:`pytest_softmax.check_softmax`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core.report import SoftmaxReport


class SoftmaxInvariantError(AssertionError):
    """Raised by :func:`check_softmax` when an output is not a distribution;
    ``.report`` holds the :class:`SoftmaxReport`."""

    def __init__(self, report: SoftmaxReport) -> None:
        super().__init__(str(report))
        self.report = report


class SoftmaxSetupError(Exception):
    """The check could not start: no usable model, inputs or outputs.  The
    message names the thing at fault and how to fix it."""


@dataclass(frozen=True)
class SettingFix:
    """A fix the user makes by setting one of the check's settings.

    Code that raises does not know how the check was asked for (a marker, the
    fixture, ``check_softmax()``, ``--softmax-model``), so it passes this
    value and the settings layer phrases it for the check running now: put
    it in an f-string (``f"pass {SettingFix('inputs', 'np.zeros((1, 3))')}"``).
    ``flag_value`` is the value as a command-line flag or ini key takes it,
    when that differs (``probs`` for ``outputs=['probs']``)."""

    setting: str
    value: str
    flag_value: str | None = None

    def __str__(self) -> str:
        # Imported here: settings is standard library only, and this module
        # must stay importable before anything else of the package.
        from .settings import how_to_set

        return how_to_set(self.setting, self.value, self.flag_value)
