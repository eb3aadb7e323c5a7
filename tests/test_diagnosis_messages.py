"""The whole of each diagnosis a user reads: the cause and fix shown on the
failure's second and third lines (and in the junit message and the JSON),
and the explanation, word for word, for each rule on a small model.

The pytester tests match the lines a user sees in a terminal; these pin the
full texts, in-process, so that a changed word in any message is noticed.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import pytest

from pytest_softmax import SoftmaxInvariantError, SoftmaxReport, check_softmax

OUTPUTS_FIX = "check_softmax(model, outputs=[...])"


def failed(build: Callable[[], keras.Model]) -> SoftmaxReport:
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(build(), max_examples=5, seed=1)
    return raised.value.report


def doubled_by_lambda() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                             keras.layers.Lambda(lambda x: x * 2.0, name="double")], name="lambda_head")


def head(activation: str) -> Callable[[], keras.Model]:
    def build() -> keras.Model:
        import diagnosis_zoo

        return diagnosis_zoo.head_with(activation)

    return build


@pytest.mark.parametrize(
    ("build", "layer", "cause", "fix", "explanation"),
    [
        pytest.param(
            head("linear"), "head_linear/head (Dense)", "no softmax: outputs logits (linear activation)",
            "add activation='softmax' or a Softmax layer",
            "Dense 'head_linear/head' outputs logits (linear activation), not probabilities: add "
            "activation='softmax' (or a Softmax layer), or, if logits are intended (from_logits=True losses), do "
            f"not check this output as a distribution: choose the outputs to check with {OUTPUTS_FIX}",
            id="logits"),
        pytest.param(
            head("relu"), "head_relu/head (Dense)", "relu, no softmax",
            "activation='softmax' at the end, or leave this output out",
            "Dense 'head_relu/head' uses relu, which does not make a distribution: end with activation='softmax', "
            "or check a different invariant for this output",
            id="relu"),
        pytest.param(
            head("sigmoid"), "head_sigmoid/head (Dense)", "sigmoid, not softmax",
            "softmax for one distribution, or leave this output out",
            "Dense 'head_sigmoid/head' uses sigmoid: independent per-class probabilities (multi-label), which "
            "need not sum to 1: use softmax for one distribution over classes, or leave this output out: "
            f"{OUTPUTS_FIX}",
            id="sigmoid"),
        pytest.param(
            head("log_softmax"), "head_log_softmax/head (Dense)", "log_softmax: log-probabilities",
            "softmax, or check exp(output)",
            "Dense 'head_log_softmax/head' uses log_softmax: the output holds log-probabilities, whose exp() sums "
            "to 1: use softmax, or check exp(output) instead",
            id="log_softmax"),
        pytest.param(
            doubled_by_lambda, "lambda_head/double (Lambda)", "no softmax before the output",
            "end the model with keras.ops.softmax or a Softmax layer",
            "Lambda 'lambda_head/double' makes the output and no softmax comes before it: end the model with "
            "keras.ops.softmax or a Softmax layer",
            id="lambda"),
    ],
)
def test_a_head_without_a_softmax_is_explained_in_full(
    build: Callable[[], keras.Model], layer: str, cause: str, fix: str, explanation: str
) -> None:
    report = failed(build)
    assert (report.layer_at_fault, report.cause, report.fix) == (layer, cause, fix)
    assert report.diagnosis[0] == explanation


@pytest.mark.parametrize(
    ("builder", "layer", "cell", "units", "gate"),
    [
        ("nested_lstm", "outer/head/inner_lstm", "LSTM", 3, "multiplies it by the output gate"),
        ("conv_lstm_softmax", "seed_conv_lstm/conv_lstm", "ConvLSTM1D", 4, "multiplies it by the output gate"),
    ],
)
def test_a_softmax_inside_a_recurrent_cell_is_explained_with_the_sums_seen(
    builder: str, layer: str, cell: str, units: int, gate: str
) -> None:
    import diagnosis_zoo

    report = failed(getattr(diagnosis_zoo, builder))
    assert report.layer_at_fault == f"{layer} ({cell})"
    assert report.cause == f"softmax inside the {cell} cell, which gates it"
    assert report.fix == f"{cell}({units}) followed by Dense({units}, activation='softmax')"
    (explanation,) = [line for line in report.diagnosis if "recurrent cell" in line]
    head = f"{cell} '{layer}' applies softmax inside its recurrent cell: the cell {gate}, so rows sum to "
    tail = f" here, not 1; use {cell}({units}) followed by Dense({units}, activation='softmax')"
    assert explanation.startswith(head) and explanation.endswith(tail), explanation
    # The gate scales each row by less than 1: the lowest sum is 1 - the worst error.
    sums = explanation[len(head):-len(tail)].split("-")
    assert sums[0] == f"{1 - report.worst_error:.2f}"
    assert len(sums) == 1 or float(sums[0]) < float(sums[1]) < 1


def test_a_softmax_over_another_axis_is_explained_with_both_axes() -> None:
    import diagnosis_zoo

    report = failed(diagnosis_zoo.softmax_other_axis)
    assert (report.layer_at_fault, report.cause, report.fix) == (
        "axis1/over_time (Softmax)", "softmax over axis 1, checked along axis -1",
        "Softmax(axis=-1) over the class axis, or check along axis 1")
    assert report.diagnosis[0] == (
        "Softmax 'axis1/over_time' normalizes over axis 1 but the output is checked along axis -1: make the "
        "softmax run over the class axis (e.g. Softmax(axis=-1)) or check along it with check_softmax(model, axis=1)")
