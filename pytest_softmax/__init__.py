"""pytest-softmax: prove that a model's softmax outputs are probability
distributions, and name the layer at fault when they are not.

The public names are imported lazily: pytest imports this package at
start-up (to reach ``pytest_softmax.plugin``), and that must not pull in
numpy, Hypothesis or TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import check_softmax
    from .report import SoftmaxInvariantError, SoftmaxReport, SoftmaxSetupError
    from .tolerance import default_tolerance

__all__ = [
    "SoftmaxInvariantError",
    "SoftmaxReport",
    "SoftmaxSetupError",
    "check_softmax",
    "default_tolerance",
]

_HOMES = {
    "check_softmax": "engine",
    "SoftmaxInvariantError": "report",
    "SoftmaxReport": "report",
    "SoftmaxSetupError": "report",
    "default_tolerance": "tolerance",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    if name in {"inputs", "engine", "invariants", "report", "settings", "tolerance", "adapters"}:
        from importlib import import_module

        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *globals()])
