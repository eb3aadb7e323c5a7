"""``check_softmax``: search for inputs that make a model's outputs stop
being probability distributions, and report what was found.

The search is a Hypothesis test run in-process: it draws input batches from
the model's signature, runs one compiled forward pass per batch (never
``model.predict`` in a loop), measures the invariant in numpy, steers
towards larger violations with ``hypothesis.target`` and shrinks the first
failure to a small input.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, target
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure

from . import settings as settings_module
from .adapters import InputSpec, ModelAdapter, OutputSpec, adapt, preserved_state
from .database import NamespacedDatabase
from .diagnosis import diagnose
from .inputs import GeneratedBatch, arrange_inputs, generated_batches, user_batches
from .invariants import BatchCheck, check_batch, violations_of
from .model_errors import is_out_of_memory, model_error_message
from .preflight import StopCheck, out_of_memory, preflight, require_finite_inputs
from .report import (
    MODEL_RAISED,
    OutputResult,
    SoftmaxInvariantError,
    SoftmaxReport,
    SoftmaxSetupError,
    Violation,
)
from .settings import CheckSettings
from .sites import SiteChecker, site_checker
from .tolerance import normalize_dtype_name

FLOAT_KINDS = "fc"


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
    ``seed`` fixes Hypothesis' search; a failure's report says which seed
    found it, so passing that seed replays the same search.
    """
    __tracebackhide__ = True
    given_args = {
        "axis": axis, "atol": atol, "rtol": rtol, "max_examples": max_examples,
        "batch_size": batch_size, "outputs": outputs,
    }
    try:
        parsed = settings_module.parse_overrides(given_args, "check_softmax()")
    except settings_module.SettingError as exc:
        raise ValueError(str(exc)) from None
    resolved = settings_module.resolve(None, settings_module.MarkerSettings(**parsed, inputs=inputs))
    return run_check(
        model, resolved, safe_mode=safe_mode, seed=seed,
        replay_hint="rerun with check_softmax(..., seed={seed}) (under pytest: --hypothesis-seed={seed})",
    )


@dataclass
class _OutputTracker:
    """Worst values seen on one output over every example."""

    spec: OutputSpec
    result: OutputResult | None = None

    def add(self, check: BatchCheck, dtype: str, axis: int, atol: float, rtol: float) -> None:
        previous = self.result or OutputResult(
            output=self.spec.name, layer_name=self.spec.layer_name, layer_class=self.spec.layer_class,
            dtype=dtype, axis=axis, n_classes=check.n_classes, atol=atol, rtol=rtol,
            min_value=np.inf, max_value=-np.inf,
        )
        finite_error = check.worst_error if np.isfinite(check.worst_error) else previous.worst_error
        self.result = replace(
            previous,
            rows=previous.rows + check.rows,
            worst_error=max(previous.worst_error, finite_error),
            nonfinite=previous.nonfinite + check.nonfinite_values,
            out_of_range=previous.out_of_range + check.out_of_range_rows,
            unnormalized_rows=previous.unnormalized_rows + check.unnormalized_rows,
            min_value=min(previous.min_value, check.min_value),
            max_value=max(previous.max_value, check.max_value),
        )


