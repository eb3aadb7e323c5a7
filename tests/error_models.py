"""Small models that cannot be checked, or that misbehave, for the error and
state tests.  Test files written by pytester import them by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np


def healthy() -> keras.Model:
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(inp))


def with_lambda() -> keras.Model:
    """A Lambda holding a Python lambda: saved, its bytecode is in the file."""
    inp = keras.Input((4,))
    x = keras.layers.Dense(3, activation="softmax")(inp)
    return keras.Model(inp, keras.layers.Lambda(lambda t: t * 1.0, output_shape=(3,), name="lam")(x))


def string_input() -> keras.Model:
    inp = keras.Input((1,), dtype="string")
    x = keras.layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")(inp)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


class Unbuilt(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(3, activation="softmax")

    def call(self, x: object) -> object:
        return self.dense(x)


def needs_length_8() -> keras.Model:
    """Declares a variable length but can only reshape 8 values."""
    inp = keras.Input((None,))
    x = keras.layers.Flatten()(keras.layers.Reshape((2, 4))(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


def integer_output() -> keras.Model:
    inp = keras.Input((4,))
    return keras.Model(inp, keras.ops.argmax(keras.layers.Dense(3)(inp), axis=-1))


def rank1_output() -> keras.Model:
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Reshape(())(keras.layers.Dense(1, activation="sigmoid")(inp)))


def one_class() -> keras.Model:
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Dense(1, activation="softmax")(inp))


def embedding() -> keras.Model:
    inp = keras.Input((5,), dtype="int32")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


class Noise(keras.layers.Layer):
    """Adds noise whatever `training` says: a non-deterministic model."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.seeds = keras.random.SeedGenerator(1)

    def call(self, x: object) -> object:
        return x + keras.random.uniform(keras.ops.shape(x), seed=self.seeds)


def noisy() -> keras.Model:
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Softmax()(Noise()(keras.layers.Dense(3)(inp))))


class OutOfMemoryAbove(keras.layers.Layer):
    """Raises what TensorFlow raises when a batch does not fit, above 8 rows."""

    def call(self, x: Any) -> Any:
        # TensorFlow only (the test using it is tensorflow_only): imported
        # here so that other backends' test processes do not load it.
        import tensorflow as tf

        def check(t: Any) -> Any:
            if t.shape[0] > 8:
                raise tf.errors.ResourceExhaustedError(None, None, f"OOM when allocating tensor with shape{t.shape}")
            return t

        out = tf.py_function(check, [x], x.dtype)
        out.set_shape(x.shape)
        return out

    def compute_output_shape(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return shape


def out_of_memory() -> keras.Model:
    inp = keras.Input((4,))
    x = OutOfMemoryAbove()(inp)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


def save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def nan_inputs() -> np.ndarray:
    x = np.ones((4, 4), "float32")
    x[1, 2] = np.nan
    return x
