"""The check must not be fooled by its own fast path.

The search runs the model compiled (a ``tf.function``, ``jax.jit``): many
times faster than ``model(x)``, and what ``model.predict`` runs.  A
compiled graph can compute otherwise, though: TensorFlow fuses
MatMul+BiasAdd+Relu, and on some CPUs the fused kernel turns NaN into 0
(on others it keeps the NaN), so a model whose ``model(x)`` returns NaN (a
``BatchNormalization`` with a negative moving variance before a
``Dense(..., activation='relu')``) can return tidy uniform rows from the
compiled forward, and would pass.

One eager call on the preflight batch settles it: where the compiled and
the eager forward disagree on finiteness, the check fails, names the layer
that makes the NaN (probed the way that shows it) and says the compiled
path hides it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..adapters.base import EagerComparing, InputSpec, ModelAdapter, OutputSpec
from ..adapters.base.arrays import nonfinite_count
from ..errors import SoftmaxInvariantError
from ..settings import CheckSettings
from ..tolerance import normalize_dtype_name
from .diagnosis.diagnose import diagnose
from .inputs.batches import GeneratedBatch
from .inputs.recipes import ArrayRecipe
from .invariants import check_batch, violations_of
from .report import InputSummary, SoftmaxReport


def require_same_finiteness(adapter: ModelAdapter, outputs: Sequence[OutputSpec], batch: Sequence[np.ndarray],
                            compiled: Sequence[np.ndarray], settings: CheckSettings,
                            summaries: Callable[[], list[InputSummary]]) -> None:
    """Raise :class:`SoftmaxInvariantError` when ``model(x)`` and the
    compiled forward disagree on whether an output is finite on ``batch``
    (``compiled`` holds the compiled forward's outputs on it).  The batch is
    summarized for the report (``summaries``) only when it fails: for a
    batch of images that costs as much as a forward pass."""
    if not isinstance(adapter, EagerComparing):
        return
    try:
        eager = adapter.eager_forward(batch)
    except Exception:  # noqa: BLE001 - a model only its compiled form runs: the search checks that form
        return
    if eager is None:
        return
    for spec in outputs:
        eager_bad = nonfinite_count(eager[spec.index])
        compiled_bad = nonfinite_count(compiled[spec.index])
        if bool(eager_bad) != bool(compiled_bad):
            raise SoftmaxInvariantError(_report(adapter, spec, batch, eager if eager_bad else list(compiled),
                                                hidden=bool(eager_bad), settings=settings, summaries=summaries()))


def _report(adapter: ModelAdapter, spec: OutputSpec, batch: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
            *, hidden: bool, settings: CheckSettings, summaries: list[InputSummary]) -> SoftmaxReport:
    """The failing report: the non-finite side's violations, the layer that
    makes the NaN and which forward hides it."""
    output = np.asarray(outputs[spec.index])
    dtype = normalize_dtype_name(output.dtype)
    axis = settings.axis
    n_classes = int(output.shape[axis])
    check = check_batch(output, axis, settings.tolerance_for(dtype, n_classes))
    violations = violations_of(check, output, axis=axis, name=spec.name, layer_name=spec.layer_name,
                               layer_class=spec.layer_class, dtype=dtype)
    assert isinstance(adapter, EagerComparing)
    compiled = adapter.compiled_description()
    if hidden:
        line = (f"model(x) returns {check.nonfinite_values} NaN/Inf values on {spec.label} for this batch, but "
                f"the compiled forward the check runs ({compiled}) returns finite rows for the same batch: the "
                "compiled path hides the NaN (a fused kernel can turn NaN into 0, as TensorFlow's MatMul+BiasAdd+Relu "
                "does on some CPUs, and model.predict runs it too), so the values shown are model(x)'s; fix the "
                "layer that makes it")
        hides = f"hidden by the compiled forward ({compiled})"
    else:
        line = (f"the compiled forward the check runs ({compiled}) returns {check.nonfinite_values} NaN/Inf values "
                f"on {spec.label} for this batch, where model(x) returns finite rows: the compiled graph computes "
                "otherwise (a fused or reordered op), and model.predict runs it too")
        hides = f"only in the compiled forward ({compiled})"
    report = SoftmaxReport(
        model_name=adapter.name, passed=False, examples=1, rows=check.rows,
        # As the search's reports have it: the worst finite error (NaN rows are the violation).
        worst_error=check.worst_error if math.isfinite(check.worst_error) else 0.0, tolerance=check.tolerance, dtype=dtype, violations=violations,
        failing_input=summaries, diagnosis=[line],
        failing_input_origin="from inputs=" if all(s.given for s in summaries) else "the batch tried before the search",
        replay="rerun the same check: it tries this batch before the search on every run",
    )
    probe = adapter.eager_probe if hidden else None
    diagnose(adapter, report, list(batch), probe=probe)
    report.cause = f"{report.cause}; {hides}" if report.cause else f"NaN/Inf {hides}"
    report.fix = report.fix or "find the layer that makes NaN (model(x) shows it) and fix it"
    return report


def preflight_summaries(specs: Sequence[InputSpec], batch: Sequence[np.ndarray],
                        recipes: Sequence[ArrayRecipe] | None) -> list[InputSummary]:
    """The preflight batch as the report shows a failing input (rebuilt from
    its recipes, or the test's own arrays)."""
    return GeneratedBatch(tuple(specs), tuple(recipes) if recipes is not None else tuple(None for _ in specs),
                          tuple(batch)).summaries()
