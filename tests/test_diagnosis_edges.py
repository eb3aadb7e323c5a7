"""Diagnosis and reporting edges that hand-made mutants survived: the layer
blamed in a chain after the softmax, a bad row past the probed prefix, an
unmasked internal softmax writing zeros, the layer at fault in junit and
JSON, the "closest pass" line, and a foreign file at the report path."""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import keras
import numpy as np
import pytest

from pytest_softmax import SoftmaxInvariantError, check_softmax
from pytest_softmax.core.diagnosis.diagnose import MAX_PROBED_ROWS, _probe_rows
from pytest_softmax.core.report import Violation

TESTS_DIR = Path(__file__).parent


def failing_report(model: keras.Model, **kwargs: object) -> object:
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(model, **kwargs)  # type: ignore[arg-type]
    return caught.value.report


# --- which layer after the softmax is blamed -------------------------------------


@functools.cache
def rescaled_then_reversed() -> keras.Model:
    """softmax -> Rescaling(1.1) (rows now sum to 1.1) -> a layer that keeps
    the sums (reverses the classes) and is not shape-only: the Rescaling is
    at fault, not the layer that makes the output."""
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(5, activation="softmax", name="probs"),
        keras.layers.Rescaling(1.1, name="rescale"),
        keras.layers.Lambda(lambda p: keras.ops.flip(p, axis=-1), name="reverse"),
    ], name="rescaled_then_reversed")


def test_the_layer_that_changed_the_sums_is_blamed_not_a_later_sum_preserving_one() -> None:
    report = failing_report(rescaled_then_reversed(), max_examples=5)
    assert report.layer_at_fault == "rescaled_then_reversed/rescale (Rescaling)"
    assert any(line.startswith("Rescaling 'rescaled_then_reversed/rescale' comes after the softmax "
                               "Dense 'rescaled_then_reversed/probs' and changes its row sums "
                               "(max |sum - 1| = 0.1") for line in report.diagnosis), report.diagnosis
    verdicts = {row.path: row.verdict for row in report.layers}
    assert verdicts == {"rescaled_then_reversed/probs": "softmax ok", "rescaled_then_reversed/rescale": "at fault: changes the sums",
                        "rescaled_then_reversed/reverse": "after the softmax"}


# --- a bad row past the rows the probe keeps ------------------------------------


@functools.cache
def overflowing_softmax() -> keras.Model:
    """A hand-written exp/sum softmax after a Dense of ones: NaN only for a
    row whose inputs sum past ~88."""
    def naive(x):  # type: ignore[no-untyped-def]
        e = keras.ops.exp(x)
        return e / keras.ops.sum(e, axis=-1, keepdims=True)

    return keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(3, kernel_initializer="ones", name="logits"),
        keras.layers.Lambda(naive, name="naive"),
    ], name="overflowing")


def test_a_batch_whose_only_bad_row_is_past_row_7_still_names_the_layer() -> None:
    inputs = np.full((12, 4), 0.1, dtype="float32")
    inputs[9] = 50.0  # the only row that overflows
    report = failing_report(overflowing_softmax(), inputs=inputs)
    assert report.violations[0].worst_row == (9,) and report.violations[0].rows_violating == 1
    assert report.layer_at_fault == "overflowing/naive (Lambda)"
    assert any(line.startswith("Lambda 'overflowing/naive' is the first layer whose output holds NaN/Inf")
               and "an exp() overflows" in line for line in report.diagnosis), report.diagnosis


def test_the_probe_keeps_at_most_8_rows_and_always_the_worst() -> None:
    batch = [np.arange(12 * 2).reshape(12, 2), np.arange(12)]
    violation = Violation(kind="not normalized", output="o", layer_name="o", layer_class="Dense", dtype="float32",
                          axis=-1, n_classes=2, tolerance=1e-6, error=1.0, rows_violating=1, rows=12,
                          worst_row=(10,))
    kept = _probe_rows(batch, violation)
    assert MAX_PROBED_ROWS == 8 and [list(k) for k in kept[1:]] == [[0, 1, 2, 3, 4, 5, 6, 10]]
    assert kept[0].shape == (8, 2) and kept[0][-1].tolist() == [20, 21]
    small = [np.zeros((8, 2))]
    assert _probe_rows(small, violation) == small  # a batch of 8 is probed whole


# --- an internal softmax that writes zeros without a mask --------------------------


class ZeroingSoftmax(keras.layers.Softmax):
    """A Softmax that zeroes the rows whose logits are all <= 0, without a
    mask: such a row is no distribution, whatever the model does next."""

    def call(self, inputs, mask=None):  # type: ignore[no-untyped-def]
        probs = super().call(inputs, mask)
        keep = keras.ops.any(inputs > 0, axis=-1, keepdims=True)
        return probs * keras.ops.cast(keep, probs.dtype)


@functools.cache
def zeroing_internal_softmax() -> keras.Model:
    x = keras.Input((4,))
    gated = ZeroingSoftmax(name="gate")(x)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax", name="probs")(gated), name="zeroing")


def test_an_all_zero_row_of_an_unmasked_internal_softmax_fails() -> None:
    rows = np.array([[1.0, 2.0, 0.5, 0.1], [-1.0, -2.0, -0.5, -0.1]], dtype="float32")
    report = failing_report(zeroing_internal_softmax(), inputs=rows)
    first = report.violations[0]
    assert first.site == "zeroing/gate" and first.kind == "not normalized" and first.error == pytest.approx(1.0)
    assert str(report).startswith("softmax invariant violated: internal softmax 'zeroing/gate' (ZeroingSoftmax) is not "
                                  "normalized: max |sum - 1| = 1 > tolerance")
    # The same model passes on rows the gate keeps.
    assert check_softmax(zeroing_internal_softmax(), inputs=rows[:1]).passed


