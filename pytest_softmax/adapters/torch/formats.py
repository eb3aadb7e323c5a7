"""Which files and objects are PyTorch's, for the registry: standard library only."""

from __future__ import annotations

MODEL_SUFFIXES = (".pt2",)  # torch.export.save
# A class defined in one of these modules (anywhere in an object's MRO) makes it a PyTorch object.
OBJECT_MODULES = ("torch.",)
