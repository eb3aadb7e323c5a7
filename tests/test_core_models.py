"""The founding story and its neighbours, run as a user runs pytest."""

from __future__ import annotations

import pytest

HEADLINE = "softmax invariant violated: output '{output}' ({layer}: {cls}) is {kind}: *"


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=source)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_lstm_with_softmax_activation_fails_naming_the_layer(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import pytest, model_zoo
        @pytest.mark.softmax_invariant(model=model_zoo.lstm_softmax)
        def test_seed():
            pass
    """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'lstm' (lstm: LSTM) is not normalized: "
        "max |sum - 1| = * > tolerance * [[]float32, axis -1, 3 classes[]]",
        # Found by the edge phase (a zero input already shows it), before the search.
        "*failing input (edge phase, before the search*",
        "*replay: rerun with: pytest 'test_user.py::test_seed' --hypothesis-seed=*",
    ])
    # The reported error is the one of the row the report shows (the gate
    # scales each row's sum below 1, to 0 for the largest inputs).
    line = next(l for l in result.outlines if l.startswith("softmax invariant violated"))
    error = float(line.split("max |sum - 1| = ")[1].split()[0])
    worst = next(l for l in result.outlines if l.startswith("  worst row"))
    row_sum = float(worst.split("sum = ")[1].split(";")[0])
    assert 0.2 < error <= 1 and error == pytest.approx(1 - row_sum, abs=1e-3)


def test_gru_with_softmax_activation_fails(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import pytest, model_zoo
        @pytest.mark.softmax_invariant(model=model_zoo.gru_softmax)
        def test_gru():
            pass
    """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output 'gru' (gru: GRU) is not normalized*"])


def test_healthy_models_pass(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import pytest, model_zoo
        @pytest.mark.parametrize("factory", [
            model_zoo.simple_rnn_softmax, model_zoo.lstm_dense_softmax,
            model_zoo.lambda_softmax, model_zoo.dropout_softmax,
        ])
        def test_healthy(factory, softmax_check):
            report = softmax_check(factory(), max_examples=40)
            assert report.passed and report.violations == []
            assert report.worst_error <= report.tolerance
    """)
    result.assert_outcomes(passed=4)


def test_marker_uses_the_model_fixture_and_runs_the_body(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import pytest, model_zoo
        @pytest.fixture
        def model():
            return model_zoo.dense_logits()

        @pytest.mark.softmax_invariant
        def test_logits(model):
            pass

        @pytest.mark.softmax_invariant(model=model_zoo.lstm_dense_softmax)
        def test_body_fails_too():
            assert 1 == 2, "body assertion"
    """)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*output 'logits' (logits: Dense) is *",
        "*body assertion*",
    ])


def test_naive_softmax_overflow_is_found_as_not_finite(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import pytest, model_zoo
        @pytest.mark.softmax_invariant(model=model_zoo.naive_softmax, max_examples=200)
        def test_naive():
            pass
    """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output 'naive' (naive: Lambda) is not finite: * NaN/Inf values in *"])


def test_multi_input_dict_model_with_embedding_ids_in_range(zoo: pytest.Pytester) -> None:
    """An id outside [0, 100) makes the Embedding raise on CPU: passing proves
    the generator keeps ids in the vocabulary; `outputs=` picks what is checked."""
    result = run(zoo, """
        import pytest, model_zoo
        @pytest.mark.softmax_invariant(model=model_zoo.two_inputs_two_outputs, outputs=["probs"])
        def test_probs_only():
            pass

        @pytest.mark.softmax_invariant(model=model_zoo.two_inputs_two_outputs)
        def test_all_outputs():
            pass
    """)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*output 'logits' (logits: Dense) is *"])


def test_user_inputs_strategy_and_arrays(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import numpy as np, pytest, model_zoo
        from hypothesis.extra.numpy import arrays
        from hypothesis import strategies as st

        @pytest.mark.softmax_invariant(
            model=model_zoo.lstm_dense_softmax,
            inputs=arrays("float32", (4, 3, 2), elements=st.floats(-5, 5, width=32)),
            max_examples=15)
        def test_strategy():
            pass

        @pytest.mark.softmax_invariant(model=model_zoo.lstm_softmax, inputs=np.zeros((5, 3, 2), "float32"))
        def test_arrays():
            pass
    """)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*input_layer*: float32 [[]5, 3, 2[]], given by the test*"])


@pytest.mark.skipif(
    __import__("keras").backend.backend() == "jax" and __import__("os").environ.get("JAX_ENABLE_X64") != "1",
    reason="JAX without JAX_ENABLE_X64 computes float64 models in float32",
)
def test_float64_models_are_checked_at_float64_tolerance(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import keras, pytest
        from pytest_softmax import default_tolerance

        def test_float64(softmax_check):
            # Keras fixes its dtype policy on first use, so set both, as a
            # float64 project does at start-up.
            before, policy = keras.config.floatx(), keras.config.dtype_policy()
            keras.config.set_floatx("float64")
            keras.config.set_dtype_policy("float64")
            try:
                model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(7, activation="softmax")])
            finally:
                keras.config.set_floatx(before)
                keras.config.set_dtype_policy(policy)
            report = softmax_check(model, max_examples=20)
            assert report.dtype == "float64"
            assert report.tolerance == default_tolerance("float64", 7)
            assert report.tolerance < default_tolerance("float32", 7)
    """)
    result.assert_outcomes(passed=1)


def test_mixed_precision_outputs_are_checked_as_float16(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import keras, pytest
        from pytest_softmax import default_tolerance

        def test_mixed(softmax_check):
            keras.mixed_precision.set_global_policy("mixed_float16")
            try:
                model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(50, activation="softmax")])
            finally:
                keras.mixed_precision.set_global_policy("float32")
            report = softmax_check(model, max_examples=30)
            assert report.dtype == "float16"
            assert report.tolerance == default_tolerance("float16", 50)
    """)
    result.assert_outcomes(passed=1)


def test_keras_applications_softmax_passes_and_logits_fail(zoo: pytest.Pytester) -> None:
    result = run(zoo, """
        import pytest, model_zoo

        @pytest.mark.softmax_invariant(model=lambda: model_zoo.mobilenet("softmax"), max_examples=8, batch_size=4)
        def test_mobilenet_softmax():
            pass

        @pytest.mark.softmax_invariant(model=lambda: model_zoo.mobilenet(None), max_examples=8, batch_size=4)
        def test_mobilenet_logits():
            pass
    """)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*output 'predictions' (predictions: *) is *"])
