"""Recording softmax calls (and, to explain a failure, every op) at the aten level.

Fused kernels hide a softmax from Python (``nn.MultiheadAttention``'s fast
path, ``scaled_dot_product_attention``), so softmax calls are seen in
torch's dispatcher: every ``aten._softmax``, ``aten._log_softmax`` and
``aten._safe_softmax`` reaches the recorder, wherever it was called from,
while the recording pass turns the MHA fast path off and picks the math SDPA
backend (both put back when the pass ends).

Where a call is comes from the Python stack at record time, so nothing is
installed on the model: the innermost frame whose ``self`` is one of the
model's modules gives the dotted module path, the frames inside torch say
how the softmax was written (``F.softmax``, ``nn.Softmax``, SDPA), and the
first frame outside torch (and outside this package) is the line in the
user's code.

Two depths: :class:`SiteRecorder` keeps only the softmax calls (the search's
pass, on every example of a model with softmax sites), reported by kernels
on just those ops (``intercept.py``) so the other ops cost no Python call;
:class:`OpRecorder`, a ``TorchDispatchMode``, sees every op and groups them
by module and source line into records with producers, for the diagnosis
and for learning which outputs come from a softmax (once per check, and on
a failing input).  Both name a softmax call with the same code, so their
site paths match.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..base.records import OTHER, PASSTHROUGH, SOFTMAX, LayerSite
from .intercept import Reporting

_ATEN = torch.ops.aten
SOFTMAX_OPS = {_ATEN._softmax.default: "softmax", _ATEN._log_softmax.default: "log_softmax",
               _ATEN._safe_softmax.default: "softmax"}
# Ops that only move or copy values: a record made of them alone is looked through.
VIEW_OPS = frozenset(name for name in (
    "view", "_unsafe_view", "reshape", "squeeze", "unsqueeze", "clone", "_to_copy", "detach", "alias",
    "contiguous", "expand", "permute", "transpose", "t", "slice", "select", "flatten", "lift_fresh",
))
# Elementwise arithmetic: a value computed this way from a softmax output
# (same shape) is still meant as a distribution, and is checked as one.
ARITHMETIC_OPS = frozenset((
    "add", "sub", "mul", "div", "clamp", "clamp_min", "clamp_max", "where", "masked_fill", "pow", "rsub",
))
ACTIVATION_OPS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu", "exp": "exp"}
_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
# Joined once: the stack walk tests every torch frame against them.
_FUNCTIONAL_PY = os.path.join("nn", "functional.py")
_ACTIVATION_PY = os.path.join("modules", "activation.py")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep


def op_name(func: Any) -> str:
    return str(getattr(func, "__name__", func)).split(".")[0]


@dataclass
class CallSite:
    """Where one op ran: module path and class, how the softmax was written,
    the user's source line."""

    module_path: str
    module_class: str
    call: str
    location: str
    implicit_dim: bool = False


class ModuleIndex:
    """The model's modules by identity, for naming stack frames."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.root = model
        self.paths = {id(m): path for path, m in model.named_modules()}
        self.root_name = type(model).__name__
        self.leaves = {path for path, m in model.named_modules() if path and not any(True for _ in m.children())}

    def path_of(self, module: Any) -> str | None:
        path = self.paths.get(id(module))
        if path is None:
            return None
        return path or self.root_name


def _user_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost frame of the model's own code: outside torch, and below
    the adapter's call into the model (frames above it are the test's)."""
    entered = False  # past the recorder's own frames, into the model's
    while frame is not None:
        name = frame.f_code.co_filename
        ours = name.startswith(_PACKAGE_DIR)
        if ours and entered:
            return None  # reached the adapter's call of the model: no user code in between
        entered = entered or not ours
        if not (ours or name.startswith(_TORCH_DIR) or name.startswith("<")):
            return frame
        frame = frame.f_back
    return None


