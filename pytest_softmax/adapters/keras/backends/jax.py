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

from ..stateful import carried_state_variables
from . import Forward, RunFunction, feed_arrays


class JaxBackend:
    name = "jax"
    compiled_description = "jax.jit over a stateless call"

    def compiled(self, model: Any, run: RunFunction, signature: Sequence[tuple[tuple[int | None, ...], str]]
                 ) -> Forward:
        import jax
        import keras

        dtypes = [dtype for _, dtype in signature]
        jitted: list[Any] = []  # built on the first call: [function, variables]

        def prepare(inputs: list[np.ndarray]) -> None:
            if not getattr(model, "built", True):
                # A model that creates its variables on its first call must
                # create them outside the trace, or they would hold tracers.
                run(*inputs)
            # A stateful RNN's states are not among model.variables on JAX:
            # passed in too, or the trace would hold their first values.
            carried = carried_state_variables(model)
            variables = list(model.variables)
            variables += [v for v in carried if not any(v is w for w in variables)]
            # Random layers advance their seed generators on every call, as
            # model.predict does: a model random in inference must stay so.
            seeds = [v for v in variables if "seed_generator" in str(getattr(v, "path", ""))]
            # A stateful RNN carries its state into the next call, as under
            # model.predict and on the other backends (state.py puts it back).
            seeds += [v for v in carried if not any(v is s for s in seeds)]

            def stateless(values: list[Any], *flat: Any) -> tuple[list[Any], list[Any]]:
                with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
                    outputs = list(run(*flat))
                    return outputs, [scope.get_current_value(v) for v in seeds]

            jitted.extend([jax.jit(stateless), variables, seeds])

        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            fed = feed_arrays(inputs, dtypes)
            if not jitted:
                prepare(fed)
            function, variables, seeds = jitted
            outputs, advanced = function([v.value for v in variables], *fed)
            for variable, value in zip(seeds, advanced):
                if value is not None:
                    variable.assign(value)
            return [np.asarray(y) for y in outputs]

        return forward

    def per_shape(self, model: Any, run: RunFunction) -> Forward | None:
        return None  # jax.jit already traces per concrete shape

    def eager(self, model: Any, run: RunFunction) -> Forward:
        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(y) for y in run(*inputs)]

        return forward


BACKEND = JaxBackend()
