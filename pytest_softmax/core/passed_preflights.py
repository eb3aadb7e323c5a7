"""Preflights that passed, remembered per model object and weights.

A session often checks one model many times: a session fixture shared by
several tests, one test per output or tolerance.  The preflight runs its
plain batch twice compiled and once as ``model(x)`` (the eager call costs
tens of compiled passes on a small recurrent model, which Keras steps
through time in Python), and its verdict depends on nothing but the
model's weights, the batch, the outputs compared and the axis.  So a
preflight that passed is remembered for the model object, held weakly (the
memory dies with the model), under a digest of all of those, and run again
only when one of them changed: a weight that training or a loaded
checkpoint changed between two checks is compared again.

A preflight that failed is never remembered: it raises every time.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence

import numpy as np

from ..adapters.base import Fingerprinting, ModelAdapter, OutputSpec
from ..adapters.base.arrays import add_to_digest

# Model object -> digests of the preflights that passed on it.
_passed: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()


class PassedPreflight:
    """One preflight's identity: the model object and a digest of its
    weights, the batch, the outputs and the axis."""

    def __init__(self, model: object, digest: str) -> None:
        self.model, self.digest = model, digest

    @classmethod
    def of(cls, adapter: ModelAdapter, outputs: Sequence[OutputSpec], batch: Sequence[np.ndarray],
           axis: int) -> PassedPreflight | None:
        """``None`` when the adapter cannot fingerprint its model: the
        preflight then runs on every check."""
        if not isinstance(adapter, Fingerprinting):
            return None
        try:
            fingerprint = adapter.fingerprint()
        except Exception:  # noqa: BLE001 - a variable that cannot be read: run the preflight every time
            return None
        if fingerprint is None:
            return None
        model, weights = fingerprint
        # SHA-1 as a change detector (twice blake2b's speed on a batch of
        # images), not for security.
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"{weights}|{[spec.index for spec in outputs]}|{axis}".encode())
        for array in batch:
            add_to_digest(digest, array)
        return cls(model, digest.hexdigest())

    def passed_before(self) -> bool:
        try:
            return self.digest in _passed.get(self.model, ())
        except TypeError:  # a model object that cannot be hashed or held weakly
            return False

    def remember(self) -> None:
        try:
            _passed.setdefault(self.model, set()).add(self.digest)
        except TypeError:
            pass
