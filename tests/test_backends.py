"""Every Keras 3 backend: the same models, the same verdicts, the same words.

Keras chooses its backend once per process, so each backend runs in a pytest
subprocess with ``KERAS_BACKEND`` set, as a user runs ``KERAS_BACKEND=jax
pytest``.  These tests run in the TensorFlow leg of CI (marked
``backend_matrix``, deselected in the JAX and PyTorch legs, which run the rest
of the suite in-process on their own backend): one run of the default test
command covers all three backends.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import keras
import pytest
from helpers import backend_param

# JAX and torch come with the [jax] and [torch] extras: where either is not
# installed its runs skip, naming the install line.
BACKENDS = [backend_param(name) for name in ("tensorflow", "jax", "torch")]
EXAMPLES = Path(__file__).parent.parent / "examples"

pytestmark = pytest.mark.backend_matrix

# The models of issue 10's "Why": a healthy LSTM classifier, the founding
# LSTM(3, activation='softmax'), and a tagger whose TimeDistributed head
# cannot run in a tf.function traced with a None time dimension.
USER_TESTS = """
    import keras
    import pytest


    def healthy_lstm():
        return keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(8),
                                 keras.layers.Dense(3, activation="softmax")])


    def founding_lstm():
        return keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax")])


    def tagger():
        return keras.Sequential([
            keras.Input((None, 15)),
            keras.layers.GRU(16, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(8, activation="softmax"), name="tags"),
        ])


    @pytest.mark.softmax_invariant(model=healthy_lstm)
    def test_healthy_lstm():
        pass


    @pytest.mark.softmax_invariant(model=founding_lstm)
    def test_founding_lstm():
        pass


    @pytest.mark.softmax_invariant(model=tagger)
    def test_tagger():
        pass


    @pytest.mark.softmax_invariant(model="files/clf.keras")
    def test_keras_file():
        pass


    @pytest.mark.softmax_invariant(model="files/clf.h5")
    def test_h5_file():
        pass
"""


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A healthy classifier saved by this process's backend, as .keras, .h5
    and (on TensorFlow) a SavedModel export."""
    folder = tmp_path_factory.mktemp("backend_models")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(4, activation="softmax")])
    model.save(folder / "clf.keras")
    model.save(folder / "clf.h5")
    if keras.backend.backend() == "tensorflow":
        model.export(str(folder / "exported"), verbose=False)
    return folder


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_issue_models_behave_the_same_on_every_backend(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, model_files: Path, backend: str,
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", backend)
    shutil.copytree(model_files, pytester.path / "files")
    pytester.makepyfile(test_user=USER_TESTS)
    saved_model = ["--softmax-model", "files/exported"] if (model_files / "exported").exists() else []
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--softmax-max-examples=10",
                                           "--softmax-report=report.json", *saved_model)
    result.stdout.fnmatch_lines([f"softmax: keras backend={backend}"])
    # The founding bug gets the same diagnosis on every backend.
    result.stdout.fnmatch_lines([
        "softmax invariant violated: output 'lstm*' (lstm*: LSTM) is not normalized: *",
        "  LSTM '*/lstm*' applies softmax inside its recurrent cell: the cell multiplies it by the output gate, "
        "so rows sum to * here, not 1; use LSTM(3) followed by Dense(3, activation='softmax')",
    ])
    report = json.loads((pytester.path / "report.json").read_text())
    checks = {check["nodeid"].split("::")[-1]: check for check in report["checks"]}
    assert {check.get("backend") for check in checks.values() if check["verdict"] != "error"} == {backend}
    assert fnmatch.fnmatch(checks["test_founding_lstm"]["layer_at_fault"], "sequential*/lstm* (LSTM)")
    tagger_notes = checks["test_tagger"]["notes"]
    if backend == "tensorflow":
        # tf.function over Input((None, 15)) cannot slice the None time axis
        # inside TimeDistributed: the check falls back and says so.
        assert any("the compiled forward (tf.function over the input signature) cannot run this model" in note
                   and "it runs traced once per concrete input shape on the tensorflow backend" in note
                   for note in tagger_notes), tagger_notes
        result.assert_outcomes(passed=5, failed=1)  # the SavedModel passes on TensorFlow
    else:
        assert tagger_notes == [], "jax.jit and eager torch run the tagger as it is"
        if saved_model:
            result.stdout.fnmatch_lines([
                "*files/exported' is a TensorFlow SavedModel directory, which only the TensorFlow backend can run, "
                f"and Keras runs on '{backend}' here (KERAS_BACKEND)*"
            ])
        result.assert_outcomes(passed=4, failed=1 + bool(saved_model))
    assert {name: c["verdict"] for name, c in checks.items() if name.startswith("test_")} == {
        "test_healthy_lstm": "passed", "test_founding_lstm": "failed", "test_tagger": "passed",
        "test_keras_file": "passed", "test_h5_file": "passed",
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_bundled_examples_give_one_failure_on_every_backend(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str,
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", backend)
    shutil.copytree(EXAMPLES, pytester.path / "examples")
    # The Keras example; the PyTorch one beside it is run by test_torch_plugin.py.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "examples/test_models.py")
    result.stdout.fnmatch_lines(["*LSTM 'sequential*/lstm' applies softmax inside its recurrent cell*"])
    result.assert_outcomes(failed=1, passed=3)