@dataclass
class _Search:
    """State of one check: the adapter, what is checked, and what was seen."""

    adapter: ModelAdapter
    settings: CheckSettings
    outputs: list[OutputSpec]
    trackers: dict[str, _OutputTracker] = field(default_factory=dict)
    examples: int = 0
    # Checks softmax sites inside the model in the same pass; None (plain
    # forward) unless the model has such sites.
    sites: SiteChecker | None = None

    def evaluate(self, batch: GeneratedBatch) -> tuple[list[Violation], float]:
        """Run one batch; return its violations and its severity."""
        self.examples += 1
        try:
            if self.sites is not None:
                results, site_found, site_severity = self.sites.forward(batch.arrays)
            else:
                results, site_found, site_severity = self.adapter.forward(batch.arrays), [], 0.0
        except Exception as exc:  # the model's own error, shown to the user
            if is_out_of_memory(exc):
                raise StopCheck(out_of_memory(self.adapter, int(batch.arrays[0].shape[0]), exc)) from exc
            violation = Violation(
                kind=MODEL_RAISED, output="", layer_name="", layer_class="", dtype="", axis=self.settings.axis,
                n_classes=0, tolerance=0.0, error=float("inf"), rows_violating=0, rows=0,
                message=model_error_message(exc),
            )
            return [violation], float("inf")
        found: list[Violation] = []
        severity = site_severity
        for spec in self.outputs:
            output = results[spec.index]
            try:
                dtype, n_classes = self._validate_output(spec, output)
            except SoftmaxSetupError as exc:  # not a failure for Hypothesis to shrink
                raise StopCheck(exc) from exc
            atol = self.settings.atol_for(dtype, n_classes)
            check = check_batch(output, self.settings.axis, atol, self.settings.rtol)
            self.trackers.setdefault(spec.name, _OutputTracker(spec)).add(
                check, dtype, self.settings.axis, atol, self.settings.rtol
            )
            severity = max(severity, check.severity)
            found.extend(violations_of(
                check, output, axis=self.settings.axis, name=spec.name, layer_name=spec.layer_name,
                layer_class=spec.layer_class, dtype=dtype,
            ))
        return found + site_found, severity

    def _validate_output(self, spec: OutputSpec, output: np.ndarray) -> tuple[str, int]:
        where = f"output {spec.name!r} ({spec.layer_name}: {spec.layer_class})"
        if output.dtype.kind not in FLOAT_KINDS and output.dtype.name != "bfloat16":
            raise SoftmaxSetupError(
                f"{where} has dtype {output.dtype.name}; only float outputs can be probability "
                "distributions: choose the outputs to check with outputs=[...]"
            )
        if output.ndim < 2:
            raise SoftmaxSetupError(
                f"{where} has shape {list(output.shape)} (no class axis besides the batch); "
                "choose the outputs to check with outputs=[...]"
            )
        axis = self.settings.axis
        if not -output.ndim <= axis < output.ndim:
            raise SoftmaxSetupError(
                f"axis={axis} is out of range for {where} of shape {list(output.shape)}"
            )
        if output.shape[axis] == 1:
            raise SoftmaxSetupError(
                f"{where} has size 1 along axis={axis} (shape {list(output.shape)}): a softmax over one "
                "class is always 1, so the check would prove nothing; pass the class axis with axis=, "
                "or leave this output out with outputs=[...] (a one-unit sigmoid is not a distribution)"
            )
        return normalize_dtype_name(output.dtype), int(output.shape[axis])


class _FoundViolation(Exception):
    """Raised inside the Hypothesis search so that it shrinks the input."""

    def __init__(self, batch: GeneratedBatch, violations: list[Violation]) -> None:
        super().__init__(violations[0].headline())
        self.batch = batch
        self.violations = violations


def select_outputs(specs: Sequence[OutputSpec], wanted: Any) -> list[OutputSpec]:
    if wanted is None:
        return list(specs)
    chosen = []
    for key in (wanted if isinstance(wanted, (list, tuple)) else [wanted]):
        match = [s for s in specs if (s.name == key if isinstance(key, str) else s.index == key)]
        if not match:
            names = ", ".join(f"{s.index}: {s.name!r}" for s in specs)
            raise SoftmaxSetupError(f"outputs= names {key!r}, which the model does not have; its outputs are {names}")
        chosen.extend(match)
    return chosen


def _specs_from_arrays(value: Any) -> list[InputSpec]:
    arrays = value if isinstance(value, (list, tuple)) else [value]
    return [InputSpec(f"input_{i}", tuple(np.asarray(a).shape[1:]), np.asarray(a).dtype.name)
            for i, a in enumerate(arrays)]


