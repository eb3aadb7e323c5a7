"""The whole of each diagnosis a user reads: the cause and fix shown on the
failure's second and third lines (and in the junit message and the JSON),
and the explanation, word for word, for each rule on a small model.

The pytester tests match the lines a user sees in a terminal; these pin the
full texts, in-process, so that a changed word in any message is noticed.
"""

from __future__ import annotations

import re
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


def custom_scaling_head() -> keras.Model:
    class Halve(keras.layers.Layer):
        def call(self, x):  # type: ignore[no-untyped-def]
            return keras.ops.softmax(x) * 0.5

    inp = keras.Input((4,))
    return keras.Model(inp, Halve(name="halve")(inp), name="custom_head")


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
        pytest.param(
            custom_scaling_head, "custom_head/halve (Halve)", "no softmax: outputs unnormalized values",
            "add activation='softmax' or a Softmax layer",
            "Halve 'custom_head/halve' outputs unnormalized values, not probabilities: add activation='softmax' (or "
            "a Softmax layer), or, if logits are intended (from_logits=True losses), do not check this output as a "
            f"distribution: choose the outputs to check with {OUTPUTS_FIX}",
            id="custom-layer"),
    ],
)
def test_a_head_without_a_softmax_is_explained_in_full(
    build: Callable[[], keras.Model], layer: str, cause: str, fix: str, explanation: str
) -> None:
    report = failed(build)
    assert_explained(report, layer, cause, fix, explanation)


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
    # The highest sum may be a row the gate left almost whole, but a sum
    # that misses 1 is never printed as "1.00".
    assert len(sums) == 1 or float(sums[0]) < float(sums[1]) <= 1


def test_a_softmax_over_another_axis_is_explained_with_both_axes() -> None:
    import diagnosis_zoo

    report = failed(diagnosis_zoo.softmax_other_axis)
    assert (report.layer_at_fault, report.cause, report.fix) == (
        "axis1/over_time (Softmax)", "softmax over axis 1, checked along axis -1",
        "Softmax(axis=-1) over the class axis, or check along axis 1")
    assert report.diagnosis[0] == (
        "Softmax 'axis1/over_time' normalizes over axis 1 but the output is checked along axis -1: make the "
        "softmax run over the class axis (e.g. Softmax(axis=-1)) or check along it with check_softmax(model, axis=1)")


FULLY_MASKED_FIX = ("mask with a finite value that fits {dtype} (e.g. {value}), Softmax()(scores, mask=mask), or "
                    "handle rows with no valid position")
FULLY_MASKED_TAIL = (": mask with a large finite negative that fits {dtype} (e.g. {value}) instead of -inf, use "
                     "Keras' Softmax()(scores, mask=mask) (it writes zeros for a fully masked row), or handle rows "
                     "that have no valid position (e.g. padding-only sequences) before the softmax")


