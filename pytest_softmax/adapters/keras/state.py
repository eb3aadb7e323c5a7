"""Leave the user's process as the check found it.

A check runs the user's model many times in the middle of their test
session.  Whatever it touches on the way, or whatever the model itself
changes while being called (a random layer's seed state, a stateful RNN's
states, a Keras setting flipped by a custom layer), is put back when the
check ends: passing, failing, or interrupted.  Trainable weights are
copied only when the traced forward pass writes them (``writes``): a
forward pass with ``training=False`` normally does not, and copying every
weight would double the memory of a large model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class _Snapshot:
    floatx: str
    epsilon: float
    image_data_format: str
    dtype_policy: Any
    functions_run_eagerly: bool
    python_random: Any
    numpy_random: Any
    # keras.random's global generator (None: not created yet), whose state
    # is among ``variables`` when it exists.
    keras_seed_generator: Any
    variables: list[tuple[Any, np.ndarray]]


def _variables_of(model: Any) -> list[Any]:
    if model is None:
        return []
    try:
        found = list(getattr(model, "non_trainable_variables", []))
    except Exception:  # an unbuilt or exotic model: nothing to protect
        return []
    keras_global = _keras_global_seed_generator()
    if keras_global is not None:
        found.append(keras_global.state)
    from .stateful import carried_state_variables

    found += [v for v in carried_state_variables(model) if not any(v is w for w in found)]
    return found


GLOBAL_SEED_GENERATOR = "global_seed_generator"  # Keras' name in its global state


def _keras_global_seed_generator() -> Any:
    """The generator behind ``keras.random.*(seed=None)``, if one exists
    (looking it up must not create it)."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None
    return global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)


def _put_back_global_seed_generator(before: Any) -> None:
    """Keras creates its global generator on the first unseeded draw (from
    Python's ``random``, restored too), right after
    ``keras.utils.set_random_seed`` removes it.  One the model created
    during the check would be left behind already advanced, and the user's
    next ``keras.random`` draw would differ from a run without the check:
    drop it, so the next draw creates it afresh, as it would have."""
    if _keras_global_seed_generator() is before:
        return
    from keras.src.backend.common import global_state

    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, before)


def _on_tensorflow() -> bool:
    """Whether Keras runs on TensorFlow: only then is there a TensorFlow
    setting to protect, and only then may this module import it."""
    import keras

    return bool(keras.backend.backend() == "tensorflow")


def _functions_run_eagerly() -> bool:
    if not _on_tensorflow():
        return False
    import tensorflow as tf

    return bool(tf.config.functions_run_eagerly())


def _value(variable: Any) -> np.ndarray:
    from .numpy_values import to_numpy

    return np.array(to_numpy(variable.value), copy=True)


def _take(model: Any) -> _Snapshot:
    import keras

    return _Snapshot(
        floatx=keras.config.floatx(),
        epsilon=keras.config.epsilon(),
        image_data_format=keras.config.image_data_format(),
        dtype_policy=keras.config.dtype_policy(),
        functions_run_eagerly=_functions_run_eagerly(),
        python_random=random.getstate(),
        numpy_random=np.random.get_state(),
        keras_seed_generator=_keras_global_seed_generator(),
        variables=[(v, _value(v)) for v in _variables_of(model)],
    )


def _restore(snapshot: _Snapshot) -> None:
    import keras

    if keras.config.floatx() != snapshot.floatx:
        keras.config.set_floatx(snapshot.floatx)
    if keras.config.epsilon() != snapshot.epsilon:
        keras.config.set_epsilon(snapshot.epsilon)
    if keras.config.image_data_format() != snapshot.image_data_format:
        keras.config.set_image_data_format(snapshot.image_data_format)
    if keras.config.dtype_policy() != snapshot.dtype_policy:
        keras.config.set_dtype_policy(snapshot.dtype_policy)
    if _functions_run_eagerly() != snapshot.functions_run_eagerly:
        import tensorflow as tf

        tf.config.run_functions_eagerly(snapshot.functions_run_eagerly)
    random.setstate(snapshot.python_random)
    np.random.set_state(snapshot.numpy_random)
    _put_back_global_seed_generator(snapshot.keras_seed_generator)
    for variable, value in snapshot.variables:
        if not np.array_equal(_value(variable), value, equal_nan=True):
            variable.assign(value)


@contextmanager
def preserved_state(model: Any, written: Callable[[], Sequence[Any]] = tuple) -> Iterator[None]:
    """Restore Keras/TensorFlow settings, the global random generators and
    ``model``'s non-trainable variables on exit, however the block ends,
    and the variables ``written()`` names (those inference writes)."""
    snapshot = _take(model)
    try:
        with preserved_jit(), preserved_values(written):
            yield
    finally:
        _restore(snapshot)


@contextmanager
def preserved_jit() -> Iterator[None]:
    """TensorFlow's XLA auto-clustering flag, which a layer's ``call()`` can
    set for the whole process (``tf.config.optimizer.set_jit``)."""
    if not _on_tensorflow():
        yield
        return
    import tensorflow as tf

    before = tf.config.optimizer.get_jit()
    try:
        yield
    finally:
        if tf.config.optimizer.get_jit() != before:
            tf.config.optimizer.set_jit(before or False)


@contextmanager
def preserved_values(written: Callable[[], Sequence[Any]]) -> Iterator[None]:
    """Copy the variables ``written()`` names (asked for inside the block
    that restores global settings: finding them may trace the model) and
    put back any that changed."""
    saved = [(v, _value(v)) for v in written()]
    try:
        yield
    finally:
        for variable, value in saved:
            if not np.array_equal(_value(variable), value, equal_nan=True):
                variable.assign(value)
