"""The boundary between the engine and a deep-learning framework.

The engine (input generation, invariants, reports) speaks numpy and these
types only; everything that knows about a framework lives behind a
:class:`ModelAdapter`.  Optional capabilities are protocols of their own,
checked with ``isinstance``: an adapter that cannot look inside its model
still gets its outputs checked.

The contract is all an adapter imports from the package: this module (the
protocols and the specs passed across), :mod:`.records` (what a layer probe
hands back), :mod:`.arrays` (the array helpers both sides share) and the
errors it raises, with :class:`SettingFix` for a fix the user makes by
changing a setting (phrased for the way the check was asked for, which an
adapter does not know).  This module imports no numpy at run time, so that
the plain data modules of the engine can name outputs without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ...errors import SettingFix, SoftmaxSetupError

if TYPE_CHECKING:
    import numpy as np

    from .records import LayerRecord, LayerSite, ProbeResult

__all__ = ["SettingFix", "SoftmaxSetupError"]  # re-exported: adapters raise them


# The kinds of values an input takes, as the adapter infers them from the model.
IDS = "ids"  # integer ids bounded by a vocabulary
MASK = "mask"  # 0/1 (or bool): padding and attention masks
VALUES = "values"  # nothing known: the dtype's ordinary ranges


def log_output_name(name: str) -> str:
    """How an output holding log-probabilities is named when exp() of it is
    checked (``exp(output)``): messages then say what was measured."""
    return f"exp({name})"


def is_log_output_name(name: str) -> bool:
    return name.startswith("exp(") and name.endswith(")")


def output_label(name: str, layer_name: str, layer_class: str) -> str:
    """How every message names a model output: ``output 'probs' (dense: Dense)``."""
    return f"output {name!r} ({layer_name}: {layer_class})"


@dataclass(frozen=True)
class InputDomain:
    """What an input's values mean to the model, derived from its graph.

    ``source`` says what it was derived from (the layer bounding the ids,
    how a mask is consumed), for messages.  ``max_length`` bounds the
    input's variable dimensions (a position embedding's sequence length)."""

    kind: str = VALUES
    source: str = ""
    max_length: int | None = None

    def describe(self, low: int | None, high: int | None) -> str:
        if self.kind == IDS and low is not None and high is not None:
            text = f"ids in [{low}, {high})"
        elif self.kind == MASK:
            text = "mask of 0/1"
        else:
            text = "values (nothing known: the dtype's ordinary range)"
        if self.source:
            text += f" ({self.source})"
        if self.max_length is not None:
            text += f", length at most {self.max_length}"
        return text


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
    domain: InputDomain = field(default_factory=InputDomain)

    @property
    def is_integer(self) -> bool:
        return self.dtype.startswith(("int", "uint"))

    @property
    def is_ids(self) -> bool:
        """Integer ids (of an integer dtype, or float ids an embedding casts)."""
        return self.domain.kind == IDS or self.is_integer

    @property
    def is_mask(self) -> bool:
        return self.domain.kind == MASK or self.dtype == "bool"

    def describe_domain(self) -> str:
        """The inferred domain for messages; "" for a float input nothing is known about."""
        if self.domain.kind == VALUES and self.dtype != "bool":
            if self.is_integer and self.high is None:
                return "integers in the default range (no embedding or mask use found)"
            return ""
        if self.dtype == "bool" and self.domain.kind != MASK:
            return InputDomain(MASK, "bool dtype", self.domain.max_length).describe(self.low, self.high)
        return self.domain.describe(self.low, self.high)


@dataclass(frozen=True)
class OutputSpec:
    """One model output: its name and the layer that produces it.
    ``shape`` is its static shape, batch dimension included (``None`` for a
    variable dimension), when the adapter knows it."""

    name: str
    index: int
    layer_name: str
    layer_class: str
    shape: tuple[int | None, ...] | None = None
    # The output holds log-probabilities (a log_softmax made it): exp(output)
    # is what must be a distribution.
    log_probabilities: bool = False

    @property
    def label(self) -> str:
        return output_label(self.name, self.layer_name, self.layer_class)


@dataclass(frozen=True)
class ModelFailure:
    """An exception the model raised, as the user needs it: the model's own
    message without framework noise, and whether memory ran out."""

    message: str
    out_of_memory: bool = False


@runtime_checkable
class ModelAdapter(Protocol):
    """What the engine needs from every model."""

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
    uses it to explain a failure (``probe``) and, for models with softmax
    layers besides their outputs, to check those layers during the search."""

    def probe(self, inputs: Sequence[np.ndarray]) -> ProbeResult:
        """Every layer call's output on one batch."""
        ...

    def internal_softmax_sites(self) -> list[LayerSite]:
        """Softmax layers that are not model outputs."""
        ...

    def forward_with_sites(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[LayerRecord]]:
        """The model outputs and the internal sites' records, in one pass."""
        ...


