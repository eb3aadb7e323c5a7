"""What each model input's values mean, read from the model's graph.

An integer input (or a float one that Keras casts to ids) is followed, layer call by layer call, to everything that
consumes it: through nested models and backbones (a keras-hub task model
nesting its backbone), through ops that keep ids integer (casts, slices),
and into composite layers (keras-hub's ``TokenAndPositionEmbedding``).  The
smallest vocabulary of the embedding-like layers it reaches bounds the ids.
The graph is followed by the *nodes* of each call, not ``layer.input``: a
shared embedding called twice (BART's token embedding, for encoder and
decoder ids) has one node per call, and ``layer.input`` is only the first.

An input is a mask when its dtype is bool, when a layer takes it through a
keyword naming a mask (``padding_mask=``, ``mask=``, ``attention_mask=``),
or when its own name says so.  Position embeddings bound the sequence
length every variable dimension may take.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..base import IDS, MASK, VALUES, InputDomain

MASK_WORDS = ("mask",)


@dataclass(frozen=True)
class _Use:
    """One call that consumes a tensor: the operation, its node, the keyword
    the tensor was passed by (``None`` if positional)."""

    operation: Any
    node: Any
    keyword: str | None


@dataclass
class _Findings:
    vocabularies: list[tuple[int, str]] = field(default_factory=list)
    mask_sources: list[str] = field(default_factory=list)


def _keras() -> Any:
    import keras

    return keras


def _is_functional(operation: Any) -> bool:
    return hasattr(operation, "_inputs_struct") and hasattr(operation, "operations")


def _operations(model: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every operation of ``model``'s graph and of the models nested in it."""
    seen = set() if seen is None else seen
    for operation in getattr(model, "operations", None) or getattr(model, "layers", []):
        if id(operation) in seen:
            continue
        seen.add(id(operation))
        yield operation
        if _is_functional(operation):
            yield from _operations(operation, seen)


def _uses(model: Any) -> dict[int, list[_Use]]:
    """Consumers of each tensor, by ``id``, over every call of every operation."""
    keras = _keras()
    uses: dict[int, list[_Use]] = {}
    for operation in _operations(model):
        for node in getattr(operation, "_inbound_nodes", []):
            arguments = getattr(node, "arguments", None)
            if arguments is None:
                continue
            for tensor in keras.tree.flatten(arguments.args):
                uses.setdefault(id(tensor), []).append(_Use(operation, node, None))
            for keyword, value in arguments.kwargs.items():
                for tensor in keras.tree.flatten(value):
                    uses.setdefault(id(tensor), []).append(_Use(operation, node, str(keyword)))
    return uses


def _nested_inputs(use: _Use) -> list[tuple[Any, Any]]:
    """Pairs (outer tensor, the nested model's own input tensor) of a call
    into a nested model."""
    keras = _keras()
    args = use.node.arguments.args
    outer = keras.tree.flatten(args[0] if len(args) == 1 else args)
    inner = keras.tree.flatten(use.operation._inputs_struct)
    return list(zip(outer, inner)) if len(outer) == len(inner) else []


def _label(operation: Any) -> str:
    return f"{getattr(operation, 'name', '?')}: {type(operation).__name__}"


def _vocabulary(layer: Any, integer: bool) -> tuple[int, str] | None:
    """The vocabulary size of an embedding-like layer, of the first layer of
    a nested Sequential, or (for integer values) of the embeddings inside a
    composite layer (token-and-position embeddings)."""
    keras = _keras()
    if isinstance(layer, keras.layers.Embedding):
        return int(layer.input_dim), _label(layer)
    if isinstance(layer, keras.layers.CategoryEncoding):
        return int(layer.num_tokens), _label(layer)
    if isinstance(layer, keras.Sequential) and layer.layers:
        first = _vocabulary(layer.layers[0], integer)
        return (first[0], f"{layer.name}/{first[1]}") if first else None
    # A float value reaching a composite layer is features, not ids.
    if not integer or _is_functional(layer) or not hasattr(layer, "_flatten_layers"):
        return None
    inner: list[tuple[int, str]] = [
        (int(sub.input_dim), f"{layer.name}/{_label(sub)}") for sub in layer._flatten_layers(include_self=False)
        if isinstance(sub, keras.layers.Embedding)
    ]
    return min(inner) if inner else None


