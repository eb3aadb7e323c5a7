"""Which files and objects are PyTorch's, for the registry: standard library only."""

from __future__ import annotations

import sys

MODEL_SUFFIXES = (".pt2",)  # torch.export.save
# A class defined in one of these modules (anywhere in an object's MRO) makes it a PyTorch object.
OBJECT_MODULES = ("torch.",)
MODEL_KIND = "a torch.nn.Module"


def is_model_object(value: object) -> bool:
    """Whether ``value`` is a PyTorch module or exported program.  If torch
    was never imported, no object can be one, so asking imports nothing."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    export = sys.modules.get("torch.export")
    program = getattr(export, "ExportedProgram", None)
    return isinstance(value, torch.nn.Module) or (isinstance(program, type) and isinstance(value, program))
