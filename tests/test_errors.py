"""Issue 6 matrix: every bad input gets a clear error naming the thing at
fault and the fix; the plugin's message comes first, never TensorFlow's
traceback; setup problems are errors at setup, model problems failures."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from helpers import first_failure_line, importing

TESTS_DIR = Path(__file__).parent
RUN = ("-p", "no:cacheprovider")


@pytest.fixture
def bad(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose test files can ``import error_models``."""
    return importing(pytester, "error_models")


def marked_test(model: str, extra: str = "", body: str = "pass") -> str:
    return (
        "import numpy as np, pytest, error_models as em\n"
        f"@pytest.mark.softmax_invariant({model}{', ' + extra if extra else ''}, max_examples=5)\n"
        f"def test_it():\n    {body}\n"
    )


# 1. paths that are not models --------------------------------------------------

@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("missing", "*model path '*missing.keras' does not exist; expected a keras.Model*"),
        ("emptydir", "*is a directory but not a SavedModel (it has no saved_model.pb)*"),
        ("text", "*'*text.keras' is not a Keras archive*it is text starting with 'not a model'*"),
        ("truncated", "*'*truncated.keras' is a truncated or corrupt Keras archive*save or copy the model again*"),
        ("weights", "*'*weights.h5' is an HDF5 file without a model (no model_config*not save_weights()*"),
    ],
)
def test_path_that_is_not_a_model_is_a_setup_error(bad: pytest.Pytester, make: str, expected: str) -> None:
    import error_models as em
    import h5py
    import numpy as np

    root = bad.path
    if make == "missing":
        target = root / "missing.keras"
    elif make == "emptydir":
        target = root / "emptydir"
        target.mkdir()
    elif make == "text":
        target = root / "text.keras"
        target.write_text("not a model\n")
    elif make == "truncated":
        whole = em.save(em.healthy(), root / "whole.keras").read_bytes()
        target = root / "truncated.keras"
        target.write_bytes(whole[: len(whole) // 2])
    else:
        target = root / "weights.h5"
        with h5py.File(target, "w") as handle:
            handle["dense"] = np.zeros(3)
    bad.makepyfile(test_path=marked_test(repr(str(target))))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([expected])
    assert first_failure_line(result).startswith("pytest-softmax: ")


# 2. files carrying code ----------------------------------------------------------

@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_file_is_refused_by_default_and_loads_when_opted_in(bad: pytest.Pytester, suffix: str) -> None:
    import error_models as em

    path = em.save(em.with_lambda(), bad.path / f"lam{suffix}")
    bad.makepyfile(
        test_refused=marked_test(repr(str(path))),
        test_marker_opt_in=marked_test(repr(str(path)), "safe_mode=False"),
    )
    result = bad.runpytest(*RUN)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        f"*model file '*lam{suffix}' contains Python code (Lambda layer 'lam' holds a Python lambda as bytecode)*"
        "refuses it*allow it with @pytest.mark.softmax_invariant(..., safe_mode=False)*",
    ])
    bad.makeini("[pytest]\nsoftmax_safe_mode = false\n")
    result = bad.runpytest(*RUN, "test_refused.py")
    result.assert_outcomes(passed=1)


def test_keras2_style_lambda_in_h5_is_refused(bad: pytest.Pytester) -> None:
    """A Keras 2 .h5 stores a lambda as marshalled bytecode next to
    function_type='lambda'; the plugin reads the config before Keras does."""
    import json

    import error_models as em
    import h5py

    path = em.save(em.with_lambda(), bad.path / "keras2.h5")
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Lambda":
                layer["config"]["function"] = ["bytecode would be here", None, None]
                layer["config"]["function_type"] = "lambda"
        handle.attrs["model_config"] = json.dumps(config)
    bad.makepyfile(marked_test(repr(str(path))))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Lambda layer 'lam' holds a Python lambda as bytecode (Keras 2 format)*"])


def test_no_pickle_or_marshal_anywhere_in_the_package() -> None:
    package = TESTS_DIR.parent / "pytest_softmax"
    for source in package.rglob("*.py"):
        text = source.read_text()
        for word in ("import pickle", "import marshal", "import dill", "cloudpickle", "pickle.load"):
            assert word not in text, f"{source.name} uses {word}"


