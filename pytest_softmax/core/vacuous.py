"""No vacuous verdicts: a check that examined nothing is an error, never a pass.

A test tool's worst outcome is a green run that proved nothing.  Each way a
check can end up examining nothing gets its own message saying why, so the
user can fix it: no output selected (``outputs=[]``), no rows given
(``inputs=`` with an empty first axis, or a strategy drawing empty batches),
no examples run (a Hypothesis profile without ``Phase.generate``), and,
whatever the cause, zero rows seen on an output the check was asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import Phase
from hypothesis import settings as hypothesis_settings

from ..adapters.base import OutputSpec
from ..errors import SoftmaxSetupError
from ..settings import how_to_set


def require_some_outputs(wanted: object, specs: Sequence[OutputSpec]) -> None:
    """``outputs=[]`` (or ``()``) selects nothing: say so instead of passing."""
    if isinstance(wanted, (list, tuple)) and not wanted:
        names = ", ".join(f"{s.index}: {s.name!r}" for s in specs)
        raise SoftmaxSetupError(
            f"outputs={list(wanted)} selects no output, so nothing would be checked; name at least one of "
            f"the model's outputs: {names} (or leave outputs= out to check them all)"
        )


def require_given_rows(total: int) -> None:
    """The test's own ``inputs=`` arrays must hold at least one row."""
    if total < 1:
        raise SoftmaxSetupError(
            "inputs= holds 0 rows, so nothing would be checked; give at least one row "
            "(the first axis of each inputs= array is the batch)"
        )


def require_drawn_rows(rows: int) -> None:
    """A batch drawn from the test's ``inputs=`` strategy must hold a row."""
    if rows < 1:
        raise SoftmaxSetupError(
            "the inputs= strategy drew a batch of 0 rows, which checks nothing; draw at least one row per "
            "batch (e.g. a fixed first dimension, or min_side=1 in hypothesis.extra.numpy.array_shapes)"
        )


def require_rows_seen(specs: Sequence[OutputSpec], rows_by_output: Mapping[str, int], examples: int,
                      *, masked_rows_allowed: bool = False) -> None:
    """The general rule: every output the check was asked for saw a row.
    With ``allow_masked_rows`` the all-zero rows are set aside before
    counting, so "no row" then means every row was fully masked."""
    for spec in specs:
        if rows_by_output.get(spec.name, 0) >= 1:
            continue
        if masked_rows_allowed:
            raise SoftmaxSetupError(
                f"every row of {spec.label} was all zeros (fully masked) in {examples} examples, so "
                "allow_masked_rows=True left nothing to check: give inputs with unmasked positions (inputs=...)"
            )
        raise SoftmaxSetupError(
                f"checked 0 rows of {spec.label} after {examples} examples, so the check proved nothing: "
                "the model returned an empty batch for every input (does it drop or filter rows?); "
                "check an output that keeps the batch, or leave this one out: "
                f"{how_to_set('outputs', '[...]', 'NAME')}"
            )


def strategy_drew_nothing(exc: Exception) -> SoftmaxSetupError:
    """Hypothesis could not draw one batch from the test's ``inputs=`` strategy."""
    detail = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return SoftmaxSetupError(
        f"the inputs= strategy drew no batch, so nothing was checked ({detail}): make the strategy able to "
        "draw arrays (no filter or assume() that rejects every example, no st.nothing())"
    )


def no_examples_error(configured: hypothesis_settings, profile: str) -> SoftmaxSetupError:
    """Why Hypothesis ran no example, naming the setting that caused it."""
    phases = ", ".join(f"Phase.{p.name}" for p in configured.phases)
    if Phase.generate not in configured.phases:
        database = "with no saved example to replay" if Phase.reuse in configured.phases else "and no replay"
        cause = (f"the Hypothesis profile {profile!r} sets phases=[{phases}], without Phase.generate, "
                 f"{database}")
        fix = "add Phase.generate to that profile's phases, or load another profile (--hypothesis-profile=)"
    else:
        cause = f"the Hypothesis profile {profile!r} (max_examples={configured.max_examples}, phases=[{phases}])"
        fix = "raise softmax_max_examples, or load another profile (--hypothesis-profile=)"
    return SoftmaxSetupError(
        f"Hypothesis ran no examples: {cause}; a check that ran nothing proves nothing, so it fails: {fix}"
    )


def current_profile_name() -> str:
    return str(hypothesis_settings.get_current_profile_name())