@pytest.mark.parametrize(
    ("builder", "inputs", "layer", "cause", "fix", "explanation"),
    [
        pytest.param(
            "masked_attention_neg_inf", None, "masked_attention/attn (MaskedSelfAttention)",
            "every position masked: softmax of all -inf is 0/0", FULLY_MASKED_FIX.format(dtype="float32", value="-1e9"),
            "MaskedSelfAttention 'masked_attention/attn' is the first layer whose output holds NaN/Inf (* values in "
            "the probed rows) although its inputs are finite; fed by Embedding 'masked_attention/embed' (finite, max "
            "|value| *), Lambda 'masked_attention/padding' (finite, max |value| 0): every position of row [*] of the "
            "softmax input is masked (all -inf), and a softmax over a row with no unmasked position is 0/0 = NaN"
            + FULLY_MASKED_TAIL.format(dtype="float32", value="-1e9"),
            id="fully-masked-row"),
        pytest.param(
            "neg_inf_then_softmax_layer", None, "neg_inf_softmax/weights (Softmax)",
            "every position masked: softmax of all -inf is 0/0", FULLY_MASKED_FIX.format(dtype="float32", value="-1e9"),
            "Softmax 'neg_inf_softmax/weights' is the first layer whose output holds NaN/Inf (* values in the probed "
            "rows) although the model's inputs are finite; fed by Lambda 'neg_inf_softmax/mask_scores' (every value "
            "-inf): every position of row [*] of the softmax input is masked (all -inf), and a softmax over a row "
            "with no unmasked position is 0/0 = NaN (the -inf comes from Lambda 'neg_inf_softmax/mask_scores')"
            + FULLY_MASKED_TAIL.format(dtype="float32", value="-1e9"),
            id="mask-layer-then-softmax"),
        pytest.param(
            "float16_additive_mask", None, "fp16_mask/attn (MaskedSelfAttention)",
            "every position masked: softmax of all -inf is 0/0; a mask constant past float16's max 65504 became -inf",
            FULLY_MASKED_FIX.format(dtype="float16", value="-3e4"),
            "MaskedSelfAttention 'fp16_mask/attn' is the first layer whose output holds NaN/Inf (* values in the "
            "probed rows) although its inputs are finite; fed by Embedding 'fp16_mask/embed' (finite, max |value| *), "
            "Lambda 'fp16_mask/padding' (finite, max |value| 0): every position of row [*] of the softmax input is "
            "masked (all -inf), and a softmax over a row with no unmasked position is 0/0 = NaN (it computes in "
            "float16, largest finite value 65504: a mask constant such as -1e9 overflows to -inf)"
            + FULLY_MASKED_TAIL.format(dtype="float16", value="-3e4"),
            id="float16-mask-constant"),
        pytest.param(
            "float16_naive_softmax", None, "fp16_naive/naive (Lambda)", "float16 overflow: exp() past 11.1 became Inf",
            "compute this layer in float32 (dtype='float32'), use keras.ops.softmax, or constants that fit float16",
            "Lambda 'fp16_naive/naive' is the first layer whose output holds NaN/Inf (* values in the probed rows) "
            "although its inputs are finite; fed by Dense 'fp16_naive/logits' (finite, max |value| *): it computes in "
            "float16, and an exp() of values up to * overflows float16 past 11.1: compute this layer in float32 "
            "(dtype='float32' on the layer), use keras.ops.softmax (it subtracts the maximum, so it stays finite), or "
            "use constants that fit float16 (e.g. -3e4 as a mask value)",
            id="float16-exp-overflow"),
        pytest.param(
            "multiplied_mask", [[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], "multiplied_mask/pointer (MultipliedMask)",
            "mask arithmetic with -inf (0 * -inf) made NaN before the softmax",
            "select with keras.ops.where(mask, scores, -1e9) instead of multiplying by -inf",
            "MultipliedMask 'multiplied_mask/pointer' is the first layer whose output holds NaN/Inf (* values in the "
            "probed rows) although its inputs are finite; fed by Embedding 'multiplied_mask/embed' (finite, max "
            "|value| *), Lambda 'multiplied_mask/padding' (finite, max |value| 1): the values its softmax was fed "
            "already hold NaN next to -inf: mask arithmetic with an infinite constant (0 * -inf where a position is "
            "kept, or -inf - -inf) makes NaN before the softmax: select instead of multiplying "
            "(keras.ops.where(mask, scores, -1e9)), use a finite constant, or Keras' Softmax()(scores, mask=mask)",
            id="nan-before-the-softmax"),
        pytest.param(
            "nan_internal_site", None, "nan_site/div (Lambda)", "first NaN/Inf: a division by zero, log(0) or sqrt(<0)?",
            "guard that layer's division, log or sqrt (e.g. a small epsilon, or a non-zero temperature)",
            "Lambda 'nan_site/div' is the first layer whose output holds NaN/Inf (* values in the probed rows) "
            "although its inputs are finite; fed by input '*' (finite, max |value| *): look for a division by zero "
            "(e.g. a zero temperature), log(0) or sqrt(<0) in it; the layers after it only pass the NaN/Inf on",
            id="division-by-zero"),
    ],
)
def test_a_non_finite_output_is_explained_in_full(
    builder: str, inputs: list[list[int]] | None, layer: str, cause: str, fix: str, explanation: str
) -> None:
    import diagnosis_zoo
    import numpy as np

    given = {} if inputs is None else {"inputs": np.array(inputs, "int32")}
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(getattr(diagnosis_zoo, builder)(), max_examples=20, seed=1, **given)
    report = raised.value.report
    assert_explained(report, layer, cause, fix, explanation)


def assert_explained(report: SoftmaxReport, layer: str, cause: str, fix: str, explanation: str) -> None:
    """The first lines CI shows, the explanation (``*`` for figures that
    depend on random weights) and the blamed layer's verdict in the table."""
    assert (report.layer_at_fault, report.cause, report.fix) == (layer, cause, fix)
    assert matches(report.diagnosis[0], explanation), report.diagnosis[0]
    blamed = layer.split(" (")[0]
    assert [r.verdict for r in report.layers if r.path == blamed][0].startswith("at fault: ")


def matches(text: str, pattern: str) -> bool:
    """``pattern`` with ``*`` for the figures that depend on the random
    weights (counts, magnitudes); everything else literal, brackets too."""
    return re.fullmatch(".*?".join(re.escape(part) for part in pattern.split("*")), text) is not None


@pytest.mark.parametrize(
    ("build", "layer", "cause", "fix", "explanation"),
    [
        pytest.param(
            ("regrouped_inside_a_layer",), "regrouped_inside/head (SoftmaxThenReshape)",
            "softmax over 48 values regrouped into rows of 6 inside SoftmaxThenReshape 'regrouped_inside/head'",
            "reshape first, then keras.ops.softmax(..., axis=-1) over the class axis",
            "SoftmaxThenReshape 'regrouped_inside/head' computes a softmax over 48 values in its own call() and then "
            "regroups them into output rows of 6 along axis -1, so the rows do not sum to 1: apply the softmax after "
            "the reshape, over the class axis (e.g. keras.ops.softmax(reshaped, axis=-1))",
            id="regrouped-inside-a-layer"),
        pytest.param(
            ("regrouped_by", "concat"), "regrouped_concat/head_a (Dense)",
            "softmax over 3 values regrouped into rows of 6 by Concatenate 'regrouped_concat/both'",
            "regroup the logits first, then Softmax(axis=-1) over the class axis",
            "Dense 'regrouped_concat/head_a' normalizes over axis -1: each softmax covers 3 values, but Concatenate "
            "'regrouped_concat/both' regroups them into output rows of 6 along axis -1, so each row sums to 2 (2 "
            "softmaxes per row), not 1: apply the softmax after the regrouping, over the class axis (drop the softmax "
            "from Dense 'regrouped_concat/head_a', regroup the logits, then Softmax(axis=-1)); if each part is a "
            "distribution of its own, make the parts separate outputs",
            id="regrouped-by-concatenate"),
        pytest.param(
            ("hand_masked_pointer",), "hand_pointer/pointer (MaskedPointer)",
            "every position masked, so the row is all zeros",
            "if such rows are expected: allow_masked_rows=True (ini softmax_allow_masked_rows = true)",
            "MaskedPointer 'hand_pointer/pointer' fed its softmax mask values at every position of row [*], so that "
            "row is written as all zeros (sum 0, not 1): if such rows are expected (e.g. padding-only queries), "
            "accept them with allow_masked_rows=True in the marker (softmax_allow_masked_rows = true in the ini file, "
            "--softmax-allow-masked-rows=true), or leave this output out with outputs=[...]; otherwise make sure "
            "every row keeps at least one unmasked position",
            id="masked-all-zero-row"),
        pytest.param(
            ("pointer_softmax",), "pointer_net/pointer (Softmax)",
            "every position masked, so the row is all zeros",
            "if such rows are expected: allow_masked_rows=True (ini softmax_allow_masked_rows = true)",
            "Softmax 'pointer_net/pointer' was given a mask that hides every position of row [*], so that row is "
            "written as all zeros (sum 0, not 1): if such rows are expected (e.g. padding-only queries), accept them "
            "with allow_masked_rows=True in the marker (softmax_allow_masked_rows = true in the ini file, "
            "--softmax-allow-masked-rows=true), or leave this output out with outputs=[...]; otherwise make sure "
            "every row keeps at least one unmasked position",
            id="masked-softmax-layer-at-the-output"),
    ],
)
def test_a_regrouped_or_masked_output_is_explained_in_full(
    build: tuple[str, ...], layer: str, cause: str, fix: str, explanation: str
) -> None:
    import diagnosis_zoo

    builder, *args = build
    report = failed(lambda: getattr(diagnosis_zoo, builder)(*args))
    assert_explained(report, layer, cause, fix, explanation)


def sqrt_of_negative_scores() -> keras.Model:
    class SqrtScores(keras.layers.Layer):
        def call(self, x):  # type: ignore[no-untyped-def]
            return keras.ops.softmax(keras.ops.sqrt(x - 10.0))

    inp = keras.Input((4,))
    return keras.Model(inp, SqrtScores(name="scores")(inp), name="sqrt_scores")


def float16_hidden_layer() -> keras.Model:
    return keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, kernel_initializer="ones", dtype="mixed_float16", name="hidden"),
        keras.layers.Dense(3, activation="softmax", dtype="float32", name="probs"),
    ], name="f16_hidden")


