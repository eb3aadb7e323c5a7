"""The cause reaches the first lines CI shows: the junit ``message``
attribute, the terminal summary line and the JSON report's summary, each
naming the layer at fault and the cause in a few words (issue 11).

Each model rebuilds a public bug report (see tests/diagnosis_zoo.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = Path(__file__).parent



def run(pytester: pytest.Pytester, factory: str, marker_args: str = "", *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=f"""
        import pytest, diagnosis_zoo
        @pytest.mark.softmax_invariant(model={factory}{marker_args})
        def test_model():
            pass
    """)
    return pytester.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml", "--softmax-report=report.json",
                              "--hypothesis-seed=1", *args)


def junit_message(pytester: pytest.Pytester) -> str:
    failure = ET.parse(pytester.path / "junit.xml").find(".//testcase/failure")
    assert failure is not None
    return str(failure.get("message"))


def json_check(pytester: pytest.Pytester) -> dict[str, Any]:
    checks = json.loads((pytester.path / "report.json").read_text())["checks"]
    assert len(checks) == 1
    return dict(checks[0])


CASES = [
    pytest.param("diagnosis_zoo.masked_attention_neg_inf", "masked_attention/attn (MaskedSelfAttention)",
                 "every position masked: softmax of all -inf is 0/0",
                 "*every position of row * of the softmax input is masked (all -inf)*Softmax()(scores, mask=mask)*",
                 id="custom-layer-ops-softmax-neg-inf"),
    pytest.param("diagnosis_zoo.neg_inf_then_softmax_layer", "neg_inf_softmax/weights (Softmax)",
                 "every position masked: softmax of all -inf is 0/0",
                 "*masked (all -inf)*(the -inf comes from Lambda 'neg_inf_softmax/mask_scores')*",
                 id="softmax-layer-after-a-neg-inf-mask"),
    pytest.param("diagnosis_zoo.float16_additive_mask", "fp16_mask/attn (MaskedSelfAttention)",
                 "every position masked: softmax of all -inf is 0/0; a mask constant past float16's max 65504 "
                 "became -inf",
                 "*it computes in float16, largest finite value 65504: a mask constant such as -1e9 overflows*",
                 id="float16-additive-mask"),
    pytest.param("diagnosis_zoo.float16_naive_softmax", "fp16_naive/naive (Lambda)",
                 "float16 overflow: exp() past 11.1 became Inf",
                 "*it computes in float16, and an exp() of values up to * overflows float16 past 11.1*",
                 id="float16-exp-overflow"),
    pytest.param("diagnosis_zoo.pointer_softmax", "pointer_net/pointer (Softmax)",
                 "every position masked, so the row is all zeros",
                 "*hides every position of row *accept them with allow_masked_rows=True*",
                 id="masked-softmax-all-zero-row"),
    pytest.param("diagnosis_zoo.hand_masked_pointer", "hand_pointer/pointer (MaskedPointer)",
                 "every position masked, so the row is all zeros",
                 "*fed its softmax mask values at every position of row *allow_masked_rows=True*",
                 id="custom-layer-masked-all-zero-row"),
    pytest.param("lambda: diagnosis_zoo.regrouped_by('reshape')", "regrouped_reshape/seg (Dense)",
                 "softmax over 768 values regrouped into rows of 12 by Reshape 'regrouped_reshape/pixels'",
                 "*each softmax covers 768 values, but Reshape 'regrouped_reshape/pixels' regroups them into output "
                 "rows of 12*(12 of the 768 values: 1/64 on average), not 1: apply the softmax after the "
                 "regrouping, over the class axis*",
                 id="regrouped-by-reshape"),
    pytest.param("lambda: diagnosis_zoo.regrouped_by('permute')", "regrouped_permute/attn (Softmax)",
                 "softmax over 5 values regrouped into rows of 6 by Permute 'regrouped_permute/swap'",
                 "*each softmax covers 5 values, but Permute*", id="regrouped-by-permute"),
    pytest.param("lambda: diagnosis_zoo.regrouped_by('concat')", "regrouped_concat/head_a (Dense)",
                 "softmax over 3 values regrouped into rows of 6 by Concatenate 'regrouped_concat/both'",
                 "*so each row sums to 2 (2 softmaxes per row), not 1*", id="regrouped-by-concatenate"),
    pytest.param("diagnosis_zoo.regrouped_inside_a_layer", "regrouped_inside/head (SoftmaxThenReshape)",
                 "softmax over 48 values regrouped into rows of 6 inside SoftmaxThenReshape 'regrouped_inside/head'",
                 "*computes a softmax over 48 values in its own call() and then regroups them into output rows of 6*",
                 id="regrouped-inside-a-custom-layer"),
    pytest.param("diagnosis_zoo.diverged_weights", "diverged/hidden (Dense)",
                 "non-finite weights: kernel holds NaN",
                 "*Dense 'diverged/hidden': trainable variable 'kernel' holds 48 NaN of 48 values*",
                 id="diverged-weights"),
]


@pytest.mark.parametrize(("factory", "layer", "cause", "detail"), CASES)
def test_the_cause_is_in_the_first_lines_ci_shows(diag: pytest.Pytester, factory: str, layer: str, cause: str,
                                                  detail: str) -> None:
    result = run(diag, factory)
    assert_cause_everywhere(diag, result, layer, cause, detail)


def test_mask_multiplied_by_inf_makes_nan_before_the_softmax(diag: pytest.Pytester) -> None:
    # Every row keeps a position: not a fully masked row, the 0 * -inf trap.
    tokens = "__import__('numpy').array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], 'int32')"
    result = run(diag, "diagnosis_zoo.multiplied_mask", f", inputs={tokens}")
    assert_cause_everywhere(diag, result, "multiplied_mask/pointer (MultipliedMask)",
                            "mask arithmetic with -inf (0 * -inf) made NaN before the softmax",
                            "*already hold NaN next to -inf*select instead of multiplying*")


def assert_cause_everywhere(diag: pytest.Pytester, result: pytest.RunResult, layer: str, cause: str,
                            detail: str) -> None:
    result.assert_outcomes(failed=1)
    fault = f"layer at fault: {layer} ({cause})"
    # The full report, in the test's failure section.
    result.stdout.fnmatch_lines(["softmax invariant violated: *", f"  {fault}", "  fix: *", detail])
    # The junit message attribute (what CI pages show first) holds it
    # before any secondary "also:" line or truncation note.
    message = junit_message(diag)
    assert fault in message, message
    assert "\n  fix: " in message, message
    assert message.index(fault) < message.find("also:") if "also:" in message else True
    # The terminal summary line.
    result.stdout.fnmatch_lines([f"FAILED test_user.py::test_model: *; {fault}"])
    # The JSON report: the same layer and cause, and one summary line with both.
    check = json_check(diag)
    assert check["layer_at_fault"] == layer
    assert check["cause"] == cause
    assert check["summary"] == f"{check['headline']}; {fault}"
    props = {p.get("name"): p.get("value") for p in ET.parse(diag.path / "junit.xml").iter("property")}
    assert props["softmax_layer_at_fault"] == layer


def test_a_second_violation_comes_after_the_cause(diag: pytest.Pytester) -> None:
    """NaN rows and unnormalized rows in one output: the "also:" line used to
    push the diagnosis out of the junit message."""
    tokens = "__import__('numpy').array([[0, 0, 0, 0, 0], [1, 2, 3, 4, 5]], 'int32')"
    result = run(diag, "diagnosis_zoo.masked_then_scaled", f", inputs={tokens}")
    result.assert_outcomes(failed=1)
    lines = junit_message(diag).splitlines()
    assert lines[1] == ("  layer at fault: two_defects/weights (Softmax) (every position masked: softmax of all "
                        "-inf is 0/0)"), lines
    assert lines[2].startswith("  fix: mask with a finite value that fits float32 (e.g. -1e9)"), lines
    # The secondary violation follows (in the attribute if it fits, always in the element text).
    assert lines[3].startswith(("  also: ", "[+")), lines
    failure = ET.parse(diag.path / "junit.xml").find(".//testcase/failure")
    assert failure is not None and "  also: output 'double' (double: Rescaling) is not normalized" in str(failure.text)


def test_weights_are_checked_before_any_input_is_tried(diag: pytest.Pytester) -> None:
    # What the forward pass shows depends on the machine: graph-mode
    # TensorFlow fuses MatMul+ReLU, and on some CPUs the fused kernel turns
    # the NaN kernel's output into 0 (tidy rows); on others, and on JAX and
    # torch, the rows are NaN.  The weights come first either way: no example ran.
    result = run(diag, "diagnosis_zoo.diverged_weights")
    result.assert_outcomes(failed=1)
    assert json_check(diag)["examples"] == 0
    assert "layer at fault: diverged/hidden (Dense) (non-finite weights: kernel holds NaN)" in junit_message(diag)


@pytest.mark.parametrize(("factory", "marker_args", "ini"), [
    pytest.param("diagnosis_zoo.padding_masked_lstm", "", "", id="padding-masked-lstm"),
    pytest.param("diagnosis_zoo.mixed_float16_classifier", "", "", id="mixed-float16-float32-head"),
    pytest.param("diagnosis_zoo.masked_attention_pooling", "", "", id="masked-internal-softmax"),
    pytest.param("diagnosis_zoo.pointer_softmax", ", allow_masked_rows=True", "", id="masked-rows-marker"),
    pytest.param("diagnosis_zoo.pointer_softmax", "", "softmax_allow_masked_rows = true", id="masked-rows-ini"),
])
def test_healthy_masked_and_mixed_precision_models_pass(diag: pytest.Pytester, factory: str, marker_args: str,
                                                        ini: str) -> None:
    if ini:
        diag.makeini(f"[pytest]\n{ini}\n")
    result = run(diag, factory, marker_args)
    result.assert_outcomes(passed=1)
    check = json_check(diag)
    assert check["verdict"] == "passed" and check["rows"] > 0
    assert check["cause"] is None and check["layer_at_fault"] is None


def test_allow_masked_rows_never_excuses_nan(diag: pytest.Pytester) -> None:
    result = run(diag, "diagnosis_zoo.neg_inf_then_softmax_layer", ", allow_masked_rows=True")
    result.assert_outcomes(failed=1)
    assert "every position masked: softmax of all -inf is 0/0" in junit_message(diag)


def test_allow_masked_rows_must_be_a_boolean(diag: pytest.Pytester) -> None:
    diag.makeini("[pytest]\nsoftmax_allow_masked_rows = maybe\n")
    result = run(diag, "diagnosis_zoo.pointer_softmax")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*softmax_allow_masked_rows = 'maybe'*is not a boolean*"])


def test_allow_masked_rows_with_nothing_left_to_check_is_an_error() -> None:
    import numpy as np
    from diagnosis_zoo import pointer_softmax

    from pytest_softmax import SoftmaxSetupError, check_softmax

    with pytest.raises(SoftmaxSetupError, match="was all zeros .fully masked. in 1 examples, so allow_masked_rows"):
        check_softmax(pointer_softmax(), inputs=np.zeros((4, 5), "int32"), allow_masked_rows=True)


# TensorFlow-only by design: SavedModel directories load only on the TensorFlow backend.
@pytest.mark.tensorflow_only
def test_a_saved_model_with_diverged_weights_fails(diag: pytest.Pytester) -> None:
    # On some CPUs its serving signature returns finite, uniform rows (the
    # fused MatMul+ReLU hides the NaN kernel): the weights are read first.
    from diagnosis_zoo import diverged_weights

    diverged_weights().export(str(diag.path / "exported"), verbose=False)
    result = diag.runpytest("-p", "no:cacheprovider", "--softmax-model", "exported", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    assert ("layer at fault: diverged/hidden (SavedModel variable) (non-finite weights: kernel holds NaN)"
            in junit_message(diag))
