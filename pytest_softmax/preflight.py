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

from .adapters.base import InputSpec, ModelAdapter, OutputSpec
from .inputs import ArrayRecipe, concrete_shape
from .model_errors import is_out_of_memory, model_error_message
from .report import SoftmaxSetupError

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
    error = SoftmaxSetupError(
        f"ran out of memory running model {adapter.name!r} on a batch of {rows} rows "
        f"({model_error_message(exc)}); lower the batch size: softmax_batch_size = {max(rows // 4, 1)} "
        f"in the ini file, --softmax-batch-size={max(rows // 4, 1)}, or the marker's batch_size="
    )
    error.__cause__ = exc
    return error


def require_finite_inputs(specs: Sequence[InputSpec], arrays: Sequence[np.ndarray]) -> None:
    """User-given inputs must be finite: a NaN in the input is the test's
    data at fault, not the model."""
    for spec, array in zip(specs, arrays):
        values = np.asarray(array)
        if values.dtype.kind not in "fc":
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SoftmaxSetupError(
                f"inputs= holds values that are not finite: input {spec.name!r} has {int(bad.sum())} "
                f"NaN/Inf values (the first at index {list(first)}: {float(values[first]):g}); the check needs "
                "finite inputs, so fix the test's inputs (the model is not at fault)"
            )


def probe_batch(specs: Sequence[InputSpec], batch_size: int) -> tuple[np.ndarray, ...]:
    """A plain batch every model of this signature should accept."""
    arrays = []
    for spec in specs:
        shape = concrete_shape(spec, batch_size, PROBE_VARIABLE_SIZE)
        recipe = ArrayRecipe("uniform", integer=spec.is_integer) if spec.is_integer else ArrayRecipe("normal")
        arrays.append(recipe.expand(shape, spec.dtype, spec.low, spec.high))
    return tuple(arrays)


def inputs_example(specs: Sequence[InputSpec]) -> str:
    """An ``inputs=`` argument of the model's own shape, for messages."""
    def one(spec: InputSpec) -> str:
        shape = tuple(8 if d is None else d for d in spec.shape)
        return f"np.zeros({(8, *shape)}, {spec.dtype!r})"

    if len(specs) == 1:
        return f"inputs={one(specs[0])}"
    return "inputs={" + ", ".join(f"{s.name!r}: {one(s)}" for s in specs) + "}"


def preflight(
    adapter: ModelAdapter,
    specs: Sequence[InputSpec],
    outputs: Sequence[OutputSpec],
    validate: Callable[[OutputSpec, np.ndarray], object],
    batch_size: int,
    given: Sequence[np.ndarray] | None = None,
) -> None:
    """Run one batch twice (``given``, the user's first batch, or a plain
    generated one) and raise :class:`SoftmaxSetupError` if the model cannot
    be checked.  A model raising on the user's own batch is left to the
    search, which reports it as a failure with that input."""
    if given is not None:
        require_finite_inputs(specs, given)
    batch = tuple(given) if given is not None else probe_batch(specs, batch_size)
    rows = int(batch[0].shape[0]) if batch and np.ndim(batch[0]) else batch_size
    try:
        first = adapter.forward(batch)
    except Exception as exc:
        if is_out_of_memory(exc):
            raise out_of_memory(adapter, rows, exc) from exc
        if given is not None:
            return
        described = "; ".join(f"{s.name!r}: {s.dtype} {list(a.shape)}" for s, a in zip(specs, batch))
        raise SoftmaxSetupError(
            f"model {adapter.name!r} raised on a plain input built from its input signature ({described}): "
            f"{model_error_message(exc)}. If the model needs inputs of another shape, range or dtype than "
            "its signature says, pass inputs= with arrays or a Hypothesis strategy it accepts, e.g. @pytest.mark.softmax_invariant("
            f"{inputs_example(specs)})"
        ) from exc
    for spec in outputs:
        validate(spec, first[spec.index])
    second = adapter.forward(batch)
    for spec in outputs:
        a, b = np.asarray(first[spec.index]), np.asarray(second[spec.index])
        if not np.array_equal(a, b, equal_nan=True):
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            largest = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
            raise SoftmaxSetupError(
                f"model {adapter.name!r} is not deterministic in inference mode: two calls on the same input "
                f"gave different values on output {spec.name!r} ({spec.layer_name}: {spec.layer_class}), "
                f"differing by up to {largest:.3g}. A layer draws random numbers with training=False (a "
                "custom layer calling keras.random or tf.random?); make it honour `training`, "
                "or check a deterministic variant of the model"
            )