@pytest.mark.parametrize(
    ("build", "value", "layer", "cause", "fix", "explanation"),
    [
        pytest.param(
            sqrt_of_negative_scores, 0.0, "sqrt_scores/scores (SqrtScores)",
            "NaN made before the softmax inside the layer",
            "find the 0 * inf, inf - inf, division by zero or log(0) before that layer's softmax",
            "SqrtScores 'sqrt_scores/scores' is the first layer whose output holds NaN/Inf (8 values in the probed "
            "rows) although its inputs are finite; fed by input '*' (finite, max |value| 0): the values its softmax "
            "was fed already hold NaN (made in this layer before the softmax): look for 0 * inf, inf - inf, a "
            "division by zero or log(0) there",
            id="nan-made-inside-the-layer"),
        pytest.param(
            float16_hidden_layer, 1e4, "f16_hidden/hidden (Dense)", "float16 overflow: a value past 65504 became Inf",
            "compute this layer in float32 (dtype='float32'), use keras.ops.softmax, or constants that fit float16",
            "Dense 'f16_hidden/hidden' is the first layer whose output holds NaN/Inf (32 values in the probed rows) "
            "although its inputs are finite; fed by input '*' (finite, max |value| 1e+04): it computes in float16, "
            "and a value past float16's largest finite value 65504 (a constant such as -1e9 for a mask, an exp() past "
            "11.1, a product or sum past 65504; its inputs reach 1e+04) becomes Inf, and Inf - Inf or 0 * Inf then "
            "gives NaN: compute this layer in float32 (dtype='float32' on the layer), use keras.ops.softmax (it "
            "subtracts the maximum, so it stays finite), or use constants that fit float16 (e.g. -3e4 as a mask value)",
            id="float16-overflow-of-large-inputs"),
    ],
)
def test_a_nan_made_inside_a_layer_is_explained_in_full(
    build: Callable[[], keras.Model], value: float, layer: str, cause: str, fix: str, explanation: str
) -> None:
    import numpy as np

    model = build()
    rows = np.full((2, model.input_shape[-1]), value, "float32")
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(model, inputs=rows)
    report = raised.value.report
    assert_explained(report, layer, cause, fix, explanation)



