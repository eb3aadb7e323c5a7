"""An ``nn.Module``'s input signature, learned from the test's example.

``forward`` declares no shapes or dtypes, so the ``inputs=`` example gives
them: one tensor or array, a tuple/list in ``forward``'s order, or a dict by
``forward``'s argument names, the first axis being the batch.  Which other
dimensions may vary is asked of ``torch.export`` (every dimension
``Dim.AUTO``); where export cannot trace the model, the example's sizes are
kept and a run note says so.  What the values mean comes from one recorded
pass (see :func:`domains`): integer inputs that feed an ``nn.Embedding`` are
ids below its vocabulary, ``bool`` inputs and arguments named ``*mask*``
are masks.
"""

from __future__ import annotations

import inspect
import logging
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

from ..base import IDS, MASK, InputDomain, InputSpec, SettingFix, SoftmaxSetupError
from .convert import dtype_name, example_tensor

# Inputs to a float16 model stay well inside float16's range (65504), so
# that Inf comes from the model, not from the generated input.
FLOAT16_INPUT_LIMIT = 1e3
EXAMPLE = "torch.zeros(8, 10)"


@dataclass
class Signature:
    """The inputs as ``forward`` takes them."""

    names: list[str]
    by_keyword: bool
    example: list[torch.Tensor]
    dynamic: list[tuple[int, ...]] = field(default_factory=list)  # per input: varying dims (batch excluded)
    max_length: list[int | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def call(self, module: Any, tensors: list[torch.Tensor]) -> Any:
        with warnings.catch_warnings():
            # torch warns of the implicit softmax dim on every call (an error
            # under -W error); the check reports that call site itself.
            warnings.filterwarnings("ignore", "Implicit dimension choice", UserWarning)
            if self.by_keyword:
                return module(**dict(zip(self.names, tensors)))
            return module(*tensors)

    def describe_fed(self, tensors: list[torch.Tensor]) -> str:
        return ", ".join(f"{name}: {list(t.shape)} {dtype_name(t.dtype)}" for name, t in zip(self.names, tensors))


def no_signature_error(name: str) -> SoftmaxSetupError:
    return SoftmaxSetupError(
        f"model {name!r} is a torch.nn.Module, whose forward() declares no input shapes or dtypes; pass one "
        f"example batch (batch first) with {SettingFix('inputs', EXAMPLE)} (a tuple in forward's order, or a "
        "dict by forward's argument names, for several inputs)"
    )


def _parameters(module: Any) -> tuple[list[str], bool, bool]:
    """forward's named parameters, and whether it takes *args / **kwargs."""
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return [], True, True
    kinds = inspect.Parameter
    named = [p.name for p in parameters if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD,
                                                         kinds.KEYWORD_ONLY)]
    return (named, any(p.kind == kinds.VAR_POSITIONAL for p in parameters),
            any(p.kind == kinds.VAR_KEYWORD for p in parameters))


def arrange(module: Any, example: Any, model_name: str) -> Signature:
    """Names and tensors of the example, in the order ``forward`` takes them."""
    named, var_args, var_kwargs = _parameters(module)
    if isinstance(example, dict):
        unknown = [k for k in example if k not in named and not var_kwargs]
        if unknown:
            raise SoftmaxSetupError(
                f"inputs= names {unknown[0]!r}, which {model_name}.forward() does not take; its arguments are "
                f"{', '.join(named) or '(none)'}: key the dict by them"
            )
        keys = sorted(example, key=lambda k: named.index(k) if k in named else len(named))
        tensors = [example_tensor(example[k], str(k)) for k in keys]
        return _checked(Signature([str(k) for k in keys], True, tensors))
    values = list(example) if isinstance(example, (tuple, list)) else [example]
    if len(values) > len(named) and not var_args:
        raise SoftmaxSetupError(
            f"inputs= holds {len(values)} values but {model_name}.forward() takes {len(named)} "
            f"({', '.join(named)}): pass one value per argument, in forward's order"
        )
    names = [named[i] if i < len(named) else f"input_{i}" for i in range(len(values))]
    tensors = [example_tensor(v, n) for v, n in zip(values, names)]
    return _checked(Signature(names, False, tensors))


def _checked(signature: Signature) -> Signature:
    sizes = {}
    for name, tensor in zip(signature.names, signature.example):
        if tensor.dim() < 1 or tensor.shape[0] < 1:
            raise SoftmaxSetupError(
                f"inputs= {name!r} has shape {list(tensor.shape)}: give it a batch axis first with at least one row "
                f"(e.g. x.unsqueeze(0))"
            )
        sizes[name] = int(tensor.shape[0])
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise SoftmaxSetupError(f"inputs= disagree on the batch size (first axis): {listed}; give every input "
                                "the same number of rows")
    return signature


# What export found, per module and example signature (names, shapes,
# dtypes): exporting costs seconds, and tests sharing a module share it.
_EXPORTED: weakref.WeakKeyDictionary[Any, dict[Any, tuple[list[tuple[int, ...]], list[int | None], list[str]]]] = \
    weakref.WeakKeyDictionary()


