"""Turn exceptions raised by TensorFlow / Keras into the one line a user needs.

TensorFlow's graph errors open with "Graph execution error:" and a
traceback through Keras internals; the model's own message ("indices[0,0] =
50 is not in [0, 10)") comes last.  Reports quote the model's message first
and keep the full exception chained for ``--tb=long``.  Standard library
only: exceptions are recognised by class name, so this module never imports
TensorFlow.
"""

from __future__ import annotations

import re

from ..base import ModelFailure

OUT_OF_MEMORY_CLASSES = frozenset({"ResourceExhaustedError", "MemoryError", "OutOfMemoryError"})
_NOISE = (
    re.compile(r"^Graph execution error:?$"),
    re.compile(r"^in user code:$"),
    re.compile(r"^Detected at node .* defined at \(most recent call last\):$"),
    re.compile(r"^\[\[\{\{node .*\}\}\]\].*$"),
    re.compile(r"^Exception encountered when calling .*$"),
    re.compile(r"^Arguments received by .*$"),
    re.compile(r"^• .*$"),
)
_FILE_LINE = re.compile(r"^(\s*)File \".*\", line \d+, in .*$")
_TYPE_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exhausted|Warning): ")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]\s*$")
_NODE = re.compile(r"Detected at node (\S+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_line(exc: BaseException) -> str:
    """``Type: first meaningful line`` of an exception's message."""
    lines = _meaningful_lines(str(exc))
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def model_error_message(exc: BaseException) -> str:
    """The model's own error, without TensorFlow's traceback noise, and the
    graph node it came from when TensorFlow names one."""
    message = first_line(exc)
    node = _NODE.search(str(exc))
    return f"{message} (at node {node.group(1)})" if node else message


def _meaningful_lines(text: str) -> list[str]:
    kept = []
    code_indent: int | None = None  # autograph prints a code line under each File line
    for raw in _ANSI.sub("", text).splitlines():
        indent = len(raw) - len(raw.lstrip())
        file_line = _FILE_LINE.match(raw)
        if file_line:
            code_indent = len(file_line.group(1))
            continue
        if code_indent is not None and raw.strip() and indent > code_indent:
            continue
        code_indent = None
        line = _TYPE_PREFIX.sub("", _OP_SUFFIX.sub("", raw).strip())
        if line and not any(p.match(line) for p in _NOISE):
            kept.append(line)
    return kept


def is_out_of_memory(exc: BaseException) -> bool:
    # TensorFlow's allocator says "OOM when allocating"; the error class is
    # lost when the allocation happens inside a py_function or a remote op.
    return any(cls.__name__ in OUT_OF_MEMORY_CLASSES for cls in type(exc).__mro__) or (
        "OOM when allocating" in str(exc)
    )


def explain(exc: BaseException) -> ModelFailure:
    return ModelFailure(model_error_message(exc), out_of_memory=is_out_of_memory(exc))
