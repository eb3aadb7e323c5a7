"""Per-layer probe for Keras models: every layer's output on one batch.

One mechanism serves Sequential, Functional, nested and subclassed models:
while a ``tf.function`` is traced, each layer's ``call`` (at every depth of
nested models) is temporarily replaced by a wrapper that records the tensor
it returns and the tensors it was given.  The traced graph then returns the
model's outputs plus the recorded tensors; after tracing the wrappers are
removed in ``finally`` (also on errors and KeyboardInterrupt), so the user's
model is never changed for good, and later calls of the probe run the
compiled graph without any wrapper.

Built-in Keras layers are not opened up (an LSTM's cell, an attention
layer's inner softmax are Keras' business); user models nested as layers
are.  A probe is traced once per model and kind and cached for the session,
like the forward pass.  Nothing here runs during a healthy search unless the
model has softmax sites inside it (see :mod:`pytest_softmax.sites`).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base.arrays import as_float64, can_be_nonfinite
from ..base.records import (
    CONTAINER,
    OTHER,
    PASSTHROUGH,
    RECURRENT,
    SOFTMAX,
    LayerRecord,
    LayerSite,
    ProbeResult,
)

# Shape-only layers and layers inactive in inference: the diagnosis looks
# through them to the layer that really made the output.
PASSTHROUGH_CLASSES = frozenset({
    "Flatten", "Reshape", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "Identity", "InputLayer", "ActivityRegularization",
})
# Ops Keras inserts between layers (autocasting, identities) that do not
# change which layer a tensor comes from.
_TRANSPARENT_OPS = frozenset({"Cast", "Identity", "IdentityN"})
# Graph ops looked at, per layer call, to find the softmax inside it.
_MAX_OPS_WALKED = 400


@dataclass
class _Traced:
    function: Any
    sites: list[LayerSite]
    output_producers: list[str | None]
    n_outputs: int
    # (index into sites, "softmax"/"exp"): the softmax inputs returned after the sites' outputs.
    softmax_inputs: tuple[tuple[int, str], ...] = ()


_PROBES: weakref.WeakKeyDictionary[Any, dict[str, _Traced]] = weakref.WeakKeyDictionary()


def _activation_name(fn: Any) -> str | None:
    if fn is None:
        return None
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def layer_paths(model: Any) -> list[tuple[str, Any]]:
    """Every layer of ``model`` with its path, descending into nested models
    (a model used as a layer) but not into built-in layers."""
    import keras

    found: list[tuple[str, Any]] = []

    def walk(container: Any, prefix: str) -> None:
        for layer in getattr(container, "layers", []):
            path = f"{prefix}/{layer.name}"
            found.append((path, layer))
            if isinstance(layer, keras.Model):
                walk(layer, path)

    walk(model, str(model.name))
    return found


def describe(layer: Any, path: str, producers: tuple[str, ...] = (), masked: bool = False) -> LayerSite:
    """The static facts about one layer that the diagnosis rules need."""
    import keras

    common: dict[str, Any] = {
        "path": path, "name": str(layer.name), "layer_class": type(layer).__name__, "masked": masked,
        "producers": producers, "dtype": str(getattr(layer, "compute_dtype", "") or ""),
        "shape": _output_shape(layer),
    }
    if isinstance(layer, keras.Model):
        return LayerSite(kind=CONTAINER, **common)
    recurrent = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
    if isinstance(recurrent, keras.layers.RNN):
        cell = recurrent.cell
        return LayerSite(kind=RECURRENT, activation=_activation_name(getattr(cell, "activation", None)),
                         gated=not isinstance(cell, keras.layers.SimpleRNNCell), **common)
    if isinstance(layer, keras.layers.Softmax):
        axes = tuple(layer.axis) if isinstance(layer.axis, (list, tuple)) else (int(layer.axis),)
        return LayerSite(kind=SOFTMAX, activation="softmax", softmax_axes=axes, **common)
    if isinstance(layer, keras.layers.Lambda):
        function = _activation_name(layer.function) or "function"
        function = "" if function == "<lambda>" else function
        if layer.function is keras.activations.softmax:
            return LayerSite(kind=SOFTMAX, activation="softmax", softmax_axes=(-1,), function=function,
                             **common)
        return LayerSite(kind=OTHER, function=function, **common)
    activation = _activation_name(getattr(layer, "activation", None))
    if activation == "softmax":
        return LayerSite(kind=SOFTMAX, activation=activation, softmax_axes=(-1,), **common)
    if type(layer).__name__ in PASSTHROUGH_CLASSES or (
        isinstance(layer, keras.layers.Activation) and activation == "linear"
    ):
        return LayerSite(kind=PASSTHROUGH, activation=activation, **common)
    return LayerSite(kind=OTHER, activation=activation, **common)


def _output_shape(layer: Any) -> tuple[int | None, ...] | None:
    """The layer's static output shape over all its calls (a dimension that
    differs between calls is variable); ``None`` when unknown."""
    shapes = []
    for node in getattr(layer, "_inbound_nodes", []):
        outputs = getattr(node, "outputs", None) or []
        try:
            shapes.append(tuple(None if d is None else int(d) for d in outputs[0].shape))
        except (AttributeError, IndexError, TypeError, ValueError):
            return None
    if not shapes or len({len(shape) for shape in shapes}) != 1:
        return None
    return tuple(dims[0] if len(set(dims)) == 1 else None for dims in zip(*shapes))


def static_softmax_sites(model: Any) -> list[LayerSite]:
    """Softmax sites found without running the model."""
    return [site for site in (describe(layer, path) for path, layer in layer_paths(model)) if site.is_softmax_site]


class KerasProbe:
    """Traced per-layer functions for one adapted Keras model."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.model = adapter.model

    def run(self, inputs: Sequence[np.ndarray]) -> ProbeResult:
        """Every layer's output on one batch (to explain a failure)."""
        traced = self._traced("all", _keep_all)
        outputs = self._call(traced, inputs)
        n_sites = traced.n_outputs + len(traced.sites)
        records = [LayerRecord(site, out) for site, out in zip(traced.sites, outputs[traced.n_outputs:n_sites])]
        for (index, op), fed in zip(traced.softmax_inputs, outputs[n_sites:]):
            records[index].softmax_input, records[index].softmax_op = fed, op
        finite = all(np.isfinite(as_float64(x)).all() for x in inputs if can_be_nonfinite(np.asarray(x).dtype))
        names = [f"input {name!r}" for name, _ in self.adapter.named_inputs()]
        largest = {name: float(np.abs(as_float64(x)).max(initial=0.0)) for name, x in zip(names, inputs)}
        limitations = []
        if not traced.sites:
            limitations.append(
                f"model {self.adapter.name!r} exposes no layers to probe; the layer at fault cannot be named"
            )
        return ProbeResult(records, traced.output_producers, inputs_finite=finite, input_max_abs=largest,
                           limitations=limitations,
                           input_dtypes={name: np.asarray(x).dtype.name for name, x in zip(names, inputs)})

    def forward_with_sites(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[LayerRecord]]:
        """The model's outputs and every softmax site's output, in one pass."""
        traced = self._traced("sites", lambda site: site.is_softmax_site)
        outputs = self._call(traced, inputs)
        # A site that makes a model output is judged by the output check.
        produced = set(traced.output_producers)
        return outputs[:traced.n_outputs], [
            LayerRecord(site, out) for site, out in zip(traced.sites, outputs[traced.n_outputs:])
            if site.path not in produced
        ]

    def _call(self, traced: _Traced, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import tensorflow as tf

        # The dtypes the plain forward feeds, derived once per adapter: the
        # site-checking pass runs on every example.
        tensors = [tf.convert_to_tensor(x, dtype=dtype) for x, dtype in zip(inputs, self.adapter.feed_dtypes())]
        return [np.asarray(y) for y in traced.function(*tensors)]

    def _traced(self, kind: str, keep: Callable[[LayerSite], bool]) -> _Traced:
        cache = _PROBES.setdefault(self.model, {})
        if kind not in cache:
            cache[kind] = self._trace(keep)
        return cache[kind]

    def _trace(self, keep: Callable[[LayerSite], bool]) -> _Traced:
        import tensorflow as tf

        plain = self.adapter.compiled_forward()
        recorder = Recorder(keep)
        # Only the diagnosis probe (every layer) pays for the softmax inputs.
        recorder.find_softmax_inputs = keep is _keep_all
        names = [name for name, _ in self.adapter.named_inputs()]

        def probe(*flat: Any) -> list[Any]:
            for name, tensor in zip(names, flat):
                recorder.producer_of[tensor.ref()] = f"input {name!r}"
            outputs = plain.python_function(*flat)
            recorder.output_producers.extend(recorder.producer(t) for t in outputs)
            return [*outputs, *(t for _, t in recorder.recorded), *(t for _, _, t in recorder.softmax_inputs)]

        with recording_calls(self.model, recorder):
            function = tf.function(probe, input_signature=plain.input_signature).get_concrete_function()
        sites = [site for site, _ in recorder.recorded]
        return _Traced(function, sites, recorder.output_producers, len(recorder.output_producers),
                       tuple((index, op) for index, op, _ in recorder.softmax_inputs))


def _keep_all(site: LayerSite) -> bool:
    return True


class Recorder:
    """What the wrapped layer calls saw while one probe was traced: which
    layer call produced each tensor, and the tensors worth returning."""

    def __init__(self, keep: Callable[[LayerSite], bool]) -> None:
        self.keep = keep
        self.recorded: list[tuple[LayerSite, Any]] = []
        self.producer_of: dict[Any, str] = {}
        self.output_producers: list[str | None] = []
        self.calls: Counter[str] = Counter()
        self.find_softmax_inputs = False
        self.softmax_inputs: list[tuple[int, str, Any]] = []  # (index in recorded, op, tensor)

    def producer(self, tensor: Any) -> str | None:
        """The layer call (or input) a tensor comes from, looking through
        the casts and identities Keras inserts between layers."""
        while True:
            found = self.producer_of.get(tensor.ref())
            if found is not None:
                return found
            op = getattr(tensor, "op", None)
            if op is None or op.type not in _TRANSPARENT_OPS or not list(op.inputs):
                return None
            tensor = op.inputs[0]

    def wrap(self, path: str, layer: Any, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            self.record(path, layer, args, kwargs, out)
            return out
        return call

    def tensors_in(self, structure: Any) -> list[Any]:
        import tensorflow as tf

        return [t for t in tf.nest.flatten(structure) if tf.is_tensor(t)]

    def key(self, tensor: Any) -> Any:
        return tensor.ref()

    def record(self, path: str, layer: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        self.calls[path] += 1
        call_path = path if self.calls[path] == 1 else f"{path}#{self.calls[path]}"
        given = self.tensors_in((args, {k: v for k, v in kwargs.items() if k != "mask"}))
        producers = tuple(dict.fromkeys(p for p in (self.producer(t) for t in given) if p is not None))
        site = describe(layer, call_path, producers, masked=kwargs.get("mask") is not None)
        produced = self.tensors_in(out)
        for t in produced:
            self.producer_of.setdefault(self.key(t), call_path)  # innermost layer wins over its container
        if produced and self.keep(site):
            self.recorded.append((site, produced[0]))
            fed = self._softmax_input(produced[0]) if self.find_softmax_inputs and site.kind != CONTAINER else None
            if fed is not None:
                self.softmax_inputs.append((len(self.recorded) - 1, *fed))

    def _softmax_input(self, tensor: Any) -> tuple[str, Any] | None:
        """The input of the softmax (else of the exp) nearest this call's
        output in the traced graph, without leaving the call: the walk stops
        at tensors other layer calls (or the model inputs) produced."""
        exp_input: Any = None
        queue: list[Any] = [tensor]
        seen: set[str] = set()
        while queue and len(seen) < _MAX_OPS_WALKED:
            op = getattr(queue.pop(0), "op", None)
            if op is None or op.name in seen:
                continue
            seen.add(op.name)
            if op.type == "Softmax":
                return "softmax", op.inputs[0]
            if op.type == "Exp" and exp_input is None:
                exp_input = op.inputs[0]
            queue.extend(t for t in op.inputs if t.ref() not in self.producer_of)
        return ("exp", exp_input) if exp_input is not None else None


@contextmanager
def recording_calls(model: Any, recorder: Recorder) -> Iterator[None]:
    """Wrap every layer's ``call`` while the block traces; the wrappers are
    removed however the block ends, so the user's model is never changed."""
    patched: list[tuple[Any, bool, Any]] = []
    try:
        for path, layer in layer_paths(model):
            own = layer.__dict__.get("call")
            patched.append((layer, own is not None, own))
            object.__setattr__(layer, "call", recorder.wrap(path, layer, layer.call))
        yield
    finally:
        for layer, had_own, own in reversed(patched):
            if had_own:
                object.__setattr__(layer, "call", own)
            else:
                object.__delattr__(layer, "call")
