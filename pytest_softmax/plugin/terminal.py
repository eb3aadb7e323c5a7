"""The ``softmax invariants`` terminal summary and the settings header.

The summary is printed by the process that owns the terminal (never by a
pytest-xdist worker) and only when something was checked.  Failures come
first, one line each plus the replay command; passes are folded into a count
unless ``-v``, so a run of 500 checks stays a few lines long.

Standard library and pytest only: imported at start-up.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pytest

from ..settings import SessionSettings, resolve
from .collection import configured_models
from .keys import MARKER_NAME
from .records import ERROR, FAILED, PASSED, collected, is_worker

SECTION = "softmax invariants"
MAX_FAILURES = 30  # without -v; the failure sections above hold every detail anyway


def _number(value: Any, spec: str = ".3g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "n/a"


def check_line(entry: dict[str, Any]) -> str:
    """One check on one line: verdict, node id, output(s), dtype, worst error
    against the tolerance, examples and rows, layer at fault."""
    verdict = str(entry["verdict"]).upper()
    head = f"{verdict:<6} {entry['nodeid']}"
    if entry["verdict"] == ERROR:
        return f"{head}: {entry['headline']}"
    outputs = ", ".join(repr(o) for o in entry.get("checked_outputs") or []) or "-"
    relation = "<=" if entry["verdict"] == PASSED else ">"
    first = (entry.get("violations") or [{}])[0] if entry["verdict"] == FAILED else {}
    if first.get("kind") == "weights not finite":
        error = "weights hold NaN/Inf (checked before the search)"
    elif first.get("kind") == "not finite":
        error = f"{_number(first.get('error'), '.0f')} NaN/Inf values"
    elif first.get("kind") == "out of range":
        error = f"outside [0, 1] by {_number(first.get('error'))} > {_number(first.get('tolerance'))}"
    elif entry.get("worst_error") is None and entry["verdict"] == FAILED:
        error = "non-finite"
    else:
        error = f"max |sum - 1| = {_number(entry.get('worst_error'))} {relation} {_number(entry.get('tolerance'))}"
    line = (
        f"{head}: output {outputs} [{entry.get('dtype') or '?'}] {error}; "
        f"{entry.get('examples', 0)} examples{_edge_batches(entry)}, {entry.get('rows', 0)} rows"
    )
    if entry["verdict"] == FAILED:
        kinds = sorted({v["kind"] for v in entry.get("violations", [])})
        if kinds and kinds != ["not normalized"]:
            line += f"; {', '.join(kinds)}"
        if entry.get("layer_at_fault"):
            line += f"; layer at fault: {entry['layer_at_fault']}"
            if entry.get("cause"):
                line += f" ({entry['cause']})"
        elif entry.get("cause"):
            line += f"; cause: {entry['cause']}"
    return line


def summary_lines(entries: Sequence[dict[str, Any]], verbose: bool) -> list[tuple[str, dict[str, bool]]]:
    """The section's lines with their terminal markup."""
    failed = [e for e in entries if e["verdict"] == FAILED]
    errors = [e for e in entries if e["verdict"] == ERROR]
    passed = [e for e in entries if e["verdict"] == PASSED]
    lines: list[tuple[str, dict[str, bool]]] = []
    shown = 0
    for entry in sorted(failed, key=lambda e: str(e["nodeid"])) + sorted(errors, key=lambda e: str(e["nodeid"])):
        if not verbose and shown >= MAX_FAILURES:
            break
        shown += 1
        lines.append((check_line(entry), {"red": True}))
        if entry.get("replay"):
            lines.append((f"       {entry['replay']}", {}))
    if shown < len(failed) + len(errors):
        lines.append((f"... and {len(failed) + len(errors) - shown} more (-v lists them all)", {"red": True}))
    if verbose:
        for entry in sorted(passed, key=lambda e: str(e["nodeid"])):
            lines.append((check_line(entry), {"green": True}))
            lines.extend((f"       note: {note}", {}) for note in entry.get("notes") or ())
    counts = [f"{len(entries)} check{'s' if len(entries) != 1 else ''}"]
    counts += [f"{n} {word}" for n, word in ((len(failed), FAILED), (len(errors), ERROR), (len(passed), PASSED)) if n]
    tail = ""
    if passed and not verbose:
        worst = max((e for e in passed if e.get("tolerance")),
                    key=lambda e: (e.get("worst_error") or 0.0) / e["tolerance"], default=None)
        if worst is not None:
            tail = (f"; closest pass: {worst['nodeid']} at {_number(worst.get('worst_error'))} "
                    f"of tolerance {_number(worst['tolerance'])}")
        tail += " (-v lists passed checks)"
    lines.append((", ".join(counts) + tail, {"red": bool(failed or errors), "green": not (failed or errors)}))
    return lines


def terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    entries = collected(config)
    if is_worker(config) or not entries:
        return
    terminalreporter.write_sep("=", SECTION)
    for text, markup in summary_lines(entries, config.get_verbosity() >= 1):
        terminalreporter.write_line(text, **markup)


def wants_header(config: pytest.Config, items: Sequence[pytest.Item] | None = None) -> bool:
    """Whether the settings header belongs in this run's output: with -v, or
    when the plugin has anything to check."""
    if config.get_verbosity() >= 1 or configured_models(config):
        return True
    return items is not None and any(item.get_closest_marker(MARKER_NAME) for item in items)


def settings_header(session: SessionSettings, config: pytest.Config) -> str:
    """The settings in force and how failures replay, for the run's header."""
    resolved = resolve(session)
    atol = "dtype-aware default" if resolved.atol is None and resolved.ini_atol is None else (
        resolved.atol if resolved.atol is not None else resolved.ini_atol)
    per_dtype = "".join(f", atol[{d}]={v:g}" for d, v in session.atol_by_dtype.items())
    seed = config.getoption("hypothesis_seed", None)
    if seed is None:
        seed = "derandomized by the Hypothesis profile" if _profile_derandomizes() else "random per check"
    # Shown only when set, as every check is then narrowed by them.
    chosen = "".join(f", {name}={value}" for name, value in (
        ("outputs", ",".join(map(str, session.outputs or ()))), ("axis", session.axis)) if value not in ("", None))
    return (
        f"softmax: atol={atol}{per_dtype}, rtol={resolved.rtol:g}, max_examples={resolved.max_examples}, "
        f"batch_size={resolved.batch_size}{chosen}, hypothesis seed={seed}"
    )


def backend_header() -> str:
    """Which framework backend runs the checks (``softmax: keras backend=jax``)."""
    from ..adapters.registry import runtime_description

    return f"softmax: {runtime_description()}"


def _profile_derandomizes() -> bool:
    # Only when Hypothesis is already imported (its own plugin usually has
    # done it): the header must not be the reason it gets imported.
    hypothesis = sys.modules.get("hypothesis")
    settings = getattr(hypothesis, "settings", None)
    try:
        return bool(settings is not None and settings().derandomize)
    except Exception:  # a profile that cannot be read is Hypothesis' error to report
        return False


def _edge_batches(entry: dict[str, Any]) -> str:
    """``, 2 edge batches``: the edge phase's batches, counted apart from the examples."""
    count = entry.get("edge_batches") or 0
    return f", {count} edge batch{'es' if count > 1 else ''}" if count else ""
