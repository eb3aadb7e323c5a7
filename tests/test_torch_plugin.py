"""PyTorch models through pytest: the test files a user writes, the junit
``message`` CI shows, the setup errors with their one-line fixes, and a
plain run that imports no torch."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from helpers import FULL_INSTALL, importing, needs

pytestmark = needs("torch")  # CI's full leg selects these by needs_extra
pytest.importorskip("torch", reason=f"torch is not installed (an optional extra): {FULL_INSTALL}")

import torch_zoo

torch_zoo.warm_up()

FAST = ("-p", "no:cacheprovider", "--softmax-max-examples=20", "--softmax-batch-size=8")

USER_TESTS = """
import pytest
import torch
import torch_zoo


@pytest.mark.softmax_invariant(model=torch_zoo.PolicyDim0, inputs=torch.zeros(8, 6))
def test_policy_head():
    pass


@pytest.mark.softmax_invariant(model=torch_zoo.PaddedAttention,
                               inputs=(torch.zeros(4, 5, 4), torch.zeros(4, 5, dtype=torch.bool)))
def test_padded_attention():
    pass


@pytest.mark.softmax_invariant(model=torch_zoo.SmoothedAfterSoftmax, inputs=torch.zeros(4, 4))
def test_label_smoothing():
    pass


@pytest.mark.softmax_invariant(model=torch_zoo.EncoderClassifier,
                               inputs=(torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 6, dtype=torch.bool)))
def test_encoder_classifier():
    pass


def test_fixture(softmax_check):
    report = softmax_check(torch_zoo.BFloat16VocabularyHead().to(torch.bfloat16),
                           inputs=torch.zeros(2, 16, dtype=torch.bfloat16))
    assert report.passed
"""


def test_junit_message_names_module_path_call_and_cause(pytester: pytest.Pytester) -> None:
    importing(pytester, "torch_zoo").makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest(*FAST, "--junitxml", "junit.xml")
    result.assert_outcomes(passed=2, failed=3)
    messages = {case.get("name"): failure.get("message", "")
                for case in ET.parse(pytester.path / "junit.xml").iter("testcase")
                for failure in case.iter("failure")}
    policy = messages["test_policy_head"]
    assert "PolicyDim0: F.softmax(dim=0) at torch_zoo.py:" in policy
    assert "softmax over the batch axis (dim 0)" in policy
    attention = messages["test_padded_attention"]
    assert "attention (MultiheadAttention: nn.MultiheadAttention's softmax(dim=-1)" in attention
    assert "input 'key_padding_mask' masks a whole row" in attention
    smoothing = messages["test_label_smoothing"]
    assert "changes the sums of softmax 'SmoothedAfterSoftmax'" in smoothing


def test_module_without_inputs_is_a_setup_error_with_the_fix(pytester: pytest.Pytester) -> None:
    importing(pytester, "torch_zoo").makepyfile(test_user="""
        import pytest
        import torch_zoo

        @pytest.mark.softmax_invariant(model=torch_zoo.PolicyDim0)
        def test_policy():
            pass
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*model 'PolicyDim0' is a torch.nn.Module, whose forward() declares no input shapes or dtypes; pass one "
        "example batch (batch first) with @pytest.mark.softmax_invariant(..., inputs=torch.zeros(8, 10))*",
    ])


def test_model_without_softmax_is_a_setup_error_not_a_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import pytest
        import torch

        @pytest.mark.softmax_invariant(model=lambda: torch.nn.Linear(4, 3), inputs=torch.zeros(2, 4))
        def test_logits():
            pass
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*Linear.forward() calls no softmax or log_softmax on the inputs= example, and outputs= names none of its "
        "outputs (0: 'output'), so nothing would be checked. Returning logits is fine*",
    ])


def test_a_logits_output_named_with_outputs_fails_as_logits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import pytest
        import torch

        @pytest.mark.softmax_invariant(model=lambda: torch.nn.Linear(4, 3), inputs=torch.zeros(2, 4), outputs=[0])
        def test_logits():
            pass
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*layer at fault: Linear (Linear: ops addmm) (no softmax: outputs unnormalized values)",
        "*fix: apply torch.softmax(logits, dim=-1)",
    ])


def test_inputs_forward_rejects_quote_torch_with_shapes(pytester: pytest.Pytester) -> None:
    importing(pytester, "torch_zoo").makepyfile(test_user="""
        import pytest
        import torch
        import torch_zoo

        @pytest.mark.softmax_invariant(model=torch_zoo.PolicyDim0, inputs=torch.zeros(8, 5))
        def test_policy():
            pass
    """)
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*PolicyDim0.forward() raised on the inputs= example (state: [[]8, 5[]] float32): RuntimeError: mat1 and "
        "mat2 shapes cannot be multiplied (8x5 and 6x16)*",
    ])


def test_a_plain_run_imports_no_torch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
        import sys

        def test_nothing_heavy():
            assert "torch" not in sys.modules
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_bundled_torch_example_gives_one_failure(pytester: pytest.Pytester) -> None:
    import shutil

    from helpers import TESTS_DIR

    shutil.copy(TESTS_DIR.parent / "examples" / "test_torch_models.py", pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_torch_models.py")
    result.stdout.fnmatch_lines([
        "*layer at fault: PolicyHead (PolicyHead: F.softmax(dim=0) at test_torch_models.py:22) "
        "(softmax over the batch axis (dim 0))*",
    ])
    result.assert_outcomes(failed=1, passed=2)
