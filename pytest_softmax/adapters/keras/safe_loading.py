"""Look inside a model file before Keras loads it.

Two jobs, both done on the raw file so that nothing in it runs:

* say plainly what is wrong with a path that is not a model (a text file
  named ``.keras``, a truncated archive, an HDF5 file holding only weights)
  instead of surfacing whichever error Keras happens to raise;
* refuse, unless the user opted in, a file whose model config carries Python
  code: a ``Lambda`` (or an activation) serialised as bytecode runs that code
  when Keras rebuilds the model.  Keras' own ``safe_mode`` refuses it too in
  recent versions, but older Keras 3 releases loaded legacy ``.h5`` lambdas
  regardless, and this check names the layer.

Standard library only (``h5py`` is imported for ``.h5`` files, which Keras
depends on anyway).  Nothing here unpickles or unmarshals anything.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..base import SettingFix, SoftmaxSetupError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock; the signature then sits
# at 512, 1024, 2048, ... bytes.
HDF5_SIGNATURE_OFFSETS = (0, 512, 1024, 2048, 4096)
# The largest model config read from a .keras archive before loading: real
# ones (a large transformer's included) stay under a few MB, so 64 MiB only
# refuses a file built to exhaust memory.  (HDF5 stores attributes
# uncompressed: a .h5 config is never larger than its file.)
MAX_CONFIG_BYTES = 64 * 2**20
# Weights are noise to a compressor (ratios near 1); a member larger than
# the config cap that shrank more than this is a zip bomb Keras would inflate.
MAX_COMPRESSION_RATIO = 200


def opt_in() -> str:
    """How to load a file safe mode refuses, in the mode of the check."""
    return f"allow it with {SettingFix('safe_mode', 'False', 'false')}"


def inspect_model_file(path: Path, *, safe_mode: bool) -> Any:
    """The model config of ``path`` (an existing ``.keras`` or ``.h5``
    file); raise :class:`SoftmaxSetupError` if it is not a readable model,
    or, in safe mode, carries code."""
    suffix = path.suffix.lower()
    config = _keras_archive_config(path) if suffix == ".keras" else _hdf5_model_config(path)
    if not safe_mode:
        return config
    found = sorted(set(code_carriers(config)))
    if found:
        listed = "; ".join(found)
        raise SoftmaxSetupError(
            f"model file {str(path)!r} contains Python code ({listed}); loading it would run that code, "
            f"so pytest-softmax refuses it (Keras safe_mode). If you trust this file, {opt_in()}; "
            "or rebuild the model without lambdas (a named function or a registered layer class) and save it again"
        )
    return config


def _keras_archive_config(path: Path) -> Any:
    if not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            if handle.read(4) == b"PK\x03\x04":  # a zip's start without its central directory
                raise SoftmaxSetupError(
                    f"model file {str(path)!r} is a truncated or corrupt Keras archive (a zip file with no "
                    "central directory: an interrupted save or download?); save or copy the model again"
                )
        raise SoftmaxSetupError(
            f"model file {str(path)!r} is not a Keras archive (a .keras file is a zip archive written by "
            f"model.save({path.name!r})); it is {_what_is(path)}"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise SoftmaxSetupError(
                    f"model file {str(path)!r} is a zip archive without config.json, not a Keras model; "
                    "save the model with model.save('model.keras')"
                )
            _refuse_bombs(path, archive)
            raw = _read_capped(path, archive, "config.json")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SoftmaxSetupError(
            f"model file {str(path)!r} is a truncated or corrupt Keras archive ({exc}); save the model again"
        ) from exc
    return _parse_config(path, raw)


def _read_capped(path: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    """The member's bytes, refusing one that inflates past
    :data:`MAX_CONFIG_BYTES`: the size the zip directory declares is checked
    first, and the read is streamed and stopped at the cap in case the
    directory lies.  A zip bomb then costs nothing, not gigabytes."""
    info = archive.getinfo(name)
    if info.file_size > MAX_CONFIG_BYTES:
        raise _too_big(path, name, info.file_size, info.compress_size)
    chunks: list[bytes] = []
    read = 0
    with archive.open(info) as member:
        while read <= MAX_CONFIG_BYTES:
            chunk = member.read(1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            read += len(chunk)
    raise _too_big(path, name, read, info.compress_size)


def _refuse_bombs(path: Path, archive: zipfile.ZipFile) -> None:
    for info in archive.infolist():
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MAX_CONFIG_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise _too_big(path, info.filename, info.file_size, info.compress_size)


def _too_big(path: Path, name: str, size: int, compressed: int) -> SoftmaxSetupError:
    return SoftmaxSetupError(
        f"model file {str(path)!r}: its {name} inflates to {_mib(size)} or more (from {_mib(compressed)} "
        f"compressed), more than a model archive holds (config.json up to {_mib(MAX_CONFIG_BYTES)}, other "
        f"members compressed at most {MAX_COMPRESSION_RATIO}:1 when larger); pytest-softmax refuses to read "
        "it (a zip bomb or a corrupt file?). Save the model again with model.save()"
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _hdf5_model_config(path: Path) -> Any:
    with path.open("rb") as handle:
        head = handle.read(max(HDF5_SIGNATURE_OFFSETS) + len(HDF5_SIGNATURE))
    if not any(head[o:o + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE for o in HDF5_SIGNATURE_OFFSETS):
        raise SoftmaxSetupError(
            f"model file {str(path)!r} is not an HDF5 file (a .h5 model is written by "
            f"model.save({path.name!r})); it is {_what_is(path)}"
        )
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except OSError as exc:
        raise SoftmaxSetupError(
            f"model file {str(path)!r} is a truncated or corrupt HDF5 file ({exc}); save the model again"
        ) from exc
    if raw is None:
        raise SoftmaxSetupError(
            f"model file {str(path)!r} is an HDF5 file without a model (no model_config: weights only, or "
            "other data); save the whole model with model.save('model.keras'), not save_weights()"
        )
    return _parse_config(path, raw)


def _parse_config(path: Path, raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SoftmaxSetupError(
            f"model file {str(path)!r} has a model config that is not valid JSON ({exc}); save the model again"
        ) from exc


def _what_is(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(64)
    if not head:
        return "empty"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data starting with {head[:8]!r}"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"text starting with {first!r}"


def code_carriers(config: Any, layer: str = "") -> Iterator[str]:
    """Describe every place in a Keras model config that holds Python code:
    Keras 3 serialises a lambda as ``{"class_name": "__lambda__"}``, Keras 2
    as ``"function_type": "lambda"`` next to marshalled bytecode."""
    if isinstance(config, list):
        for item in config:
            yield from code_carriers(item, layer)
        return
    if not isinstance(config, dict):
        return
    inner = config.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("name"), str) and "class_name" in config:
        layer = f"{config['class_name']} layer {inner['name']!r}"
    where = layer or "the model config"
    if config.get("class_name") == "__lambda__":
        yield f"{where} holds a Python lambda as bytecode"
    if config.get("function_type") == "lambda" or config.get("output_shape_type") == "lambda" or (
        config.get("class_name") == "Lambda" and isinstance(inner, dict) and isinstance(inner.get("function"), list)
    ):
        # Keras' legacy loader treats any list under a Lambda's "function"
        # as [bytecode, defaults, closure], with or without function_type.
        yield f"{where} holds a Python lambda as bytecode (Keras 2 format)"
    for value in config.values():
        yield from code_carriers(value, layer)


def custom_class_names(config: Any) -> list[str]:
    """The registered names (``package>Class``) of the classes a model
    config uses that Keras itself does not define, in order of appearance:
    Keras 3 writes them as ``registered_name``, Keras 2 as the class name."""
    found: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            registered, class_name = node.get("registered_name"), node.get("class_name")
            if isinstance(registered, str) and registered:
                found.setdefault(registered)
            elif isinstance(class_name, str) and ">" in class_name:
                found.setdefault(class_name)
            for value in node.values():
                walk(value)

    walk(config)
    return list(found)
