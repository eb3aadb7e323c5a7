"""Tensor and variable values as numpy arrays, on every Keras backend.

A torch tensor goes by torch's own route: Keras' ``convert_to_numpy`` calls
``np.array`` on it, which numpy 2 answers with a DeprecationWarning (an
error for a user running pytest with ``-W error``).  On TensorFlow it does
the same for a variable, whose ``__array__`` takes no ``copy`` keyword: that
warning is the plugin's doing, not the user's, so it is silenced at this
call and nowhere else (the user's model's own warnings stay visible).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def to_numpy(tensor: Any) -> np.ndarray:
    """``tensor`` (any backend's) as a numpy array."""
    if hasattr(tensor, "detach"):
        return torch_to_numpy(tensor)
    if type(tensor).__module__.startswith("tensorflow"):
        # A TensorFlow tensor or variable's own route: a tenth of the cost of
        # convert_to_numpy under a warnings filter (it matters when every
        # variable of a model is read).
        return np.asarray(tensor.numpy())
    import keras

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _NO_COPY_KEYWORD, DeprecationWarning)
        return np.asarray(keras.ops.convert_to_numpy(tensor))


# numpy 2's warning when ``np.array(x)`` meets an ``__array__`` without ``copy``.
_NO_COPY_KEYWORD = r"__array__ implementation doesn't accept a copy keyword"


def torch_to_numpy(tensor: Any) -> np.ndarray:
    if not hasattr(tensor, "detach"):
        return np.asarray(tensor)
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: via float32, exactly
        import ml_dtypes

        return np.asarray(tensor.float().numpy()).astype(ml_dtypes.bfloat16)
    return np.asarray(tensor.numpy())
