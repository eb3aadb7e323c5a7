"""JAX: ``jax.jit`` over a stateless call of the model.

The model's variables are passed in as arguments on every call (read from
the variables, so weights changed between checks are used) and bound inside
a ``keras.StatelessScope``: the traced function holds no copy of them.
``jax.jit`` traces once per concrete input shape and caches the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import Forward, RunFunction, feed_arrays


class JaxBackend:
    name = "jax"
    compiled_description = "jax.jit over a stateless call"

    def compiled(self, model: Any, run: RunFunction, signature: Sequence[tuple[tuple[int | None, ...], str]]
                 ) -> Forward:
        import jax
        import keras

        variables = list(model.variables)

        def stateless(values: list[Any], *flat: Any) -> list[Any]:
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return list(run(*flat))

        jitted = jax.jit(stateless)
        dtypes = [dtype for _, dtype in signature]

        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            outputs = jitted([v.value for v in variables], *feed_arrays(inputs, dtypes))
            return [np.asarray(y) for y in outputs]

        return forward

    def per_shape(self, model: Any, run: RunFunction) -> Forward | None:
        return None  # jax.jit already traces per concrete shape

    def eager(self, model: Any, run: RunFunction) -> Forward:
        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(y) for y in run(*inputs)]

        return forward


BACKEND = JaxBackend()
