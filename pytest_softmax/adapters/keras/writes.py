"""Which variables a model's inference writes.

A forward pass with ``training=False`` should write nothing, but a custom
layer may (``self.calls.assign_add(1)`` on a weight, trainable or not).
Copying every trainable weight to put it back would double the memory of a
large model, so the traced forward graph is read instead: its write ops name
the variables to copy, usually none.  A write inside a nested function (a
loop or condition body) cannot be traced back cheaply, so then every
variable is copied: correct first, cheap where it can be.
"""

from __future__ import annotations

from typing import Any

_WRITE_PREFIXES = ("ResourceScatter", "ResourceStridedSliceAssign", "ResourceApply", "ResourceSparseApply")


def is_write(op_type: str) -> bool:
    """Whether a graph op writes a resource variable."""
    return (op_type.startswith("Assign") and op_type.endswith("VariableOp")) or op_type.startswith(_WRITE_PREFIXES)


def _handle(variable: Any) -> Any:
    inner = getattr(variable, "value", variable)  # a Keras variable wraps the tf.Variable
    return getattr(inner, "handle", None)


def written_variables(model: Any, concrete: Any) -> list[Any]:
    """The variables of ``model`` that the traced function ``concrete`` writes."""
    graph = concrete.graph
    variables = list(getattr(model, "variables", []))
    if any(is_write(node.op) for fn in graph.as_graph_def().library.function for node in fn.node_def):
        return variables
    captured = {internal.name: external for external, internal in graph.captures}
    by_handle = {id(_handle(v)): v for v in variables if _handle(v) is not None}
    written: dict[int, Any] = {}
    for op in graph.get_operations():
        if not is_write(op.type):
            continue
        external = captured.get(op.inputs[0].name)
        variable = by_handle.get(id(external)) if external is not None else None
        if variable is None:  # a write we cannot trace back: copy everything
            return variables
        written[id(variable)] = variable
    return list(written.values())
