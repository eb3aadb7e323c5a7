"""``--softmax-model path/to/file.py:factory`` and the ini key with the same
syntax: a zero-argument function in a Python file builds the model (issue
20, item 1).  Each bad factory is a setup error naming the file, the
factory and the fix; a directory is never searched for Python files."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import keras
import pytest

from pytest_softmax.adapters import python_files
from pytest_softmax.adapters.python_files import FactoryReference, split_factory

FAST = ("-p", "no:cacheprovider", "--softmax-max-examples=5")

MODELS = """
    import keras

    NUM_CLASSES = 3


    def healthy():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(NUM_CLASSES, activation="softmax")])


    def founding_lstm():
        # The founding bug: softmax inside the LSTM cell, gated by the output gate.
        return keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(3, activation="softmax", name="lstm")])


    def needs_units(units, depth=2):
        return healthy()


    def broken():
        return keras.layers.Dense(-1)


    def forgets_return():
        healthy()


    def gives_a_layer():
        return keras.layers.Dense(3)


    model = healthy()
"""


def test_a_healthy_factory_passes_and_the_founding_lstm_fails_naming_lstm(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(models=MODELS)
    result = pytester.runpytest(*FAST, "-v", "--softmax-model", "models.py:healthy",
                                "--softmax-model", "models.py:founding_lstm")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "softmax::models.py:healthy PASSED*",
        "softmax::models.py:founding_lstm FAILED*",
        "*layer at fault: */lstm (LSTM) (softmax inside the LSTM cell*",
        "*rerun with: pytest --softmax-model models.py:founding_lstm -k models.py:founding_lstm*",
    ])


@pytest.mark.tensorflow_only
def test_what_the_factory_file_prints_on_import_is_held_back(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In a fresh process the file's `import keras` imports TensorFlow, whose
    # start-up notices ignore every log level: they must not land under the
    # failure as "Captured stderr call".
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    pytester.makepyfile(models=MODELS)
    result = pytester.runpytest_subprocess(*FAST, "--softmax-model", "models.py:founding_lstm")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*layer at fault: */lstm (LSTM)*"])
    output = result.stdout.str() + result.stderr.str()
    assert "Captured stderr" not in output and "I0000" not in output and "absl" not in output, output


def test_the_ini_key_takes_factories_and_a_colon_in_a_directory_name(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("run:2024")
    (folder / "models.py").write_text(textwrap.dedent(MODELS))
    pytester.makeini("[pytest]\nsoftmax_models =\n    run:2024/models.py:healthy\n    run:2024/models.py:founding_lstm\n")
    result = pytester.runpytest(*FAST, "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["softmax::run:2024/models.py:healthy PASSED*",
                                 "softmax::run:2024/models.py:founding_lstm FAILED*"])


CUSTOM = """
    from __future__ import annotations

    from dataclasses import dataclass

    import keras


    @dataclass
    class HeadConfig:  # string annotations: dataclasses looks the module up in sys.modules
        classes: int = 4


    class Head(keras.layers.Layer):
        def __init__(self, classes: int, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(classes)

        def call(self, x, training=None):
            logits = self.dense(x)
            if training:
                logits = logits * 2.0
            return keras.ops.softmax(logits)


    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.head = Head(HeadConfig().classes)

        def call(self, x):
            return self.head(x)


    def functional():
        x = keras.Input((6,))
        return keras.Model(x, Head(HeadConfig().classes, name="head")(x))


    def subclassed():
        net = Net()
        net(keras.ops.zeros((1, 6)))
        return net
"""


def test_a_factory_file_with_its_own_layers_and_dataclasses_is_checked(pytester: pytest.Pytester) -> None:
    # The reason a factory beats a model file: custom classes need no registration.
    pytester.makepyfile(custom=CUSTOM)
    result = pytester.runpytest(*FAST, "--softmax-model", "custom.py:functional", "--softmax-model", "custom.py:subclassed")
    result.assert_outcomes(passed=2)


BOOM = """
    import keras

    scale = 1 / 0
"""
NOT_PYTHON = """
    def build(:
        pass
"""
SIBLING = """
    import my_layers  # beside this file, but not importable


    def build():
        pass
"""


def test_each_bad_factory_is_a_setup_error_naming_it_and_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(models=MODELS, boom=BOOM, not_python=NOT_PYTHON, sibling=SIBLING)
    specs = ["boom.py:build", "not_python.py:build", "sibling.py:build", "models.py:helthy", "models.py:NUM_CLASSES",
             "models.py:model", "models.py:needs_units", "models.py:broken", "models.py:forgets_return",
             "models.py:gives_a_layer"]
    result = pytester.runpytest(*FAST, *(f"--softmax-model={spec}" for spec in specs))
    result.assert_outcomes(failed=len(specs))
    result.stdout.fnmatch_lines([
        ("pytest-softmax: boom.py:build: importing boom.py raised ZeroDivisionError: division by zero "
        "(at boom.py:3); fix the file (pytest --tb=long shows the full traceback)"),
        "pytest-softmax: not_python.py:build: importing not_python.py raised SyntaxError: invalid syntax (at not_python.py:1); fix the file*",
        ("pytest-softmax: sibling.py:build: importing sibling.py raised ModuleNotFoundError: No module named "
        "'my_layers' (at sibling.py:1)*if 'my_layers' sits beside it, make it importable (pytest's "
        "`pythonpath = *` ini option, or install it)"),
        "pytest-softmax: models.py:helthy: models.py has no 'helthy'; did you mean 'healthy'?",
        ("pytest-softmax: models.py:NUM_CLASSES is an int, not callable: name a function that takes no arguments "
        "and returns the model*"),
        ("pytest-softmax: models.py:model is a Sequential object, not a factory: name a function that takes no "
        "arguments and returns it (def build_model(): return model)"),
        ("pytest-softmax: models.py:needs_units(units) takes arguments, and a factory is called with none: give "
        "them defaults, or add a zero-argument function that calls it (def build(): return needs_units(...))"),
        ("pytest-softmax: models.py:broken() raised ValueError: Received an invalid value for `units`* "
        "(at models.py:20): fix the factory so it builds the model*"),
        ("pytest-softmax: models.py:forgets_return() returned None, not a model: end the factory with "
        "`return model` (is the return statement missing?)"),
        ("pytest-softmax: models.py:gives_a_layer() returned a Dense, not a model: return a keras.Model "
        "or a torch.nn.Module (or the path of a model file)"),
    ])
    assert "Traceback" not in result.stdout.str()


def test_the_long_traceback_shows_the_factorys_own_exception(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(models=MODELS)
    result = pytester.runpytest(*FAST, "--tb=long", "--softmax-model", "models.py:broken")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pytest-softmax: models.py:broken() raised ValueError*",
                                 "The original exception (shown for --tb=long):", "Traceback*",
                                 "*models.py*line 20, in broken*"])


@pytest.mark.parametrize(("spec", "expected"), [
    ("missing.py:build", ("*'missing.py:build': the file does not exist (looked for *missing.py); expected "
                         "path/to/file.py:factory naming an existing Python file")),
    ("models.py", ("*'models.py' is a Python file: name the function in it that builds the model, "
                  "models.py:build_model*")),
    ("models.py:", "*'models.py:': after the colon comes the name of the function that builds the model*"),
    ("models.py:build-it", "*'models.py:build-it': after the colon comes the name*"),
])
def test_a_factory_that_cannot_be_found_stops_pytest_at_start_up(
    pytester: pytest.Pytester, spec: str, expected: str,
) -> None:
    pytester.makepyfile(models=MODELS)
    result = pytester.runpytest(*FAST, "--softmax-model", spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-softmax: --softmax-model: {expected}"])


def test_a_directory_of_models_never_imports_its_python_files(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("models")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]).save(folder / "clf.keras")
    imported = pytester.path / "IMPORTED"
    (folder / "build.py").write_text(f"open({str(imported)!r}, 'w').close()\n\ndef build():\n    raise SystemExit\n")
    collected = pytester.runpytest(*FAST, "--collect-only", "-q", "--softmax-model", "models")
    collected.stdout.fnmatch_lines(["softmax::models/clf.keras", "1 test collected*"])
    checked = pytester.runpytest(*FAST, "--softmax-model", "models", "--softmax-model", "models/*")
    checked.assert_outcomes(passed=1)
    assert not imported.exists()


def test_a_factory_file_that_exits_does_not_end_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(models=MODELS, script="import sys\nprint('training...')\nsys.exit(3)\n")
    result = pytester.runpytest(*FAST, "--softmax-model", "script.py:build", "--softmax-model", "models.py:healthy")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([("*script.py:build: importing script.py raised SystemExit: 3 (at script.py:3)*put that work under "
                                 '`if __name__ == "__main__":`, so importing it only defines the factory'),
                                 "*Captured stderr call*", "training..."])


def test_two_files_with_one_name_are_two_modules_and_sys_path_is_untouched(tmp_path: Path) -> None:
    for folder, units in (("a", 2), ("b", 5)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "models.py").write_text(
            f"import keras\n\ndef build():\n    return keras.Sequential([keras.Input((4,)), keras.layers.Dense({units})])\n"
        )
    path_before, modules_before = list(sys.path), set(sys.modules)
    built = [python_files.build(FactoryReference(tmp_path / f / "models.py", "build", f"{f}/models.py")) for f in "ab"]
    assert [m.output_shape for m in built] == [(None, 2), (None, 5)]  # type: ignore[attr-defined]
    assert sys.path == path_before
    assert set(sys.modules) - modules_before == set()


@pytest.mark.parametrize(("text", "expected"), [
    ("models.py:build", ("models.py", "build")),
    ("run:2024/models.py:build", ("run:2024/models.py", "build")),
    ("models.PY:build", ("models.PY", "build")),
    ("models.py:", ("models.py", "")),
    ("run:2024/clf.keras", None),
    ("models.py", None),
    ("models.pyc:build", None),
])
def test_only_the_last_colon_after_a_python_file_names_a_factory(text: str, expected: tuple[str, str] | None) -> None:
    assert split_factory(text) == expected


def test_the_marker_and_check_softmax_take_a_factory_reference_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(models=MODELS)
    pytester.makepyfile(test_refs="""
        import pytest
        from pytest_softmax import SoftmaxSetupError, check_softmax


        @pytest.mark.softmax_invariant(model="models.py:founding_lstm")
        def test_marked():
            pass


        def test_called():
            assert check_softmax("models.py:healthy", max_examples=5).passed


        def test_bad_name():
            with pytest.raises(SoftmaxSetupError, match="after the colon comes the name of the function"):
                check_softmax("models.py:not-a-name")


        def test_unknown_factory():
            with pytest.raises(SoftmaxSetupError, match="models.py:helthy"):
                check_softmax("models.py:helthy")
    """)
    result = pytester.runpytest(*FAST, "-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_marked*FAILED*", "*layer at fault: *lstm (LSTM)*"])
