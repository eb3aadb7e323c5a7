"""Which Keras backend a run will use, told without importing Keras.

Standard library only: the pytest header shows it at start-up.  Keras'
own rule: ``KERAS_BACKEND``, else the ``backend`` key of ``keras.json`` in
``KERAS_HOME`` (default ``~/.keras``), else TensorFlow.  If Keras is
already imported, it is asked.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULT_BACKEND = "tensorflow"


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
