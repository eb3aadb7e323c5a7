"""Before the search: can this model be checked at all, and is it honest?

One plain batch, run twice, answers cheaply what Hypothesis would otherwise
discover slowly or misreport: inputs the generator cannot make for this
model, outputs that cannot be distributions, a model whose output changes
between two calls on the same input (Hypothesis would call that "flaky"),
user inputs that are not finite, and a batch that does not fit in memory.
Each becomes a :class:`SoftmaxSetupError` naming the thing at fault and the
fix; the original exception stays chained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..adapters.base import InputSpec, ModelAdapter, OutputSpec, StateCarrying, explain_error
from ..errors import SoftmaxSetupError
from ..settings import CheckSettings, how_to_set
from ..adapters.base.arrays import as_float64, can_be_nonfinite
from .compiled_path import preflight_summaries, require_same_finiteness
from .inputs.recipes import ArrayRecipe, concrete_shape, variable_size_limit
from .passed_preflights import PassedPreflight

# A length a softmax over a variable axis means something at (at least 2),
# short enough to stay cheap; a position embedding's length bounds it.
PROBE_VARIABLE_SIZE = 4


class StopCheck(BaseException):
    """Ends a check at once from inside the Hypothesis search.

    A ``BaseException``, like ``KeyboardInterrupt``, so Hypothesis does not
    treat it as a failure to shrink (rerunning a batch that ran out of
    memory, or re-reporting a setup problem, a hundred times)."""

    def __init__(self, error: SoftmaxSetupError) -> None:
        super().__init__(str(error))
        self.error = error


def out_of_memory(adapter: ModelAdapter, rows: int, exc: BaseException) -> SoftmaxSetupError:
    smaller = max(rows // 4, 1)
    error = SoftmaxSetupError(
        f"ran out of memory running model {adapter.name!r} on a batch of {rows} rows "
        f"({explain_error(adapter, exc).message}); lower the batch size: {how_to_set('batch_size', str(smaller))}"
    )
    error.__cause__ = exc
    return error


def require_finite_inputs(specs: Sequence[InputSpec], arrays: Sequence[np.ndarray]) -> None:
    """User-given inputs must be finite: a NaN in the input is the test's
    data at fault, not the model."""
    for spec, array in zip(specs, arrays):
        values = np.asarray(array)
        if not can_be_nonfinite(values.dtype):
            continue
        bad = ~np.isfinite(values if values.dtype.kind == "c" else as_float64(values))
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SoftmaxSetupError(
                f"inputs= holds values that are not finite: input {spec.name!r} has {int(bad.sum())} "
                f"NaN/Inf values (the first at index {list(first)}: {values[first]}); the check needs "
                "finite inputs, so fix the test's inputs (the model is not at fault)"
            )


def probe_batch(specs: Sequence[InputSpec], batch_size: int) -> tuple[np.ndarray, ...]:
    """A plain batch every model of this signature should accept."""
    size = min(PROBE_VARIABLE_SIZE, variable_size_limit(specs))
    return tuple(recipe.expand(concrete_shape(spec, batch_size, size), spec.dtype, spec.low, spec.high)
                 for spec, recipe in zip(specs, probe_recipes(specs)))


def probe_recipes(specs: Sequence[InputSpec]) -> list[ArrayRecipe]:
    """How :func:`probe_batch` fills each input: masks of ones, ids spread
    over their range, normal values."""
    def recipe(spec: InputSpec) -> ArrayRecipe:
        if spec.is_mask:
            return ArrayRecipe("ones", integer=spec.is_integer)
        if spec.is_ids:
            return ArrayRecipe("uniform", integer=True)
        return ArrayRecipe("normal")

    return [recipe(spec) for spec in specs]


def inputs_example(specs: Sequence[InputSpec], shapes: Sequence[tuple[int, ...]] | None = None) -> str:
    """An ``inputs=`` argument for messages: the shapes given (those of the
    batch that failed) or the signature's, filled as each input's domain
    says (ids within the vocabulary, masks of ones)."""
    def one(spec: InputSpec, shape: tuple[int, ...]) -> str:
        if spec.is_mask:
            return f"np.ones({shape}, {spec.dtype!r})"
        if spec.is_ids and spec.low is not None and spec.high is not None:
            return f"np.random.default_rng(0).integers({spec.low}, {spec.high}, {shape}).astype({spec.dtype!r})"
        return f"np.zeros({shape}, {spec.dtype!r})"

    if shapes is None:
        shapes = [(8, *(8 if d is None else d for d in spec.shape)) for spec in specs]
    if len(specs) == 1:
        return f"inputs={one(specs[0], tuple(shapes[0]))}"
    return "inputs={" + ", ".join(f"{s.name!r}: {one(s, tuple(shape))}" for s, shape in zip(specs, shapes)) + "}"


def describe_inputs(specs: Sequence[InputSpec], batch: Sequence[np.ndarray]) -> str:
    """Each input's dtype, the shape fed and its inferred domain."""
    def one(spec: InputSpec, array: np.ndarray) -> str:
        domain = spec.describe_domain()
        return f"{spec.name!r}: {spec.dtype} {list(np.shape(array))}" + (f", {domain}" if domain else "")

    return "; ".join(one(s, a) for s, a in zip(specs, batch))


