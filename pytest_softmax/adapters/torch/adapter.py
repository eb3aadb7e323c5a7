"""Adapter for a ``torch.nn.Module``: the signature from ``inputs=``, the
forward pass in ``inference_mode``, every softmax call recorded at the aten
level.

What is checked: a PyTorch classifier returns logits by convention (its
loss expects them), so an output is a distribution only when a softmax call
made it (directly, through views, or by elementwise arithmetic on it) or
when ``outputs=`` names it.  Every softmax/log_softmax call inside
``forward`` is a site checked along its own dim (see ``core/sites.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..base import (
    ModelFailure,
    NonFiniteWeight,
    OutputSpec,
    SettingFix,
    SoftmaxSetupError,
    log_output_name,
)
from ..base.arrays import as_float64, can_be_nonfinite
from ..base.records import LayerRecord, LayerSite, ProbeResult
from . import intercept, state
from . import signature as signatures
from .convert import to_numpy, to_tensor
from .recording import ModuleIndex, OpRecorder, SiteRecorder, recording_backends


@dataclass
class _Output:
    name: str
    tensor_shape: tuple[int, ...]
    source: LayerSite | None  # the softmax call it comes from
    direct: bool  # the call's own output (or a view of it), not arithmetic on it


def flatten_outputs(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(name, leaf)`` of a forward's result: a tensor, nested tuples/lists,
    dicts and ``ModelOutput``s (keys as names, ``output_1.0`` for nesting)."""
    if isinstance(value, torch.Tensor):
        return [(prefix or "output", value)]
    if value is None:
        return []
    if isinstance(value, dict):  # ModelOutput is an OrderedDict
        found: list[tuple[str, Any]] = []
        for key, item in value.items():
            found.extend(flatten_outputs(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if isinstance(value, (list, tuple)):
        found = []
        for i, item in enumerate(value):
            found.extend(flatten_outputs(item, f"{prefix}.{i}" if prefix else f"output_{i}"))
        return found
    return [(prefix or "output", value)]


class TorchModuleAdapter:
    """A ``torch.nn.Module`` checked on batches like its ``inputs=`` example."""

    def __init__(self, module: torch.nn.Module, *, name: str | None = None) -> None:
        self.module = module
        self._name = name or type(module).__name__
        self._signature: signatures.Signature | None = None
        self._outputs: list[_Output] = []
        self._sites: list[LayerSite] = []
        self._specs: list[Any] = []
        self._site_shapes: dict[str, tuple[int | None, ...]] = {}
        self._state: state.SavedState | None = None
        self._fed: list[torch.Tensor] = []  # the last batch fed, described only when forward raises
        self._modules: ModuleIndex | None = None
        self._checked: set[str] | None = None
        self._kernels: intercept.Held | None = None  # the check's softmax kernels, inside preserved_state

    def _index(self) -> ModuleIndex:
        """The module paths, walked once (every example of the site pass names its calls)."""
        if self._modules is None:
            self._modules = ModuleIndex(self.module)
        return self._modules

    # -- the contract --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def backend(self) -> str:
        return f"torch {torch.__version__}"

    def run_notes(self) -> list[str]:
        notes = list(self._signature.notes) if self._signature is not None else []
        if self._state is not None:
            notes.extend(self._state.changes(self.module))
        return notes

    @contextmanager
    def preserved_state(self) -> Iterator[None]:
        """The module's state put back afterwards; and the softmax kernels of
        the search's pass, registered on its first example, kept for the rest
        of the check instead of once per example (see ``intercept.py``), and
        removed with it."""
        with state.preserved(self.module, self._remember_state), intercept.Held() as kernels:
            self._kernels = kernels
            try:
                yield
            finally:
                self._kernels = None

    def _remember_state(self, saved: state.SavedState | None) -> None:
        self._state = saved

    def learn_signature(self, example: Any) -> None:
        """The inputs from the example, which dims vary, what the values mean,
        and which outputs are distributions: one recorded pass on the example."""
        self._learn(signatures.arrange(self.module, example, self._name))

    def _learn(self, signature: signatures.Signature, *, dims_known: bool = False) -> None:
        device = state.device_of(self.module)
        signature.example = [t.to(device) for t in signature.example]
        recorder = self._record_example(signature)
        if not dims_known:
            signatures.learn_dynamic_dims(self.module, signature)
        embeddings = self._embedding_inputs(signature, recorder)
        self._specs = signatures.input_specs(signature, embeddings, state.computes_in_float16(self.module))
        self._signature = signature

    def _record_example(self, signature: signatures.Signature) -> OpRecorder:
        batch = int(signature.example[0].shape[0])
        recorder = OpRecorder(self._index(), batch)
        try:
            with _every_op_visible(), recording_backends(), recorder:
                for name, tensor in zip(signature.names, signature.example):
                    recorder.name_input(tensor, name)
                result = signature.call(self.module, signature.example)
        except Exception as exc:
            raise SoftmaxSetupError(
                f"{self._name}.forward() raised on the inputs= example ({signature.describe_fed(signature.example)})"
                f": {_first_line(exc)}; pass {SettingFix('inputs', signatures.EXAMPLE)} with the shapes and "
                "dtypes forward expects (batch first)"
            ) from None
        flat = flatten_outputs(result)
        leaves = [(n, t) for n, t in flat if isinstance(t, torch.Tensor)]
        if not leaves:
            kinds = ", ".join(sorted({type(t).__name__ for _, t in flat})) or type(result).__name__
            raise SoftmaxSetupError(
                f"{self._name}.forward() returned {kinds}, not tensors (or tuples, dicts or ModelOutputs of "
                "tensors): return the probabilities as a tensor")
        calls = {c.site.path: c for c in recorder.calls}
        outputs, produced = [], set()
        for name, tensor in leaves:
            source = recorder.derived_from.get(id(tensor))
            call = calls.get(source) if source is not None else None
            direct = call is not None and _same_values(call.output, tensor)
            if direct and call is not None:
                produced.add(call.site.path)
            site = call.site if call is not None else recorder.hand_written.get(source or "")
            outputs.append(_Output(name, tuple(tensor.shape), site, direct))
        self._outputs, self._checked = outputs, None
        skipped = [n for n, t in flat if not isinstance(t, torch.Tensor)]
        if skipped and self._signature is None:
            signature.notes.append(f"outputs that are not tensors are not checked: {', '.join(skipped)}")
        self._sites = [c.site for c in recorder.calls if c.site.path not in produced]
        self._site_shapes = {c.site.path: c.site.shape for c in recorder.calls if c.site.shape is not None}
        return recorder

    def _embedding_inputs(self, signature: signatures.Signature, recorder: OpRecorder) -> dict[int, tuple[int, str]]:
        """Which integer inputs feed an ``nn.Embedding`` (the ids, or a view of them)."""
        found: dict[int, tuple[int, str]] = {}
        for index, tensor in enumerate(signature.example):
            if tensor.is_floating_point() or tensor.dtype == torch.bool:
                continue
            for ids, vocabulary, module in recorder.embeddings:
                if ids.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr():
                    known = found.get(index)
                    if known is None or vocabulary < known[0]:
                        found[index] = (vocabulary, module)
        return found

    def input_specs(self) -> list[Any]:
        if self._signature is None:
            raise signatures.no_signature_error(self._name)
        return list(self._specs)

    def output_specs(self) -> list[OutputSpec]:
        if self._signature is None:
            raise signatures.no_signature_error(self._name)
        return [self._spec(i, o) for i, o in enumerate(self._outputs)]

    def _spec(self, index: int, output: _Output, *, log: bool = False) -> OutputSpec:
        source = output.source
        layer = source.path if source is not None else self._name
        described = "returned by forward"
        if source is not None:
            described = f"{source.call} at {source.location}" if source.location else source.call
        name = log_output_name(output.name) if log else output.name
        shape = tuple(None if i == 0 or s != 1 else 1 for i, s in enumerate(output.tensor_shape)) or None
        return OutputSpec(name, index, layer, described, shape, log_probabilities=log)

    def default_outputs(self) -> list[OutputSpec]:
        """Outputs a softmax call made (log_softmax ones as exp(output)); a
        setup error when the model calls no softmax at all."""
        chosen = []
        for index, output in enumerate(self._outputs):
            if output.source is None:
                continue
            if output.source.is_log_softmax:
                if output.direct:
                    chosen.append(self._spec(index, output, log=True))
                continue
            chosen.append(self._spec(index, output))
        if not chosen and not self._sites:
            names = ", ".join(f"{i}: {o.name!r}" for i, o in enumerate(self._outputs))
            raise SoftmaxSetupError(
                f"{self._name}.forward() calls no softmax or log_softmax on the inputs= example, and outputs= names "
                f"none of its outputs ({names}), so nothing would be checked. Returning logits is fine (PyTorch "
                f"losses expect them); if an output is meant as probabilities, name it with "
                f"{SettingFix('outputs', '[0]', '0')}")
        return chosen

    def _tensors(self, inputs: Sequence[np.ndarray]) -> list[torch.Tensor]:
        device = state.device_of(self.module)
        return [to_tensor(x, spec.dtype, device) for x, spec in zip(inputs, self._specs)]

    def forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        assert self._signature is not None
        tensors = self._fed = self._tensors(inputs)
        with torch.inference_mode():
            result = self._signature.call(self.module, tensors)
        return self._flat_numpy(result)

    def _flat_numpy(self, result: Any) -> list[np.ndarray]:
        leaves = [t for _, t in flatten_outputs(result) if isinstance(t, torch.Tensor)]
        return [to_numpy(t) for t in leaves]

    # -- looking inside --------------------------------------------------------------------------
    def internal_softmax_sites(self) -> list[LayerSite]:
        return list(self._sites)

    def forward_with_sites(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[LayerRecord]]:
        assert self._signature is not None
        tensors = self._fed = self._tensors(inputs)
        recorder = SiteRecorder(self._index(), int(tensors[0].shape[0]), self._site_shapes)
        if self._kernels is not None:
            self._kernels.hold()
        with torch.inference_mode(), recording_backends(), _eager(), recorder:
            result = self._signature.call(self.module, tensors)
        leaves = [t for _, t in flatten_outputs(result) if isinstance(t, torch.Tensor)]
        if self._checked is None:  # the outputs judged by the output check, not as sites
            self._checked = {self._outputs[s.index].name for s in self.default_outputs()} if self._outputs else set()
        checked = self._checked
        direct = [t for (name, t) in zip([o.name for o in self._outputs], leaves) if name in checked]
        records = [LayerRecord(call.site, to_numpy(call.output)) for call in recorder.calls
                   if not any(_same_values(call.output, t) for t in direct)]
        return [to_numpy(t) for t in leaves], records

    def probe(self, inputs: Sequence[np.ndarray]) -> ProbeResult:
        assert self._signature is not None
        tensors = self._tensors(inputs)
        recorder = OpRecorder(self._index(), int(tensors[0].shape[0]), self._site_shapes)
        with _every_op_visible(), recording_backends(), recorder:
            for name, tensor in zip(self._signature.names, tensors):
                recorder.name_input(tensor, name)
            result = self._signature.call(self.module, tensors)
        records = []
        for site, output, fed, op in recorder.sites():
            record = LayerRecord(site, to_numpy(output) if output is not None else None)
            if fed is not None and op:
                dim = site.softmax_axes[0] if site.softmax_axes else -1
                record.softmax_input = np.moveaxis(to_numpy(fed), dim, -1) if fed.dim() else to_numpy(fed)
                record.softmax_op = op
            records.append(record)
        leaves = [t for _, t in flatten_outputs(result) if isinstance(t, torch.Tensor)]
        names = [f"input {n!r}" for n in self._signature.names]
        finite = all(np.isfinite(as_float64(x)).all() for x in inputs if can_be_nonfinite(np.asarray(x).dtype))
        return ProbeResult(
            records, [recorder.producer(t) for t in leaves], inputs_finite=finite,
            input_max_abs={n: float(np.abs(as_float64(x)).max(initial=0.0)) for n, x in zip(names, inputs)},
            input_dtypes={n: spec.dtype for n, spec in zip(names, self._specs)}, framework="torch")

    def nonfinite_weights(self) -> list[NonFiniteWeight]:
        return state.nonfinite_weights(self.module, self._name)

    def explain_error(self, exc: BaseException) -> ModelFailure:
        message = _first_line(exc)
        described = self._signature.describe_fed(self._fed) if self._signature is not None and self._fed else ""
        fed = f" (fed {described})" if described else ""
        memory = isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()
        return ModelFailure(f"{message}{fed}", out_of_memory=memory)


def _eager() -> AbstractContextManager[object]:
    """``torch.compile`` off for the search's recorded pass: a compiled
    module's softmax would run from generated code, with no frame of the
    user's to name it by (the call and file:line of a failure).  The
    dispatch mode that recorded this pass before had the same effect."""
    if not hasattr(torch.compiler, "set_stance"):  # torch 2.5 and older
        return nullcontext()
    return torch.compiler.set_stance("force_eager")  # type: ignore[no-any-return]


def _every_op_visible() -> AbstractContextManager[object]:
    """Grad off and inference mode off for the passes that record every op
    (a ``TorchDispatchMode``): under the caller's ``inference_mode`` the mode
    would see ``aten.softmax.int`` whole, not the ``aten._softmax`` it
    computes with, and record no softmax at all."""
    stack = ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.no_grad())
    return stack


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same tensor, or a view of the same memory with as many values."""
    if a is b:
        return True
    try:
        return bool(a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() and a.numel() == b.numel())
    except (RuntimeError, NotImplementedError):
        return False


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
