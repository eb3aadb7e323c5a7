"""Tiny keras-hub architectures with softmax heads, built from constructor
arguments with random weights (no presets: nothing is downloaded).

keras-hub models are slow to build, so each factory is cached: a model is
built once per test process.  pytester test files import this module (see
the ``hub`` fixture in test_real_models.py)."""

from __future__ import annotations

import functools

import keras
import keras_hub

try:  # keras-hub imports it lazily; in-process pytester runs must not import it twice
    import tensorflow_text  # noqa: F401
except ImportError:  # pragma: no cover - keras-hub works without it
    pass

VOCAB = 60
SEQUENCE = 12
TEXT = {"vocabulary_size": VOCAB, "num_layers": 1, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 16,
        "max_sequence_length": SEQUENCE}


@functools.cache
def bert_backbone() -> keras.Model:
    return keras_hub.models.BertBackbone(**TEXT, num_segments=2, name="bert")


@functools.cache
def bert_pooled(activation: str | None = "softmax") -> keras.Model:
    """BertBackbone + Dense(4) on pooled_output: a ``segment_ids`` input
    reaching Embedding(2) and a ``padding_mask`` inside the nested backbone."""
    backbone = bert_backbone()
    head = keras.layers.Dense(4, activation=activation, name="head")(backbone.output["pooled_output"])
    return keras.Model(backbone.input, head, name=f"bert_{activation}")


@functools.cache
def bert_text_classifier(activation: str | None = "softmax") -> keras.Model:
    """A keras-hub task model nesting its backbone."""
    return keras_hub.models.BertTextClassifier(bert_backbone(), num_classes=3, preprocessor=None,
                                               activation=activation, name=f"bert_classifier_{activation}")


@functools.cache
def gpt2_backbone() -> keras.Model:
    return keras_hub.models.GPT2Backbone(**TEXT, name="gpt2")


@functools.cache
def gpt2_next_token(axis: int = -1, activation: str | None = "softmax") -> keras.Model:
    """Next-token probabilities over the vocabulary at every position:
    shape (batch, sequence, vocab).  ``axis=1`` normalizes over the
    sequence instead (the wrong axis)."""
    backbone = gpt2_backbone()
    logits = keras.layers.Dense(VOCAB, name="lm_logits")(backbone.output)
    if activation == "softmax":
        out = keras.layers.Softmax(axis=axis, name="next_token")(logits)
    else:
        out = keras.layers.Activation(activation or "linear", name="next_token")(logits)
    return keras.Model(backbone.input, out, name=f"gpt2_{activation}_{axis}")


@functools.cache
def vit_classifier(activation: str | None = "softmax") -> keras.Model:
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16, name="vit")
    cls_token = keras.layers.Lambda(lambda x: x[:, 0], name="cls_token")(backbone.output)
    head = keras.layers.Dense(5, activation=activation, name="head")(cls_token)
    return keras.Model(backbone.input, head, name=f"vit_{activation}")


@functools.cache
def roberta_classifier(activation: str | None = "softmax") -> keras.Model:
    """RoBERTa embeds ids with keras-hub's composite TokenAndPositionEmbedding."""
    backbone = keras_hub.models.RobertaBackbone(**TEXT, name="roberta")
    first = keras.layers.Lambda(lambda x: x[:, 0], name="first_token")(backbone.output)
    head = keras.layers.Dense(3, activation=activation, name="head")(first)
    return keras.Model(backbone.input, head, name=f"roberta_{activation}")


@functools.cache
def bart_next_token(activation: str | None = "softmax") -> keras.Model:
    """BART's token embedding is shared: called once on the encoder ids and
    once on the decoder ids (two nodes of one layer)."""
    backbone = keras_hub.models.BartBackbone(**TEXT, name="bart")
    probs = keras.layers.Dense(VOCAB, activation=activation, name="head")(backbone.output["decoder_sequence_output"])
    return keras.Model(backbone.input, probs, name=f"bart_{activation}")
