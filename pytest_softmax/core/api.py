"""``check_softmax``: the engine as a plain function, usable without pytest."""

from __future__ import annotations

from typing import Any

from .. import settings as settings_module
from .report import Replay, SoftmaxReport
from .search import run_check


def check_softmax(
    model: Any,
    *,
    inputs: Any = None,
    axis: int = -1,
    atol: float | None = None,
    rtol: float | None = None,
    max_examples: int = settings_module.DEFAULT_MAX_EXAMPLES,
    batch_size: int = settings_module.DEFAULT_BATCH_SIZE,
    outputs: Any = None,
    safe_mode: bool = True,
    allow_masked_rows: bool = False,
    seed: int | None = None,
) -> SoftmaxReport:
    """Check that ``model``'s outputs are probability distributions along
    ``axis`` on inputs generated from its signature (or on ``inputs``).

    Raises :class:`SoftmaxInvariantError` (an ``AssertionError`` carrying
    ``.report``) when an output is not finite, leaves [0, 1] or does not sum
    to 1 within ``atol + rtol``; returns the :class:`SoftmaxReport` otherwise.
    ``atol=None`` uses :func:`default_tolerance` for each output's dtype and
    class count.  ``safe_mode=False`` lets a model file that carries Python
    code (a ``Lambda`` layer's bytecode) load: only for files you trust.
    ``allow_masked_rows=True`` accepts all-zero output rows, which Keras'
    ``Softmax`` writes for a row its mask hides entirely.
    ``seed`` fixes Hypothesis' search; a failure's report says which seed
    found it, so passing that seed replays the same search.
    """
    __tracebackhide__ = True
    given_args = {
        "axis": axis, "atol": atol, "rtol": rtol, "max_examples": max_examples,
        "batch_size": batch_size, "outputs": outputs, "safe_mode": safe_mode,
        "allow_masked_rows": allow_masked_rows,
    }
    try:
        parsed = settings_module.parse_overrides(given_args, "check_softmax()")
    except settings_module.SettingError as exc:
        raise ValueError(str(exc)) from None
    resolved = settings_module.resolve(None, settings_module.MarkerSettings(**parsed, inputs=inputs))
    return run_check(model, resolved, seed=seed, replay=Replay(command=None))
