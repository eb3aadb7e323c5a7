"""The Keras 3 backend that runs the model: one small module per backend.

Keras runs on TensorFlow, JAX or PyTorch (``KERAS_BACKEND``); each backend
has its own way to compile a forward pass.  The adapter, the probe and the
site check describe *what* to run as a plain Python function of the input
tensors (it calls the model, possibly with recording wrappers installed);
a :class:`Backend` turns that function into a numpy-in, numpy-out callable
in one of three forms:

* ``compiled``: the backend's own compiled form, traced once per shape
  signature (TensorFlow: a ``tf.function`` whose signature leaves batch and
  variable dimensions open; JAX: ``jax.jit`` over a stateless call, traced
  per concrete shape; PyTorch: eager without autograd, which is its own
  floor for Keras models);
* ``per_shape``: traced per concrete input shape, for models whose compiled
  form fails on open dimensions (``None`` where ``compiled`` is already
  per shape);
* ``eager``: the model called directly, the form ``model(x)`` itself uses.

Only the chosen backend's module is imported, and only when a check runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, Protocol

import numpy as np

# A function of the input tensors returning a list of output tensors.
RunFunction = Callable[..., list[Any]]
# numpy in, numpy out: what the adapter calls on every example.
Forward = Callable[[Sequence[np.ndarray]], list[np.ndarray]]

COMPILED, PER_SHAPE, EAGER = "compiled", "per concrete shape", "eager"


class Backend(Protocol):
    """How one Keras backend runs a function of a model's inputs."""

    name: str
    # How the compiled form is made, for the report ("jax.jit", ...).
    compiled_description: str

    def compiled(self, model: Any, run: RunFunction, signature: Sequence[tuple[tuple[int | None, ...], str]]
                 ) -> Forward: ...

    def per_shape(self, model: Any, run: RunFunction) -> Forward | None: ...

    def eager(self, model: Any, run: RunFunction) -> Forward: ...


def backend_name() -> str:
    import keras

    return str(keras.backend.backend())


def current() -> Backend:
    """The backend Keras runs on in this process."""
    name = backend_name()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(name)
    if module is None:
        from ...base import SoftmaxSetupError

        raise SoftmaxSetupError(
            f"Keras runs on the {name!r} backend, which pytest-softmax does not support; "
            "set KERAS_BACKEND to tensorflow, jax or torch"
        )
    backend: Backend = import_module(f"{__name__}.{module}").BACKEND
    return backend


def feed_arrays(inputs: Sequence[np.ndarray], dtypes: Sequence[str]) -> list[np.ndarray]:
    """Inputs in the dtypes of the model's signature, so that one shape
    signature is traced once whatever integer width the caller used."""
    fed = []
    for x, dtype in zip(inputs, dtypes):
        array = np.asarray(x)
        try:
            fed.append(array if array.dtype.name == dtype else array.astype(dtype))
        except TypeError:  # a dtype numpy does not know (bfloat16): Keras converts it
            fed.append(array)
    return fed

