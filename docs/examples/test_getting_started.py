"""The examples of the manual's "Getting started" page, as a user writes them.

The page includes the sections of this file between the ``--8<--`` markers,
and tests/test_docs.py runs the file with pytest, so the page cannot drift
from what the plugin does: ``pytest docs/examples`` gives 1 failed, 4 passed.
"""

# --8<-- [start:marker]
import keras
import pytest


def build_classifier() -> keras.Model:
    return keras.Sequential([
        keras.Input((3, 2)),
        keras.layers.LSTM(16),
        keras.layers.Dense(3, activation="softmax"),
    ])


@pytest.mark.softmax_invariant(model=build_classifier)
def test_classifier_outputs_are_distributions():
    pass  # the check runs after the test body; the test fails if either fails
# --8<-- [end:marker]


# --8<-- [start:founding-bug]
def build_founding_bug() -> keras.Model:
    # activation='softmax' inside an LSTM is gated by the cell's output gate:
    # each row sums to about 0.5, not 1.
    return keras.Sequential(
        [keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax", name="lstm")],
        name="founding_bug",
    )


@pytest.mark.softmax_invariant(model=build_founding_bug)
def test_founding_bug_is_caught():
    """Fails: the report names the LSTM layer and the cause."""
# --8<-- [end:founding-bug]


# --8<-- [start:fixture]
@pytest.fixture(scope="module")
def model() -> keras.Model:
    # Module scope: every test below checks the same model object, which is
    # traced once. In a real project: keras.saving.load_model("model.keras").
    return build_classifier()


@pytest.mark.softmax_invariant(max_examples=50)  # no model=: the `model` fixture is checked
def test_model_fixture_is_checked(model):
    assert model.output_shape == (None, 3)


def test_with_the_softmax_check_fixture(softmax_check, model):
    report = softmax_check(model, batch_size=8)  # this test's settings, overridden here
    assert report.passed
    assert report.worst_error <= report.tolerance
# --8<-- [end:fixture]


# --8<-- [start:check-softmax]
from pytest_softmax import SoftmaxInvariantError, check_softmax


def test_check_softmax_without_the_plugin():
    report = check_softmax(build_classifier(), max_examples=20, batch_size=16)
    print(report)  # the same text a failing test shows
    assert report.passed and report.examples == 20

    with pytest.raises(SoftmaxInvariantError) as raised:  # an AssertionError
        check_softmax(build_founding_bug(), seed=1234)  # seed: a failure's replay line names it
    assert raised.value.report.layer_at_fault == "founding_bug/lstm (LSTM)"
# --8<-- [end:check-softmax]