class NanToZeroWhenCompiled(keras.layers.Layer):
    """What TensorFlow's fused MatMul+BiasAdd+Relu does on some CPUs: NaN
    becomes 0 in a traced graph and stays NaN when the layer runs eagerly.
    Other CPUs' fused kernel keeps the NaN, so a test of the compiled path
    hiding a NaN builds the hiding into its model instead of relying on the
    machine it runs on."""

    def call(self, x: object) -> object:
        import tensorflow as tf

        if tf.executing_eagerly():
            return x
        return tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)


def stale_batch_norm(activation: str | None = None, *, hidden_when_compiled: bool = False) -> keras.Model:
    """A BatchNormalization whose moving variance went negative (a bad
    checkpoint, a hand-edited statistic), then the head; with
    ``hidden_when_compiled``, the hidden layer's NaN turns into 0 in the
    compiled forward on every machine."""
    import numpy as np

    layers = [keras.Input((6,)), keras.layers.BatchNormalization(name="bn")]
    if activation is not None:
        layers.append(keras.layers.Dense(8, activation=activation, name="hidden"))
    if hidden_when_compiled:
        layers.append(NanToZeroWhenCompiled(name="fused_relu"))
    model = keras.Sequential([*layers, keras.layers.Dense(3, activation="softmax", name="probs")],
                             name="stale_stats" if activation is None else f"stale_stats_{activation}")
    variance = np.ones(6, "float32")
    variance[2] = -0.5
    model.get_layer("bn").moving_variance.assign(variance)
    return model