# --- what junit, JSON and the summary say ---------------------------------------



def test_junit_and_json_name_the_diagnosed_layer_not_the_output_layer(diag: pytest.Pytester) -> None:
    """A zero temperature: the output layer is the Softmax 'probs'; the
    division before it is at fault."""
    diag.makepyfile(test_user="""
        import pytest, diagnosis_zoo
        @pytest.mark.softmax_invariant(model=diagnosis_zoo.zero_temperature, max_examples=5)
        def test_model():
            pass
    """)
    result = diag.runpytest("-p", "no:cacheprovider", "--junitxml", "junit.xml", "--softmax-report", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([("FAILED test_user.py::test_model: output 'probs' *; layer at fault: "
                                 "zero_temperature/temperature (Lambda)*")])
    (check,) = json.loads((diag.path / "r.json").read_text())["checks"]
    assert check["layer_at_fault"] == "zero_temperature/temperature (Lambda)"
    (case,) = ET.parse(diag.path / "junit.xml").iter("testcase")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["softmax_layer_at_fault"] == "zero_temperature/temperature (Lambda)"


def test_closest_pass_names_the_check_nearest_its_tolerance(diag: pytest.Pytester) -> None:
    """Ratios 0.4 and 0.6 of the tolerance: the second is closer although
    its absolute error is the smaller one."""
    diag.makepyfile(test_user="""
        import pytest, model_zoo
        @pytest.mark.softmax_invariant(model=lambda: model_zoo.scaled_softmax(1.0004), atol=1e-3, max_examples=3)
        def test_far():
            pass
        @pytest.mark.softmax_invariant(model=lambda: model_zoo.scaled_softmax(1.0003), atol=5e-4, max_examples=3)
        def test_near():
            pass
        @pytest.mark.softmax_invariant(model=lambda: model_zoo.scaled_softmax(1.0001), atol=1e-3, max_examples=3)
        def test_farthest():
            pass
    """)
    result = diag.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([("3 checks, 3 passed; closest pass: test_user.py::test_near at 0.0003 of tolerance "
                                 "0.0005 (-v lists passed checks)")])


@pytest.mark.parametrize("content", [b"id,score\n1,0.5\n", b"\xff\xfe\x00binary", b"[1, 2]", b""],
                         ids=["csv", "binary", "json-list", "empty"])
def test_a_foreign_file_at_the_report_path_is_refused_and_left_unchanged(pytester: pytest.Pytester,
                                                                         content: bytes) -> None:
    foreign = pytester.path / "results.json"
    foreign.write_bytes(content)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--softmax-report", "results.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([("ERROR: pytest-softmax: --softmax-report results.json: the file exists and is not "
                                 "a pytest-softmax report; the plugin never overwrites other files: remove it or "
                                 "choose another path")])
    assert foreign.read_bytes() == content
    assert [p.name for p in pytester.path.iterdir() if p.suffix == ".json" or p.name.startswith(".")] == [
        "results.json"]  # no temporary file left behind either


def test_a_softmax_over_two_axes_checked_along_one_names_both_axes() -> None:
    model = keras.Sequential([keras.Input((3, 4)), keras.layers.Softmax(axis=(1, 2), name="both")], name="two_axes")
    report = failing_report(model, max_examples=3)
    assert report.layer_at_fault == "two_axes/both (Softmax)"
    assert any("Softmax 'two_axes/both' normalizes over axis (1, 2) but the output is checked along axis -1: make "
               "the softmax run over the class axis (e.g. Softmax(axis=-1)) or check along it with check_softmax(model, axis=1)" in line
               for line in report.diagnosis), report.diagnosis


def test_a_model_input_added_after_the_softmax_is_traced_back_past_the_input() -> None:
    """The layer after the softmax also takes the model's input: the walk
    back to the softmax must step over the input, which is no layer."""
    x = keras.Input((5,), name="x")
    probs = keras.layers.Dense(5, activation="softmax", name="probs")(x)
    model = keras.Model(x, keras.layers.Add(name="plus_input")([x, probs]), name="residual")
    report = failing_report(model, max_examples=3)
    assert report.layer_at_fault == "residual/plus_input (Add)"
    assert any(line.startswith("Add 'residual/plus_input' comes after the softmax Dense 'residual/probs' and changes "
                               "its row sums") for line in report.diagnosis), report.diagnosis


def test_a_layer_is_within_the_tolerance_up_to_and_including_it() -> None:
    """The diagnosis judges a layer's sums as the check judges rows: an
    error equal to the tolerance passes, NaN never does."""
    from pytest_softmax.core.diagnosis.table import within

    assert within(1e-6, 1e-6) and within(0.0, 0.0) and not within(1.5e-6, 1e-6)
    assert not within(float("nan"), 1.0)


def test_identical_rows_of_a_gated_cell_are_reported_as_one_sum() -> None:
    import re

    import model_zoo

    report = failing_report(model_zoo.lstm_softmax(), inputs=np.ones((4, 3, 2), dtype="float32"))
    line = next(line for line in report.diagnosis if "applies softmax inside its recurrent cell" in line)
    assert re.search(r"so rows sum to \d\.\d\d here, not 1; use LSTM\(3\) followed by Dense\(3, "
                     r"activation='softmax'\)", line), line
