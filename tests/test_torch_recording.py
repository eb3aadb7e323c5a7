"""The search's pass sees every softmax call through a kernel on the three
softmax ops (``adapters/torch/intercept.py``), not a dispatch mode: every way
of writing a softmax is reported once per call, on every example, in every
dtype and grad mode; and no kernel is left registered after a check,
however it ends."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import FULL_INSTALL, needs

pytestmark = needs("torch")  # CI's full leg selects these by needs_extra
torch = pytest.importorskip("torch", reason=f"torch is not installed (an optional extra): {FULL_INSTALL}")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from pytest_softmax import SoftmaxInvariantError, SoftmaxSetupError, check_softmax  # noqa: E402
from pytest_softmax.adapters.torch import intercept  # noqa: E402

FAST: dict[str, Any] = {"max_examples": 25, "batch_size": 8}


def _ops_reported(run: Any) -> list[str]:
    seen: list[str] = []
    with intercept.Reporting(lambda op, args, out: seen.append(op.name())):
        run()
    return seen


def _every_spelling(x: torch.Tensor) -> list[torch.Tensor]:
    return [F.softmax(x, dim=-1), torch.softmax(x, -1), x.softmax(-1), nn.Softmax(dim=-1)(x),
            F.log_softmax(x, dim=-1), torch.log_softmax(x, -1), nn.LogSoftmax(dim=-1)(x)]


@pytest.mark.parametrize("grad_mode", ["inference_mode", "no_grad", "enable_grad"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_every_spelling_is_reported_once_with_torchs_own_values(dtype: str, grad_mode: str) -> None:
    x = torch.randn(3, 5).to(getattr(torch, dtype))
    expected = _every_spelling(x)
    with getattr(torch, grad_mode)():
        got: list[torch.Tensor] = []
        seen = _ops_reported(lambda: got.extend(_every_spelling(x)))
    assert seen == ["aten::_softmax"] * 4 + ["aten::_log_softmax"] * 3
    for mine, theirs in zip(got, expected):
        assert mine.dtype == theirs.dtype and torch.equal(mine, theirs)


def test_gradients_still_flow_through_a_reported_softmax() -> None:
    x = torch.randn(2, 4, requires_grad=True)
    seen = _ops_reported(lambda: torch.softmax(x, -1)[:, 0].sum().backward())
    assert seen == ["aten::_softmax"] and x.grad is not None and torch.isfinite(x.grad).all()


def test_fused_attention_is_seen_once_on_the_math_backend() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(2, 2, 5, 8)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH):
        # _safe_softmax computes itself with an inner _softmax: one call of the model, one report.
        seen = _ops_reported(lambda: F.scaled_dot_product_attention(q, q, q, attn_mask=mask))
    assert seen == ["aten::_safe_softmax"]


def test_other_threads_and_code_outside_the_block_are_not_reported() -> None:
    x = torch.randn(2, 3)
    other = threading.Thread(target=lambda: torch.softmax(x, -1))
    seen = _ops_reported(lambda: (other.start(), other.join()))
    torch.softmax(x, -1)
    assert seen == []


def test_nested_blocks_report_to_the_innermost_and_unregister_once() -> None:
    outer: list[str] = []
    x = torch.randn(2, 3)
    with intercept.Reporting(lambda op, args, out: outer.append("outer")):
        inner = _ops_reported(lambda: torch.softmax(x, -1))
        torch.softmax(x, -1)
        assert intercept.leftovers()  # the outer block still holds the kernels
    assert inner == ["aten::_softmax"] and outer == ["outer"]
    assert intercept.leftovers() == []


class RareGate(nn.Module):
    """Softmax only on inputs with a large value, and then over a row with
    every score masked (NaN), hidden from the output by nan_to_num."""

    def forward(self, hidden: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if bool((x.abs() > 0.5).any()):  # never on the all-zero inputs= example
            scores = hidden.masked_fill(torch.ones_like(hidden, dtype=torch.bool), float("-inf"))
            return hidden + torch.softmax(scores, dim=-1).nan_to_num()
        return hidden


class ModelWithARareSoftmax(nn.Module):
    def __init__(self, *, rare: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.rare = RareGate() if rare else None
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.proj(x)
        hidden = hidden * torch.softmax(hidden, dim=-1)  # an internal site on every input
        if self.rare is not None:
            hidden = self.rare(hidden, x)
        return torch.softmax(self.head(hidden), dim=-1)


@pytest.mark.parametrize("seed", (1, 2))
def test_a_softmax_the_example_never_reached_is_checked_on_the_examples_that_reach_it(seed: int) -> None:
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(ModelWithARareSoftmax(), inputs=torch.zeros(2, 4), seed=seed, **FAST)
    shown = "\n".join(str(caught.value).splitlines()[:6])
    assert "layer at fault: rare (RareGate: torch.softmax(dim=-1) at test_torch_recording.py:" in shown, shown
    assert intercept.leftovers() == []


class RaisesMidSearch(nn.Module):
    """Raises inside the search's recorded pass, after a softmax was reported."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.proj(x), dim=-1)
        self.calls += 1
        if self.calls >= 8:
            raise ValueError("out of cache slots")
        return torch.softmax(self.proj(x) * weights, dim=-1)