def call_site(modules: ModuleIndex, op: str, dim: int, ndim: int, *, need_call: bool,
              written: int | None = None) -> CallSite:
    """Describe the op being dispatched from the Python stack; ``written`` is
    the dim as the call passed it (``-1``), ``dim`` normalized."""
    as_passed = dim if written is None else written
    frame: FrameType | None = sys._getframe(2)
    module_path, module_class = "", ""
    call, implicit = "", False
    walker = frame
    in_torch = True  # still in torch's frames, below the user's code
    while walker is not None:
        code = walker.f_code
        # f_locals copies every local of the frame: read only until the module is found.
        reads_self = not module_path and code.co_varnames[:1] == ("self",)
        local_self = walker.f_locals.get("self") if reads_self else None
        if isinstance(local_self, torch.nn.Module):
            found = modules.path_of(local_self)
            if found is not None:
                module_path, module_class = found, type(local_self).__name__
        inside = code.co_filename.startswith((_TORCH_DIR, _PACKAGE_DIR))
        if need_call and in_torch and code.co_filename.startswith(_TORCH_DIR):
            # The outermost torch frame below the user's code says how it was
            # written: nn.Softmax.forward calls F.softmax, which calls aten.
            described, was_implicit = _torch_call(walker, op, dim, as_passed)
            if described:
                call, implicit = described, was_implicit
        in_torch = in_torch and inside
        if module_path and not in_torch:
            break
        walker = walker.f_back
    user = _user_frame(frame)
    location = f"{os.path.basename(user.f_code.co_filename)}:{user.f_lineno}" if user is not None else ""
    if need_call and not call:
        call = _written_call(user, op, as_passed)
    elif call.startswith("F.") and not implicit and _implicit_in_source(user):
        call, implicit = f"{call.split('(')[0]}() (implicit dim, taken as dim={dim})", True
    return CallSite(module_path or modules.root_name, module_class or type(modules.root).__name__, call,
                    location, implicit)


def _torch_call(frame: FrameType, op: str, dim: int, as_passed: int) -> tuple[str, bool]:
    """How a softmax was written, read from the torch frame that called it."""
    function, filename = frame.f_code.co_name, frame.f_code.co_filename
    if filename.endswith(_FUNCTIONAL_PY):
        if function in ("softmax", "log_softmax", "softmin"):
            given = frame.f_locals.get("dim")
            if given is None:
                return f"F.{function}() (implicit dim, taken as dim={dim})", True
            return f"F.{function}(dim={given})", False
        if function == "multi_head_attention_forward":
            return f"nn.MultiheadAttention's {op}(dim={as_passed})", False
    if not (filename.endswith(_ACTIVATION_PY) and function == "forward"):
        return "", False
    module = frame.f_locals.get("self")  # read only here: f_locals copies every local of the frame
    if hasattr(module, "dim"):  # nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d
        given = getattr(module, "dim", None)
        name = type(module).__name__
        if given is None:
            return f"nn.{name}() (implicit dim, taken as dim={dim})", True
        return f"nn.{name}(dim={given})", False
    return "", False


_ONE_ARGUMENT = re.compile(r"softmax\(\s*[\w.\[\]]+(\([^()]*\))?\s*\)")


def _implicit_in_source(user: FrameType | None) -> bool:
    """F.softmax(x) with no dim: torch has replaced dim by the time aten runs."""
    line = linecache.getline(user.f_code.co_filename, user.f_lineno) if user is not None else ""
    return bool(_ONE_ARGUMENT.search(line))


_WRITTEN = re.compile(r"(torch\.(?:nn\.functional\.)?|\bF\.|\.)(log_softmax|softmax)\s*\(")


def _written_call(user: FrameType | None, op: str, dim: int) -> str:
    """A softmax called from C (``torch.softmax``, ``Tensor.softmax``, SDPA):
    named from the user's source line."""
    if op == "safe_softmax":
        return f"F.scaled_dot_product_attention's softmax(dim={dim})"
    line = linecache.getline(user.f_code.co_filename, user.f_lineno) if user is not None else ""
    match = _WRITTEN.search(line)
    if match is None:
        return f"{op}(dim={dim})"
    prefix = "torch." if match.group(1).startswith("torch") else ("F." if "F." in match.group(1) else "Tensor.")
    return f"{prefix}{match.group(2)}(dim={dim})"


@dataclass
class SoftmaxCall:
    """One softmax call seen while recording."""

    site: LayerSite
    output: torch.Tensor
    fed: torch.Tensor


