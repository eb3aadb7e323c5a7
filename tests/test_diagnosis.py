"""The report names the layer at fault and says why, as a user sees it."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from pytest_softmax import SoftmaxInvariantError, check_softmax

TESTS_DIR = Path(__file__).parent



def run(pytester: pytest.Pytester, factory: str, *args: str, marker_args: str = "") -> pytest.RunResult:
    pytester.makepyfile(test_user=f"""
        import pytest, diagnosis_zoo, model_zoo
        @pytest.mark.softmax_invariant(model={factory}{marker_args})
        def test_model():
            pass
    """)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_softmax_inside_lstm_cell_is_named_with_the_fix(diag: pytest.Pytester) -> None:
    result = run(diag, "model_zoo.lstm_softmax")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'lstm' (lstm: LSTM) is not normalized: *",
        ("  LSTM 'seed_lstm/lstm' applies softmax inside its recurrent cell: the cell multiplies it by the "
        "output gate, so rows sum to * here, not 1; use LSTM(3) followed by Dense(3, activation='softmax')"),
        "  layers examined (on the failing input):",
        "    layer * class * activation * max |sum - 1| * non-finite * verdict",
        "    seed_lstm/lstm * LSTM * softmax (in cell) * 0 * at fault: softmax inside the cell",
        "*failing input (edge phase, before the search*",
    ])


def test_softmax_inside_gru_cell(diag: pytest.Pytester) -> None:
    result = run(diag, "model_zoo.gru_softmax")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("  GRU 'seed_gru/gru' applies softmax inside its recurrent cell: the cell interpolates it with the "
        "previous state*; use GRU(3) followed by Dense(3, activation='softmax')"),
    ])


def test_softmax_inside_conv_lstm_cell(diag: pytest.Pytester) -> None:
    result = run(diag, "diagnosis_zoo.conv_lstm_softmax")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("  ConvLSTM1D 'seed_conv_lstm/conv_lstm' applies softmax inside its recurrent cell: the cell "
        "multiplies it by the output gate*"),
    ])


def test_nested_recurrent_layer_is_named_by_its_path_through_shape_layers(diag: pytest.Pytester) -> None:
    result = run(diag, "diagnosis_zoo.nested_lstm")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'flat' (flat: Flatten) is not normalized: *",
        "  LSTM 'outer/head/inner_lstm' applies softmax inside its recurrent cell*",
        "    outer/head/inner_lstm * LSTM * at fault: softmax inside the cell",
        "    outer/flat * Flatten * looked through",
    ])


def test_softmax_over_another_axis_names_both_axes(diag: pytest.Pytester) -> None:
    result = run(diag, "diagnosis_zoo.softmax_other_axis")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("  Softmax 'axis1/over_time' normalizes over axis 1 but the output is checked along axis -1: *"
        "check along it with @pytest.mark.softmax_invariant(..., axis=1)"),
    ])


@pytest.mark.parametrize(("activation", "expected"), [
    ("linear", ("Dense 'head_linear/head' outputs logits (linear activation), not probabilities: add "
               "activation='softmax'*")),
    ("sigmoid", "Dense 'head_sigmoid/head' uses sigmoid: independent per-class probabilities (multi-label)*"),
    ("log_softmax", "Dense 'head_log_softmax/head' uses log_softmax: the output holds log-probabilities*"),
    ("relu", "Dense 'head_relu/head' uses relu, which does not make a distribution*"),
])
def test_no_softmax_at_the_output_says_which_activation(diag: pytest.Pytester, activation: str,
                                                        expected: str) -> None:
    result = run(diag, f"lambda: diagnosis_zoo.head_with({activation!r})")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"  {expected}", "    head_*/head * Dense * at fault: no softmax"])


def test_hand_written_softmax_overflow_points_to_keras_ops_softmax(diag: pytest.Pytester) -> None:
    result = run(diag, "model_zoo.naive_softmax")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'naive' (naive: Lambda) is not finite: *",
        # Hypothesis may first find a row past exp's overflow (Inf/Inf) or a
        # row so negative that exp() underflows everywhere (0/0): both are
        # the missing max-subtraction, and both point to keras.ops.softmax.
        ("  Lambda 'sequential*/naive' is the first layer whose output holds NaN/Inf * although its inputs are "
        "finite; fed by Dense * (finite, max |value| *): *exp()*use keras.ops.softmax*"),
    ])


@pytest.mark.parametrize("marker_args", [
    "",
    # Logits past exp's overflow point too: still the division, not an exp.
    ", inputs=__import__('numpy').full((4, 4), 1000.0, 'float32')",
])
def test_zero_temperature_blames_the_division_not_the_softmax(diag: pytest.Pytester, marker_args: str) -> None:
    result = run(diag, "diagnosis_zoo.zero_temperature", marker_args=marker_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'probs' (probs: Softmax) is not finite: *",
        ("  Lambda 'zero_temperature/temperature' is the first layer whose output holds NaN/Inf*"
        "a division by zero*"),
        "    zero_temperature/logits * Dense * fed it (finite)",
        "    zero_temperature/temperature * Lambda * at fault: first NaN/Inf",
    ])


@pytest.mark.parametrize(("factory", "culprit", "softmax"), [
    ("model_zoo.scaled_softmax", "Rescaling 'scaled_1_001/rescale'", "Dense 'scaled_1_001/dense*'"),
    ("diagnosis_zoo.dense_after_softmax", "Dense 'dense_after_softmax/mixer'", "Dense 'dense_after_softmax/probs'"),
])
def test_layer_after_the_softmax_that_changes_the_sums(diag: pytest.Pytester, factory: str, culprit: str,
                                                       softmax: str) -> None:
    result = run(diag, factory)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"  {culprit} comes after the softmax {softmax} and changes its row sums*",
        "* softmax ok",
        "* at fault: changes the sums",
    ])


def test_low_precision_output_under_a_strict_tolerance(diag: pytest.Pytester) -> None:
    result = run(diag, "diagnosis_zoo.float16_head", marker_args=", atol=1e-6")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'probs' (probs: Dense) is not normalized: * [[]float16, *",
        ("  low precision: the output is float16 (a mixed-precision policy?) and the tolerance in force, 1e-06, "
        "is stricter than float16 allows*keep the final softmax in float32*"),
    ])


def test_internal_softmax_over_a_single_element_fails_with_head_advice(diag: pytest.Pytester) -> None:
    result = run(diag, "diagnosis_zoo.single_class_gate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: internal softmax 'gated/gate' (Dense) is a softmax over a single element: "
        "size 1 along axis -1 for every input (shape [[]None, 1]) *",
        "  Dense 'gated/gate' normalizes over a single element: its result is the constant 1*"
        "use Dense(1, activation='sigmoid') for a yes/no output, or Dense(2, activation='softmax')*",
    ])
    assert "SoftmaxWarning" not in result.stdout.str()


def test_internal_softmax_site_producing_nan_fails_though_the_output_is_fine(diag: pytest.Pytester) -> None:
    result = run(diag, "diagnosis_zoo.nan_internal_site")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: internal softmax 'nan_site/broken' (Softmax) is not finite: *",
        "  Lambda 'nan_site/div' is the first layer whose output holds NaN/Inf*",
        "    nan_site/broken * Softmax * at fault: internal softmax",
    ])


def test_healthy_models_raise_nothing(diag: pytest.Pytester) -> None:
    diag.makepyfile(test_user="""
        import pytest, diagnosis_zoo, model_zoo
        @pytest.mark.parametrize("factory", [
            model_zoo.lstm_dense_softmax, model_zoo.simple_rnn_softmax, model_zoo.mobilenet,
            diagnosis_zoo.attention, diagnosis_zoo.masked_attention_pooling,
        ])
        def test_healthy(factory, softmax_check):
            report = softmax_check(factory(), max_examples=15)
            assert report.passed and not report.diagnosis and not report.layers
    """)
    result = diag.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    assert "SoftmaxWarning" not in result.stdout.str()


def test_fully_masked_rows_of_an_internal_softmax_are_not_violations() -> None:
    from diagnosis_zoo import masked_attention_pooling

    tokens = np.array([[0] * 6, [1, 2, 0, 0, 0, 0], [3] * 6, [0] * 6], dtype="int32")
    report = check_softmax(masked_attention_pooling(), inputs=tokens)
    assert report.passed
    assert any("internal softmax sites checked along their own axes: 1 (masked/attn)" in n for n in report.notes)


def test_a_layer_computed_in_call_is_not_guessed_and_the_model_is_restored() -> None:
    from diagnosis_zoo import subclassed_inside_functional

    model = subclassed_inside_functional()
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(model, max_examples=10)
    assert "cannot name the layer at fault inside Net 'wrapper/net'" in str(caught.value)
    layers = [model, *model.layers, *model.layers[-1].layers]
    assert all("call" not in vars(layer) for layer in layers)


def test_wrapped_calls_are_restored_when_the_probe_fails() -> None:
    from pytest_softmax.adapters.keras.adapter import KerasModelAdapter

    class Exploding(keras.layers.Layer):
        armed = False

        def call(self, x):  # type: ignore[no-untyped-def]
            if Exploding.armed:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the probe traced
            return x

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), Exploding(), keras.layers.Dense(2)])
    Exploding.armed = True
    try:
        with pytest.raises(KeyboardInterrupt):
            KerasModelAdapter(model).probe([np.zeros((2, 3), "float32")])
    finally:
        Exploding.armed = False
    assert all("call" not in vars(layer) for layer in model.layers)
    assert model(np.zeros((1, 3), "float32")).shape == (1, 2)