def preflight(
    adapter: ModelAdapter,
    specs: Sequence[InputSpec],
    outputs: Sequence[OutputSpec],
    validate: Callable[[OutputSpec, np.ndarray], object],
    batch_size: int,
    given: Sequence[np.ndarray] | None = None,
    settings: CheckSettings | None = None,
) -> None:
    """Run one batch twice (``given``, the user's first batch, or a plain
    generated one) and raise :class:`SoftmaxSetupError` if the model cannot
    be checked.  A model raising on the user's own batch is left to the
    search, which reports it as a failure with that input.  With
    ``settings``, the batch is also run once as ``model(x)`` runs it: a
    compiled forward that hides NaN (or makes it) fails the check
    (:class:`SoftmaxInvariantError`, see :mod:`.compiled_path`).  A
    preflight that passed on this model, weights and batch before is not run
    again (see :mod:`.passed_preflights`)."""
    if given is not None:
        require_finite_inputs(specs, given)
    batch = tuple(given) if given is not None else probe_batch(specs, batch_size)
    passed = PassedPreflight.of(adapter, outputs, batch, settings.axis) if settings is not None else None
    if passed is not None and passed.passed_before():
        return
    first = _first_run(adapter, specs, batch, batch_size, user_given=given is not None)
    if first is None:
        return
    for spec in outputs:
        validate(spec, first[spec.index])
    _require_deterministic(adapter, outputs, first, adapter.forward(batch))
    if settings is not None:
        recipes = None if given is not None else probe_recipes(specs)
        require_same_finiteness(adapter, outputs, batch, first, settings,
                                lambda: preflight_summaries(specs, batch, recipes))
    if passed is not None:
        passed.remember()


def _first_run(adapter: ModelAdapter, specs: Sequence[InputSpec], batch: tuple[np.ndarray, ...],
               batch_size: int, *, user_given: bool) -> list[np.ndarray] | None:
    """The outputs on the plain batch; ``None`` when the user's own batch
    raised (the search reports that with its input)."""
    try:
        return adapter.forward(batch)
    except Exception as exc:
        failure = explain_error(adapter, exc)
        if failure.out_of_memory:
            rows = int(batch[0].shape[0]) if batch and np.ndim(batch[0]) else batch_size
            raise out_of_memory(adapter, rows, exc) from exc
        if user_given:
            return None
        described = describe_inputs(specs, batch)
        stateful = adapter.stateful_layers() if isinstance(adapter, StateCarrying) else []
        if stateful:
            name, cls = stateful[0]
            described += (f"; layer {name!r} ({cls}) is stateful and takes only the batch size it was built "
                          f"with: set it with {how_to_set('batch_size', 'N')}")
        shapes = [tuple(int(d) for d in np.shape(a)) for a in batch]
        raise SoftmaxSetupError(
            f"model {adapter.name!r} raised on a plain input built from its input signature and the domains "
            f"inferred from its graph ({described}): "
            f"{failure.message}. If the model needs inputs of another shape, range or dtype than "
            "that, pass inputs= with arrays or a Hypothesis strategy it accepts, e.g. "
            f"{how_to_set('inputs', inputs_example(specs, shapes).removeprefix('inputs='))}"
        ) from exc


def _require_deterministic(adapter: ModelAdapter, outputs: Sequence[OutputSpec], first: list[np.ndarray],
                           second: list[np.ndarray]) -> None:
    for spec in outputs:
        a, b = np.asarray(first[spec.index]), np.asarray(second[spec.index])
        if np.array_equal(a, b, equal_nan=True):
            continue
        diff = np.abs(as_float64(a) - as_float64(b))
        largest = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
        stateful = adapter.stateful_layers() if isinstance(adapter, StateCarrying) else []
        if stateful:
            raise carried_state_error(adapter.name, spec.label, largest, stateful)
        raise SoftmaxSetupError(
            f"model {adapter.name!r} is not deterministic in inference mode: two calls on the same input "
            f"gave different values on {spec.label}, differing by up to {largest:.3g}. A layer draws random "
            "numbers with training=False (a custom layer calling keras.random or tf.random?); make it "
            "honour `training`, or check a deterministic variant of the model"
        )


def carried_state_error(model: str, label: str, largest: float, layers: Sequence[tuple[str, str]]) -> SoftmaxSetupError:
    """Two calls differ because a layer carries its state over, not because of randomness."""
    named = ", ".join(f"{name!r} ({cls})" for name, cls in layers)
    return SoftmaxSetupError(
        f"model {model!r} gives different values on {label} for two calls on the same input (differing by up "
        f"to {largest:.3g}) because layer {named} is stateful: it carries its state from one call to the "
        "next, so each call starts where the last one ended (a check does not need carried state): reset the "
        "states before each call (layer.reset_state()), or check a copy of the model built with stateful=False"
    )