def stale_normalization() -> keras.Model:
    """A Normalization layer adapted, then its stored variance corrupted."""
    import numpy as np

    layer = keras.layers.Normalization(name="norm")
    layer.adapt(np.random.default_rng(0).normal(size=(16, 6)).astype("float32"))
    (variance,) = [w for w in layer.weights if w.name == "variance"]
    values = np.array(keras.ops.convert_to_numpy(variance))
    values[..., 1] = -2.0
    variance.assign(values)
    layer.finalize_state()
    return keras.Sequential([keras.Input((6,)), layer, keras.layers.Dense(3, activation="softmax", name="probs")],
                            name="norm_stats")


class RootScaled(keras.layers.Layer):
    """Divides by the square root of a learned scale."""

    def build(self, shape):  # type: ignore[no-untyped-def]
        self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="scale")

    def call(self, x):  # type: ignore[no-untyped-def]
        return x / keras.ops.sqrt(self.scale)


def negative_scale() -> keras.Model:
    import numpy as np

    inp = keras.Input((6,))
    layer = RootScaled(name="rescale")
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(layer(inp)),
                        name="root_scaled")
    scale = np.ones(6, "float32")
    scale[0] = -0.25
    layer.scale.assign(scale)
    return model


def infinite_kernel() -> keras.Model:
    import numpy as np

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="probs")], name="inf_kernel")
    kernel = model.get_layer("hidden").kernel
    values = np.array(keras.ops.convert_to_numpy(kernel))
    values[0, 0] = np.inf
    kernel.assign(values)
    return model


STATE_HEAD = ("{layer} is the first layer whose output holds NaN/Inf (2 values in the probed rows) although its "
              "inputs are finite; fed by input '*' (finite, max |value| 1): ")
VARIANCE_TAIL = ("the layer divides by sqrt(variance + epsilon), and the square root of a negative number is NaN: "
                 "recompute the statistics (run training data through the layer with training=True, or adapt() it "
                 "again), or clip '{name}' to >= 0")


@pytest.mark.parametrize(
    ("build", "layer", "cause", "fix", "explanation"),
    [
        pytest.param(
            stale_batch_norm, "stale_stats/bn (BatchNormalization)",
            "negative moving_variance (-0.5) under a square root",
            "recompute the statistics (training=True passes or adapt()), or clip moving_variance to >= 0",
            STATE_HEAD.format(layer="BatchNormalization 'stale_stats/bn'") + "its stored variance statistic "
            "'moving_variance' holds 1 negative value of 6 (down to -0.5); "
            + VARIANCE_TAIL.format(name="moving_variance"),
            id="negative-moving-variance"),
        pytest.param(
            stale_normalization, "norm_stats/norm (Normalization)", "negative variance (-2) under a square root",
            "recompute the statistics (training=True passes or adapt()), or clip variance to >= 0",
            STATE_HEAD.format(layer="Normalization 'norm_stats/norm'") + "its stored variance statistic 'variance' "
            "holds 1 negative value of 6 (down to -2); " + VARIANCE_TAIL.format(name="variance"),
            id="negative-normalization-variance"),
        pytest.param(
            negative_scale, "root_scaled/rescale (RootScaled)", "scale <= 0 under a log, root or division",
            "keep scale positive (exp() or softplus() of a free weight, or clip it) and retrain",
            STATE_HEAD.format(layer="RootScaled 'root_scaled/rescale'") + "its variable 'scale', a scale meant to "
            "stay positive, holds 1 value <= 0 of 6 (down to -0.25): a log or square root of it is NaN (log(0) is "
            "-inf), a division by 0 is Inf: keep 'scale' positive (the exp() or softplus() of a free weight, or clip "
            "it) and retrain",
            id="negative-scale-under-a-root"),
        pytest.param(
            infinite_kernel, "inf_kernel/hidden (Dense)", "its variable kernel holds Inf",
            "retrain, or replace the non-finite entries of kernel with finite values",
            STATE_HEAD.format(layer="Dense 'inf_kernel/hidden'") + "its own variable 'kernel' holds 1 Inf of 48 "
            "values, and finite inputs times an infinite weight give Inf, 0 * Inf and Inf - Inf give NaN: retrain "
            "(lower the learning rate, clip gradients) or replace the non-finite entries of 'kernel' with finite "
            "values",
            id="infinite-kernel-entry"),
    ],
)
def test_a_nan_made_by_a_layers_own_state_is_explained_in_full(
    build: Callable[[], keras.Model], layer: str, cause: str, fix: str, explanation: str
) -> None:
    import numpy as np

    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(build(), inputs=np.ones((2, 6), "float32"))
    report = raised.value.report
    assert_explained(report, layer, cause, fix, explanation)


