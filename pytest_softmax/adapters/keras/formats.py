"""Where Keras models live on disk, and which objects are Keras models
(standard library only: Keras is never imported here)."""

from __future__ import annotations

import sys

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
# A TensorFlow SavedModel is a directory holding this file.
SAVED_MODEL_MARKER = "saved_model.pb"
DIRECTORY_MARKERS = (SAVED_MODEL_MARKER,)
MODEL_KIND = "a keras.Model"
# A class defined in one of these modules (anywhere in an object's MRO) makes it a Keras object.
OBJECT_MODULES = ("keras.", "tf_keras.", "tensorflow.")


def is_model_object(value: object) -> bool:
    """Whether ``value`` is a Keras model.  If Keras was never imported, no
    object can be one, so asking imports nothing."""
    keras = sys.modules.get("keras")
    model_class = getattr(keras, "Model", None)
    return isinstance(model_class, type) and isinstance(value, model_class)
