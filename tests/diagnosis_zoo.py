"""Models for the diagnosis tests, one per cause, built once per process
(pytester files import this module; see ``diag`` in test_diagnosis.py)."""

from __future__ import annotations

import functools

import keras
import numpy as np


@functools.cache
def nested_lstm() -> keras.Model:
    """The founding bug inside a Sequential inside a Functional model."""
    head = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax", name="inner_lstm")],
                            name="head")
    x = keras.Input((3, 2))
    return keras.Model(x, keras.layers.Flatten(name="flat")(head(x)), name="outer")


@functools.cache
def softmax_other_axis() -> keras.Model:
    return keras.Sequential([keras.Input((4, 5)), keras.layers.Softmax(axis=1, name="over_time")], name="axis1")


@functools.cache
def head_with(activation: str) -> keras.Model:
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation=activation, name="head")],
                            name=f"head_{activation}")


@functools.cache
def zero_temperature() -> keras.Model:
    return keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(3, name="logits"),
        keras.layers.Lambda(lambda x: x / 0.0, name="temperature"), keras.layers.Softmax(name="probs"),
    ], name="zero_temperature")


@functools.cache
def dense_after_softmax() -> keras.Model:
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(5, activation="softmax", name="probs"),
        keras.layers.Dropout(0.2), keras.layers.Dense(5, name="mixer"),
    ], name="dense_after_softmax")


@functools.cache
def float16_head() -> keras.Model:
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(64, activation="softmax", dtype="mixed_float16", name="probs"),
    ], name="float16_head")


@functools.cache
def single_class_gate() -> keras.Model:
    """An internal one-unit softmax (always 1) used as a gate."""
    x = keras.Input((6,))
    gate = keras.layers.Dense(1, activation="softmax", name="gate")(x)
    hidden = keras.layers.Multiply()([keras.layers.Dense(6)(x), gate])
    return keras.Model(x, keras.layers.Dense(3, activation="softmax", name="probs")(hidden), name="gated")


@functools.cache
def attention() -> keras.Model:
    tokens = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(20, 8)(tokens)
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    pooled = keras.layers.GlobalAveragePooling1D()(attended)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(pooled), name="attention")


@functools.cache
def masked_attention_pooling() -> keras.Model:
    """A masked Softmax inside: a row of padding tokens only is all zeros."""
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0), name="mask")(tokens)
    embedded = keras.layers.Embedding(10, 4, name="embed")(tokens)
    scores = keras.layers.Lambda(lambda e: keras.ops.sum(e, axis=-1), name="scores")(embedded)
    weights = keras.layers.Softmax(name="attn")(scores, mask=mask)
    pooled = keras.layers.Lambda(lambda a: keras.ops.einsum("bt,btd->bd", a[0], a[1]), name="pool")(
        [weights, embedded])
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax", name="probs")(pooled), name="masked")


@functools.cache
def nan_internal_site() -> keras.Model:
    """An internal softmax that makes NaN, hidden from the output by a
    later layer that replaces NaN: only the internal-site check sees it."""
    x = keras.Input((4,))
    broken = keras.layers.Softmax(name="broken")(keras.layers.Lambda(lambda v: v / 0.0, name="div")(x))
    cleaned = keras.layers.Lambda(lambda p: keras.ops.nan_to_num(p, nan=0.25), name="clean")(broken)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax", name="probs")(cleaned), name="nan_site")


class Net(keras.Model):
    """Subclassed; the softmax is computed in call(), outside any layer."""

    def __init__(self) -> None:
        super().__init__(name="net")
        self.hidden = keras.layers.Dense(4, name="hidden")

    def call(self, x):  # type: ignore[no-untyped-def]
        return keras.ops.softmax(self.hidden(x)) * 0.5


@functools.cache
def subclassed_inside_functional() -> keras.Model:
    x = keras.Input((5,))
    return keras.Model(x, Net()(x), name="wrapper")


def probs_batch() -> np.ndarray:
    return np.linspace(-1, 1, 8 * 6, dtype="float32").reshape(8, 6)


@functools.cache
def conv_lstm_softmax() -> keras.Model:
    """ConvLSTM1D with softmax over its filters: gated like LSTM."""
    return keras.Sequential([
        keras.Input((3, 5, 2)),
        keras.layers.ConvLSTM1D(4, 3, padding="same", activation="softmax", name="conv_lstm"),
    ], name="seed_conv_lstm")