@pytest.mark.tensorflow_only  # the fused MatMul+BiasAdd+Relu kernel is TensorFlow's
def test_a_negative_variance_before_a_fused_dense_relu_is_named_whatever_the_cpu_does() -> None:
    """The real fused kernel: on some CPUs it turns the NaN into 0 and the
    compiled forward hides it, on others it keeps it and the search sees it.
    Either way the check fails and names the statistic; the cause says
    whether the compiled path hid it on this machine."""
    import numpy as np

    from pytest_softmax.adapters.registry import adapt

    model = stale_batch_norm("relu")
    (compiled_rows,) = adapt(model).forward([np.ones((4, 6), "float32")])
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(model, max_examples=5)
    report = raised.value.report
    hidden_here = not np.isnan(compiled_rows).all()
    hidden = "; hidden by the compiled forward (tf.function over the input signature)" if hidden_here else ""
    assert (report.layer_at_fault, report.cause) == (
        "stale_stats_relu/bn (BatchNormalization)", f"negative moving_variance (-0.5) under a square root{hidden}")


@pytest.mark.tensorflow_only  # tf.function is what the search runs on TensorFlow
def test_a_nan_the_compiled_path_hides_is_found_and_said() -> None:
    """model(x) returns NaN, the tf.function the search runs returns uniform
    rows (the NaN turns into 0 in the graph, as the fused Dense+relu kernel
    does on some CPUs): the eager call on the batch tried before the search
    catches it, with no seed."""
    model = stale_batch_norm("relu", hidden_when_compiled=True)
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(model, max_examples=5)
    report = raised.value.report
    compiled = "tf.function over the input signature"
    assert (report.layer_at_fault, report.cause, report.fix) == (
        "stale_stats_relu/bn (BatchNormalization)",
        f"negative moving_variance (-0.5) under a square root; hidden by the compiled forward ({compiled})",
        "recompute the statistics (training=True passes or adapt()), or clip moving_variance to >= 0")
    assert report.diagnosis[0] == (
        "model(x) returns 96 NaN/Inf values on output 'probs' (probs: Dense) for this batch, but the compiled "
        f"forward the check runs ({compiled}) returns finite rows for the same batch: the compiled path hides the "
        "NaN (a fused kernel can turn NaN into 0, as TensorFlow's MatMul+BiasAdd+Relu does on some CPUs, and "
        "model.predict runs it too), so the values shown are model(x)'s; fix the layer that makes it")
    assert matches(report.diagnosis[1], STATE_HEAD.replace("1)", "*)").format(
        layer="BatchNormalization 'stale_stats_relu/bn'").replace("(2 values", "(* values") + "*")
    text = str(report)
    assert "  failing input (the batch tried before the search):" in text
    assert "  replay: rerun the same check: it tries this batch before the search on every run" in text
    # What the search itself would have seen: the compiled forward's tidy rows.
    from pytest_softmax.adapters.registry import adapt

    (compiled_rows,) = adapt(model).forward([keras.ops.convert_to_numpy(keras.ops.ones((4, 6)))])
    assert (compiled_rows == compiled_rows[0, 0]).all()


@pytest.mark.tensorflow_only  # tf.function is what the search runs on TensorFlow
def test_a_model_checked_again_after_its_weights_change_is_compared_again() -> None:
    """The eager comparison that agreed is remembered for the model and its
    weights: a statistic that goes bad between two checks of one model (a
    session fixture, a test that loads a checkpoint into it) is still caught."""
    import numpy as np

    model = stale_batch_norm("relu", hidden_when_compiled=True)
    model.get_layer("bn").moving_variance.assign(np.ones(6, "float32"))
    assert check_softmax(model, max_examples=5).passed
    assert check_softmax(model, max_examples=5).passed
    variance = np.ones(6, "float32")
    variance[2] = -0.5
    model.get_layer("bn").moving_variance.assign(variance)
    with pytest.raises(SoftmaxInvariantError) as raised:
        check_softmax(model, max_examples=5)
    assert raised.value.report.cause.endswith("hidden by the compiled forward (tf.function over the input signature)")
