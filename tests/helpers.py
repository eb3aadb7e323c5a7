"""Helpers several test modules share (plain functions, not fixtures)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).parent
# What a newcomer's `pip install -e ".[test]"` leaves out; tests that need it
# skip, saying how to get it.
FULL_INSTALL = 'pip install torch==2.13.0 && pip install -e ".[test,jax,torch]"'


def needs(module: str) -> list[pytest.MarkDecorator]:
    """Skip unless ``module`` (an optional backend or package) is installed;
    the reason names the install line that brings it.  The ``needs_extra``
    mark lets CI's full leg select exactly the tests the newcomer's run skipped."""
    missing = importlib.util.find_spec(module) is None
    return [pytest.mark.needs_extra,
            pytest.mark.skipif(missing, reason=f"{module} is not installed (an optional extra): {FULL_INSTALL}")]


def backend_param(backend: str) -> object:
    """A Keras backend as a test parameter, skipped where it is not installed
    (TensorFlow, a hard dependency, always is)."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return pytest.param(backend, marks=needs(module), id=backend)


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
