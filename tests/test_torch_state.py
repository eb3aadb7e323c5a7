"""What a check leaves behind on a PyTorch module: nothing.  The training
flag, parameters and buffers are restored, and a forward that changes them
is said in the report; non-finite parameters fail the check by name."""

from __future__ import annotations

import pytest
from helpers import FULL_INSTALL, needs

pytestmark = needs("torch")  # CI's full leg selects these by needs_extra
torch = pytest.importorskip("torch", reason=f"torch is not installed (an optional extra): {FULL_INSTALL}")

from torch import nn  # noqa: E402

from pytest_softmax import SoftmaxInvariantError, SoftmaxSetupError, check_softmax  # noqa: E402


class CountingHead(nn.Module):
    """Writes a buffer on every forward call (a running statistic kept in inference)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.dropout = nn.Dropout(0.5)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.softmax(self.dropout(self.proj(x)), dim=-1)


def test_training_flag_parameters_and_buffers_are_restored_and_said() -> None:
    model = CountingHead().train()
    weights = model.proj.weight.detach().clone()
    report = check_softmax(model, inputs=torch.zeros(2, 4), seed=1, max_examples=5)
    # Dropout would break the sums in training mode: the check ran in eval().
    assert report.passed
    assert model.training and model.dropout.training
    assert float(model.calls) == 0.0 and torch.equal(model.proj.weight, weights)
    assert any("forward changed 1 parameter(s)/buffer(s) of the module during the check (calls); they were "
               "restored afterwards" in note for note in report.notes)


def test_a_nan_parameter_fails_by_name_before_the_search() -> None:
    model = CountingHead()
    with torch.no_grad():
        model.proj.bias[1] = float("nan")
    with pytest.raises(SoftmaxInvariantError, match=r"proj\.bias"):
        check_softmax(model, inputs=torch.zeros(2, 4), seed=1, max_examples=5)


def test_dict_inputs_are_matched_to_forward_arguments_by_name() -> None:
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 3)

        def forward(self, features: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.proj(features) * scale, dim=-1)

    example = {"scale": torch.ones(2, 1), "features": torch.zeros(2, 4)}
    assert check_softmax(TwoInputs(), inputs=example, seed=1, max_examples=5).passed
    with pytest.raises(SoftmaxSetupError, match=r"inputs= names 'feature', which TwoInputs.forward\(\) does not "
                                                r"take; its arguments are features, scale"):
        check_softmax(TwoInputs(), inputs={"feature": torch.zeros(2, 4), "scale": torch.ones(2, 1)})


def test_outputs_that_are_not_tensors_are_a_setup_error() -> None:
    class ReturnsText(nn.Module):
        def forward(self, x: torch.Tensor) -> str:
            return "probabilities"

    with pytest.raises(SoftmaxSetupError, match=r"ReturnsText.forward\(\) returned str, not tensors"):
        check_softmax(ReturnsText(), inputs=torch.zeros(2, 4))


def test_an_outputs_key_the_model_lacks_names_the_outputs_it_has() -> None:
    class Named(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            logits = self.proj(x)
            return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}

    report = check_softmax(Named(), inputs=torch.zeros(2, 4), seed=1, max_examples=5)
    assert [o.output for o in report.outputs] == ["probs"]  # the logits are not a distribution to check
    with pytest.raises(SoftmaxSetupError, match=r"the outputs to check name 'prob', which the model does not have; "
                                                r"its outputs are 0: 'logits', 1: 'probs'"):
        check_softmax(Named(), inputs=torch.zeros(2, 4), outputs=["prob"])


def test_when_export_cannot_trace_the_example_shapes_are_kept_and_said() -> None:
    class Branching(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow: torch.export cannot trace it
                x = -x
            return torch.softmax(self.proj(x), dim=-1)

    report = check_softmax(Branching(), inputs=torch.zeros(2, 4), seed=1, max_examples=5)
    assert report.passed
    assert any(note.startswith("torch.export could not trace forward (") and
               note.endswith("the example's shapes are used, only the batch size varies") for note in report.notes)