# Models rebuilt from public bug reports (issue 11): masks, float16 overflow,
# regrouped softmaxes, diverged weights.  Tiny on purpose.

class MaskedSelfAttention(keras.layers.Layer):
    """Hand-written attention that masks scores with -inf (or an additive
    constant) before keras.ops.softmax: a padding-only row is masked
    everywhere (jadore801120/attention-is-all-you-need-pytorch#5: NaN loss
    from -inf masks; allenai/allennlp#890: masked softmax of an all-masked
    row returns NaN)."""

    def __init__(self, fill: float = float("-inf"), additive: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.fill, self.additive = fill, additive

    def call(self, x, mask):  # type: ignore[no-untyped-def]
        scores = keras.ops.matmul(x, keras.ops.transpose(x, (0, 2, 1)))
        keep = keras.ops.expand_dims(keras.ops.cast(mask, scores.dtype), 1)
        if self.additive:
            scores = scores + (1.0 - keep) * self.fill
        else:
            scores = keras.ops.where(keep > 0, scores, self.fill)
        return keras.ops.matmul(keras.ops.softmax(scores, axis=-1), x)


def _token_model(name: str, attention: keras.layers.Layer, dtype: str | None = None) -> keras.Model:
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0), name="padding")(tokens)
    embedded = keras.layers.Embedding(12, 4, name="embed", dtype=dtype)(tokens)
    attended = attention(embedded, mask)
    pooled = keras.layers.GlobalAveragePooling1D(name="pool", dtype=dtype)(attended)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax", name="probs", dtype="float32")(pooled),
                       name=name)


@functools.cache
def masked_attention_neg_inf() -> keras.Model:
    return _token_model("masked_attention", MaskedSelfAttention(name="attn"))


@functools.cache
def float16_additive_mask() -> keras.Model:
    """-1e9 as an additive mask under mixed_float16: -1e9 is -inf in float16
    (google/flax#982: attention in float16 gives NaN with a mask;
    openai/gpt-2#122: the 1e10 mask does not fit float16)."""
    return _token_model("fp16_mask", MaskedSelfAttention(fill=-1e9, additive=True, name="attn",
                                                         dtype="mixed_float16"), dtype="mixed_float16")


@functools.cache
def float16_naive_softmax() -> keras.Model:
    """A hand-written exp/sum computed in float16: exp() overflows past 11.1.
    Logits of both signs (s, -s, s/2, -s/2), so no row underflows as a whole."""
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(4, name="logits", dtype="mixed_float16"),
        keras.layers.Lambda(lambda x: keras.ops.exp(x) / keras.ops.sum(keras.ops.exp(x), axis=-1, keepdims=True),
                            name="naive", dtype="mixed_float16"),
    ], name="fp16_naive")
    kernel = np.tile(np.array([[1.0, -1.0, 0.5, -0.5]], dtype="float32"), (6, 1))
    model.get_layer("logits").set_weights([kernel, np.zeros(4, "float32")])
    return model


@functools.cache
def masked_then_scaled() -> keras.Model:
    """Two defects in one output: NaN rows (fully masked) and rows scaled
    past 1 (a Rescaling after the softmax)."""
    inner = neg_inf_then_softmax_layer()
    return keras.Model(inner.input, keras.layers.Rescaling(2.0, name="double")(inner.output), name="two_defects")


@functools.cache
def pointer_softmax() -> keras.Model:
    """A pointer network's output: a Softmax over positions given the padding
    mask; a padding-only input is masked everywhere (all-zero row)."""
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0), name="padding")(tokens)
    embedded = keras.layers.Embedding(12, 4, name="embed")(tokens)
    scores = keras.layers.Lambda(lambda e: keras.ops.sum(e, axis=-1), name="scores")(embedded)
    return keras.Model(tokens, keras.layers.Softmax(name="pointer")(scores, mask=mask), name="pointer_net")


@functools.cache
def regrouped_by(kind: str) -> keras.Model:
    """One softmax over many values regrouped into rows of classes
    (keras-team/keras#7614: Dense(49152, activation='softmax') reshaped to
    (pixels, 12) to predict 12 probabilities per pixel)."""
    x = keras.Input((4,))
    if kind == "reshape":  # a per-pixel head written the wrong way round
        probs = keras.layers.Dense(768, activation="softmax", name="seg")(x)
        out = keras.layers.Reshape((64, 12), name="pixels")(probs)
    elif kind == "permute":
        probs = keras.layers.Softmax(name="attn")(keras.layers.Reshape((6, 5))(keras.layers.Dense(30)(x)))
        out = keras.layers.Permute((2, 1), name="swap")(probs)
    else:  # two softmax heads concatenated into one output
        first = keras.layers.Dense(3, activation="softmax", name="head_a")(x)
        second = keras.layers.Dense(3, activation="softmax", name="head_b")(x)
        out = keras.layers.Concatenate(name="both")([first, second])
    return keras.Model(x, out, name=f"regrouped_{kind}")


