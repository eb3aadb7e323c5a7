"""A bundled PyTorch example: run `pytest examples/` to see pytest-softmax
catch a policy head normalized over the batch (softmax(dim=0)) while healthy
PyTorch models pass.  Needs torch (pip install -e ".[torch]")."""

import pytest

torch = pytest.importorskip("torch", reason='PyTorch is not installed: pip install -e ".[torch]"')
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class PolicyHead(nn.Module):
    """The bug: softmax over dim 0, the batch, so no state's action
    probabilities sum to 1 (each depends on the rest of the batch)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, state):
        return F.softmax(self.head(torch.relu(self.body(state))), dim=0)


class Classifier(nn.Module):
    """Returns logits, as PyTorch classifiers do: not checked as probabilities."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class Tagger(nn.Module):
    """An encoder over padded token ids whose attention softmaxes are checked
    inside nn.TransformerEncoder, then a softmax over the tags."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.tags = nn.Linear(16, 5)

    def forward(self, tokens, padding_mask):
        hidden = self.encoder(self.embed(tokens), src_key_padding_mask=padding_mask)
        return torch.softmax(self.tags(hidden), dim=-1)


@pytest.mark.softmax_invariant(model=PolicyHead, inputs=torch.zeros(8, 6))
def test_policy_head_is_caught():
    """Expected to FAIL: the report names F.softmax(dim=0) and its line."""


@pytest.mark.softmax_invariant(model=Tagger, inputs=(torch.zeros(2, 7, dtype=torch.long),
                                                     torch.zeros(2, 7, dtype=torch.bool)))
def test_tagger_passes():
    pass


def test_classifier_probabilities_pass(softmax_check):
    class WithSoftmax(nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = Classifier()

        def forward(self, x):
            return torch.softmax(self.classifier(x), dim=-1)

    report = softmax_check(WithSoftmax(), inputs=torch.zeros(4, 20), max_examples=20)
    assert report.passed and report.examples >= 20
