"""Weights judged by what they do, and nothing left behind (issue 18).

A NaN in a variable fails before any input is tried; an infinite value is
left to the outputs (a -inf bias entry switching a class off is healthy),
noted when the check passes and named when it fails.  After a check the
process's random state is as before, even when the model created Keras'
global generator during the check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

from pytest_softmax import SoftmaxInvariantError, SoftmaxReport, check_softmax
from pytest_softmax.adapters.base import NonFiniteWeight
from pytest_softmax.core.kinds import WEIGHTS_NOT_FINITE
from pytest_softmax.core.weights import inspect_weights

SEEDS = (1, 22, 333, 4444)
RETIRED = 2  # the class the -inf bias switches off


def retired_class(bias_entry: float) -> keras.Model:
    """A classifier whose output Dense has ``bias_entry`` at one class: -inf
    is the usual way to switch a retired class off."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(4, activation="softmax", name="probs")], name="retired_class")
    bias = np.zeros(4, "float32")
    bias[RETIRED] = bias_entry
    model.get_layer("probs").bias.assign(bias)
    return model


INFINITE_BIAS_NOTE = (
    "infinite weights, allowed because the outputs stayed distributions on every input tried (a -inf bias "
    "switching a class off, a -inf mask row): Dense 'retired_class/probs': trainable variable 'bias' holds 1 Inf "
    "of 4 values")


@pytest.mark.parametrize("seed", SEEDS)
def test_a_minus_inf_bias_switching_a_class_off_passes_with_a_note(seed: int) -> None:
    model = retired_class(-np.inf)
    report = check_softmax(model, max_examples=10, seed=seed)
    assert report.passed
    assert report.notes == [INFINITE_BIAS_NOTE]
    assert f"  note: {INFINITE_BIAS_NOTE}" in str(report).splitlines()
    # The retired class's probability is exactly 0 and the rows sum to 1.
    probs = keras.ops.convert_to_numpy(model(np.random.default_rng(seed).normal(size=(16, 6)).astype("float32")))
    assert (probs[:, RETIRED] == 0.0).all()
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6)
    assert report.outputs[0].min_value == 0.0


def test_a_nan_bias_still_fails_before_any_input_is_tried() -> None:
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(retired_class(np.nan), max_examples=10, seed=1)
    report = raised.value.report
    assert [v.kind for v in report.violations] == [WEIGHTS_NOT_FINITE]
    assert report.examples == 0
    assert (report.layer_at_fault, report.cause) == ("retired_class/probs (Dense)",
                                                     "non-finite weights: bias holds NaN")
    assert report.headline == ("softmax invariant violated: model weights are not finite: Dense "
                               "'retired_class/probs': trainable variable 'bias' holds 1 NaN of 4 values")
    assert report.notes == []


