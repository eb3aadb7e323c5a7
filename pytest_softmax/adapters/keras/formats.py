"""Where Keras models live on disk (standard library only)."""

from __future__ import annotations

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
# A TensorFlow SavedModel is a directory holding this file.
SAVED_MODEL_MARKER = "saved_model.pb"
DIRECTORY_MARKERS = (SAVED_MODEL_MARKER,)
