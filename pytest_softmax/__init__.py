"""pytest-softmax: prove that a model's softmax outputs are probability
distributions, and name the layer at fault when they are not.

The public names are imported lazily: pytest imports this package at
start-up (to reach ``pytest_softmax.plugin``), and that must not pull in
numpy, Hypothesis or a framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.api import check_softmax
    from .core.inputs.recipes import ArrayRecipe, EdgeRows
    from .core.report import SoftmaxReport
    from .errors import SoftmaxInvariantError, SoftmaxSetupError
    from .tolerance import default_tolerance

__all__ = [
    "ArrayRecipe",
    "EdgeRows",
    "SoftmaxInvariantError",
    "SoftmaxReport",
    "SoftmaxSetupError",
    "check_softmax",
    "default_tolerance",
]

_HOMES = {
    "check_softmax": "core.api",
    "ArrayRecipe": "core.inputs.recipes",
    "EdgeRows": "core.inputs.recipes",
    "SoftmaxReport": "core.report",
    "SoftmaxInvariantError": "errors",
    "SoftmaxSetupError": "errors",
    "default_tolerance": "tolerance",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_HOMES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*__all__, *globals()])
