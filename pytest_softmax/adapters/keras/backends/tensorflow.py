"""TensorFlow: ``tf.function`` traced once per input signature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import Forward, RunFunction


class TracedForward:
    """A ``tf.function`` with an input signature, called through its one
    concrete function: that skips the per-call signature binding (~15% of a
    small model's pass).  ``function`` is kept for the probe, which traces
    its Python function again with recording wrappers."""

    def __init__(self, function: Any) -> None:
        import tensorflow as tf

        self.function = function
        self._concrete = function.get_concrete_function()
        self._dtypes = [spec.dtype for spec in function.input_signature]
        self._convert = tf.convert_to_tensor

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        tensors = [self._convert(x, dtype=d) for x, d in zip(inputs, self._dtypes)]
        return [np.asarray(y) for y in self._concrete(*tensors)]


class TensorFlowBackend:
    name = "tensorflow"
    compiled_description = "tf.function over the input signature"

    def compiled(self, model: Any, run: RunFunction, signature: Sequence[tuple[tuple[int | None, ...], str]]
                 ) -> Forward:
        import tensorflow as tf

        specs = [tf.TensorSpec((None, *shape), dtype) for shape, dtype in signature]
        # One trace per model and signature: None dimensions in the
        # signature keep variable-length inputs from retracing.  The concrete
        # function is called directly: it skips the per-call signature binding.
        return TracedForward(tf.function(run, input_signature=specs, reduce_retracing=True))

    def per_shape(self, model: Any, run: RunFunction) -> Forward | None:
        import tensorflow as tf

        # One tf.function per concrete shape signature, each traced once:
        # a single function retraced per shape would warn about retracing.
        traced: dict[tuple[Any, ...], TracedForward] = {}

        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            arrays = [np.asarray(x) for x in inputs]
            key = tuple((a.shape, a.dtype.str) for a in arrays)
            if key not in traced:
                specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in arrays]
                traced[key] = TracedForward(tf.function(run, input_signature=specs))
            return traced[key](arrays)

        return forward

    def eager(self, model: Any, run: RunFunction) -> Forward:
        import tensorflow as tf

        def forward(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(y) for y in run(*[tf.convert_to_tensor(x) for x in inputs])]

        return forward


BACKEND = TensorFlowBackend()