@dataclass(frozen=True)
class NonFiniteWeight:
    """A model variable holding NaN or Inf (training diverged?): the layer
    that owns it, by path through nested models, and the variable's name."""

    layer_path: str
    layer_class: str
    variable: str
    nan: int
    inf: int
    size: int
    trainable: bool = True


@runtime_checkable
class WeightInspecting(Protocol):
    """Optional: the model's variables can be read before the search, so
    that a diverged (NaN) weight fails the check whatever the forward pass
    shows (on some CPUs TensorFlow's fused MatMul+ReLU turns a NaN kernel's
    output into 0); infinite-only variables are left to the outputs, and
    named in the report."""

    def nonfinite_weights(self) -> list[NonFiniteWeight]:
        """Every trainable or non-trainable variable holding NaN/Inf."""
        ...


@runtime_checkable
class EagerComparing(Protocol):
    """Optional: the forward the check runs is compiled (a ``tf.function``,
    ``jax.jit``) and the model can also be run as ``model(x)`` runs it.  A
    compiled graph can compute otherwise: on some CPUs TensorFlow's fused
    MatMul+BiasAdd+Relu turns NaN into 0, so ``model(x)`` may return NaN
    where the compiled forward returns tidy rows."""

    def eager_forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """``model(x)``'s outputs on one batch; ``None`` when the check's own
        forward already is that call (nothing to compare)."""
        ...

    def compiled_description(self) -> str:
        """How the check's forward is compiled, for messages (``tf.function
        over the input signature``)."""
        ...

    def eager_probe(self, inputs: Sequence[np.ndarray]) -> ProbeResult:
        """Every layer call's output on one batch, run as ``model(x)`` runs
        (so a layer's NaN that the compiled graph hides is seen)."""
        ...


@runtime_checkable
class Fingerprinting(Protocol):
    """Optional: what the model computes can be summed up, so that a
    verdict depending on nothing else (the eager comparison on the batch
    tried before the search) is reached once per model and weights, not on
    every check of a model that a session checks many times."""

    def fingerprint(self) -> tuple[object, str] | None:
        """The model object (the engine holds it weakly, so a verdict dies
        with it) and a digest of every variable's current value, which
        changes when training or loading changes a weight; ``None`` when
        either cannot be had."""
        ...


@runtime_checkable
class SignatureAdopting(Protocol):
    """Optional: a model with no input signature of its own (a subclassed
    model never called) takes one from the test's ``inputs=`` arrays."""

    def adopt_signature(self, example: Any) -> None: ...


@runtime_checkable
class SignatureFromExample(Protocol):
    """Optional: a model whose inputs have no declared signature at all (a
    PyTorch ``nn.Module``) learns it from the test's ``inputs=`` example;
    the search then generates batches like it (values, batch size and the
    dimensions that may vary) instead of checking the example alone."""

    def learn_signature(self, example: Any) -> None: ...


@runtime_checkable
class OutputChoosing(Protocol):
    """Optional: which outputs are distributions when ``outputs=`` does not
    say.  A PyTorch classifier returns logits by convention (its loss
    expects them), so only outputs a softmax call made are checked; raises
    ``SoftmaxSetupError`` when the model has nothing to check at all."""

    def default_outputs(self) -> Sequence[OutputSpec]: ...


@runtime_checkable
class StatePreserving(Protocol):
    """Optional: global framework state and model variables a check could
    change are put back when the returned context exits."""

    def preserved_state(self) -> AbstractContextManager[object]: ...


@runtime_checkable
class StateCarrying(Protocol):
    """Optional: names the layers that carry state from one call to the
    next (a stateful RNN), which makes two calls on one input differ."""

    def stateful_layers(self) -> list[tuple[str, str]]:
        """``(name, class)`` of each such layer; empty when there is none."""
        ...


@runtime_checkable
class RunDescribing(Protocol):
    """Optional: which backend ran the model (``"jax"``), and notes on how
    (a compiled form that could not run it and what ran instead)."""

    @property
    def backend(self) -> str: ...

    def run_notes(self) -> list[str]: ...


@runtime_checkable
class ErrorExplaining(Protocol):
    """Optional: turns the framework's exceptions into the model's own words."""

    def explain_error(self, exc: BaseException) -> ModelFailure: ...


def explain_error(adapter: ModelAdapter, exc: BaseException) -> ModelFailure:
    """The adapter's reading of ``exc``, or its type and first line."""
    if isinstance(adapter, ErrorExplaining):
        return adapter.explain_error(exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return ModelFailure(message, out_of_memory=isinstance(exc, MemoryError))
