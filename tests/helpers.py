"""Helpers several test modules share (plain functions, not fixtures)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).parent


def importing(pytester: pytest.Pytester, *modules: str) -> pytest.Pytester:
    """``pytester`` whose test files can import the model modules in tests/.
    They are imported here, in the outer process, so in-process pytester runs
    (which restore ``sys.modules`` afterwards) keep sharing the cached models."""
    pytester.syspathinsert(TESTS_DIR)
    for module in modules:
        importlib.import_module(module)
    return pytester


def first_failure_line(result: pytest.RunResult) -> str:
    """The first line of the first failure/error section: it must be ours."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith("___"))
    return next(line for line in lines[start + 1:] if line.strip())


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
