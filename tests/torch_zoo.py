"""PyTorch models rebuilt from public bug reports, and healthy ones.

Each broken model is small and keeps only what the report's bug needs; the
comment above it cites the report.  ``BROKEN`` maps a name to (factory,
example inputs, check keyword arguments); ``HEALTHY`` likewise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)


# A policy head normalized over the batch: softmax(dim=0) on (batch, actions)
# (DeepReinforcementLearning/DeepReinforcementLearningInAction#32: nn.Softmax(dim=0)
# in a REINFORCE policy fed batches; ray-project/ray#16311).
class PolicyDim0(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.head(torch.relu(self.body(state))), dim=0)


# The deprecated implicit dim on a 3-D input: nn.Softmax() picks dim 0
# ("Implicit dimension choice for softmax has been deprecated": amdegroot/ssd.pytorch#104,
# suragnair/alpha-zero-general#5).
class ImplicitDim3D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 5)
        self.softmax = nn.Softmax()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.proj(tokens))  # (batch, steps, classes)


# log_softmax over the wrong axis of a 3-D tensor (ctallec/world-models#10:
# log_softmax over dim=-2 of (seq, batch, gaussians); fxia22/pointnet.pytorch#27).
class LogSoftmaxWrongAxis(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 6)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.proj(tokens), dim=1)


# nn.MultiheadAttention(need_weights=True) with a padding-only row returns NaN
# (pytorch/pytorch#41508, #40932, still in 2.13: #160064).
class PaddedAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.classify = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        attended, _ = self.attention(h, h, h, key_padding_mask=key_padding_mask, need_weights=True)
        return torch.softmax(self.classify(attended.mean(dim=1)), dim=-1)


# Candidate scoring with masked_fill(-inf) and no valid candidate in a row:
# softmax of all -inf is NaN (THUwangcy/ReChorus#8, allenai/allennlp#890, pytorch/pytorch#25110).
class CandidateScorer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(4, 1)

    def forward(self, candidates: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        scores = self.score(candidates).squeeze(-1)
        scores = scores.masked_fill(~valid, float("-inf"))
        return torch.softmax(scores, dim=-1)


# A hand-written softmax without the max subtraction: exp() overflows past
# logit 88 in float32 (11 in float16): Inf/Inf = NaN (pyg-team/pytorch_geometric#53,
# uTensor/uTensor#175).
class HandWrittenSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.proj(x)
        return torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)


# float16 attention with an additive -1e9 mask: -1e9 overflows float16 to
# -inf, so a fully padded row is 0/0 = NaN (huggingface/transformers#17306, openai/gpt-2#122,
# facebookresearch/fairseq#3575).
class Float16MaskedAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.query = nn.Linear(4, 4)
        self.key = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        scores = self.query(h) @ self.key(h).transpose(-1, -2)
        scores = scores + (1.0 - attention_mask[:, None, :]) * -1e9
        return torch.softmax(scores, dim=-1)


# Arithmetic after the softmax: label smoothing applied to the output
# probabilities changes their sums (a constructed case: no public report cited).
class SmoothedAfterSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.proj(x), dim=-1)
        return probs * 0.9 + 0.1


# A temperature of zero: F.softmax(logits / temp) with temp = 0 is NaN
# (suno-ai/bark#270; google-deepmind/gemma#562).
class ZeroTemperature(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 5)
        self.temperature = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.proj(x) / self.temperature, dim=-1)


# pygcn returns log_softmax (for NLLLoss), then its output is read as
# probabilities (tkipf/pygcn#16): the user names it with outputs=.
class GCNLogSoftmaxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gc1 = nn.Linear(6, 16)
        self.gc2 = nn.Linear(16, 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.gc2(F.relu(self.gc1(features))), dim=1)


Case = tuple[Callable[[], nn.Module], Any, dict[str, Any]]

BROKEN: dict[str, Case] = {
    "policy_dim0": (PolicyDim0, torch.zeros(8, 6), {}),
    "implicit_dim_3d": (ImplicitDim3D, torch.zeros(4, 7, 8), {}),
    "log_softmax_wrong_axis": (LogSoftmaxWrongAxis, torch.zeros(4, 7, 8), {}),
    "mha_padding_only_row": (PaddedAttention, (torch.zeros(4, 5, 4), torch.zeros(4, 5, dtype=torch.bool)), {}),
    "masked_fill_no_candidate": (CandidateScorer, (torch.zeros(4, 6, 4), torch.ones(4, 6, dtype=torch.bool)), {}),
    "exp_overflow": (HandWrittenSoftmax, torch.zeros(4, 4), {}),
    "exp_overflow_float16": (lambda: HandWrittenSoftmax().half(), torch.zeros(4, 4, dtype=torch.float16), {}),
    "float16_mask": (lambda: Float16MaskedAttention().half(),
                     {"x": torch.zeros(4, 5, 4, dtype=torch.float16),
                      "attention_mask": torch.ones(4, 5, dtype=torch.float16)}, {}),
    "post_softmax_arithmetic": (SmoothedAfterSoftmax, torch.zeros(4, 4), {}),
    "zero_temperature": (ZeroTemperature, torch.zeros(4, 4), {}),
    "log_softmax_as_probabilities": (GCNLogSoftmaxHead, torch.zeros(8, 6), {"outputs": [0]}),
}


# -- healthy models: every one must pass under every seed ---------------------------------------

def tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=3,
                        attn_implementation="eager")
    return BertForSequenceClassification(config)


def tiny_gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=100, n_embd=16, n_layer=2, n_head=2, n_positions=32, use_cache=False,
                        attn_implementation="eager")
    return GPT2LMHeadModel(config)


def tiny_vit() -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=16, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=32, num_labels=4, attn_implementation="eager")
    return ViTForImageClassification(config)


class EncoderClassifier(nn.Module):
    """nn.TransformerEncoder with key_padding_mask, then a softmax head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True, dropout=0.1)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 5)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(self.embed(tokens), src_key_padding_mask=padding_mask)
        return torch.softmax(self.head(hidden[:, 0]), dim=-1)


