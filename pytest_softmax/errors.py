"""The exceptions a check raises.

Importable without numpy or a framework: the pytest layer catches them,
and users catch them around :func:`pytest_softmax.check_softmax`.
"""

from __future__ import annotations

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
