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
