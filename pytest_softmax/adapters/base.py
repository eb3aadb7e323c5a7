"""The boundary between the engine and a deep-learning framework.

The engine (input generation, invariants, reports) speaks numpy and these
types only; everything that knows about Keras or TensorFlow lives behind a
:class:`ModelAdapter`.  Adding another framework means writing one adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """One model input as the generator needs it.

    ``shape`` excludes the batch dimension; ``None`` marks a dimension whose
    size the generator chooses.  ``low``/``high`` bound integer inputs
    (``high`` exclusive), for example an ``Embedding``'s vocabulary."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    low: int | None = None
    high: int | None = None
    # Largest magnitude worth generating: a model computing in float16 turns
    # any input past float16's range into Inf, which says nothing about its
    # softmax.  None means the dtype's own range.
    value_limit: float | None = None

    @property
    def is_integer(self) -> bool:
        return self.dtype.startswith(("int", "uint"))

    @property
    def is_float(self) -> bool:
        return self.dtype in {"float16", "bfloat16", "float32", "float64"}


@dataclass(frozen=True)
class OutputSpec:
    """One model output: its name and the layer that produces it."""

    name: str
    index: int
    layer_name: str
    layer_class: str


@runtime_checkable
class ModelAdapter(Protocol):
    """What the engine needs from a model."""

    @property
    def name(self) -> str: ...

    def input_specs(self) -> Sequence[InputSpec]: ...

    def output_specs(self) -> Sequence[OutputSpec]: ...

    def forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the model in inference mode on one batch (one array per input
        spec, in order) and return every output as a numpy array."""
        ...


@runtime_checkable
class LayerProbing(Protocol):
    """Optional: an adapter that can look inside its model.  The engine
    uses it only to explain a failure (``probe``) and, for models with
    softmax layers besides their outputs, to check those layers during the
    search (``internal_softmax_sites``, ``forward_with_sites``).  Types are
    in :mod:`pytest_softmax.probing`."""

    def probe(self, inputs: Sequence[np.ndarray]) -> Any:
        """A ``ProbeResult``: every layer call's output on one batch."""
        ...

    def internal_softmax_sites(self) -> list[Any]:
        """``LayerSite``s of softmax layers that are not model outputs."""
        ...

    def forward_with_sites(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Any]]:
        """The model outputs and the internal sites' ``LayerRecord``s, in one pass."""
        ...