@contextmanager
def recording_backends() -> Iterator[None]:
    """The MHA fast path off and the math SDPA backend, so every softmax is
    an aten op the recorder sees; both put back however the block ends."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


class SoftmaxSites:
    """The softmax calls of one forward pass, each named by where it ran."""

    def __init__(self, modules: ModuleIndex, batch_size: int,
                 shapes: dict[str, tuple[int | None, ...]] | None = None) -> None:
        super().__init__()  # the dispatch mode's, for the OpRecorder
        self.modules = modules
        self.batch_size = batch_size
        # Each site's shape on the example, 1 where it was 1 and None (free)
        # elsewhere: a softmax over a size-1 axis is the model's doing only
        # when that axis was 1 on the example too.
        self.shapes = shapes
        self.calls: list[SoftmaxCall] = []
        self.counts: Counter[str] = Counter()

    def unique_path(self, path: str) -> str:
        self.counts[path] += 1
        return path if self.counts[path] == 1 else f"{path}#{self.counts[path]}"

    def _softmax_call(self, func: Any, kind: str, args: Any, out: torch.Tensor) -> SoftmaxCall:
        fed = args[0]
        ndim = max(fed.dim(), 1)
        dim = int(args[1]) % ndim
        op = "safe_softmax" if func is _ATEN._safe_softmax.default else kind
        where = call_site(self.modules, op, dim, ndim, need_call=True, written=int(args[1]))
        path = self.unique_path(where.module_path)
        # A site the example did not show (a loop that ran longer) is taken as free.
        shape = loose_shape(out) if self.shapes is None else self.shapes.get(path, (None,) * out.dim())
        site = LayerSite(
            path=path, name=where.module_path, layer_class=where.module_class,
            kind=SOFTMAX, activation=kind, softmax_axes=(dim,), dtype=str(out.dtype).removeprefix("torch."),
            masked=op == "safe_softmax", call=where.call, location=where.location,
            batch_first=fed.dim() >= 2 and int(fed.shape[0]) == self.batch_size, shape=shape,
        )
        return SoftmaxCall(site, out, fed)


class SiteRecorder(SoftmaxSites):
    """Sees every softmax call of one forward pass, and no other op: the
    search's pass on every example (see ``intercept.py``)."""

    def __init__(self, modules: ModuleIndex, batch_size: int,
                 shapes: dict[str, tuple[int | None, ...]] | None = None) -> None:
        super().__init__(modules, batch_size, shapes)
        self._reporting = Reporting(self.record)

    def record(self, func: Any, args: tuple[Any, ...], out: torch.Tensor) -> None:
        self.calls.append(self._softmax_call(func, SOFTMAX_OPS[func], args, out))

    def __enter__(self) -> SiteRecorder:
        self._reporting.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._reporting.__exit__(*exc)


@dataclass
class OpGroup:
    """The ops one source line of one module ran in a row: one record."""

    path: str
    site_args: dict[str, Any]
    ops: list[str] = field(default_factory=list)
    producers: dict[str, None] = field(default_factory=dict)
    output: torch.Tensor | None = None
    exp_input: torch.Tensor | None = None


