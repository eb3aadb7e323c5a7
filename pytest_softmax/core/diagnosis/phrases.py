"""The diagnosis in the words of the framework that ran the model.

The rules (:mod:`.rules`, :mod:`.nonfinite`, :mod:`.regroup`) are written
once, and their advice names Keras' API; for another framework each Keras
phrase is replaced by its counterpart, longest first, so a PyTorch user's
``fix:`` line says ``torch.softmax(x, dim=-1)``, not ``keras.ops.softmax``.
A phrase missing here stays in Keras' words, still correct in substance.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rules import Explanation

_TORCH: tuple[tuple[str, str], ...] = (
    (r"use Keras' Softmax\(\)\(scores, mask=mask\) \(it writes zeros for a fully masked row\)",
     "use torch.nn.functional.scaled_dot_product_attention (it writes zeros for a fully masked row)"),
    (r"Keras' Softmax\(\)\(scores, mask=mask\)", "scaled_dot_product_attention with the mask"),
    (r"Softmax\(\)\(scores, mask=mask\)", "scaled_dot_product_attention with the mask"),
    (r"keras\.ops\.where\(mask, scores, -1e9\)", "scores.masked_fill(~mask, -1e9)"),
    (r"keras\.ops\.softmax\(reshaped, axis=(-?\d+)\)", r"torch.softmax(reshaped, dim=\1)"),
    (r"keras\.ops\.softmax\(\.\.\., axis=(-?\d+)\)", r"torch.softmax(..., dim=\1)"),
    (r"keras\.ops\.softmax", "torch.softmax(x, dim=-1)"),
    (r"Dense\(\.\.\., activation='softmax', dtype='float32'\)", "probs = torch.softmax(logits.float(), dim=-1)"),
    (r"Dense\((\w+|\.\.\.), activation='softmax'\)", r"nn.Linear(\1, classes) then torch.softmax(..., dim=-1)"),
    (r"Softmax\(axis=(-?\d+)\)", r"torch.softmax(x, dim=\1)"),
    (r"\(dtype='float32' on the layer\)", "(x.float() before it, or torch.autocast off for it)"),
    (r"\(dtype='float32'\)", "(x.float())"),
    (r"add activation='softmax' \(or a Softmax layer\)", "apply torch.softmax(logits, dim=-1)"),
    (r"add activation='softmax' or a Softmax layer", "apply torch.softmax(logits, dim=-1)"),
    (r"end with activation='softmax'", "end with torch.softmax(x, dim=-1)"),
    (r"activation='softmax' at the end", "torch.softmax(x, dim=-1) at the end"),
    (r"end the model with torch\.softmax\(x, dim=-1\) or a Softmax layer", "end forward with torch.softmax(x, dim=-1)"),
    (r"from_logits=True losses", "nn.CrossEntropyLoss takes logits"),
)
_PHRASES = {"torch": tuple((re.compile(pattern), replacement) for pattern, replacement in _TORCH)}


def translate(text: str, framework: str) -> str:
    for pattern, replacement in _PHRASES.get(framework, ()):
        text = pattern.sub(replacement, text)
    return text


def in_framework_terms(found: Explanation, framework: str) -> Explanation:
    if framework not in _PHRASES:
        return found
    return replace(found, lines=[translate(line, framework) for line in found.lines],
                   cause=translate(found.cause, framework) if found.cause else found.cause,
                   fix=translate(found.fix, framework))
