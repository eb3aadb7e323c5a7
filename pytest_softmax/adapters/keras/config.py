"""Which Keras backend a run will use, told without importing Keras, and
how quiet TensorFlow's native logs are.

Standard library only: the pytest header shows the backend at start-up.
Keras' own rule: ``KERAS_BACKEND``, else the ``backend`` key of
``keras.json`` in ``KERAS_HOME`` (default ``~/.keras``), else TensorFlow.
If Keras is already imported, it is asked.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULT_BACKEND = "tensorflow"

# TensorFlow's C++ log threshold, read when TensorFlow first logs.  Measured
# on TensorFlow 2.21 (CPU wheel, no GPU driver): the line a failing check's
# captured stderr showed, ``E0000 ... cuda_platform.cc:52] failed call to
# cuInit``, is ERROR severity, so only 3 (FATAL only) keeps it out; 2 does
# not.  The import-time notices (oneDNN, cudart_stub, absl's "before
# InitializeLog") are written before TensorFlow reads this variable at any
# level; pytest's capture swallows them during collection.  Log level only:
# TF_ENABLE_ONEDNN_OPTS is left alone, since it changes the numerics.
NATIVE_LOG_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_NATIVE_LOG_LEVEL = "3"


def quiet_native_logs() -> None:
    """Lower TensorFlow's C++ log level before TensorFlow is first imported,
    unless the user has set it: their own value always wins."""
    if "tensorflow" in sys.modules:
        return  # too late to matter, and the user's process is already as they made it
    os.environ.setdefault(NATIVE_LOG_VARIABLE, QUIET_NATIVE_LOG_LEVEL)


def wants_import_notices() -> bool:
    """Whether the user asked for TensorFlow's INFO or WARNING logs
    (``TF_CPP_MIN_LOG_LEVEL`` 0 or 1): then the start-up notices that no
    log level reaches are not held back either."""
    return os.environ.get(NATIVE_LOG_VARIABLE, "").strip() in ("0", "1")


def configured_backend() -> str:
    keras = sys.modules.get("keras")
    backend = getattr(getattr(keras, "backend", None), "backend", None)
    if callable(backend):
        return str(backend())
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        configured = json.loads((home / "keras.json").read_text(encoding="utf-8")).get("backend")
    except (OSError, ValueError, AttributeError):
        configured = None
    return str(configured) if configured else DEFAULT_BACKEND
