"""A preflight that passed is not run again for the same model object,
weights, batch, outputs and axis; anything else that changed runs it again,
and a preflight that failed is never remembered.  In-process, with a
stand-in adapter that counts its passes."""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numpy as np
import pytest

from pytest_softmax import SoftmaxInvariantError, SoftmaxSetupError
from pytest_softmax.adapters.base import InputSpec, OutputSpec
from pytest_softmax.core import passed_preflights
from pytest_softmax.core.preflight import preflight
from pytest_softmax.settings import CheckSettings

SPEC = InputSpec("x", (6,), "float32")
OUTPUTS = [OutputSpec("probs", 0, "probs", "Dense")]
SETTINGS = CheckSettings(atol=None, rtol=0.0, max_examples=5, batch_size=4)


class Model:
    """Stands for a framework's model object (held weakly)."""


class Counting:
    """Compiled forward: uniform rows; model(x): ``eager`` rows.  Counts both."""

    name = "counting"

    def __init__(self, model: object, weights: str, eager: str = "uniform", varies: bool = False) -> None:
        self.model, self.weights, self.eager, self.varies = model, weights, eager, varies
        self.passes = self.eager_calls = 0

    def input_specs(self) -> list[InputSpec]:
        return [SPEC]

    def output_specs(self) -> list[OutputSpec]:
        return OUTPUTS

    def forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.passes += 1
        rows = np.full((len(inputs[0]), 3), 1 / 3, "float32")
        if self.varies:  # a model that draws random numbers in inference
            rows[0] = np.random.default_rng().dirichlet(np.ones(3)).astype("float32")
        return [rows]

    def eager_forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        self.eager_calls += 1
        rows = np.full((len(inputs[0]), 3), 1 / 3, "float32")
        return [rows if self.eager == "uniform" else rows * np.nan]

    def compiled_description(self) -> str:
        return "stand-in jit"

    def eager_probe(self, inputs: Sequence[np.ndarray]) -> object:
        raise AssertionError("never probed here")

    def fingerprint(self) -> tuple[object, str] | None:
        return (self.model, self.weights)


def run(adapter: Counting, *, rows: int = 4, settings: CheckSettings = SETTINGS) -> None:
    preflight(adapter, [SPEC], OUTPUTS, lambda spec, output: ("float32", 3), rows, settings=settings)


def test_a_passed_preflight_is_not_run_again_for_the_same_model_and_weights() -> None:
    model = Model()
    first, again = Counting(model, "w1"), Counting(model, "w1")
    run(first)
    run(again)
    assert (first.passes, first.eager_calls) == (2, 1)
    assert (again.passes, again.eager_calls) == (0, 0)


@pytest.mark.parametrize("change", ["weights", "batch", "model", "axis"])
def test_changed_weights_batch_model_or_axis_run_it_again(change: str) -> None:
    model = Model()
    run(Counting(model, "w1"))
    again = Counting(Model() if change == "model" else model, "w2" if change == "weights" else "w1")
    settings = CheckSettings(atol=None, rtol=0.0, max_examples=5, batch_size=4, axis=0) if change == "axis" \
        else SETTINGS
    run(again, rows=3 if change == "batch" else 4, settings=settings)
    assert (again.passes, again.eager_calls) == (2, 1)


def test_new_weights_that_make_the_compiled_path_hide_nan_fail() -> None:
    model = Model()
    run(Counting(model, "healthy"))
    with pytest.raises(SoftmaxInvariantError, match="hidden by|hides the NaN"):
        run(Counting(model, "diverged", eager="nan"))


def test_a_failed_preflight_is_never_remembered() -> None:
    model = Model()
    for _ in range(2):
        adapter = Counting(model, "w1", eager="nan")
        with pytest.raises(SoftmaxInvariantError):
            run(adapter)
        assert adapter.eager_calls == 1
    for _ in range(2):
        adapter = Counting(model, "w2", varies=True)
        with pytest.raises(SoftmaxSetupError, match="not deterministic"):
            run(adapter)
        assert adapter.passes == 2


def test_without_a_fingerprint_the_preflight_runs_every_time() -> None:
    class Unprinted(Counting):
        def fingerprint(self) -> tuple[object, str] | None:
            return None

    model = Model()
    for _ in range(2):
        adapter = Unprinted(model, "w1")
        run(adapter)
        assert (adapter.passes, adapter.eager_calls) == (2, 1)


def test_the_memory_dies_with_the_model() -> None:
    model = Model()
    run(Counting(model, "w1"))
    assert model in passed_preflights._passed
    del model
    gc.collect()
    assert not any(isinstance(key, Model) for key in passed_preflights._passed.keys())


@pytest.mark.parametrize("model", [["an", "unhashable", "model"], 42], ids=["unhashable", "not-weakly-held"])
def test_a_model_object_the_memory_cannot_hold_runs_the_preflight_every_time(model: object) -> None:
    for _ in range(2):
        adapter = Counting(model, "w1")
        run(adapter)
        assert (adapter.passes, adapter.eager_calls) == (2, 1)


def test_a_batch_is_known_by_its_values_shape_and_dtype_not_its_memory_layout() -> None:
    import hashlib

    from pytest_softmax.adapters.base.arrays import add_to_digest

    def digest(array: np.ndarray, label: str = "") -> str:
        made = hashlib.sha1(usedforsecurity=False)
        add_to_digest(made, array, label)
        return made.hexdigest()

    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert digest(np.asfortranarray(values)) == digest(values) == digest(values.copy())
    assert digest(values.reshape(4, 3)) != digest(values)  # the same bytes, another shape
    assert digest(values.astype(np.int32)) != digest(values)
    assert digest(values, "kernel") != digest(values, "bias")
    changed = values.copy()
    changed[2, 3] = -1
    assert digest(changed) != digest(values)
