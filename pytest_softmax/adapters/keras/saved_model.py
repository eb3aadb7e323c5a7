"""A TensorFlow SavedModel's ``serving_default`` signature as a model.

Loading it runs no Python code from the directory; layers are not visible,
so failures name the signature output only.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SoftmaxSetupError
from ..base import InputSpec, ModelFailure, NonFiniteWeight, OutputSpec
from . import errors, state


def load_saved_model(path: Path, *, safe_mode: bool) -> SavedModelSignature:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # a corrupt saved_model.pb or missing variables
        raise SoftmaxSetupError(
            f"could not load SavedModel directory {str(path)!r}: {errors.first_line(exc)}; save it again"
        ) from exc
    return SavedModelSignature(loaded, str(path))


class SavedModelSignature:
    """Adapter for a SavedModel's ``serving_default`` signature."""

    def __init__(self, loaded: Any, path: str) -> None:
        self.path = path
        signatures = getattr(loaded, "signatures", {})
        if "serving_default" not in signatures:
            raise SoftmaxSetupError(f"SavedModel {path!r} has no serving_default signature")
        self._fn = signatures["serving_default"]
        self._loaded = loaded  # keeps the variables alive
        # The signature's specs are read once: parsing them costs more than a
        # small model's forward pass.
        self._inputs = [
            InputSpec(name=name, shape=tuple(spec.shape)[1:], dtype=spec.dtype.name)
            for name, spec in sorted(self._fn.structured_input_signature[1].items())
        ]
        self._outputs = [OutputSpec(name, i, name, "SavedModel signature")
                         for i, name in enumerate(sorted(self._fn.structured_outputs))]

    @property
    def name(self) -> str:
        return Path(self.path).name

    def input_specs(self) -> list[InputSpec]:
        return list(self._inputs)

    def output_specs(self) -> list[OutputSpec]:
        return list(self._outputs)

    def forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import tensorflow as tf

        feed = {spec.name: tf.convert_to_tensor(x, dtype=spec.dtype) for spec, x in zip(self._inputs, inputs)}
        result = self._fn(**feed)
        return [np.asarray(result[spec.name]) for spec in self._outputs]

    def nonfinite_weights(self) -> list[NonFiniteWeight]:
        from .weights import nonfinite_saved_variables

        return nonfinite_saved_variables(self._loaded)

    @property
    def backend(self) -> str:
        return "tensorflow"

    def run_notes(self) -> list[str]:
        return []

    def explain_error(self, exc: BaseException) -> ModelFailure:
        return errors.explain(exc)

    def preserved_state(self) -> AbstractContextManager[object]:
        return state.preserved_state(None)