def _search_settings(settings: CheckSettings, namespace: str) -> hypothesis_settings:
    profile = hypothesis_settings()  # the loaded profile's values
    database = profile.database
    return hypothesis_settings(
        profile,
        max_examples=settings.max_examples,
        deadline=None,
        database=NamespacedDatabase(database, namespace) if database is not None else None,
        phases=[p for p in profile.phases if p is not Phase.explain],
        # Recipes keep every draw small, so data_too_large stays on.  Building
        # a batch takes time in proportion to its size (~6% of the forward pass
        # it feeds at 32x224x224x3), so too_slow would only flag a large batch.
        suppress_health_check=[*profile.suppress_health_check, HealthCheck.too_slow,
                               HealthCheck.function_scoped_fixture],
        report_multiple_bugs=False,
        verbosity=profile.verbosity if profile.verbosity >= Verbosity.verbose else Verbosity.quiet,
    )


def run_check(
    model: Any,
    settings: CheckSettings,
    *,
    seed: int | None = None,
    namespace: str | None = None,
    safe_mode: bool = True,
    replay_hint: str | None = None,
) -> SoftmaxReport:
    """The engine behind :func:`check_softmax` and the pytest marker.  The
    user's model and global state are as before when it returns or raises."""
    __tracebackhide__ = True
    adapter = adapt(model, safe_mode=safe_mode)
    with preserved_state(adapter):
        try:
            return _run_guarded(adapter, settings, seed=seed, namespace=namespace, replay_hint=replay_hint)
        except StopCheck as stop:
            raise stop.error from stop.error.__cause__


def _run_guarded(
    adapter: ModelAdapter,
    settings: CheckSettings,
    *,
    seed: int | None,
    namespace: str | None,
    replay_hint: str | None,
) -> SoftmaxReport:
    __tracebackhide__ = True
    started = time.perf_counter()
    user_inputs = settings.inputs
    is_strategy = isinstance(user_inputs, st.SearchStrategy)
    try:
        specs = list(adapter.input_specs())
    except SoftmaxSetupError:
        if user_inputs is None or is_strategy:
            raise
        adopt = getattr(adapter, "adopt_signature", None)  # optional in the adapter protocol
        if adopt is not None:
            adopt(user_inputs)
        try:
            specs = list(adapter.input_specs())
        except SoftmaxSetupError:
            specs = _specs_from_arrays(user_inputs)
    search = _Search(adapter, settings, select_outputs(adapter.output_specs(), settings.outputs))
    search.sites = site_checker(adapter, settings)

    failure: _FoundViolation | None = None
    used_seed: int | None = None
    if user_inputs is not None and not is_strategy:
        try:
            batches = user_batches(user_inputs, specs, settings.batch_size)
        except ValueError as exc:
            raise SoftmaxSetupError(str(exc)) from None
        preflight(adapter, specs, search.outputs, search._validate_output, settings.batch_size,
                  given=batches[0].arrays)
        for batch in batches:
            violations, _ = search.evaluate(batch)
            if violations:
                failure = _FoundViolation(batch, violations)
                break
    else:
        if is_strategy:
            strategy = cast("st.SearchStrategy[Any]", user_inputs).map(lambda v: GeneratedBatch(tuple(specs), tuple(None for _ in specs),
                                                                 arrange_inputs(v, specs)))
        else:
            preflight(adapter, specs, search.outputs, search._validate_output, settings.batch_size)
            strategy = generated_batches(specs, settings.batch_size)

        @given(strategy)
        def search_for_violation(batch: GeneratedBatch) -> None:
            if is_strategy:
                try:
                    require_finite_inputs(specs, batch.arrays)
                except SoftmaxSetupError as exc:
                    raise StopCheck(exc) from None
            violations, severity = search.evaluate(batch)
            if severity >= TARGET_FLOOR:
                target(_coarse(severity), label="log2 of worst |sum - 1| / tolerance")
            if violations:
                raise _FoundViolation(batch, violations)

        configured = _search_settings(settings, namespace or _default_namespace(adapter, specs))
        runner: Any = search_for_violation
        # The search runs from a known seed, so every failure can name the
        # seed that replays it.  Hypothesis' @seed also turns the example
        # database off: a seed the user forced keeps it off (an exact replay,
        # as in Hypothesis, and it beats derandomize, as in Hypothesis); our
        # own random seed must not, so that a plain rerun replays the saved
        # failure first, hence the settings go on after @seed.  A profile
        # that derandomizes (Hypothesis' "ci" profile, loaded when CI is set)
        # gets no seed of ours: its search is the same on every run.
        if seed is not None:
            used_seed = seed
            configured = hypothesis_settings(configured, database=None)
        elif not configured.derandomize:
            used_seed = random.SystemRandom().randrange(2**32)
        if used_seed is not None:
            runner = hypothesis_seed(used_seed)(runner)
        runner = configured(runner)
        try:
            runner()
        except _FoundViolation as found:
            failure = found
        except FlakyFailure as exc:
            raise SoftmaxSetupError(
                f"model {adapter.name!r} failed on an input and then passed on the same input: "
                "its output changes between two calls (random ops active in inference mode?)"
            ) from exc

    derandomized = bool(user_inputs is None or is_strategy) and used_seed is None
    report = _build_report(adapter, search, failure, used_seed, replay_hint, time.perf_counter() - started,
                           derandomized=derandomized)
    diagnose(adapter, report, failure.batch.arrays if failure else None, search.sites)
    if failure is not None:
        raise SoftmaxInvariantError(report)
    return report


