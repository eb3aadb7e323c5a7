"""A deeper model for the per-layer chart (issue 19): a small transformer-like
encoder of nested blocks whose second block's attention masks padding with
-inf, so a padding-only input makes NaN inside it that every later layer
carries to the softmax head.  The chart must show where it starts."""

from __future__ import annotations

import functools

import keras


class MaskedSelfAttention(keras.layers.Layer):
    """Self-attention masking padding scores with -inf before the softmax:
    a padding-only row is masked everywhere and its softmax is 0/0."""

    def call(self, x, mask):  # type: ignore[no-untyped-def]
        scores = keras.ops.matmul(x, keras.ops.transpose(x, (0, 2, 1)))
        keep = keras.ops.expand_dims(keras.ops.cast(mask, scores.dtype), 1)
        scores = keras.ops.where(keep > 0, scores, float("-inf"))
        return keras.ops.matmul(keras.ops.softmax(scores, axis=-1), x)


def _block(name: str, attention: keras.layers.Layer | None) -> keras.Model:
    x = keras.Input((5, 8))
    mask = keras.Input((5,), dtype="bool")
    attended = attention(x, mask) if attention is not None else x
    h = keras.layers.Add(name="residual")([x, attended])
    h = keras.layers.LayerNormalization(name="norm")(h)
    return keras.Model([x, mask], keras.layers.Dense(8, activation="relu", name="ffn")(h), name=name)


@functools.cache
def nested_encoder() -> keras.Model:
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0), name="padding")(tokens)
    h = keras.layers.Embedding(12, 8, name="embed")(tokens)
    h = _block("block_1", None)([h, mask])
    h = _block("block_2", MaskedSelfAttention(name="attention"))([h, mask])
    h = _block("block_3", None)([h, mask])
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    return keras.Model(tokens, keras.layers.Dense(4, activation="softmax", name="probs")(pooled), name="encoder")
