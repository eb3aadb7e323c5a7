"""The search's recorded pass records only inside the modules that hold
softmax sites: the same records as recording the whole forward, far fewer
ops through Python, and nothing left on the user's module, even when
forward raises."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='PyTorch is not installed: pip install -e ".[test,torch]"')

import torch_zoo
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from pytest_softmax.adapters.torch import adapter as torch_adapter
from pytest_softmax.adapters.torch.recording import SiteRecorder


def _learned(model: nn.Module, example: Any) -> torch_adapter.TorchModuleAdapter:
    adapter = torch_adapter.TorchModuleAdapter(model.eval())
    adapter.learn_signature(example)
    return adapter


def _batch(seed: int) -> list[np.ndarray]:
    generator = np.random.default_rng(seed)
    tokens = generator.integers(0, 50, size=(4, 6))
    mask = np.zeros((4, 6), dtype=bool)
    mask[:, 4:] = True  # padded tail; every row keeps a real token
    return [tokens, mask]


def test_scoped_pass_records_the_same_sites_as_the_whole_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    ops: list[int] = []

    class CountingRecorder(SiteRecorder):  # type: ignore[misc]
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            ops[-1] += 1
            return super().__torch_dispatch__(func, types, args, kwargs)

    monkeypatch.setattr(torch_adapter, "SiteRecorder", CountingRecorder)
    torch.manual_seed(0)
    adapter = _learned(torch_zoo.EncoderClassifier(), (torch.zeros(2, 6, dtype=torch.long),
                                                        torch.zeros(2, 6, dtype=torch.bool)))
    assert adapter.internal_softmax_sites()
    for seed in (1, 2, 3):
        ops.append(0)
        scoped_outputs, scoped = adapter.forward_with_sites(_batch(seed))
        saved, adapter._scope = adapter._scope, None  # record the whole forward, as before
        ops.append(0)
        whole_outputs, whole = adapter.forward_with_sites(_batch(seed))
        adapter._scope = saved
        assert [(r.site.path, r.site.call, r.site.location) for r in scoped] == \
            [(r.site.path, r.site.call, r.site.location) for r in whole]
        assert len(scoped) == 2  # one attention softmax per encoder layer
        for a, b in zip(scoped, whole):
            np.testing.assert_array_equal(a.output, b.output)
        for a, b in zip(scoped_outputs, whole_outputs):
            np.testing.assert_array_equal(a, b)
        # The embedding, the feed-forward blocks, the norms and the head ran without the recorder.
        assert ops[-2] < ops[-1] * 0.85, ops


class RaisesInAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(x, x, x, need_weights=True)
        if self.fail:
            raise ValueError("broken after attention")
        return torch.softmax(self.head(attended.mean(dim=1)), dim=-1)


def test_a_forward_that_raises_leaves_no_recorder_and_no_hooks() -> None:
    model = RaisesInAttention()
    adapter = _learned(model, torch.zeros(2, 5, 8))
    assert adapter.internal_softmax_sites()
    model.fail = True
    with pytest.raises(ValueError, match="broken after attention"):
        adapter.forward_with_sites([np.ones((2, 5, 8), dtype=np.float32)])
    assert _get_current_dispatch_mode() is None
    assert not model.attention._forward_hooks and not model.attention._forward_pre_hooks
