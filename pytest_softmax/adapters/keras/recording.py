"""The per-layer probe on JAX and PyTorch (and on TensorFlow for a model
its signature's ``tf.function`` cannot run): the same recorder, run inside
the backend's own forward.

:mod:`.probe` wraps every layer's ``call`` while a ``tf.function`` is traced.
On the other backends the same wrappers and the same :class:`~.probe.Recorder`
(so the same :func:`~.probe.describe` facts, and the same diagnoses) run
inside the backend's own forward: installed inside the function that
``jax.jit`` traces (so they run at trace time only) or around each eager
PyTorch call, and removed in ``finally`` either way.

Tensors are known by identity (kept alive while recording).  A layer's
input that is a cast of another layer's output (Keras casts inputs to a
layer's compute dtype before ``call``) is a new tensor; where values are
concrete (eager), it is traced back by value to the tensor it was cast
from, as the TensorFlow probe looks through ``Cast`` ops.  The probe that
explains a failure runs eagerly for that reason (once, on a few rows); the
check of softmax sites during the search runs compiled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..base.records import LayerSite
from . import backends
from .forward import ModelForward
from .numpy_values import to_numpy
from .probe import _PROBES, KerasProbe, Recorder, _Traced, recording_calls


class BackendRecorder(Recorder):
    """A recorder for JAX arrays (and tracers) and PyTorch tensors."""

    def __init__(self, keep: Callable[[LayerSite], bool], *, concrete: bool) -> None:
        super().__init__(keep)
        self.concrete = concrete
        self.known: dict[int, Any] = {}  # keeps every keyed tensor alive, so ids stay unique
        # Per layer call being run, the (op, input) of each softmax/exp it
        # called itself (not inside a nested recorded call): the eager
        # counterpart of the TensorFlow probe's graph walk.
        # A recurrent layer's frame is closed (None): its cell's softmax runs
        # inside the backend's loop (traced under JAX's scan), and the
        # TensorFlow probe does not open built-in RNNs either.
        self.frames: list[list[tuple[str, Any]] | None] = []
        self.finished: list[tuple[str, Any]] = []

    def wrap(self, path: str, layer: Any, original: Callable[..., Any]) -> Callable[..., Any]:
        if not self.find_softmax_inputs:
            return super().wrap(path, layer, original)

        import keras

        closed = isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))

        def call(*args: Any, **kwargs: Any) -> Any:
            self.frames.append(None if closed else [])
            try:
                out = original(*args, **kwargs)
            finally:
                self.finished = self.frames.pop() or []
            self.record(path, layer, args, kwargs, out)
            return out
        return call

    def saw(self, op: str, tensor: Any) -> None:
        frame = self.frames[-1] if self.frames else None
        if frame is not None and not _traced_value(tensor):
            frame.append((op, tensor))

    def _softmax_input(self, tensor: Any) -> tuple[str, Any] | None:
        """The input of the last softmax (else of the last exp) this call
        ran itself: the one nearest its output, as the graph walk finds."""
        for wanted in ("softmax", "exp"):
            for op, fed in reversed(self.finished):
                if op == wanted:
                    return op, fed
        return None

    def tensors_in(self, structure: Any) -> list[Any]:
        import keras

        return [t for t in keras.tree.flatten(structure) if keras.ops.is_tensor(t)]

    def key(self, tensor: Any) -> Any:
        self.known.setdefault(id(tensor), tensor)
        return id(tensor)

    def record(self, path: str, layer: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        import keras

        super().record(path, layer, args, kwargs, out)
        if not isinstance(layer, keras.Model):
            # A layer returning a tensor it was given (Flatten of a flat
            # tensor, Dropout in inference) returns the same object here,
            # where TensorFlow makes a new one: the later layer produced it.
            # A nested model's outputs stay its innermost layer's.
            call_path = path if self.calls[path] == 1 else f"{path}#{self.calls[path]}"
            for tensor in self.tensors_in(out):
                self.producer_of[self.key(tensor)] = call_path

    def producer(self, tensor: Any) -> str | None:
        found = self.producer_of.get(id(tensor))
        if found is not None or not self.concrete:
            return found
        return self._cast_from(tensor)

    def _cast_from(self, tensor: Any) -> str | None:
        """The producer of the latest known tensor that ``tensor`` is a cast
        (or copy) of."""
        try:
            value = to_numpy(tensor)
        except Exception:  # noqa: BLE001 - not a concrete value
            return None
        for key in reversed(list(self.producer_of)):
            other = self.known.get(key)
            if other is None or tuple(other.shape) != value.shape:
                continue
            candidate = to_numpy(other)
            if np.array_equal(candidate.astype(value.dtype), value, equal_nan=True):
                return self.producer_of[key]
        return None


class BackendProbe(KerasProbe):
    """:class:`~.probe.KerasProbe` running on the JAX or PyTorch backend."""

    def _traced(self, kind: str, keep: Callable[[LayerSite], bool]) -> _Traced:
        cache = _PROBES.setdefault(self.model, {})
        key = f"{kind} (recorded in the backend's forward)"  # apart from the tf.function probe's
        if key not in cache:
            # Explaining a failure runs eagerly (exact producers); the site
            # check runs on every example, compiled.
            cache[key] = self._recording(keep, compiled=kind != "all")
        return cache[key]

    def _recording(self, keep: Callable[[LayerSite], bool], *, compiled: bool) -> _Traced:
        import keras

        run = self.adapter.run_function()
        names = [name for name, _ in self.adapter.named_inputs()]
        dtypes = [dtype for _, dtype in self.adapter.signature()]
        traced = _Traced(None, [], [], 0)

        def recorded(*flat: Any) -> list[Any]:
            recorder = BackendRecorder(keep, concrete=not compiled)
            # Only the eager diagnosis probe (every layer) pays for the softmax inputs.
            recorder.find_softmax_inputs = not compiled
            tensors = [keras.ops.convert_to_tensor(x, dtype=d) for x, d in zip(flat, dtypes)]
            for name, tensor in zip(names, tensors):
                recorder.producer_of[recorder.key(tensor)] = f"input {name!r}"
            with recording_calls(self.model, recorder), _softmax_calls_seen(recorder):
                outputs = run(*tensors)
            traced.output_producers = [recorder.producer(t) for t in outputs]
            traced.n_outputs = len(outputs)
            traced.sites = [site for site, _ in recorder.recorded]
            traced.softmax_inputs = tuple((index, op) for index, op, _ in recorder.softmax_inputs)
            return [*outputs, *(t for _, t in recorder.recorded), *(t for _, _, t in recorder.softmax_inputs)]

        backend = backends.current()
        first = (backend.compiled(self.model, recorded, self.adapter.signature()) if compiled
                 else backend.eager(self.model, recorded))
        traced.function = ModelForward(backend, self.model, recorded, first)
        return traced

    def _call(self, traced: _Traced, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        result: list[np.ndarray] = traced.function(backends.feed_arrays(inputs, [d for _, d in
                                                                                self.adapter.signature()]))
        return result


def _traced_value(tensor: Any) -> bool:
    """A JAX tracer (inside a ``scan`` or ``jit`` a layer runs): it has no
    value to return from the eager probe."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(tensor, jax.core.Tracer)


@contextmanager
def _softmax_calls_seen(recorder: BackendRecorder) -> Iterator[None]:
    """While the block runs, let ``recorder`` see the input of every softmax
    and exp Keras computes (``keras.ops``/``keras.activations``/the
    ``Softmax`` layer all reach the backend's ``nn.softmax`` and
    ``numpy.exp``); put back however the block ends."""
    if not recorder.find_softmax_inputs:
        yield
        return
    from keras.src import backend

    patched = [(backend.nn, "softmax"), (backend.numpy, "exp")]
    originals = [getattr(module, name) for module, name in patched]

    def seeing(op: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def seen(x: Any, *args: Any, **kwargs: Any) -> Any:
            recorder.saw(op, x)
            return original(x, *args, **kwargs)
        return seen

    try:
        for (module, name), original in zip(patched, originals):
            setattr(module, name, seeing(name, original))
        yield
    finally:
        for (module, name), original in zip(patched, originals):
            setattr(module, name, original)
