"""Models a hostile or careless user passes (issue 12's red-team probes),
for the no-vacuous-verdict and engine hardening tests.  Test files written
by pytester import them by name; each builder is cached, the models are tiny."""

from __future__ import annotations

import functools
from typing import Any

import keras
import tensorflow as tf


@functools.cache
def healthy() -> keras.Model:
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(inp))


@functools.cache
def huge_input() -> keras.Model:
    """One row is 200000 x 100000 float32 values (80 GB): no batch fits."""
    inp = keras.Input((200000, 100000), name="x")
    x = keras.layers.GlobalAveragePooling1D()(inp)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(x))


@functools.cache
def complex_output() -> keras.Model:
    inp = keras.Input((4,), name="x")
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(inp)
    return keras.Model(inp, keras.ops.cast(probs, "complex64"))


@functools.cache
def sparse_input() -> keras.Model:
    inp = keras.Input((4,), sparse=True, name="x")
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(inp))


@functools.cache
def stateful_lstm() -> keras.Model:
    """A stateful RNN needs a fixed batch size; its state carries over calls."""
    inp = keras.Input((3, 2), batch_size=8, name="x")
    x = keras.layers.LSTM(4, stateful=True, name="lstm")(inp)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(x))


class CallCounter(keras.layers.Layer):
    """Counts its calls in a *trainable* weight: inference writes a variable."""

    def build(self, input_shape: Any) -> None:
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=True, name="calls")

    def call(self, x: Any) -> Any:
        self.calls.assign_add(1.0)
        return x


def counting() -> tuple[keras.Model, CallCounter]:
    """Not cached: each test needs its own counter at zero."""
    counter = CallCounter(name="counter")
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(counter(inp))), counter


class JitSetter(keras.layers.Layer):
    """Turns on XLA auto-clustering, a process-wide setting, while traced."""

    def call(self, x: Any) -> Any:
        tf.config.optimizer.set_jit(True)
        return x


@functools.cache
def sets_jit() -> keras.Model:
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(JitSetter()(inp)))


class ForwardModule(tf.Module):
    """A tf.Module whose __call__ is a forward pass, not a factory."""

    def __init__(self) -> None:
        super().__init__()
        self.ran = 0

    def __call__(self, x: Any) -> Any:
        self.ran += 1
        return tf.nn.softmax(x)


class ForwardObject:
    """A plain callable object that computes probabilities."""

    def __init__(self) -> None:
        self.ran = 0

    def __call__(self, x: Any) -> Any:
        self.ran += 1
        return tf.nn.softmax(x)


RAN: list[str] = []


def forward_function(x: Any) -> Any:
    RAN.append("forward_function")
    return tf.nn.softmax(x)


class LoopCounter(keras.layers.Layer):
    """Writes its weight inside a loop body (a nested graph function)."""

    def build(self, input_shape: Any) -> None:
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=True, name="calls")

    def call(self, x: Any) -> Any:
        def body(i: Any) -> Any:
            self.calls.assign_add(1.0)
            return i + 1

        tf.while_loop(lambda i: i < 2, body, [tf.constant(0)])
        return x


def loop_counting() -> tuple[keras.Model, LoopCounter]:
    counter = LoopCounter(name="loop_counter")
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(counter(inp))), counter
