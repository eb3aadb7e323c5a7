"""``torch.export`` programs, in memory or in a ``.pt2`` file.

A program carries its own signature: the user inputs' shapes and dtypes,
and which dimensions export left symbolic (with the bounds it proved).

Loading a ``.pt2`` file: ``torch.export.load`` unpickles some parts with
``weights_only=False`` (tensor-subclass weights, custom and opaque
constants, legacy weight files) and falls back to a full unpickle when the
sample inputs do not load with ``weights_only=True``.  Unpickling runs any
code the file names, so in safe mode the archive is read once into memory,
every such part is refused, the sample inputs are loaded with
``weights_only=True`` first, and torch loads those same bytes: nothing it
reads can unpickle code.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..base import SettingFix, SoftmaxSetupError
from . import signature as signatures
from .adapter import TorchModuleAdapter

_PICKLED_CONSTANTS = ("custom_obj_", "opaque_obj_")
_COMPILED = (".so", ".dll", ".dylib", ".cpp", ".wrapper")


class ExportedProgramAdapter(TorchModuleAdapter):
    """An ``ExportedProgram``: its module, checked on its own signature."""

    def __init__(self, program: Any, *, name: str | None = None) -> None:
        super().__init__(program.module(), name=name or "ExportedProgram")
        self.program = program
        names, example = _program_inputs(program)
        positional = _positional_count(program)
        signature = signatures.Signature(names, positional < len(names), example)
        signature.dynamic, signature.max_length = signatures.dynamic_dims_of(program, len(names))
        signature.notes.append("an exported program: its graph runs without module paths or source lines, so "
                               "softmax calls are named by the program and their dim only")
        self._learn(signature, dims_known=True)


def _program_inputs(program: Any) -> tuple[list[str], list[torch.Tensor]]:
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    names, example = [], []
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val")
        if value is None or not isinstance(value, torch.Tensor):
            raise SoftmaxSetupError(f"exported program input {name!r} is not a tensor; pytest-softmax feeds tensors")
        shape = [_hint(d) for d in value.shape]
        names.append(str(name))
        example.append(torch.zeros(shape, dtype=value.dtype))
    return names, example


def _hint(size: Any) -> int:
    if isinstance(size, int):
        return size
    hint = getattr(size.node, "hint", None)
    return int(hint) if hint is not None else 2


def _positional_count(program: Any) -> int:
    spec = program.call_spec.in_spec
    try:
        # torch 2.10+ deprecates children_specs (a FutureWarning in the user's run) for child().
        args = spec.child(0) if hasattr(spec, "child") else spec.children_specs[0]
        return int(args.num_leaves)
    except (AttributeError, IndexError):
        return len(program.graph_signature.user_inputs)


def load_pt2(path: Path, *, safe_mode: bool) -> ExportedProgramAdapter:
    if not path.is_file():
        raise SoftmaxSetupError(f"model file {str(path)!r} does not exist (or is not a file)")
    data = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise SoftmaxSetupError(f"{path.name} is not a .pt2 archive (not a zip file): write it with "
                                "torch.export.save(torch.export.export(model, example), path)")
    if safe_mode:
        unsafe = unpickled_parts(data)
        if unsafe:
            raise SoftmaxSetupError(
                f"{path.name} holds parts torch.export.load would unpickle ({unsafe[0]}), which can run any code "
                f"the file names; safe mode refuses it. If you trust this file, load it anyway with "
                f"{SettingFix('safe_mode', 'False', 'false')}")
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any failure is the file's, said in one line
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise SoftmaxSetupError(f"{path.name} is not an exported program torch.export.load can read "
                                f"({type(exc).__name__}: {first[:200]}); write it with torch.export.save") from None
    return ExportedProgramAdapter(program, name=path.name)


def unpickled_parts(data: bytes) -> list[str]:
    """The parts of a .pt2 archive loading would unpickle (or run as code)."""
    found: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            short = name.split("/", 1)[-1]
            if short.endswith(_COMPILED):
                found.append(f"compiled code {short}")
            elif short.startswith(("data/weights/", "data/constants/")) and short.endswith(".pt"):
                found.append(f"a pickled legacy file {short}")
            elif short.endswith("_config.json") and short.startswith(("data/weights/", "data/constants/")):
                found.extend(_pickled_payloads(archive.read(name), short))
            elif short.startswith("data/sample_inputs/") and not _loads_weights_only(archive.read(name)):
                found.append(f"sample inputs {short} that only a full unpickle reads")
    return found


def _pickled_payloads(config: bytes, where: str) -> list[str]:
    try:
        entries = json.loads(config).get("config", {})
    except (ValueError, AttributeError):
        return [f"an unreadable {where}"]
    return [f"{fqn!r} in {where} (pickled)" for fqn, meta in entries.items()
            if meta.get("use_pickle") or str(meta.get("path_name", "")).startswith(_PICKLED_CONSTANTS)]


def _loads_weights_only(payload: bytes) -> bool:
    if not payload:
        return True
    try:
        # The probe is the plugin's own call: torch's remarks on the pickle
        # protocol it meets are not the user's business.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.load(io.BytesIO(payload), weights_only=True)
    except Exception:  # noqa: BLE001 - anything weights_only refuses
        return False
    return True
