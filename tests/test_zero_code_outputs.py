"""``--softmax-model`` items choose outputs and axis with flags and ini
keys, and every message suggests a fix the mode in use can take (issue
12, item 14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import pytest

from pytest_softmax import SoftmaxInvariantError, check_softmax
from pytest_softmax.settings import Mode, checking_in, how_to_set

FAST = ("-p", "no:cacheprovider", "--softmax-max-examples=5")


def probs_and_logits() -> keras.Model:
    x = keras.Input((4,), name="x")
    logits = keras.layers.Dense(3, name="logits")(x)
    probs = keras.layers.Softmax(name="probs")(logits)
    return keras.Model(x, {"probs": probs, "logits": logits})


def softmax_on_axis_1() -> keras.Model:
    x = keras.Input((3, 5), name="x")
    return keras.Model(x, keras.layers.Softmax(axis=1, name="probs")(keras.layers.Dense(5)(x)))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("outputs")
    probs_and_logits().save(folder / "two.keras")
    softmax_on_axis_1().save(folder / "axis1.keras")
    return folder


def test_a_model_item_with_a_logits_output_is_told_the_flag_and_passes_with_it(
    pytester: pytest.Pytester, model_files: Path,
) -> None:
    shutil.copy(model_files / "two.keras", pytester.path)
    model = "two.keras"
    failing = pytester.runpytest(*FAST, "--softmax-model", model)
    failing.assert_outcomes(failed=1)
    failing.stdout.fnmatch_lines(["*--softmax-outputs=NAME (or softmax_outputs = NAME in the ini file)*"])
    assert "outputs=[" not in failing.stdout.str()

    pytester.runpytest(*FAST, "--softmax-model", model, "--softmax-outputs=probs").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nsoftmax_outputs = probs\n")
    from_ini = pytester.runpytest(*FAST, "--softmax-model", model, "--softmax-report", "r.json")
    from_ini.assert_outcomes(passed=1)
    document = json.loads((pytester.path / "r.json").read_text())
    assert document["settings"]["outputs"] == ["probs"]
    assert document["checks"][0]["checked_outputs"] == ["probs"]


def test_a_model_item_with_a_softmax_on_axis_1_is_told_the_flag_and_passes_with_it(
    pytester: pytest.Pytester, model_files: Path,
) -> None:
    shutil.copy(model_files / "axis1.keras", pytester.path)
    model = "axis1.keras"
    failing = pytester.runpytest(*FAST, "--softmax-model", model)
    failing.assert_outcomes(failed=1)
    failing.stdout.fnmatch_lines(["*--softmax-axis=1 (or softmax_axis = 1 in the ini file)*"])
    assert "axis=1)" not in failing.stdout.str()
    passing = pytester.runpytest(*FAST, "--softmax-model", model, "--softmax-axis=1")
    passing.assert_outcomes(passed=1)
    passing.stdout.fnmatch_lines(["softmax: *batch_size=32, axis=1, hypothesis seed=*"])


def test_the_marker_beats_the_flag_for_outputs_and_axis(pytester: pytest.Pytester, model_files: Path) -> None:
    pytester.makepyfile(test_marked=f"""
        import pytest

        @pytest.mark.softmax_invariant(model={str(model_files / 'axis1.keras')!r}, axis=1)
        def test_axis():
            pass
    """)
    pytester.runpytest(*FAST, "--softmax-axis=-1").assert_outcomes(passed=1)


def test_bad_values_name_the_flag_and_the_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--softmax-axis=last")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-softmax: --softmax-axis: 'last' is not an integer axis*"])
    pytester.makeini("[pytest]\nsoftmax_outputs = ,\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*ini key softmax_outputs = ','*names no output*"])


def test_check_softmax_names_its_own_keyword() -> None:
    with pytest.raises(SoftmaxInvariantError) as info:
        check_softmax(probs_and_logits(), max_examples=3)
    assert "check_softmax(model, outputs=[...])" in str(info.value)
    assert "--softmax" not in str(info.value) and "@pytest.mark" not in str(info.value)


@pytest.mark.parametrize(("mode", "expected"), [
    (Mode.MARKER, "@pytest.mark.softmax_invariant(..., batch_size=8)"),
    (Mode.FIXTURE, "softmax_check(model, batch_size=8)"),
    (Mode.FUNCTION, "check_softmax(model, batch_size=8)"),
    (Mode.MODEL_ITEM, "--softmax-batch-size=8 (or softmax_batch_size = 8 in the ini file)"),
])
def test_each_mode_is_offered_its_own_fix(mode: Mode, expected: str) -> None:
    with checking_in(mode):
        assert how_to_set("batch_size", "8") == expected
        inputs = how_to_set("inputs", "np.zeros((8, 4))")
    # A --softmax-model item cannot take inputs=: it is told to write a test.
    assert ("a marked test instead of --softmax-model" in inputs) is (mode is Mode.MODEL_ITEM)


def test_no_message_hard_codes_one_mode_s_fix() -> None:
    """Every suggestion goes through how_to_set; a literal marker example in
    a message is the bug this test guards against."""
    import pytest_softmax

    root = Path(pytest_softmax.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*.py") if path.name != "settings.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "@pytest.mark.softmax_invariant(" in line and not line.lstrip().startswith("#")
        and "on {item.nodeid}" not in line and '"""' not in line
    ]
    assert offenders == []
