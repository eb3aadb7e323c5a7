"""The compiled-path check where it lives, without a framework: an adapter
whose compiled forward and ``model(x)`` disagree on finiteness fails the
check with the side that is not finite, and says which forward hides what."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from pytest_softmax import SoftmaxInvariantError
from pytest_softmax.adapters.base import InputSpec, OutputSpec
from pytest_softmax.adapters.base.records import (
    OTHER,
    SOFTMAX,
    VARIANCE_STATISTIC,
    LayerRecord,
    LayerSite,
    ProbeResult,
    VariableSummary,
)
from pytest_softmax.core.compiled_path import preflight_summaries, require_same_finiteness
from pytest_softmax.core.kinds import NOT_FINITE
from pytest_softmax.core.preflight import probe_batch, probe_recipes
from pytest_softmax.settings import CheckSettings

UNIFORM = np.full((4, 3), 1 / 3, "float32")
NAN_ROWS = np.full((4, 3), np.nan, "float32")
SPEC = InputSpec("x", (6,), "float32")
OUTPUT = OutputSpec("probs", 0, "probs", "Dense")
SETTINGS = CheckSettings(atol=None, rtol=0.0, max_examples=5, batch_size=4)


class StandIn:
    """Compiled forward gives ``compiled``; model(x) gives ``eager`` (or
    raises it, or None: no eager form apart from the compiled one)."""

    name = "stand_in"

    def __init__(self, eager: np.ndarray | Exception | None) -> None:
        self.eager = eager

    def input_specs(self) -> list[InputSpec]:
        return [SPEC]

    def output_specs(self) -> list[OutputSpec]:
        return [OUTPUT]

    def forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise AssertionError("the compiled outputs are given")

    def eager_forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        if isinstance(self.eager, Exception):
            raise self.eager
        return None if self.eager is None else [self.eager]

    def compiled_description(self) -> str:
        return "stand-in jit"

    def eager_probe(self, inputs: Sequence[np.ndarray]) -> object:
        raise AssertionError("a stand-in without layers is never probed")


def run(eager: np.ndarray | Exception | None, compiled: np.ndarray) -> None:
    batch = probe_batch([SPEC], 4)
    require_same_finiteness(StandIn(eager), [OUTPUT], batch, [compiled], SETTINGS,
                            lambda: preflight_summaries([SPEC], batch, probe_recipes([SPEC])))


def test_nan_hidden_by_the_compiled_forward_fails_with_model_x_outputs() -> None:
    with pytest.raises(SoftmaxInvariantError) as raised:
        run(NAN_ROWS, UNIFORM)
    report = raised.value.report
    assert report.passed is False and report.model_name == "stand_in"
    assert report.headline == ("softmax invariant violated: output 'probs' (probs: Dense) is not finite: 12 NaN/Inf "
                               "values in 4 of 4 rows [float32, axis -1, 3 classes]")
    assert [(v.kind, v.error, v.rows_violating) for v in report.violations] == [(NOT_FINITE, 12.0, 4)]
    assert report.cause == "NaN/Inf hidden by the compiled forward (stand-in jit)"
    assert report.diagnosis[0] == (
        "model(x) returns 12 NaN/Inf values on output 'probs' (probs: Dense) for this batch, but the compiled "
        "forward the check runs (stand-in jit) returns finite rows for the same batch: the compiled path hides the "
        "NaN (a fused kernel can turn NaN into 0, as TensorFlow's MatMul+BiasAdd+Relu does on some CPUs, and "
        "model.predict runs it too), so the values shown are model(x)'s; fix the layer that makes it")
    assert report.failing_input[0].rebuild.startswith("pytest_softmax.ArrayRecipe(pattern='normal'")
    assert "  failing input (the batch tried before the search):" in str(report)


def test_nan_only_the_compiled_forward_makes_fails_too() -> None:
    with pytest.raises(SoftmaxInvariantError) as raised:
        run(UNIFORM, NAN_ROWS)
    report = raised.value.report
    assert report.cause == "NaN/Inf only in the compiled forward (stand-in jit)"
    assert report.diagnosis[0] == (
        "the compiled forward the check runs (stand-in jit) returns 12 NaN/Inf values on output 'probs' (probs: "
        "Dense) for this batch, where model(x) returns finite rows: the compiled graph computes otherwise (a fused "
        "or reordered op), and model.predict runs it too")
    assert report.fix == "find the layer that makes NaN (model(x) shows it) and fix it"


@pytest.mark.parametrize(
    ("eager", "compiled"),
    [(UNIFORM, UNIFORM), (NAN_ROWS, NAN_ROWS), (None, UNIFORM), (RuntimeError("eager cannot run it"), UNIFORM)],
    ids=["both-finite", "both-nan", "no-eager-form", "eager-raises"],
)
def test_agreement_or_nothing_to_compare_lets_the_check_go_on(eager: np.ndarray | Exception | None,
                                                               compiled: np.ndarray) -> None:
    run(eager, compiled)


def probe_result(nan_in_bn: bool) -> ProbeResult:
    """A probe of input -> bn -> probs; ``nan_in_bn``: what model(x) shows
    (the BatchNormalization makes NaN from a negative moving variance)."""
    bn_site = LayerSite(path="m/bn", name="bn", layer_class="BatchNormalization", kind=OTHER,
                        producers=("input 'x'",))
    head = LayerSite(path="m/probs", name="probs", layer_class="Dense", kind=SOFTMAX, activation="softmax",
                     softmax_axes=(-1,), producers=("m/bn",))
    variance = VariableSummary("moving_variance", 6, negative=1, minimum=-0.5, role=VARIANCE_STATISTIC)
    bn_out = np.full((4, 6), np.nan if nan_in_bn else 0.5, "float32")
    return ProbeResult([LayerRecord(bn_site, bn_out, variables=(variance,)),
                        LayerRecord(head, NAN_ROWS if nan_in_bn else UNIFORM)],
                       ["m/probs"], input_max_abs={"input 'x'": 2.5}, input_dtypes={"input 'x'": "float32"})


class Probing(StandIn):
    """A stand-in that shows its layers: the compiled probe computes as the
    compiled forward does (no NaN), the eager one as model(x) (NaN)."""

    def probe(self, inputs: Sequence[np.ndarray]) -> ProbeResult:
        return probe_result(nan_in_bn=False)

    def eager_probe(self, inputs: Sequence[np.ndarray]) -> ProbeResult:  # type: ignore[override]
        return probe_result(nan_in_bn=True)

    def internal_softmax_sites(self) -> list[LayerSite]:
        return []

    def forward_with_sites(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[LayerRecord]]:
        raise AssertionError("not during the preflight")


def test_the_layer_that_makes_the_hidden_nan_is_found_by_the_eager_probe() -> None:
    batch = probe_batch([SPEC], 4)
    with pytest.raises(SoftmaxInvariantError) as raised:
        require_same_finiteness(Probing(NAN_ROWS), [OUTPUT], batch, [UNIFORM], SETTINGS,
                                lambda: preflight_summaries([SPEC], batch, None))
    report = raised.value.report
    assert (report.layer_at_fault, report.cause) == (
        "m/bn (BatchNormalization)",
        "negative moving_variance (-0.5) under a square root; hidden by the compiled forward (stand-in jit)")
    assert report.fix == "recompute the statistics (training=True passes or adapt()), or clip moving_variance to >= 0"
    assert (report.examples, report.rows, report.dtype, report.tolerance) == (
        1, 4, "float32", SETTINGS.tolerance_for("float32", 3))
    # The test's own arrays are named as such.
    assert "  failing input (from inputs=):" in str(report)


class CompiledOnly(Probing):
    """The compiled forward makes the NaN: its own probe shows it, and
    model(x)'s probe must not be asked."""

    def probe(self, inputs: Sequence[np.ndarray]) -> ProbeResult:
        return probe_result(nan_in_bn=True)

    def eager_probe(self, inputs: Sequence[np.ndarray]) -> ProbeResult:  # type: ignore[override]
        raise AssertionError("model(x) is finite here: nothing to probe eagerly")


def test_nan_only_the_compiled_forward_makes_is_probed_compiled() -> None:
    one_bad_row = UNIFORM.copy()
    one_bad_row[0] = np.nan
    batch = probe_batch([SPEC], 4)
    with pytest.raises(SoftmaxInvariantError) as raised:
        require_same_finiteness(CompiledOnly(UNIFORM), [OUTPUT], batch, [one_bad_row], SETTINGS,
                                lambda: preflight_summaries([SPEC], batch, probe_recipes([SPEC])))
    report = raised.value.report
    assert report.notes == []  # the probe ran (a failed probe leaves a note)
    assert report.cause == ("negative moving_variance (-0.5) under a square root; only in the compiled forward "
                            "(stand-in jit)")
    assert report.rows == 4 and report.worst_error == 0.0  # as the search reports a NaN batch

