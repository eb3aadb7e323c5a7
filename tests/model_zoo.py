"""Small Keras models shared by the tests.

Each factory is cached, so a model is built once per test process and the
plugin's compiled forward pass for it is shared too.  pytester test files
import this module (see ``zoo`` in conftest.py)."""

from __future__ import annotations

import functools

import keras


@functools.cache
def lstm_softmax() -> keras.Model:
    """The founding bug: softmax inside the LSTM cell."""
    return keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax", name="lstm")], name="seed_lstm")


@functools.cache
def gru_softmax() -> keras.Model:
    return keras.Sequential([keras.Input((3, 2)), keras.layers.GRU(3, activation="softmax", name="gru")], name="seed_gru")


@functools.cache
def simple_rnn_softmax() -> keras.Model:
    return keras.Sequential([keras.Input((3, 2)), keras.layers.SimpleRNN(3, activation="softmax", name="simple_rnn")])


@functools.cache
def lstm_dense_softmax() -> keras.Model:
    return keras.Sequential([
        keras.Input((3, 2)), keras.layers.LSTM(8, name="encoder"), keras.layers.Dense(4, activation="softmax", name="probs"),
    ])


@functools.cache
def lambda_softmax() -> keras.Model:
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(5), keras.layers.Lambda(keras.activations.softmax),
    ])


@functools.cache
def dense_logits() -> keras.Model:
    """No softmax at all: raw logits."""
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="logits")], name="logits_only")


@functools.cache
def scaled_softmax(factor: float = 1.001) -> keras.Model:
    """A softmax whose rows sum to ``factor``: a known, tunable error."""
    return keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5, activation="softmax"),
        keras.layers.Rescaling(factor, name="rescale"),
    ], name=f"scaled_{str(factor).replace('.', '_')}")


@functools.cache
def naive_softmax() -> keras.Model:
    """exp(x) / sum(exp(x)) without subtracting the max: NaN past logit ~88."""
    def naive(x):
        e = keras.ops.exp(x)
        return e / keras.ops.sum(e, axis=-1, keepdims=True)

    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Lambda(naive, name="naive")])


@functools.cache
def dropout_softmax() -> keras.Model:
    return keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.9),
        keras.layers.Dense(4, activation="softmax"),
    ])


@functools.cache
def two_inputs_two_outputs() -> keras.Model:
    """Dict inputs (one integer, into an Embedding) and dict outputs: one
    distribution, one head of logits."""
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    extra = keras.Input((4,), name="extra")
    x = keras.layers.Embedding(100, 8)(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Concatenate()([x, extra])
    probs = keras.layers.Dense(5, activation="softmax", name="probs")(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model({"tokens": tokens, "extra": extra}, {"probs": probs, "logits": logits})


@functools.cache
def mobilenet(classifier_activation: str | None = "softmax") -> keras.Model:
    """A real architecture, no download: MobileNetV3Small with random weights
    at a small input size to keep the suite fast."""
    return keras.applications.MobileNetV3Small(
        input_shape=(64, 64, 3), weights=None, classes=10,
        classifier_activation=classifier_activation, include_preprocessing=True,
    )
