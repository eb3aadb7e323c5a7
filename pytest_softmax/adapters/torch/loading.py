"""From what the user passed (a module, an exported program, a ``.pt2``
path) to an adapter.  Factories are called by the registry, once."""

from __future__ import annotations

import os
from pathlib import Path

from ..base import ModelAdapter, SoftmaxSetupError

ACCEPTED = ("a torch.nn.Module, a zero-argument callable returning one, a torch.export.ExportedProgram, or a "
            "path to a .pt2 file written by torch.export.save")


def adapt(source: object, *, safe_mode: bool = True) -> ModelAdapter:
    if isinstance(source, (str, os.PathLike)):
        from .exported import load_pt2

        return load_pt2(Path(os.fspath(source)), safe_mode=safe_mode)
    import torch

    if isinstance(source, torch.export.ExportedProgram):
        from .exported import ExportedProgramAdapter

        return ExportedProgramAdapter(source)
    if isinstance(source, torch.nn.Module):
        from .adapter import TorchModuleAdapter

        return TorchModuleAdapter(source)
    raise SoftmaxSetupError(f"cannot check {type(source).__name__} {source!r:.80}: expected {ACCEPTED}")
