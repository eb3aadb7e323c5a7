"""What a diagnosis rule finds: one line, the cause and the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One diagnosis line and its cause in a few words (for the first lines
    CI shows: the junit message, the summary line)."""

    line: str
    cause: str
    # The fix in one short clause, shown right after the cause (it must fit
    # the junit message attribute with the headline).
    fix: str = ""