def breaking_infinite_kernel() -> keras.Model:
    """An infinite kernel entry that does break the outputs (Inf - Inf)."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(4, activation="softmax", name="probs")], name="inf_breaks")
    kernel = model.get_layer("hidden").kernel
    values = np.array(keras.ops.convert_to_numpy(kernel))
    values[0, 0] = np.inf
    kernel.assign(values)
    return model


@pytest.mark.parametrize("seed", SEEDS)
def test_an_infinite_weight_that_breaks_the_outputs_fails_and_is_named(seed: int) -> None:
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(breaking_infinite_kernel(), max_examples=10, seed=seed)
    report = raised.value.report
    assert report.violations[0].kind != WEIGHTS_NOT_FINITE  # found by the outputs, not before the search
    assert report.layer_at_fault == "inf_breaks/hidden (Dense)"
    assert report.cause == "its variable kernel holds Inf"
    assert ("the model holds infinite weights (allowed only where the outputs stay distributions, which they do "
            "not here): Dense 'inf_breaks/hidden': trainable variable 'kernel' holds 1 Inf of 48 values"
            ) in report.diagnosis
    assert report.notes == []


class StandIn:
    """An adapter that shows its variables, without a framework."""

    name = "stand_in"

    def __init__(self, weights: list[NonFiniteWeight] | Exception) -> None:
        self.weights = weights

    def input_specs(self) -> list[Any]:
        return []

    def output_specs(self) -> list[Any]:
        return []

    def forward(self, inputs: Any) -> list[Any]:
        return []

    def nonfinite_weights(self) -> list[NonFiniteWeight]:
        if isinstance(self.weights, Exception):
            raise self.weights
        return self.weights


def weight(variable: str, nan: int = 0, inf: int = 0, layer: str = "m/dense") -> NonFiniteWeight:
    return NonFiniteWeight(layer, "Dense", variable, nan=nan, inf=inf, size=10)


def failing_report(cause: str | None = None) -> SoftmaxReport:
    return SoftmaxReport(model_name="m", passed=False, examples=3, rows=9, worst_error=float("nan"),
                         tolerance=1e-6, dtype="float32", cause=cause)


def test_nan_anywhere_fails_and_infinite_only_variables_are_kept_for_the_outputs() -> None:
    seen = inspect_weights(StandIn([weight("bias", inf=1), weight("kernel", nan=2, inf=1), weight("table", inf=3)]))
    assert seen.failure is not None
    assert seen.failure.cause == "non-finite weights: kernel holds NaN"
    assert seen.failure.violations[0].message == "Dense 'm/dense': trainable variable 'kernel' holds 2 NaN and 1 Inf "\
        "of 10 values"
    assert seen.failure.diagnosis[1] == (
        "also infinite (allowed on their own where the outputs stay distributions): Dense 'm/dense': trainable "
        "variable 'bias' holds 1 Inf of 10 values; Dense 'm/dense': trainable variable 'table' holds 3 Inf of 10 values")
    assert [w.variable for w in seen.infinite] == ["bias", "table"]
    only_infinite = inspect_weights(StandIn([weight("bias", inf=1)]))
    assert only_infinite.failure is None and [w.variable for w in only_infinite.infinite] == ["bias"]


def test_the_nan_failure_reads_in_full() -> None:
    seen = inspect_weights(StandIn([weight("kernel", nan=2), weight("bias", inf=1), weight("moving_mean", nan=1),
                                    weight("gamma", nan=4, layer="m/norm")]))
    report = seen.failure
    assert report is not None
    assert (report.model_name, report.passed, report.examples, report.rows, report.dtype, report.layers) == (
        "stand_in", False, 0, 0, "", [])
    assert math.isnan(report.worst_error) and math.isnan(report.tolerance)
    (violation,) = report.violations
    assert (violation.output, violation.layer_name, violation.layer_class, violation.dtype, violation.axis,
            violation.n_classes, violation.tolerance, violation.error, violation.rows_violating, violation.rows) == (
        "", "m/dense", "Dense", "", -1, 0, 0.0, 7.0, 0, 0)
    assert str(report).splitlines() == [
        ("softmax invariant violated: model weights are not finite: Dense 'm/dense': trainable variable 'kernel' "
         "holds 2 NaN of 10 values; 2 more variables too"),
        "  layer at fault: m/dense (Dense) (non-finite weights: kernel holds NaN)",
        "  fix: retrain (lower the learning rate, clip gradients) or load a checkpoint from before it diverged",
        "  Dense 'm/dense': trainable variable 'kernel' holds 2 NaN of 10 values",
        "  Dense 'm/dense': trainable variable 'moving_mean' holds 1 NaN of 10 values",
        "  Dense 'm/norm': trainable variable 'gamma' holds 4 NaN of 10 values",
        ("  also infinite (allowed on their own where the outputs stay distributions): Dense 'm/dense': trainable "
         "variable 'bias' holds 1 Inf of 10 values"),
        ("  weights holding NaN are checked before any input is tried, because the forward pass can hide them "
         "(TensorFlow's fused MatMul+ReLU turns NaN into 0 on some CPUs, as model.predict does): training diverged "
         "(lower the learning rate, clip gradients, look for log(0) or a division by zero in the loss) or the model "
         "was saved after it did; retrain or load a checkpoint from before"),
    ]
    two = inspect_weights(StandIn([weight("kernel", nan=1), weight("bias", nan=1)])).failure
    assert two is not None and two.violations[0].message.endswith("holds 1 NaN of 10 values; 1 more variable too")
    non_trainable = NonFiniteWeight("m/bn", "BatchNormalization", "moving_mean", nan=1, inf=0, size=4,
                                    trainable=False)
    alone = inspect_weights(StandIn([non_trainable])).failure
    assert alone is not None and alone.violations[0].message == (
        "BatchNormalization 'm/bn': non-trainable variable 'moving_mean' holds 1 NaN of 4 values")
    assert len(alone.diagnosis) == 2  # the variable and the advice: no "also infinite" line without one
    both = inspect_weights(StandIn([weight("kernel", nan=2, inf=3)])).failure
    assert both is not None and both.violations[0].error == 5.0


def test_unreadable_variables_neither_fail_nor_note() -> None:
    seen = inspect_weights(StandIn(RuntimeError("cannot read")))
    assert seen.failure is None and seen.infinite == []


def test_a_failure_no_rule_explained_is_blamed_on_the_infinite_variable() -> None:
    seen = inspect_weights(StandIn([weight("table", inf=3, layer="m/embed")]))
    report = failing_report()
    seen.annotate(report)
    assert (report.layer_at_fault, report.cause, report.fix) == (
        "m/embed (Dense)", "infinite weights: table holds Inf",
        "replace the infinite entries with large finite values, or retrain (lower the learning rate, clip gradients)")
    explained = failing_report(cause="every position masked: softmax of all -inf is 0/0")
    seen.annotate(explained)
    assert explained.cause == "every position masked: softmax of all -inf is 0/0"
    assert explained.layer_at_fault is None
    assert explained.diagnosis == [(
        "the model holds infinite weights (allowed only where the outputs stay distributions, which they do not "
        "here): Dense 'm/embed': trainable variable 'table' holds 3 Inf of 10 values")]


def test_at_most_six_infinite_variables_are_listed() -> None:
    seen = inspect_weights(StandIn([weight(f"v{i}", inf=1) for i in range(8)]))
    report = SoftmaxReport(model_name="m", passed=True, examples=1, rows=1, worst_error=0.0, tolerance=1e-6,
                           dtype="float32")
    seen.annotate(report)
    (note,) = report.notes
    assert "'v5'" in note and "'v6'" not in note
    assert note.endswith("trainable variable 'v4' holds 1 Inf of 10 values; Dense 'm/dense': trainable variable 'v5' "
                         "holds 1 Inf of 10 values; 2 more variables")
    one_more = SoftmaxReport(model_name="m", passed=True, examples=1, rows=1, worst_error=0.0, tolerance=1e-6,
                             dtype="float32")
    inspect_weights(StandIn([weight(f"v{i}", inf=1) for i in range(7)])).annotate(one_more)
    assert one_more.notes[0].endswith("'v5' holds 1 Inf of 10 values; 1 more variable")
    six = SoftmaxReport(model_name="m", passed=True, examples=1, rows=1, worst_error=0.0, tolerance=1e-6,
                        dtype="float32")
    inspect_weights(StandIn([weight(f"v{i}", inf=1) for i in range(6)])).annotate(six)
    assert six.notes[0].endswith("'v5' holds 1 Inf of 10 values")


def test_the_note_reaches_the_json_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import keras, numpy as np, pytest

        def build():
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="softmax", name="probs")],
                                     name="retired_class")
            model.get_layer("probs").bias.assign(np.array([0, 0, -np.inf, 0], "float32"))
            return model

        @pytest.mark.softmax_invariant(model=build, max_examples=5)
        def test_model():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-report=report.json")
    result.assert_outcomes(passed=1)
    (check,) = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert check["verdict"] == "passed"
    assert check["notes"] == [INFINITE_BIAS_NOTE]
    # -v lists the passed check with its note under it.
    verbose = pytester.runpytest("-p", "no:cacheprovider", "-v")
    verbose.stdout.fnmatch_lines(["PASSED test_user.py::test_model: output *",
                                  f"       note: {INFINITE_BIAS_NOTE}", "1 check, 1 passed"])


# -- nothing left behind ---------------------------------------------------------------------------------------


class UnseededNoise(keras.layers.Layer):
    """Draws from keras.random with no seed (Keras' global generator) on
    every call, and adds the noise only in training."""

    def call(self, x, training=False):  # type: ignore[no-untyped-def]
        noise = keras.random.normal(keras.ops.shape(x))
        return x + (0.1 if training else 0.0) * noise

    def compute_output_shape(self, shape):  # type: ignore[no-untyped-def]
        return shape  # no symbolic trace of call(): JAX forbids unseeded draws while tracing


class SeededNoise(keras.layers.Layer):
    """Advances its own seed generator (non-trainable state) on every call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seeds = keras.random.SeedGenerator(3)

    def call(self, x, training=False):  # type: ignore[no-untyped-def]
        noise = keras.random.normal(keras.ops.shape(x), seed=self.seeds)
        return x + (0.1 if training else 0.0) * noise


def noisy_model(layer: Callable[[], keras.layers.Layer]) -> keras.Model:
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(layer()(inp)))


