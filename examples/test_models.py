"""A bundled example: run `pytest examples/` to see pytest-softmax catch the
founding bug (a softmax inside an LSTM cell) while healthy models pass."""

import keras
import pytest


def lstm_with_softmax_activation() -> keras.Model:
    # The founding bug: the cell's activation is gated by the output gate,
    # so rows sum to about 0.5, not 1.
    return keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax")])


def lstm_then_dense_softmax() -> keras.Model:
    return keras.Sequential([
        keras.Input((3, 2)),
        keras.layers.LSTM(16),
        keras.layers.Dense(3, activation="softmax"),
    ])


@pytest.mark.softmax_invariant(model=lstm_with_softmax_activation)
def test_seed_lstm_is_caught():
    """Expected to FAIL: the report names the LSTM layer."""


@pytest.mark.softmax_invariant(model=lstm_then_dense_softmax)
def test_lstm_then_dense_softmax_passes():
    pass


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return keras.Sequential([
        keras.Input((20,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dropout(0.5),  # inactive in inference mode: must not cause a failure
        keras.layers.Dense(10, activation="softmax"),
    ])


@pytest.mark.softmax_invariant
def test_model_fixture_passes(model):
    assert model.output_shape == (None, 10)


def test_fixture_returns_a_report(softmax_check, model):
    report = softmax_check(model, max_examples=20)
    assert report.passed and report.examples >= 20
