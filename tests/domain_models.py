"""Small plain-Keras models whose inputs need their domain inferred from
the graph (ids bounded by a vocabulary, masks), or whose softmax runs over a
variable-length axis.  Cached: each is built once per test process."""

from __future__ import annotations

import functools

import keras


@functools.cache
def shared_embedding_in_nested_model() -> keras.Model:
    """A vocabulary of 12 shared by two id inputs, inside a nested model:
    the embedding's ``.input`` is only its first call (as BART's token
    embedding, keras-team/keras-hub: encoder and decoder ids)."""
    first, second = keras.Input((None,), dtype="int32", name="a"), keras.Input((None,), dtype="int32", name="b")
    shared = keras.layers.Embedding(12, 4, name="shared_tokens")
    pooled = keras.layers.GlobalAveragePooling1D()
    inner = keras.Model([first, second], keras.layers.Concatenate()([pooled(shared(first)), pooled(shared(second))]),
                        name="encoder")
    outer_a = keras.Input((None,), dtype="int32", name="source_ids")
    outer_b = keras.Input((None,), dtype="int32", name="target_ids")
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(inner([outer_a, outer_b]))
    return keras.Model([outer_a, outer_b], probs, name="shared_vocab")


def _masked_mean(activation: str | None) -> keras.Model:
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    x = keras.layers.Embedding(10, 4, name="tokens")(ids)
    weights = keras.layers.Lambda(lambda m: keras.ops.expand_dims(keras.ops.cast(m, "float32"), -1))(mask)
    pooled = keras.layers.Lambda(lambda t: keras.ops.sum(t[0] * t[1], axis=1)
                                 / keras.ops.maximum(keras.ops.sum(t[1], axis=1), 1.0))([x, weights])
    return keras.Model([ids, mask], keras.layers.Dense(3, activation=activation, name="head")(pooled),
                       name=f"masked_mean_{activation}")


@functools.cache
def masked_mean_logits() -> keras.Model:
    """Ids and an integer padding mask (known by its name); a logits head."""
    return _masked_mean(None)


@functools.cache
def attention_pooling_weights() -> keras.Model:
    """Attention pooling's weights: one score per step, normalized over the
    variable-length time axis (checked with axis=1)."""
    inp = keras.Input((None, 5))
    return keras.Model(inp, keras.layers.Softmax(axis=1, name="attn")(keras.layers.Dense(1, name="score")(inp)),
                       name="attention_weights")


@functools.cache
def attention_over_one_element() -> keras.Model:
    """The same weights normalized over the last axis, of size 1: always 1."""
    inp = keras.Input((None, 5))
    weights = keras.layers.Softmax(name="attn")(keras.layers.Dense(1, name="score")(inp))
    pooled = keras.layers.Flatten()(keras.layers.Dot(axes=1)([weights, inp]))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(pooled), name="attn_one")


@functools.cache
def ids_of_fixed_length() -> keras.Model:
    """Declares a variable length but can only reshape 8 ids."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Reshape((2, 16))(keras.layers.Embedding(20, 4, name="emb")(ids))
    return keras.Model(ids, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)), name="fixed8")


@functools.cache
def float_ids_embedding() -> keras.Model:
    """A float input fed to an Embedding (Keras casts it to ids), as many
    text models in questions and tutorials are written: normal noise there
    would be negative ids."""
    inp = keras.Input((10,), name="words")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(100, 8, name="words_emb")(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(x), name="float_ids")



@functools.cache
def attention_pooling_classifier() -> keras.Model:
    """Attention pooling inside a classifier: the internal Softmax(axis=1)
    runs over the variable-length time axis."""
    inp = keras.Input((None, 5))
    weights = keras.layers.Softmax(axis=1, name="attn")(keras.layers.Dense(1, name="score")(inp))
    pooled = keras.layers.Flatten()(keras.layers.Dot(axes=1)([weights, inp]))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(pooled), name="attn_pool")