def global_draw() -> list[float]:
    return [float(v) for v in keras.ops.convert_to_numpy(keras.random.uniform((3,)))]


def test_the_global_generator_a_check_creates_is_not_left_behind() -> None:
    """Right after keras.utils.set_random_seed there is no global generator;
    the model creates it during the check.  The user's next draw is the draw
    they would have had without the check."""
    model = noisy_model(UnseededNoise)
    keras.utils.set_random_seed(7)
    expected = global_draw()
    keras.utils.set_random_seed(7)
    check_softmax(model, max_examples=5, seed=1)
    assert global_draw() == expected


def test_non_trainable_state_the_model_advances_is_restored() -> None:
    model = noisy_model(SeededNoise)
    layer = next(la for la in model.layers if isinstance(la, SeededNoise))

    def own_draw() -> list[float]:
        return [float(v) for v in keras.ops.convert_to_numpy(keras.random.uniform((3,), seed=layer.seeds))]

    state = np.array(keras.ops.convert_to_numpy(layer.seeds.state.value))
    check_softmax(model, max_examples=5, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.seeds.state.value), state)
    keras.utils.set_random_seed(11)
    expected = (own_draw(), global_draw())
    layer.seeds.state.assign(state)
    keras.utils.set_random_seed(11)
    check_softmax(model, max_examples=5, seed=1)
    assert (own_draw(), global_draw()) == expected


