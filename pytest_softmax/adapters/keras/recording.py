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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...core.probing import LayerSite
from . import backends
from .forward import ModelForward
from .probe import _PROBES, KerasProbe, Recorder, _Traced, recording_calls


class BackendRecorder(Recorder):
    """A recorder for JAX arrays (and tracers) and PyTorch tensors."""

    def __init__(self, keep: Callable[[LayerSite], bool], *, concrete: bool) -> None:
        super().__init__(keep)
        self.concrete = concrete
        self.known: dict[int, Any] = {}  # keeps every keyed tensor alive, so ids stay unique

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
        import keras

        try:
            value = keras.ops.convert_to_numpy(tensor)
        except Exception:  # noqa: BLE001 - not a concrete value
            return None
        for key in reversed(list(self.producer_of)):
            other = self.known.get(key)
            if other is None or tuple(other.shape) != value.shape:
                continue
            candidate = keras.ops.convert_to_numpy(other)
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
            tensors = [keras.ops.convert_to_tensor(x, dtype=d) for x, d in zip(flat, dtypes)]
            for name, tensor in zip(names, tensors):
                recorder.producer_of[recorder.key(tensor)] = f"input {name!r}"
            with recording_calls(self.model, recorder):
                outputs = run(*tensors)
            traced.output_producers = [recorder.producer(t) for t in outputs]
            traced.n_outputs = len(outputs)
            traced.sites = [site for site, _ in recorder.recorded]
            return [*outputs, *(t for _, t in recorder.recorded)]

        backend = backends.current()
        first = (backend.compiled(self.model, recorded, self.adapter.signature()) if compiled
                 else backend.eager(self.model, recorded))
        traced.function = ModelForward(backend, self.model, recorded, first)
        return traced

    def _call(self, traced: _Traced, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        result: list[np.ndarray] = traced.function(backends.feed_arrays(inputs, [d for _, d in
                                                                                self.adapter.signature()]))
        return result
