"""PyTorch models: each bug class of issue #20 fails naming its module path,
call and cause under every seed; healthy architectures pass under every seed.

In-process (``check_softmax``): these are engine-and-adapter results; the
pytest integration (junit messages) is in ``test_torch_plugin.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import FULL_INSTALL, needs

pytestmark = needs("torch")  # CI's full leg selects these by needs_extra
torch = pytest.importorskip("torch", reason=f"torch is not installed (an optional extra): {FULL_INSTALL}")

import torch_zoo

from pytest_softmax import SoftmaxInvariantError, check_softmax

SEEDS = (1, 2)
FAST: dict[str, Any] = {"max_examples": 25, "batch_size": 8}

# What each failure must say: the module path (as the layer at fault), the
# call and file:line, and the cause in the first lines.
EXPECTED = {
    "policy_dim0": ("layer at fault: PolicyDim0 (PolicyDim0: F.softmax(dim=0) at torch_zoo.py:",
                    "softmax over the batch axis (dim 0)", "fix: softmax over the class axis: dim=-1"),
    "implicit_dim_3d": ("layer at fault: softmax (Softmax: nn.Softmax() (implicit dim, taken as dim=0) at torch_zoo.py:",
                        "softmax over the batch axis (dim 0)", "the implicit dim of a 0-, 1- or 3-D input is 0"),
    "log_softmax_wrong_axis": ("layer at fault: LogSoftmaxWrongAxis (LogSoftmaxWrongAxis: F.log_softmax(dim=1) at",
                               "softmax over axis 1, checked along axis -1", "output 'exp(output)'"),
    "mha_padding_only_row": ("layer at fault: attention (MultiheadAttention: nn.MultiheadAttention's softmax(dim=-1)",
                             "every position masked", "input 'key_padding_mask' masks a whole row"),
    "masked_fill_no_candidate": ("layer at fault: CandidateScorer (CandidateScorer: torch.softmax(dim=-1) at",
                                 "every position masked", "input 'valid' masks a whole row"),
    "exp_overflow": ("layer at fault: HandWrittenSoftmax:", "exp() overflow past 88.7 in a hand-written softmax",
                     "fix: use torch.softmax(x, dim=-1), which subtracts the row maximum"),
    "exp_overflow_float16": ("layer at fault: HandWrittenSoftmax:", "float16 overflow: exp() past 11.1 became Inf",
                             "compute this layer in float32 (x.float())"),
    "float16_mask": ("(Float16MaskedAttention: ops rsub, mul, add at torch_zoo.py:",
                     "float16 overflow: a value past 65504 became Inf", "constants that fit float16"),
    "post_softmax_arithmetic": ("layer at fault: SmoothedAfterSoftmax:", "changes the sums of softmax",
                                "fix: apply the softmax last, or drop or renormalize that layer"),
    "zero_temperature": ("layer at fault: ZeroTemperature:", "a division by zero",
                         "a non-zero temperature"),
    "log_softmax_as_probabilities": ("layer at fault: GCNLogSoftmaxHead (GCNLogSoftmaxHead: F.log_softmax(dim=1)",
                                     "log_softmax: log-probabilities", "fix: softmax, or check exp(output)"),
}


def _first_lines(error: BaseException, count: int = 6) -> str:
    return "\n".join(str(error).splitlines()[:count])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", sorted(torch_zoo.BROKEN))
def test_each_bug_class_fails_naming_module_call_and_cause(case: str, seed: int) -> None:
    factory, example, options = torch_zoo.BROKEN[case]
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(factory(), inputs=example, seed=seed, **FAST, **options)
    shown = _first_lines(caught.value)
    for expected in EXPECTED[case]:
        assert expected in shown, f"{case}: {expected!r} not in\n{shown}"


@pytest.fixture(scope="module")
def healthy_models() -> dict[str, Any]:
    return {}


HF_MODELS = {"bert", "gpt2", "vit"}


@pytest.mark.parametrize("seed", (1, 2, 3))
@pytest.mark.parametrize("case", sorted(torch_zoo.HEALTHY))
def test_healthy_architectures_pass_under_every_seed(case: str, seed: int, healthy_models: dict[str, Any]) -> None:
    if case in HF_MODELS:
        pytest.importorskip("transformers", reason=f"transformers is not installed: {FULL_INSTALL}")
    factory, example, options = torch_zoo.HEALTHY[case]
    model = healthy_models.setdefault(case, factory())
    report = check_softmax(model, inputs=example, seed=seed, max_examples=15, batch_size=4, **options)
    assert report.passed and report.examples >= 1
    # Something was checked: a softmax output, or the attention softmaxes inside.
    assert report.outputs or any("internal softmax sites checked" in note for note in report.notes)


def test_attention_sites_are_named_by_module_path(healthy_models: dict[str, Any]) -> None:
    pytest.importorskip("transformers", reason=f"transformers is not installed: {FULL_INSTALL}")
    factory, example, _ = torch_zoo.HEALTHY["bert"]
    report = check_softmax(healthy_models.setdefault("bert", factory()), inputs=example, seed=1, max_examples=5,
                           batch_size=4)
    note = next(n for n in report.notes if "internal softmax sites" in n)
    assert "bert.encoder.layer.0.attention.self" in note and "bert.encoder.layer.1.attention.self" in note


def test_bfloat16_head_gets_a_bfloat16_tolerance() -> None:
    factory, example, _ = torch_zoo.HEALTHY["bfloat16_head"]
    report = check_softmax(factory(), inputs=example, seed=1, max_examples=10, batch_size=4)
    (output,) = report.outputs
    assert output.dtype == "bfloat16" and output.n_classes == 32_000
    # A float32 tolerance would be ~1e-3 here; bfloat16's rounding needs far more.
    assert output.tolerance > 1e-2 and output.worst_error <= output.tolerance


def test_transformer_logits_named_in_outputs_fail_as_logits_not_as_attention(
        healthy_models: dict[str, Any]) -> None:
    """The attention softmax upstream of GPT-2's logits is not what broke them:
    the lm_head makes logits, and the message says so."""
    pytest.importorskip("transformers", reason=f"transformers is not installed: {FULL_INSTALL}")
    factory, example, _ = torch_zoo.HEALTHY["gpt2"]
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(healthy_models.setdefault("gpt2", factory()), inputs=example, seed=1, max_examples=5,
                      batch_size=4, outputs=["logits"])
    shown = _first_lines(caught.value, 3)
    assert "layer at fault: lm_head (Linear: ops mm at modeling_gpt2.py:" in shown
    assert "(no softmax: outputs unnormalized values)" in shown and "fix: apply torch.softmax(logits, dim=-1)" in shown
