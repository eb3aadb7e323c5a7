"""Tensor and variable values as numpy arrays, on every Keras backend.

A torch tensor goes by torch's own route: Keras' ``convert_to_numpy`` calls
``np.array`` on it, which numpy 2 answers with a DeprecationWarning (an
error for a user running pytest with ``-W error``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(tensor: Any) -> np.ndarray:
    """``tensor`` (any backend's) as a numpy array."""
    if hasattr(tensor, "detach"):
        return torch_to_numpy(tensor)
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


def torch_to_numpy(tensor: Any) -> np.ndarray:
    if not hasattr(tensor, "detach"):
        return np.asarray(tensor)
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: via float32, exactly
        import ml_dtypes

        return np.asarray(tensor.float().numpy()).astype(ml_dtypes.bfloat16)
    return np.asarray(tensor.numpy())
