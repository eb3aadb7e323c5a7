"""A forward pass that works whenever the model works (issue 10, item 2),
on whichever backend this process runs."""

from __future__ import annotations

import keras
import pytest

from pytest_softmax import SoftmaxInvariantError, check_softmax

FALLBACK_NOTE = ("the compiled forward (tf.function over the input signature) cannot run this model "
                 "(InvalidArgumentError: slice index")


def tagger_with_inner_softmax() -> keras.Model:
    """A tagger on a None time axis whose TimeDistributed layers a
    tf.function traced with that None dimension cannot slice, with a softmax
    site inside and a sigmoid head after it: it must fail, naming the head."""
    inp = keras.Input((None, 15))
    x = keras.layers.GRU(16, return_sequences=True)(inp)
    x = keras.layers.TimeDistributed(keras.layers.Dense(8), name="logits")(x)
    x = keras.layers.Softmax(name="inner")(x)
    out = keras.layers.TimeDistributed(keras.layers.Dense(8, activation="sigmoid"), name="tags")(x)
    return keras.Model(inp, out, name="tagger")


def test_a_model_the_compiled_forward_cannot_run_is_checked_and_diagnosed() -> None:
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(tagger_with_inner_softmax(), max_examples=10)
    report = caught.value.report
    assert report.backend == keras.backend.backend()
    # The internal softmax site was checked and the layer after it is blamed,
    # through the fallback forms on TensorFlow as on the other backends.
    assert report.layer_at_fault == "tagger/tags (TimeDistributed)"
    assert any("comes after the softmax Softmax 'tagger/inner' and changes its row sums" in line
               for line in report.diagnosis), report.diagnosis
    fallback = [note for note in report.notes if note.startswith(FALLBACK_NOTE)]
    if keras.backend.backend() == "tensorflow":
        assert fallback and fallback[0].endswith(
            "while the model itself can: it runs traced once per concrete input shape on the tensorflow backend")
    else:
        assert fallback == [], "jax.jit traces per concrete shape and torch runs eagerly: no fallback needed"