# 3. settings ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        ("softmax_atol = tiny", "*softmax_atol = 'tiny' in *tox.ini: 'tiny' is not a number*"),
        ("softmax_atol = -1e-5", "*softmax_atol = '-1e-5' in *tox.ini: '-1e-5' is negative*"),
        ("softmax_rtol = nan", "*softmax_rtol = 'nan' in *tox.ini: 'nan' is not finite*"),
        ("softmax_max_examples = 0", "*softmax_max_examples = '0' in *tox.ini: '0' must be at least 1*"),
        ("softmax_safe_mode = maybe", "*softmax_safe_mode = 'maybe' in *tox.ini: 'maybe' is not a boolean*"),
        ("softmax_atol_float8 = 1e-3",
         "*unknown ini key softmax_atol_float8 = '1e-3' in *tox.ini*softmax_atol_float16*"),
    ],
)
def test_bad_ini_value_stops_pytest_at_start_up(pytester: pytest.Pytester, ini: str, expected: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*RUN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-softmax: {expected}"])


def test_unknown_marker_argument_names_the_valid_ones(bad: pytest.Pytester) -> None:
    bad.makepyfile(marked_test("em.healthy()", "atoll=1e-3"))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*unknown argument atoll=0.001; valid arguments are: model, axis, atol, rtol, max_examples, "
        "batch_size, inputs, outputs, safe_mode*",
    ])


def test_bad_marker_value_errors_that_test_only(bad: pytest.Pytester) -> None:
    bad.makepyfile(
        "import pytest, error_models as em\n"
        "@pytest.mark.softmax_invariant(model=em.healthy, atol=-1.0)\n"
        "def test_bad():\n    pass\n"
        "@pytest.mark.softmax_invariant(model=em.healthy, safe_mode='no', max_examples=3)\n"
        "def test_bad_bool():\n    pass\n"
        "@pytest.mark.softmax_invariant(model=em.healthy, max_examples=3)\n"
        "def test_good():\n    pass\n"
    )
    result = bad.runpytest(*RUN)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*atol=-1.0 is negative*", "*safe_mode='no' is not True or False*"])


# 4. no usable model ---------------------------------------------------------------

def test_model_missing_wrong_type_or_factory_raising(bad: pytest.Pytester) -> None:
    bad.makepyfile(
        "import pytest\n"
        "def broken():\n    raise RuntimeError('weights server down')\n"
        "@pytest.mark.softmax_invariant\n"
        "def test_no_model():\n    pass\n"
        "@pytest.mark.softmax_invariant(model=42)\n"
        "def test_number():\n    pass\n"
        "@pytest.mark.softmax_invariant(model=broken)\n"
        "def test_factory_raises():\n    pass\n"
    )
    result = bad.runpytest(*RUN)
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines_random([
        "*test_no_model has no model: pass one*or define a `model` fixture*",
        "*cannot check int 42: expected a keras.Model, a zero-argument callable*",
        "*model factory broken() raised RuntimeError: weights server down*",
    ])


# 5. models the generator cannot feed ------------------------------------------------

@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # StringLookup runs on TensorFlow whatever the backend (and aborts a PyTorch process).
        pytest.param("em.string_input", "*model input '*' is string; the generator cannot feed it: pass inputs=*"
                     "e.g. @pytest.mark.softmax_invariant(..., inputs=np.array(*", marks=pytest.mark.tensorflow_only),
        ("em.Unbuilt", "*model 'unbuilt' (Unbuilt) has no known input signature*pass inputs=*e.g. *"),
        # The model's own message (TensorFlow: "Input to reshape is a tensor with 4 values...",
        # JAX: "The total size of the tensor must be unchanged...") follows the class name.
        ("em.needs_length_8", "*raised on a plain input built from its input signature*: *Error: *"
                              "pass inputs=*e.g. @pytest.mark.softmax_invariant(..., inputs=np.zeros((32, 4), 'float32'))*"),
    ],
)
def test_models_the_generator_cannot_feed_say_pass_inputs(bad: pytest.Pytester, model: str, expected: str) -> None:
    bad.makepyfile(marked_test(f"model={model}"))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([expected])
    assert first_failure_line(result).startswith("pytest-softmax: ")