def _is_integer(tensor: Any) -> bool:
    dtype = str(getattr(tensor, "dtype", ""))
    return dtype.startswith(("int", "uint", "bool"))


def _follow(tensor: Any, uses: dict[int, list[_Use]]) -> _Findings:
    """Everything that consumes ``tensor`` while its values stay ids."""
    found = _Findings()
    # Each tensor with the path of the nested model it lives in, for messages.
    stack: list[tuple[Any, str]] = [(tensor, "")]
    seen = {id(tensor)}

    def push(value: Any, prefix: str) -> None:
        if id(value) not in seen:
            seen.add(id(value))
            stack.append((value, prefix))

    while stack:
        current, prefix = stack.pop()
        for use in uses.get(id(current), []):
            if use.keyword is not None and any(word in use.keyword.lower() for word in MASK_WORDS):
                found.mask_sources.append(f"passed as {use.keyword}= to {prefix}{_label(use.operation)}")
                continue
            if _is_functional(use.operation):
                for outer, inner in _nested_inputs(use):
                    if outer is current:
                        push(inner, f"{prefix}{use.operation.name}/")
                continue
            vocabulary = _vocabulary(use.operation, _is_integer(current))
            if vocabulary is not None:
                found.vocabularies.append((vocabulary[0], prefix + vocabulary[1]))
                continue
            # Casts, slices, reshapes: ids stay ids while they stay integer.
            for output in _outputs(use.node):
                if _is_integer(output):
                    push(output, prefix)
    return found


def _outputs(node: Any) -> list[Any]:
    outputs = getattr(node, "outputs", None)
    if outputs is None:
        outputs = getattr(node, "output_tensors", [])
    return list(_keras().tree.flatten(outputs))


def max_sequence_length(model: Any) -> int | None:
    """The smallest sequence length of the position embeddings in the model:
    longer sequences cannot be fed."""
    lengths = []
    layers = model._flatten_layers(include_self=False) if hasattr(model, "_flatten_layers") else []
    for layer in layers:
        length = getattr(layer, "sequence_length", None)
        if "Position" in type(layer).__name__ and isinstance(length, int) and length > 0:
            lengths.append(length)
    return min(lengths) if lengths else None


def infer_domains(model: Any, named_inputs: list[tuple[str, Any]]) -> dict[str, tuple[InputDomain, int | None]]:
    """Each input's domain and, for ids, the exclusive upper bound."""
    try:
        uses = _uses(model)
        longest = max_sequence_length(model)
    except Exception:  # noqa: BLE001 - a graph we cannot read: today's ranges
        uses, longest = {}, None
    domains: dict[str, tuple[InputDomain, int | None]] = {}
    for name, tensor in named_inputs:
        variable = any(d is None for d in tuple(getattr(tensor, "shape", ()))[1:])
        length = longest if variable else None
        dtype = str(getattr(tensor, "dtype", ""))
        if dtype == "bool":
            domains[name] = (InputDomain(MASK, "bool dtype", length), None)
            continue
        # Float inputs are followed too: Keras casts a float input fed to an
        # Embedding to ids, so normal noise there means negative ids.
        found = _follow(tensor, uses)
        if found.vocabularies:
            high, layer = min(found.vocabularies)
            domains[name] = (InputDomain(IDS, f"vocabulary of {layer}", length), high)
        elif found.mask_sources:
            domains[name] = (InputDomain(MASK, found.mask_sources[0], length), None)
        elif _is_integer(tensor) and any(word in name.lower() for word in MASK_WORDS):
            domains[name] = (InputDomain(MASK, "named as a mask", length), None)
        else:
            domains[name] = (InputDomain(VALUES, "", length), None)
    return domains
