"""PyTorch: the model called without autograd.

Keras' PyTorch backend runs layers eagerly; ``torch.no_grad()`` drops the
autograd bookkeeping, which is what ``model.predict`` itself does.  Not
``torch.compile``: it compiles per model and input shape (on CPU through a
C++ toolchain), a one-time cost of many forward passes that a check of a
hundred small batches is unlikely to win back (not measured here).  Not
``inference_mode`` either: a layer creating state on its first call would
create inference tensors the user could not train later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..numpy_values import torch_to_numpy as _numpy
from . import Forward, RunFunction, feed_arrays


class TorchBackend:
    name = "torch"
    compiled_description = "torch.no_grad() eager call"

    def compiled(self, model: Any, run: RunFunction, signature: Sequence[tuple[tuple[int | None, ...], str]]
                 ) -> Forward:
        eager = self.eager(model, run)
        dtypes = [dtype for _, dtype in signature]

        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            return eager(feed_arrays(inputs, dtypes))

        return forward

    def per_shape(self, model: Any, run: RunFunction) -> Forward | None:
        return None

    def eager(self, model: Any, run: RunFunction) -> Forward:
        import torch

        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            with torch.no_grad():
                return [_numpy(y) for y in run(*inputs)]

        return forward


BACKEND = TorchBackend()
