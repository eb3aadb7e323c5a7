from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# In-process pytester runs restore sys.modules after each run; numpy and
# TensorFlow cannot be imported twice in one process, so import them up front.
import numpy  # noqa: E402,F401
import tensorflow  # noqa: E402,F401
import keras  # noqa: E402,F401

TESTS_DIR = Path(__file__).parent


@pytest.fixture
def zoo(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose test files can ``import model_zoo`` (cached models)."""
    pytester.syspathinsert(TESTS_DIR)
    # Imported here, in the outer process, so in-process pytester runs (which
    # restore sys.modules afterwards) keep sharing the cached models.
    importlib.import_module("model_zoo")
    return pytester
