"""Subclassed models: checked from the shape they were built with, or from
the test's inputs= arrays, and localized through their sublayers."""

from __future__ import annotations

import pytest

NET = """
    import keras, numpy as np, pytest

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.encoder = keras.layers.Dense(8, activation="relu")
            self.head = keras.layers.LSTM(3, activation="softmax", name="inner_lstm")

        def call(self, x):
            return self.head(self.encoder(x))

    def built_net():
        net = Net()
        net(np.zeros((1, 4, 5), "float32"))  # called once: Keras knows its input shape
        return net
"""


def test_an_unbuilt_subclassed_model_is_checked_and_localized_on_inputs_arrays(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_net=NET + """
    @pytest.mark.softmax_invariant(model=Net, inputs=np.full((6, 4, 5), 0.5, "float32"))
    def test_unbuilt():
        pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output * (inner_lstm: LSTM) is not normalized: *",
        "  LSTM 'net/inner_lstm' applies softmax inside its recurrent cell*",
        "  failing input (from inputs=):",
        "    input: float32 [[]6, 4, 5[]], given by the test*",
    ])


def test_a_called_subclassed_model_is_checked_from_its_build_shape(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_net=NET + """
    @pytest.mark.softmax_invariant(model=built_net, max_examples=10)
    def test_built():
        pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  LSTM 'net/inner_lstm' applies softmax inside its recurrent cell*",
        "  failing input (edge phase, before the search*",
        "    input: float32 [[]32, 4, 5[]], *",
    ])


def test_a_never_called_subclassed_model_without_inputs_says_to_pass_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_net=NET + """
    @pytest.mark.softmax_invariant(model=Net)
    def test_unknown_signature():
        pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model 'net' (Net) has no known input signature*pass inputs= with example arrays*"])