# -- ids within every vocabulary they reach ----------------------------------------------------------------------


def two_vocabularies() -> keras.Model:
    """One id input feeding two embeddings, of 7 and of 40 rows; a guard
    turns any id past the smaller table into NaN, whatever the backend does
    with an out-of-range lookup."""
    ids = keras.Input((5,), dtype="int32", name="ids")
    small = keras.layers.Embedding(7, 4, name="small")(ids)
    large = keras.layers.Embedding(40, 4, name="large")(ids)
    guard = keras.layers.Lambda(
        lambda t: keras.ops.where(keras.ops.greater_equal(t, 7), float("nan"), 0.0), name="guard")(ids)
    pooled = keras.layers.Lambda(lambda a: keras.ops.sum(a[0] + a[1], axis=1) + keras.ops.sum(a[2], axis=1,
                                                                                             keepdims=True),
                                 name="pool")([small, large, guard])
    return keras.Model(ids, keras.layers.Dense(3, activation="softmax", name="probs")(pooled), name="two_vocab")


@pytest.mark.parametrize("seed", SEEDS)
def test_ids_feeding_two_embeddings_stay_within_the_smaller_vocabulary(seed: int) -> None:
    from pytest_softmax.adapters.registry import adapt

    model = two_vocabularies()
    (spec,) = adapt(model).input_specs()
    assert (spec.low, spec.high) == (0, 7)
    report = check_softmax(model, max_examples=20, seed=seed)
    assert report.passed and report.examples == 20
    # The guard is live: an id only the larger table holds makes NaN.
    guard = keras.Model(model.input, model.get_layer("guard").output)
    assert np.isnan(keras.ops.convert_to_numpy(guard(np.full((1, 5), 7, "int32")))).all()