def test_no_kernel_is_left_after_a_check_that_passes_fails_or_raises() -> None:
    assert intercept.leftovers() == []
    healthy = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1))
    assert check_softmax(healthy, inputs=torch.zeros(2, 4), seed=1, **FAST).passed
    assert intercept.leftovers() == []
    with pytest.raises(SoftmaxInvariantError):
        batch_normalized = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0))
        check_softmax(batch_normalized, inputs=torch.zeros(2, 4), seed=1, **FAST)
    assert intercept.leftovers() == []
    with pytest.raises(SoftmaxInvariantError, match="model raised on a generated input: ValueError: out of"):
        check_softmax(RaisesMidSearch(), inputs=torch.zeros(2, 4), seed=1, **FAST)
    assert intercept.leftovers() == []
    with pytest.raises(SoftmaxSetupError):
        check_softmax(healthy, inputs=torch.zeros(2, 5), seed=1, **FAST)  # forward raises on the example
    assert intercept.leftovers() == []


def _registrations_during(run: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many times the kernels were put into the dispatcher (each costs the next forward)."""
    made: list[object] = []
    real = torch.library.Library

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(intercept.torch.library, "Library", counting)
    run()
    monkeypatch.setattr(intercept.torch.library, "Library", real)
    return len(made)


def test_a_check_registers_the_kernels_once_and_only_for_a_model_with_softmax_inside(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with_sites = ModelWithARareSoftmax(rare=False)  # healthy: a softmax inside on every input

    def check_with_sites() -> None:
        report = check_softmax(with_sites, inputs=torch.zeros(2, 4), seed=1, **FAST)
        assert report.passed and report.examples > 5
        assert any("internal softmax sites checked" in note for note in report.notes)

    assert _registrations_during(check_with_sites, monkeypatch) == 1
    head_only = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1))
    assert _registrations_during(lambda: check_softmax(head_only, inputs=torch.zeros(2, 4), seed=1, **FAST),
                                 monkeypatch) == 0
    assert intercept.leftovers() == []


@pytest.mark.parametrize("grad_mode", ["inference_mode", "no_grad"])
def test_a_check_run_inside_the_callers_grad_mode_still_sees_attention(grad_mode: str) -> None:
    import torch_zoo

    broken, example, options = torch_zoo.BROKEN["mha_padding_only_row"]
    healthy, healthy_example, _ = torch_zoo.HEALTHY["transformer_encoder"]
    with getattr(torch, grad_mode)():
        assert check_softmax(healthy(), inputs=healthy_example, seed=1, **FAST).passed
        with pytest.raises(SoftmaxInvariantError, match="every position masked"):
            check_softmax(broken(), inputs=example, seed=1, **FAST, **options)
    assert intercept.leftovers() == []


class CompiledAttentionBug(nn.Module):
    """An internal softmax over a row with every score masked (NaN)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.proj(x).masked_fill(x[:, :1] > 0.25, float("-inf"))
        hidden = self.proj(x) + torch.softmax(scores, dim=-1).nan_to_num()
        return torch.softmax(self.head(hidden), dim=-1)


def test_a_compiled_module_fails_naming_the_call_and_line_without_dynamo_warnings(
        recwarn: pytest.WarningsRecorder) -> None:
    model = torch.compile(CompiledAttentionBug())
    with pytest.raises(SoftmaxInvariantError) as caught:
        check_softmax(model, inputs=torch.zeros(2, 4), seed=1, **FAST)
    shown = "\n".join(str(caught.value).splitlines()[:3])
    # The recorded pass runs compiled modules eagerly: the softmax is named by the user's line.
    named = ("internal softmax '_orig_mod' (CompiledAttentionBug: torch.softmax(dim=-1) at "
             "test_torch_recording.py:")
    assert named in shown, shown
    assert not [w for w in recwarn if "Dynamo" in str(w.message)]
