"""Quiet by default (issue 17, item 2): TensorFlow's C++ start-up noise
stays out of a user's test output unless they ask for it, and the Python
warnings the plugin's own calls provoke inside Keras stay out of their
warnings summary, while their model's own warnings stay in it."""

from __future__ import annotations

import sys

import pytest

from pytest_softmax.adapters.keras import config

FOUNDING_LSTM = """
    import keras
    import pytest


    def lstm_with_softmax_activation():
        return keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax", name="lstm")])


    @pytest.mark.softmax_invariant(model=lstm_with_softmax_activation)
    def test_seed_lstm_is_caught():
        pass
"""
# What TensorFlow 2.21 writes on a machine without a GPU driver: absl's
# preamble, the oneDNN and cudart notices, the failed cuInit probe.
NATIVE_NOISE = ("I0000", "W0000", "E0000", "cuda", "onednn", "absl::initializelog")
FAST = ("-p", "no:cacheprovider", "--softmax-max-examples=5")


def _native_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines + result.errlines
            if any(noise in line.lower() for noise in (n.lower() for n in NATIVE_NOISE))]


@pytest.mark.tensorflow_only
def test_a_failing_check_shows_no_tensorflow_log_lines_unless_the_user_asks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(test_lstm=FOUNDING_LSTM)
    # tests/conftest.py quiets this process; the user's shell has nothing set.
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet = pytester.runpytest_subprocess(*FAST)
    quiet.assert_outcomes(failed=1)
    quiet.stdout.fnmatch_lines(["*layer at fault: *lstm (LSTM)*"])
    assert _native_lines(quiet) == [], quiet.stdout.str()

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    loud = pytester.runpytest_subprocess(*FAST)
    loud.assert_outcomes(failed=1)
    if not _native_lines(loud):
        pytest.skip("TensorFlow writes no C++ log line during a check on this machine even at "
                    "TF_CPP_MIN_LOG_LEVEL=0, so the quiet run above proves nothing here")
    loud.stdout.fnmatch_lines(["*Captured stderr*", "*E0000*cuda*"])


@pytest.mark.tensorflow_only
def test_a_model_file_checked_in_a_bare_folder_shows_no_tensorflow_start_up_lines(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No test file imports Keras: the check is the first to, inside the
    # item's call phase, where TensorFlow's import notices (which ignore
    # every log level) used to land under the failure.
    import keras

    keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax", name="lstm")]).save(
        pytester.path / "lstm.keras")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet = pytester.runpytest_subprocess(*FAST, "--softmax-model", "lstm.keras")
    quiet.assert_outcomes(failed=1)
    quiet.stdout.fnmatch_lines(["*layer at fault: *lstm (LSTM)*"])
    assert _native_lines(quiet) == [], quiet.stdout.str()

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    loud = pytester.runpytest_subprocess(*FAST, "--softmax-model", "lstm.keras")
    loud.assert_outcomes(failed=1)
    if not _native_lines(loud):
        pytest.skip("TensorFlow writes no C++ log line while it is imported on this machine")
    loud.stdout.fnmatch_lines(["*Captured stderr call*", "*absl::InitializeLog()*"])


def test_the_users_own_log_level_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as before the first import
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    config.quiet_native_logs()
    assert config.os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    config.quiet_native_logs()
    assert config.os.environ["TF_CPP_MIN_LOG_LEVEL"] == config.QUIET_NATIVE_LOG_LEVEL


def test_nothing_is_set_once_tensorflow_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    config.quiet_native_logs()
    assert "TF_CPP_MIN_LOG_LEVEL" not in config.os.environ


WARNING_MODELS = """
    import warnings

    import keras
    import pytest


    class NoisySoftmax(keras.layers.Layer):
        def call(self, x):
            warnings.warn("my model warning")
            return keras.ops.softmax(x)


    def noisy():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), NoisySoftmax(name="noisy")])


    def healthy():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


    @pytest.mark.softmax_invariant(model=healthy)
    def test_healthy():
        pass


    @pytest.mark.softmax_invariant(model=noisy)
    def test_noisy():
        pass
"""


def test_the_plugins_conversions_warn_nothing_and_the_models_own_warnings_show(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_warnings=WARNING_MODELS)
    result = pytester.runpytest(*FAST, "-W", "default")
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    assert "__array__ implementation" not in output, output
    assert "RuntimeWarning" not in output, output
    result.stdout.fnmatch_lines(["*warnings summary*", "test_warnings.py::test_noisy", "*UserWarning: my model warning"])
    assert "test_warnings.py::test_healthy" not in output.split("warnings summary")[1].split("Docs:")[0]


NAN_ROWS = """
    import keras
    import pytest


    def zero_temperature():
        return keras.Sequential([
            keras.Input((4,)), keras.layers.Dense(3, name="logits"),
            keras.layers.Lambda(lambda x: x / 0.0, name="temperature"), keras.layers.Softmax(name="probs"),
        ])


    @pytest.mark.softmax_invariant(model=zero_temperature)
    def test_zero_temperature():
        pass
"""


def test_the_diagnosis_of_nan_rows_adds_no_numpy_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nan=NAN_ROWS)
    result = pytester.runpytest(*FAST, "-W", "default")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*layer at fault: *temperature (Lambda)*"])
    assert "invalid value encountered" not in result.stdout.str()
