"""numpy arrays in, numpy arrays out: the engine speaks numpy only."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def torch_dtype(name: str) -> torch.dtype:
    found = getattr(torch, name, None)
    if not isinstance(found, torch.dtype):
        raise ValueError(f"no torch dtype {name!r}")
    return found


def to_tensor(values: Any, dtype: str, device: torch.device) -> torch.Tensor:
    """An engine array (bfloat16 from ml_dtypes included) as a tensor."""
    array = np.asarray(values)
    if array.dtype.name == "bfloat16" or dtype == "bfloat16":
        tensor = torch.from_numpy(np.ascontiguousarray(array.astype(np.float32)))
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device=device, dtype=torch_dtype(dtype))


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A copy on the CPU, keeping the dtype (bfloat16 as ml_dtypes')."""
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.contiguous().view(torch.int16).numpy().copy().view(ml_dtypes.bfloat16)
    if tensor.is_complex() or tensor.dtype in (torch.float16, torch.float32, torch.float64, torch.bool) or \
            not tensor.is_floating_point():
        return tensor.numpy().copy()
    return tensor.float().numpy()


def example_tensor(value: Any, name: str) -> torch.Tensor:
    """One ``inputs=`` value as a tensor, or a setup error naming it."""
    from ..base import SoftmaxSetupError

    if isinstance(value, torch.Tensor):
        return value
    try:
        array = np.asarray(value)
        if array.dtype.name == "bfloat16":
            return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(array))
    except (TypeError, ValueError) as exc:
        raise SoftmaxSetupError(
            f"inputs= {name!r} is {type(value).__name__}, not a tensor or array ({exc}); pass tensors "
            "(one batch, batch first) for each argument of forward"
        ) from None
