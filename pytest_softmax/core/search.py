"""The search: generate input batches, run the model, measure the invariant,
and report what was found.

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
import unittest
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, example, given, target
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure, Unsatisfiable

from ..adapters.base import (
    InputSpec,
    ModelAdapter,
    OutputChoosing,
    OutputSpec,
    RunDescribing,
    SignatureAdopting,
    SignatureFromExample,
    StatePreserving,
    explain_error,
)
from ..adapters.registry import adapt
from ..errors import SoftmaxInvariantError, SoftmaxSetupError
from ..settings import CheckSettings, checking_in, how_to_set
from ..tolerance import normalize_dtype_name
from ..adapters.base.arrays import as_float64, is_float
from .database import NamespacedDatabase
from .diagnosis.diagnose import diagnose
from .inputs.batches import GeneratedBatch, arrange_inputs, user_batches
from .inputs.edges import edge_batches, narrowed
from .inputs.recipes import MAX_VARIABLE_DIM
from .inputs.sizing import require_batch_fits
from .inputs.strategies import generated_batches
from .invariants import BatchCheck, check_batch, violations_of, without_masked_rows
from .kinds import MODEL_RAISED
from .preflight import StopCheck, out_of_memory, preflight, require_finite_inputs
from .render import replay_text, violation_headline
from .report import OutputResult, Replay, SoftmaxReport, Violation
from .single_element import fixed_single_element, single_element_violation
from .sites import SiteChecker, site_checker
from .vacuous import (
    current_profile_name,
    no_examples_error,
    require_drawn_rows,
    require_rows_seen,
    require_some_outputs,
    strategy_drew_nothing,
)
from .weights import inspect_weights

# Errors below a quarter of the tolerance are rounding noise (the default
# tolerance has a margin of 5x or more over correct softmaxes, see
# benchmarks/TOLERANCE.md): climbing them leads nowhere, so they are not
# reported to hypothesis.target.  This also spares healthy models the cost of
# the Pareto front Hypothesis keeps for targets whenever a database is in use,
# which per example costs more than the forward pass of a small model.
TARGET_FLOOR = 0.25


def validate_output(spec: OutputSpec, output: np.ndarray, axis: int) -> tuple[str, int]:
    """The output's dtype name and class count, or a setup error saying why
    it cannot be a distribution along ``axis``."""
    if not is_float(output.dtype):
        raise SoftmaxSetupError(
            f"{spec.label} has dtype {output.dtype.name}; only float outputs can be probability "
            f"distributions: choose the outputs to check with {_outputs_fix()}"
        )
    if output.ndim < 2:
        raise SoftmaxSetupError(
            f"{spec.label} has shape {list(output.shape)} (no class axis besides the batch); "
            f"choose the outputs to check with {_outputs_fix()}"
        )
    if not -output.ndim <= axis < output.ndim:
        raise SoftmaxSetupError(f"axis {axis} is out of range for {spec.label} of shape {list(output.shape)}; "
                                f"choose the class axis with {how_to_set('axis', '-1')}")
    # Size 1 along the axis is judged by the search (core/single_element.py):
    # a failure when the model fixes it, nothing when a variable length is 1.
    try:
        dtype = normalize_dtype_name(output.dtype)
    except ValueError as exc:  # a float the tolerance table does not know (float128)
        raise SoftmaxSetupError(f"{spec.label}: {exc}; cast the output to float32 or float64 in the model") from None
    return dtype, int(output.shape[axis])


def _outputs_fix() -> str:
    return how_to_set("outputs", "['probs']", "probs")


@dataclass
class _OutputTracker:
    """Worst values seen on one output over every example."""

    spec: OutputSpec
    result: OutputResult | None = None

    def add(self, check: BatchCheck, dtype: str, settings: CheckSettings) -> None:
        previous = self.result or OutputResult(
            output=self.spec.name, layer_name=self.spec.layer_name, layer_class=self.spec.layer_class,
            dtype=dtype, axis=settings.axis, n_classes=check.n_classes,
            atol=settings.atol_for(dtype, check.n_classes), rtol=settings.rtol, tolerance=check.tolerance,
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
            row_error_counts=_add_counts(previous.row_error_counts, check.error_counts),
        )


def _add_counts(total: tuple[int, ...], more: tuple[int, ...]) -> tuple[int, ...]:
    if not total:
        return more
    return tuple(a + b for a, b in zip(total, more)) if more else total


@dataclass
class _Search:
    """State of one check: the adapter, what is checked, and what was seen."""

    adapter: ModelAdapter
    settings: CheckSettings
    outputs: list[OutputSpec]
    trackers: dict[str, _OutputTracker] = field(default_factory=dict)
    # Generated examples (what max_examples bounds); the edge phase's
    # batches, and those narrowing a failing one, are counted apart.
    examples: int = 0
    edge_batches: int = 0
    # Checks softmax sites inside the model in the same pass; None (plain
    # forward) unless the model has such sites.
    sites: SiteChecker | None = None
    # What validate_output and the tolerance said, per output dtype and
    # shape: the same for every example of a fixed shape, so worked out once
    # (each costs a dtype-name normalization per example otherwise).
    _validated: dict[tuple[int, str, tuple[int, ...]], tuple[str, int]] = field(default_factory=dict)
    _tolerances: dict[tuple[str, int], float] = field(default_factory=dict)

    def validate(self, spec: OutputSpec, output: np.ndarray) -> tuple[str, int]:
        key = (spec.index, output.dtype.str, output.shape)
        known = self._validated.get(key)
        if known is None:
            known = self._validated[key] = validate_output(spec, output, self.settings.axis)
        return known

    def tolerance_for(self, dtype: str, n_classes: int) -> float:
        known = self._tolerances.get((dtype, n_classes))
        if known is None:
            known = self._tolerances[(dtype, n_classes)] = self.settings.tolerance_for(dtype, n_classes)
        return known

    def evaluate(self, batch: GeneratedBatch, *, edge: bool = False) -> tuple[list[Violation], float]:
        """Run one batch; return its violations and its severity."""
        if edge:
            self.edge_batches += 1
        else:
            self.examples += 1
        try:
            if self.sites is not None:
                results, site_found, severity = self.sites.forward(batch.arrays)
            else:
                results, site_found, severity = self.adapter.forward(batch.arrays), [], 0.0
        except Exception as exc:  # the model's own error, shown to the user
            return [self._model_raised(batch, exc)], float("inf")
        found: list[Violation] = []
        for spec in self.outputs:
            violations, output_severity = self._check_output(spec, results[spec.index])
            found.extend(violations)
            severity = max(severity, output_severity)
        return found + site_found, severity

    def _check_output(self, spec: OutputSpec, output: np.ndarray) -> tuple[list[Violation], float]:
        try:
            dtype, n_classes = self.validate(spec, output)
        except SoftmaxSetupError as exc:  # not a failure for Hypothesis to shrink
            raise StopCheck(exc) from exc
        axis, shape = self.settings.axis, output.shape
        if spec.log_probabilities:  # exp(log_softmax) is the distribution
            output = np.exp(as_float64(output))
        if self.settings.allow_masked_rows:  # one row per distribution, class axis last
            output, axis = without_masked_rows(output, axis), -1
        check = check_batch(output, axis, self.tolerance_for(dtype, n_classes))
        self.trackers.setdefault(spec.name, _OutputTracker(spec)).add(check, dtype, self.settings)
        if n_classes == 1 and fixed_single_element(spec.shape, (self.settings.axis,), shape):
            return [single_element_violation(
                output=spec.name, layer_name=spec.layer_name, layer_class=spec.layer_class, dtype=dtype,
                axis=self.settings.axis, rows=check.rows, static_shape=spec.shape, axes=(self.settings.axis,),
                actual_shape=shape,
            )], float("inf")
        found = violations_of(check, output, axis=axis, name=spec.name, layer_name=spec.layer_name,
                              layer_class=spec.layer_class, dtype=dtype)
        return [replace(v, axis=self.settings.axis) for v in found], check.severity

    def _model_raised(self, batch: GeneratedBatch, exc: Exception) -> Violation:
        failure = explain_error(self.adapter, exc)
        if failure.out_of_memory:
            raise StopCheck(out_of_memory(self.adapter, int(batch.arrays[0].shape[0]), exc)) from exc
        return Violation(
            kind=MODEL_RAISED, output="", layer_name="", layer_class="", dtype="", axis=self.settings.axis,
            n_classes=0, tolerance=0.0, error=float("inf"), rows_violating=0, rows=0, message=failure.message,
        )


class _FoundViolation(Exception):
    """Raised inside the Hypothesis search so that it shrinks the input."""

    def __init__(self, batch: GeneratedBatch, violations: list[Violation]) -> None:
        super().__init__(violation_headline(violations[0]))
        self.batch = batch
        self.violations = violations


@dataclass(frozen=True)
class _Outcome:
    """What a search ended with: the failure (if any) and how it can be
    replayed (``derandomized``: a failure found without a seed of ours)."""

    failure: _FoundViolation | None = None
    seed: int | None = None
    derandomized: bool = False


def select_outputs(specs: Sequence[OutputSpec], wanted: Any) -> list[OutputSpec]:
    if wanted is None:
        return list(specs)
    require_some_outputs(wanted, specs)
    chosen = []
    for key in (wanted if isinstance(wanted, (list, tuple)) else [wanted]):
        match = [s for s in specs if (s.name == key if isinstance(key, str) else s.index == key)]
        if not match:
            names = ", ".join(f"{s.index}: {s.name!r}" for s in specs)
            raise SoftmaxSetupError(f"the outputs to check name {key!r}, which the model does not have; its "
                                    f"outputs are {names}: choose among them with {_outputs_fix()}")
        chosen.extend(match)
    return chosen


def _outputs_to_check(adapter: ModelAdapter, wanted: Any) -> list[OutputSpec]:
    """The outputs ``outputs=`` names, else those the adapter says are
    distributions (a PyTorch module's softmax outputs, not its logits), else all."""
    if wanted is None and isinstance(adapter, OutputChoosing):
        return list(adapter.default_outputs())
    return select_outputs(adapter.output_specs(), wanted)


def run_check(model: Any, settings: CheckSettings, *, seed: int | None = None, namespace: str | None = None,
              replay: Replay | None = None) -> SoftmaxReport:
    """The engine behind :func:`check_softmax` and the pytest marker.  The
    user's model and global state are as before when it returns or raises."""
    __tracebackhide__ = True
    with checking_in(settings.mode):  # messages name fixes the caller's mode can take
        adapter = adapt(model, safe_mode=settings.safe_mode)
        with _preserved_state(adapter):
            try:
                return _run(adapter, settings, seed=seed, namespace=namespace, replay=replay or Replay())
            except StopCheck as stop:
                raise stop.error from stop.error.__cause__


def _preserved_state(adapter: ModelAdapter) -> AbstractContextManager[object]:
    return adapter.preserved_state() if isinstance(adapter, StatePreserving) else nullcontext()


def _run(adapter: ModelAdapter, settings: CheckSettings, *, seed: int | None, namespace: str | None,
         replay: Replay) -> SoftmaxReport:
    __tracebackhide__ = True
    started = time.perf_counter()
    weights = inspect_weights(adapter)  # NaN fails here; infinite weights are judged by the outputs
    if weights.failure is not None:
        raise SoftmaxInvariantError(weights.failure)
    user_inputs = settings.inputs
    is_strategy = isinstance(user_inputs, st.SearchStrategy)
    if isinstance(adapter, SignatureFromExample) and user_inputs is not None and not is_strategy:
        # inputs= is the example a signature is learned from: the search generates batches like it.
        adapter.learn_signature(user_inputs)
        user_inputs = None
    specs = _input_specs(adapter, None if is_strategy else user_inputs)
    search = _Search(adapter, settings, _outputs_to_check(adapter, settings.outputs))
    search.sites = site_checker(adapter, settings)
    if user_inputs is not None and not is_strategy:
        outcome = _check_given(search, specs, user_inputs)
    else:
        if not is_strategy:
            require_batch_fits(adapter.name, specs, settings.batch_size, MAX_VARIABLE_DIM)
            preflight(adapter, specs, search.outputs, search.validate, settings.batch_size, settings=settings)
        outcome = _search(search, specs, user_inputs if is_strategy else None, seed,
                          namespace or _default_namespace(specs))
    if outcome.failure is None:
        require_rows_seen(search.outputs, {name: t.result.rows if t.result else 0
                                           for name, t in search.trackers.items()}, search.examples,
                          masked_rows_allowed=settings.allow_masked_rows)
    report = _build_report(search, outcome, replay, time.perf_counter() - started)
    failure = outcome.failure
    diagnose(adapter, report, failure.batch.arrays if failure else None, search.sites)
    weights.annotate(report)
    if failure is not None:
        raise SoftmaxInvariantError(report)
    return report


def _input_specs(adapter: ModelAdapter, given: Any) -> list[InputSpec]:
    """The model's input signature; a model without one (a subclassed model
    never called) takes it from the test's ``inputs=`` arrays."""
    try:
        return list(adapter.input_specs())
    except SoftmaxSetupError:
        if given is None:
            raise
    if isinstance(adapter, SignatureAdopting):
        adapter.adopt_signature(given)
        try:
            return list(adapter.input_specs())
        except SoftmaxSetupError:
            pass
    arrays = given if isinstance(given, (list, tuple)) else [given]
    return [InputSpec(f"input_{i}", tuple(np.asarray(a).shape[1:]), np.asarray(a).dtype.name)
            for i, a in enumerate(arrays)]


def _check_given(search: _Search, specs: list[InputSpec], user_inputs: Any) -> _Outcome:
    """Run the test's own arrays, batch by batch, stopping at the first failure."""
    try:
        batches = user_batches(user_inputs, specs, search.settings.batch_size)
    except ValueError as exc:
        raise SoftmaxSetupError(str(exc)) from None
    preflight(search.adapter, specs, search.outputs, search.validate, search.settings.batch_size,
              given=batches[0].arrays, settings=search.settings)
    for batch in batches:
        violations, _ = search.evaluate(batch)
        if violations:
            return _Outcome(_FoundViolation(batch, violations))
    return _Outcome()


def _search(search: _Search, specs: list[InputSpec], strategy: Any, seed: int | None, namespace: str) -> _Outcome:
    """Let Hypothesis search generated (or the test's strategy's) batches."""
    if strategy is not None:
        batches = strategy.map(lambda v: GeneratedBatch(tuple(specs), tuple(None for _ in specs),
                                                        arrange_inputs(v, specs)))
    else:
        batches = generated_batches(specs, search.settings.batch_size)
    # The edge phase: Hypothesis' explicit examples, run before the database
    # and the generated ones; they do not count against max_examples.
    edges = edge_batches(specs, search.settings.batch_size) if strategy is None else []
    test = _search_test(search, specs, batches, check_inputs=strategy is not None, edges=edges)
    configured = _search_settings(search.settings, namespace)
    used_seed = _search_seed(seed, configured)
    if seed is not None:
        # A seed the user forced is an exact replay, as in Hypothesis: no database.
        configured = hypothesis_settings(configured, database=None)
    runner: Callable[[], None] = test
    # Hypothesis' @seed turns the example database off; our own random seed
    # must not, so that a plain rerun replays the saved failure first: the
    # settings go on after @seed.
    if used_seed is not None:
        runner = hypothesis_seed(used_seed)(runner)
    runner = configured(runner)
    try:
        runner()
    except _FoundViolation as found:
        return _Outcome(found, used_seed, derandomized=used_seed is None)
    except unittest.SkipTest:  # Hypothesis' "told to run no test cases": said in our words below
        pass
    except Unsatisfiable as exc:  # only the test's own strategy can draw nothing
        raise strategy_drew_nothing(exc) from exc
    except FlakyFailure as exc:
        raise SoftmaxSetupError(
            f"model {search.adapter.name!r} failed on an input and then passed on the same input: "
            "its output changes between two calls (random ops active in inference mode?)"
        ) from exc
    # Whatever the cause: a check that generated nothing proves nothing (the
    # edge phase alone is a fixed catalogue, not a search).
    if search.examples == 0:
        raise no_examples_error(configured, current_profile_name())
    return _Outcome(None, used_seed)


def _search_seed(forced: int | None, configured: hypothesis_settings) -> int | None:
    """The seed the search runs from, so every failure can name the seed
    that replays it.  A forced seed beats derandomize (as in Hypothesis); a
    profile that derandomizes (Hypothesis' "ci" profile, loaded when CI is
    set) gets no seed of ours: its search is the same on every run."""
    if forced is not None:
        return forced
    if configured.derandomize:
        return None
    return random.SystemRandom().randrange(2**32)


def _search_test(search: _Search, specs: list[InputSpec], batches: st.SearchStrategy[GeneratedBatch],
                 *, check_inputs: bool, edges: Sequence[GeneratedBatch] = ()) -> Callable[[], None]:
    edge_ids = {id(batch) for batch in edges}

    def search_for_violation(batch: GeneratedBatch) -> None:
        if check_inputs:
            try:
                require_drawn_rows(min((int(a.shape[0]) if a.ndim else 1 for a in batch.arrays), default=1))
                require_finite_inputs(specs, batch.arrays)
            except SoftmaxSetupError as exc:
                raise StopCheck(exc) from None
        edge = id(batch) in edge_ids
        violations, severity = search.evaluate(batch, edge=edge)
        if severity >= TARGET_FLOOR:
            target(_coarse(severity), label="log2 of worst |sum - 1| / tolerance")
        if violations:
            if edge:
                batch, violations = _worst_failing_row(search, batch, violations, severity)
            raise _FoundViolation(batch, violations)

    test: Callable[..., None] = given(batches)(search_for_violation)
    for batch in reversed(edges):  # @example runs in the order the decorators are written
        test = example(batch)(test)
    return test


def _worst_failing_row(search: _Search, batch: GeneratedBatch, violations: list[Violation],
                       severity: float) -> tuple[GeneratedBatch, list[Violation]]:
    """A failing edge batch narrowed to its worst row repeated, with its
    violations; the whole batch when that row does not fail on its own."""
    seen: dict[int, list[Violation]] = {}

    def evaluate(candidate: GeneratedBatch) -> tuple[bool, float]:
        found, candidate_severity = search.evaluate(candidate, edge=True)
        seen[id(candidate)] = found
        return bool(found), candidate_severity

    single = narrowed(batch, severity, evaluate)
    return (single, seen[id(single)]) if single is not None else (batch, violations)


def _search_settings(settings: CheckSettings, namespace: str) -> hypothesis_settings:
    profile = hypothesis_settings()  # the loaded profile's values, which the result inherits
    database = profile.database
    return hypothesis_settings(
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


def _coarse(severity: float) -> float:
    """The target score, in whole doublings of (error / tolerance): the search
    still climbs towards larger violations, and examples that differ only by
    noise tie, which keeps the Pareto front small."""
    if not severity > 0:
        return -64.0
    if not math.isfinite(severity):
        return 64.0
    return float(max(-64, min(64, math.floor(math.log2(severity)))))


def _default_namespace(specs: Sequence[InputSpec]) -> str:
    # Not the model's name: Keras numbers unnamed models in creation order,
    # which changes between runs and would hide saved failures.
    return f"check_softmax|{[(s.shape, s.dtype, s.low, s.high) + _domain_key(s) for s in specs]}"


def _domain_key(spec: InputSpec) -> tuple[str, ...]:
    # Saved examples of an input that is now a mask were drawn as other
    # recipes; keep the old namespace for inputs whose domain adds nothing.
    return (spec.domain.kind,) if spec.is_mask else ()


def _build_report(search: _Search, outcome: _Outcome, replay: Replay, duration: float) -> SoftmaxReport:
    results = [t.result for t in search.trackers.values() if t.result is not None]
    failure = outcome.failure
    focus = _focus(results, failure)
    return SoftmaxReport(
        model_name=search.adapter.name,
        passed=failure is None,
        examples=search.examples,
        edge_batches=search.edge_batches,
        rows=sum(r.rows for r in results) // max(len(results), 1),
        worst_error=max((r.worst_error for r in results), default=0.0),
        tolerance=focus.tolerance if focus else float("nan"),
        dtype=focus.dtype if focus else "",
        outputs=results,
        violations=list(failure.violations) if failure else [],
        failing_input=failure.batch.summaries() if failure else [],
        replay=replay_text(replay, outcome.seed) if failure and (outcome.seed is not None
                                                                  or outcome.derandomized) else "",
        seed=outcome.seed,
        duration=duration,
        **_run_description(search.adapter),
    )


def _run_description(adapter: ModelAdapter) -> dict[str, Any]:
    """The backend that ran the model and the adapter's notes on how."""
    if not isinstance(adapter, RunDescribing):
        return {}
    return {"backend": adapter.backend, "notes": list(adapter.run_notes())}


def _focus(results: list[OutputResult], failure: _FoundViolation | None) -> OutputResult | None:
    """The output the report's figures describe: the failing one, else the first."""
    if failure is not None and failure.violations[0].kind != MODEL_RAISED:
        failing = next((r for r in results if r.output == failure.violations[0].output), None)
        if failing is not None:
            return failing
    return results[0] if results else None