def test_unbuilt_model_is_checked_on_given_inputs(bad: pytest.Pytester) -> None:
    bad.makepyfile(marked_test("model=em.Unbuilt", "inputs=np.linspace(-3, 3, 64, dtype='float32').reshape(16, 4)"))
    bad.runpytest(*RUN).assert_outcomes(passed=1)


# 6. outputs that cannot be distributions --------------------------------------------

@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("em.integer_output", "*output 'argmax' (argmax: Argmax) has dtype int*; only float outputs*outputs=*"),
        ("em.rank1_output", "*has shape [[]5] (no class axis besides the batch)*"),
        # A softmax the model fixes to one element is always 1: a failure, not a pass (core/single_element.py).
        ("em.one_class", "*is a softmax over a single element: size 1 along axis -1 for every input "
                         "(shape [[]None, 1])*"),
    ],
)
def test_outputs_that_cannot_be_distributions_never_pass(bad: pytest.Pytester, model: str, expected: str) -> None:
    bad.makepyfile(marked_test(f"model={model}", "batch_size=5"))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([expected])


# 7-10. models misbehaving while checked ---------------------------------------------

@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="on JAX an out-of-range Embedding id does not raise (it gives NaN): no model error to show")
def test_model_raising_shows_its_own_error_and_the_input_first(bad: pytest.Pytester) -> None:
    bad.makepyfile(marked_test(
        "model=em.embedding",
        "inputs=__import__('hypothesis.extra.numpy', fromlist=['arrays']).arrays("
        "'int32', (2, 5), elements=__import__('hypothesis').strategies.integers(0, 20))",
    ))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    # The model's own error: TensorFlow's InvalidArgumentError, PyTorch's IndexError.
    own = ("InvalidArgumentError: indices[" if keras.backend.backend() == "tensorflow"
           else "IndexError: index out of range")
    assert first_failure_line(result).startswith(f"softmax invariant violated: model raised on a generated input: {own}")
    result.stdout.fnmatch_lines(["*failing input*", "*int32 [[]2, 5]*"])
    result.stdout.no_fnmatch_line("*Graph execution error*")


def test_non_deterministic_model_is_named_as_such(bad: pytest.Pytester) -> None:
    bad.makepyfile(marked_test("model=em.noisy"))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "pytest-softmax: model '*' is not deterministic in inference mode: two calls on the same input "
        "gave different values on output*",
    ])
    result.stdout.no_fnmatch_line("*Flaky*")


def test_non_finite_user_inputs_blame_the_inputs(bad: pytest.Pytester) -> None:
    bad.makepyfile(marked_test("model=em.healthy", "inputs=em.nan_inputs()"))
    result = bad.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "pytest-softmax: inputs= holds values that are not finite: input '*' has 1 NaN/Inf values "
        "(the first at index [[]1, 2]: nan)*the model is not at fault*",
    ])


@pytest.mark.tensorflow_only  # the model raises TensorFlow's ResourceExhaustedError from a tf.py_function
def test_out_of_memory_suggests_a_smaller_batch(bad: pytest.Pytester) -> None:
    bad.makepyfile(
        test_big=marked_test("model=em.out_of_memory", "batch_size=32"),
        test_small=marked_test("model=em.out_of_memory", "batch_size=8"),
    )
    result = bad.runpytest(*RUN)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "pytest-softmax: ran out of memory running model '*' on a batch of 32 rows (*OOM when allocating*); "
        "lower the batch size: @pytest.mark.softmax_invariant(..., batch_size=8)",
    ])


def test_tb_long_keeps_the_original_exception_below_the_message(bad: pytest.Pytester) -> None:
    bad.makepyfile(marked_test("model=em.needs_length_8"))
    result = bad.runpytest(*RUN, "--tb=long")
    result.assert_outcomes(failed=1)
    assert first_failure_line(result).startswith("pytest-softmax: ")
    result.stdout.fnmatch_lines(["*The original exception (shown for --tb=long):*", "Traceback (most recent call last):",
                                 "*Error: *"])