class OpRecorder(SoftmaxSites, TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Also records every other op, grouped by module and source line, with
    the records (or model inputs) that fed each: the diagnosis probe, and
    the pass that learns which outputs come from a softmax."""

    def __init__(self, modules: ModuleIndex, batch_size: int,
                 shapes: dict[str, tuple[int | None, ...]] | None = None) -> None:
        super().__init__(modules, batch_size, shapes)
        self.producer_of: dict[int, str] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while recording
        self.derived_from: dict[int, str] = {}  # tensor id -> the softmax record it is arithmetic of
        self.order: list[Any] = []  # SoftmaxCall or OpGroup, in execution order
        self.current: OpGroup | None = None
        self.group_counts: Counter[str] = Counter()  # apart from the softmax calls', so their paths match the search's
        self.embeddings: list[tuple[torch.Tensor, int, str]] = []  # (ids, vocabulary, module path)
        # A hand-written softmax, exp(x) / exp(x).sum(dim): exp outputs, their
        # sums (with the dim), and the division's site by path.
        self.exps: set[int] = set()
        self.exp_sums: dict[int, int] = {}
        self.hand_written: dict[str, LayerSite] = {}

    def name_input(self, tensor: torch.Tensor, name: str) -> None:
        self.alive.append(tensor)
        self.producer_of[id(tensor)] = f"input {name!r}"

    def producer(self, tensor: Any) -> str | None:
        return self.producer_of.get(id(tensor))

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        given = [t for t in _tensors((args, kwargs))]
        produced = _tensors(out)
        self.alive.extend(given)
        self.alive.extend(produced)
        kind = SOFTMAX_OPS.get(func)
        if kind is not None:
            call = self._softmax_call(func, kind, args, out)
            producers = tuple(dict.fromkeys(p for p in (self.producer(t) for t in given) if p is not None))
            call.site = _with_producers(call.site, producers)
            self.current = None
            self.calls.append(call)
            self.order.append(call)
            self.producer_of[id(out)] = call.site.path
            self.derived_from[id(out)] = call.site.path
            return out
        name = op_name(func)
        self._hand_written(name, args, out)
        if name == "embedding" and len(args) > 1:
            self.embeddings.append((args[1], int(args[0].shape[0]), self._group(name, given, produced)))
            return out
        self._group(name, given, produced)
        self._derive(name, given, produced)
        return out

    def _group(self, name: str, given: list[torch.Tensor], produced: list[torch.Tensor]) -> str:
        where = call_site(self.modules, name, 0, 1, need_call=False)
        key = (where.module_path, where.location)
        group = self.current
        if group is None or group.site_args["key"] != key:
            # A leaf module's ops are the module's output; other ops are
            # named by the module and the line that ran them.
            line = where.location.rpartition(":")[2]
            base = where.module_path if where.module_path in self.modules.leaves or not line else \
                f"{where.module_path}:{line}"
            self.group_counts[base] += 1
            count = self.group_counts[base]
            group = OpGroup(path=base if count == 1 else f"{base}#{count}", site_args={
                "key": key, "name": where.module_path, "layer_class": where.module_class,
                "location": where.location})
            self.current = group
            self.order.append(group)
        group.ops.append(name)
        for tensor in given:
            producer = self.producer(tensor)
            if producer is not None and producer != group.path:
                group.producers[producer] = None
        if name == "exp" and given:
            group.exp_input = given[0]
        if produced:
            group.output = produced[0]
            for tensor in produced:
                self.producer_of[id(tensor)] = group.path
        return str(group.site_args["name"])

    def _hand_written(self, name: str, args: Any, out: Any) -> None:
        """Follow exp(x), its sum, and exp(x) / sum: a softmax written by hand."""
        if not isinstance(out, torch.Tensor) or not args or not isinstance(args[0], torch.Tensor):
            return
        first = id(args[0])
        if name == "exp" or (name in VIEW_OPS and first in self.exps):
            self.exps.add(id(out))
        elif name == "sum" and first in self.exps and len(args) > 1:
            dims = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
            if len(dims) == 1:
                self.exp_sums[id(out)] = int(dims[0]) % max(args[0].dim(), 1)
        elif name == "div" and first in self.exps and len(args) > 1 and id(args[1]) in self.exp_sums:
            dim = self.exp_sums[id(args[1])]
            where = call_site(self.modules, name, dim, out.dim(), need_call=False)
            path = f"{where.module_path}:{where.location.rpartition(':')[2]}"
            self.hand_written[path] = LayerSite(
                path=path, name=where.module_path, layer_class=where.module_class, kind=OTHER,
                softmax_axes=(dim,), call=f"exp(x) / exp(x).sum(dim={dim})", location=where.location,
                dtype=str(out.dtype).removeprefix("torch."))
            self.derived_from[id(out)] = path

    def _derive(self, name: str, given: list[torch.Tensor], produced: list[torch.Tensor]) -> None:
        """Mark values that are a softmax output moved, copied or combined
        elementwise (same shape): they are meant as distributions."""
        if not produced or (name not in VIEW_OPS and name not in ARITHMETIC_OPS):
            return
        for tensor in given:
            source = self.derived_from.get(id(tensor))
            if source is not None and (name in VIEW_OPS or tuple(tensor.shape) == tuple(produced[0].shape)):
                self.derived_from[id(produced[0])] = source
                return

    def sites(self) -> list[tuple[LayerSite, torch.Tensor | None, torch.Tensor | None, str]]:
        """Every record: its site, output, the softmax (or exp) input and which."""
        found: list[tuple[LayerSite, torch.Tensor | None, torch.Tensor | None, str]] = []
        for entry in self.order:
            if isinstance(entry, SoftmaxCall):
                found.append((entry.site, entry.output, entry.fed, "softmax"))
                continue
            ops = entry.ops
            kind = PASSTHROUGH if all(op in VIEW_OPS for op in ops) else OTHER
            last = next((op for op in reversed(ops) if op not in VIEW_OPS), "")
            site = LayerSite(
                path=entry.path, name=entry.site_args["name"], layer_class=entry.site_args["layer_class"],
                kind=kind, activation=ACTIVATION_OPS.get(last), producers=tuple(entry.producers),
                dtype=str(entry.output.dtype).removeprefix("torch.") if entry.output is not None else "",
                call=_ops_text(ops), location=entry.site_args["location"],
            )
            found.append((site, entry.output, entry.exp_input, "exp" if entry.exp_input is not None else ""))
        return found


def _ops_text(ops: list[str]) -> str:
    shown = list(dict.fromkeys(op for op in ops if op not in VIEW_OPS)) or list(dict.fromkeys(ops))
    return "ops " + ", ".join(shown[:4]) + (", ..." if len(shown) > 4 else "")


def loose_shape(tensor: torch.Tensor) -> tuple[int | None, ...]:
    """The shape with every size but 1 left free (the batch always free)."""
    return tuple(None if i == 0 or int(s) != 1 else 1 for i, s in enumerate(tensor.shape))


def _with_producers(site: LayerSite, producers: tuple[str, ...]) -> LayerSite:
    from dataclasses import replace

    return replace(site, producers=producers)


def _tensors(structure: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    stack = [structure]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return found