class BFloat16VocabularyHead(nn.Module):
    """A language-model head over 32,000 classes computed in bfloat16."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 32_000)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.proj(hidden), dim=-1)


HEALTHY: dict[str, Case] = {
    # BERT's eager attention applies the padding mask additively (finfo.min): padded rows stay finite.
    "bert": (tiny_bert, {"input_ids": torch.zeros(2, 6, dtype=torch.long),
                         "attention_mask": torch.ones(2, 6, dtype=torch.long)}, {}),
    "gpt2": (tiny_gpt2, {"input_ids": torch.zeros(2, 6, dtype=torch.long),
                         "attention_mask": torch.ones(2, 6, dtype=torch.long)}, {}),
    "vit": (tiny_vit, torch.zeros(2, 3, 16, 16), {}),
    "transformer_encoder": (EncoderClassifier, (torch.zeros(2, 6, dtype=torch.long),
                                                torch.zeros(2, 6, dtype=torch.bool)), {}),
    "bfloat16_head": (lambda: BFloat16VocabularyHead().to(torch.bfloat16),
                      torch.zeros(2, 16, dtype=torch.bfloat16), {}),
}


def warm_up() -> None:
    """Import what a check imports lazily (torch.export, the dispatch modes,
    the diagnosis), in this process: in-process pytester runs remove modules
    imported during a run, and torch cannot register its op libraries twice."""
    from pytest_softmax import SoftmaxInvariantError, check_softmax

    try:
        check_softmax(PolicyDim0(), inputs=torch.zeros(4, 6), seed=0, max_examples=2, batch_size=2)
    except SoftmaxInvariantError:
        pass