# Errors below a quarter of the tolerance are rounding noise (the default
# tolerance has a margin of 5x or more over correct softmaxes, see
# benchmarks/TOLERANCE.md): climbing them leads nowhere, so they are not
# reported to hypothesis.target.  This also spares healthy models the cost of
# the Pareto front Hypothesis keeps for targets whenever a database is in use,
# which per example costs more than the forward pass of a small model.
TARGET_FLOOR = 0.25


def _coarse(severity: float) -> float:
    """The target score, in whole doublings of (error / tolerance): the search
    still climbs towards larger violations, and examples that differ only by
    noise tie, which keeps the Pareto front small."""
    if not severity > 0:
        return -64.0
    if not math.isfinite(severity):
        return 64.0
    return float(max(-64, min(64, math.floor(math.log2(severity)))))


def _default_namespace(adapter: ModelAdapter, specs: Sequence[InputSpec]) -> str:
    # Not the model's name: Keras numbers unnamed models in creation order,
    # which changes between runs and would hide saved failures.
    return f"check_softmax|{[(s.shape, s.dtype, s.low, s.high) for s in specs]}"


def _build_report(
    adapter: ModelAdapter,
    search: _Search,
    failure: _FoundViolation | None,
    seed: int | None,
    replay_hint: str | None,
    duration: float,
    *,
    derandomized: bool = False,
) -> SoftmaxReport:
    results = [t.result for t in search.trackers.values() if t.result is not None]
    focus = None
    if failure is not None and failure.violations[0].kind != MODEL_RAISED:
        focus = next((r for r in results if r.output == failure.violations[0].output), None)
    focus = focus or (results[0] if results else None)
    replay = ""
    if failure is not None and seed is not None:
        replay = replay_hint.format(seed=seed) if replay_hint else (
            f"the search used seed {seed}: rerun with --hypothesis-seed={seed} "
            "(the failing input is also saved in Hypothesis' example database and replayed first)"
        )
    elif failure is not None and derandomized:
        # The pytest hints read "rerun with: <command> --hypothesis-seed={seed}".
        pytest_hint = bool(replay_hint and replay_hint.startswith("rerun with: "))
        rerun = replay_hint.split(" --hypothesis-seed=")[0] if replay_hint and pytest_hint else "rerun the same check"
        replay = (
            f"{rerun} (the Hypothesis profile in force derandomizes the search, as its 'ci' profile does "
            "when CI is set: every run finds this same failure)"
        )
    return SoftmaxReport(
        model_name=adapter.name,
        passed=failure is None,
        examples=search.examples,
        rows=sum(r.rows for r in results) // max(len(results), 1),
        worst_error=max((r.worst_error for r in results), default=0.0),
        tolerance=focus.tolerance if focus else float("nan"),
        dtype=focus.dtype if focus else "",
        outputs=results,
        violations=list(failure.violations) if failure else [],
        failing_input=failure.batch.summaries() if failure else [],
        replay=replay,
        seed=seed,
        duration=duration,
    )