def learn_dynamic_dims(module: Any, signature: Signature) -> None:
    """Ask ``torch.export`` which dimensions may vary (and up to what size),
    once per module and example signature."""
    key = (signature.by_keyword, tuple((n, tuple(t.shape), str(t.dtype)) for n, t in
                                       zip(signature.names, signature.example)))
    known = _EXPORTED.setdefault(module, {})
    if key not in known:
        _export_dims(module, signature)
        known[key] = (list(signature.dynamic), list(signature.max_length), list(signature.notes))
        return
    dynamic, bounds, notes = known[key]
    signature.dynamic, signature.max_length = list(dynamic), list(bounds)
    signature.notes.extend(n for n in notes if n not in signature.notes)


def _export_dims(module: Any, signature: Signature) -> None:
    from torch.export import Dim

    auto = [{d: Dim.AUTO for d in range(t.dim())} for t in signature.example]
    args: tuple[Any, ...] = () if signature.by_keyword else tuple(signature.example)
    kwargs = dict(zip(signature.names, signature.example)) if signature.by_keyword else {}
    shapes: Any = dict(zip(signature.names, auto)) if signature.by_keyword else tuple(auto)
    fixed = [()] * len(signature.example)
    # torch.export logs its trace structure at DEBUG on "torch.__trace", which
    # pytest would show under every failing test: quiet while it runs.
    trace_log = logging.getLogger("torch.__trace")
    level = trace_log.level
    trace_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.export.export(module, args, kwargs, dynamic_shapes=shapes)
    except Exception as exc:  # noqa: BLE001 - any failure: the example's sizes are kept
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        signature.dynamic, signature.max_length = list(fixed), [None] * len(fixed)
        signature.notes.append(
            f"torch.export could not trace forward ({type(exc).__name__}: {first[:160]}); the example's shapes "
            "are used, only the batch size varies")
        return
    finally:
        trace_log.setLevel(level)
    signature.dynamic, signature.max_length = dynamic_dims_of(program, len(signature.example))


def dynamic_dims_of(program: Any, count: int) -> tuple[list[tuple[int, ...]], list[int | None]]:
    """Per user input of an exported program: its symbolic dims (batch
    excluded) and the smallest finite upper bound export proved for them."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    dynamic: list[tuple[int, ...]] = []
    bounds: list[int | None] = []
    for name in list(program.graph_signature.user_inputs)[:count]:
        value = placeholders[name].meta.get("val")
        shape = tuple(value.shape) if value is not None else ()
        dims = tuple(i for i, d in enumerate(shape) if i > 0 and _symbolic(d))
        upper: int | None = None
        for i in dims:
            ranges = program.range_constraints.get(shape[i].node.expr)
            high = getattr(ranges, "upper", None)
            try:
                value_high = int(high) if high is not None and bool(high.is_finite) else None
            except Exception:  # noqa: BLE001 - int_oo and symbolic bounds: unbounded
                value_high = None
            if value_high is not None and value_high < 2**31:
                upper = value_high if upper is None else min(upper, value_high)
        dynamic.append(dims)
        bounds.append(upper)
    while len(dynamic) < count:
        dynamic.append(())
        bounds.append(None)
    return dynamic, bounds


def _symbolic(size: Any) -> bool:
    """A size export left free (a SymInt holding a constant is fixed)."""
    return isinstance(size, torch.SymInt) and bool(getattr(size.node.expr, "free_symbols", ()))


def input_specs(signature: Signature, embeddings: dict[int, tuple[int, str]], float16: bool) -> list[InputSpec]:
    """One spec per input; ``embeddings`` maps an input's index to the
    vocabulary size of the ``nn.Embedding`` it feeds and that module's path."""
    specs = []
    for index, (name, tensor) in enumerate(zip(signature.names, signature.example)):
        dynamic = signature.dynamic[index] if index < len(signature.dynamic) else ()
        shape = tuple(None if d in dynamic else int(s) for d, s in enumerate(tensor.shape) if d > 0)
        dtype = dtype_name(tensor.dtype)
        longest = signature.max_length[index] if index < len(signature.max_length) else None
        low = high = None
        domain = InputDomain(max_length=longest)
        if dtype == "bool" or "mask" in name.lower():
            domain = InputDomain(MASK, f"forward argument {name!r}", longest)
        elif index in embeddings and not tensor.is_floating_point():
            vocabulary, module = embeddings[index]
            low, high = 0, vocabulary
            domain = InputDomain(IDS, f"feeds nn.Embedding {module!r}", longest)
        limit = FLOAT16_INPUT_LIMIT if float16 and tensor.is_floating_point() else None
        specs.append(InputSpec(name=name, shape=shape, dtype=dtype, low=low, high=high, value_limit=limit,
                               domain=domain))
    return specs