@functools.cache
def diverged_weights() -> keras.Model:
    """A Dense kernel holding NaN (training diverged) before a ReLU: graph-mode
    TensorFlow fuses MatMul+ReLU, and on some CPUs the output comes out finite."""
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="probs"),
    ], name="diverged")
    kernel = model.get_layer("hidden").kernel
    kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))
    return model


@functools.cache
def neg_inf_then_softmax_layer() -> keras.Model:
    """The mask applied by its own layer (-inf where padded), then a Keras
    Softmax layer over the positions as the output."""
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(12, 4, name="embed")(tokens)
    scores = keras.layers.Lambda(lambda e: keras.ops.sum(e, axis=-1), name="scores")(embedded)
    masked = keras.layers.Lambda(
        lambda a: keras.ops.where(keras.ops.not_equal(a[0], 0), a[1], float("-inf")), name="mask_scores",
    )([tokens, scores])
    return keras.Model(tokens, keras.layers.Softmax(name="weights")(masked), name="neg_inf_softmax")


@functools.cache
def padding_masked_lstm() -> keras.Model:
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 8, mask_zero=True)(tokens)
    x = keras.layers.LSTM(8)(x)
    return keras.Model(tokens, keras.layers.Dense(4, activation="softmax")(x), name="padded_lstm")


@functools.cache
def mixed_float16_classifier() -> keras.Model:
    return keras.Sequential([
        # tanh keeps the float16 logits small whatever the input (a healthy
        # model: large inputs overflowing float16 are not what this checks).
        keras.Input((6,)), keras.layers.Dense(16, activation="tanh", dtype="mixed_float16"),
        keras.layers.Dense(5, dtype="mixed_float16"),
        keras.layers.Activation("softmax", dtype="float32", name="probs"),
    ], name="mixed_clf")


class MultipliedMask(keras.layers.Layer):
    """Masks by multiplying: scores * mask + (1 - mask) * -inf, so a kept
    position is 0 * -inf = NaN (the -inf-times-zero trap behind many
    "masked attention gives NaN" reports)."""

    def call(self, x, mask):  # type: ignore[no-untyped-def]
        keep = keras.ops.cast(mask, x.dtype)
        scores = keras.ops.sum(x, axis=-1)
        return keras.ops.softmax(scores * keep + (1.0 - keep) * float("-inf"), axis=-1)


@functools.cache
def multiplied_mask() -> keras.Model:
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0), name="padding")(tokens)
    embedded = keras.layers.Embedding(12, 4, name="embed")(tokens)
    return keras.Model(tokens, MultipliedMask(name="pointer")(embedded, mask), name="multiplied_mask")


class MaskedPointer(keras.layers.Layer):
    """A pointer over positions written by hand: an additive -1e9 mask, a
    softmax, then the mask multiplied back in, so a padding-only row comes
    out all zeros (no Keras Softmax involved)."""

    def call(self, x, mask):  # type: ignore[no-untyped-def]
        keep = keras.ops.cast(mask, x.dtype)
        scores = keras.ops.sum(x, axis=-1) + (1.0 - keep) * -1e9
        return keras.ops.softmax(scores, axis=-1) * keep


@functools.cache
def hand_masked_pointer() -> keras.Model:
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0), name="padding")(tokens)
    embedded = keras.layers.Embedding(12, 4, name="embed")(tokens)
    return keras.Model(tokens, MaskedPointer(name="pointer")(embedded, mask), name="hand_pointer")


class SoftmaxThenReshape(keras.layers.Layer):
    """A custom head that normalizes over all its units and then reshapes
    them into (positions, classes) in the same call()."""

    def call(self, x):  # type: ignore[no-untyped-def]
        return keras.ops.reshape(keras.ops.softmax(x, axis=-1), (-1, 8, 6))


@functools.cache
def regrouped_inside_a_layer() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(48, name="logits"),
                             SoftmaxThenReshape(name="head")], name="regrouped_inside")
