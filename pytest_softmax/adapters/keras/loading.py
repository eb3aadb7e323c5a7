"""From what the user passed (a model, a factory, a path) to an adapter.

A model file is inspected before Keras reads it (``safe_loading``) and
loaded once per process per file content: tests that share a file share
the loaded model and its traced forward pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from ..base import ModelAdapter, SoftmaxSetupError
from ..base.held_output import held_output
from .config import quiet_native_logs, wants_import_notices
from .errors import first_line
from .formats import MODEL_SUFFIXES, SAVED_MODEL_MARKER
from .safe_loading import custom_class_names, inspect_model_file, opt_in

ACCEPTED = (
    "a keras.Model, a zero-argument callable returning one, or a path to a .keras / .h5 file "
    "or a SavedModel directory"
)

# Loaded models by file identity: a file replaced in place (same path, even
# the same mtime) has another inode, size, ctime or content and is loaded anew.
_LOADED: dict[tuple[Any, ...], Any] = {}


def _keras() -> Any:
    if "keras" not in sys.modules:
        # A model file checked in a bare folder, or check_softmax("m.keras")
        # in a script: the plugin is the first to import Keras (and so
        # TensorFlow).  Quiet its C++ logs first, as the pytest layer does,
        # and hold back the start-up notices no log level reaches.
        quiet_native_logs()
        with contextlib.nullcontext() if wants_import_notices() else held_output():
            import keras
    import keras

    return keras


# Files up to this size are also identified by a hash of their bytes: a
# rewrite of the same size whose mtime was put back (os.utime, a copy tool
# preserving times) keeps inode, size and mtime, and coarse file-system
# clocks can even keep the ctime.  Hashing a few MB costs a few ms.
HASHED_FILE_BYTES = 32 * 2**20


def _identity(path: Path, safe_mode: bool) -> tuple[Any, ...]:
    marker = path / SAVED_MODEL_MARKER if path.is_dir() else path
    content = marker if marker.exists() else path
    stat = content.stat()
    return (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
            _digest(content, stat.st_size), safe_mode)


def _digest(path: Path, size: int) -> str | None:
    if not path.is_file() or size > HASHED_FILE_BYTES:
        return None
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_path(path: Path, *, safe_mode: bool) -> Any:
    """Load a model file or SavedModel directory, once per process."""
    if not path.exists():
        raise SoftmaxSetupError(f"model path {str(path)!r} does not exist; expected {ACCEPTED}")
    key = _identity(path, safe_mode)
    if key not in _LOADED:
        _LOADED[key] = _load_directory(path, safe_mode) if path.is_dir() else _load_file(path, safe_mode)
    return _LOADED[key]


def _load_directory(path: Path, safe_mode: bool) -> Any:
    if not (path / SAVED_MODEL_MARKER).exists():
        raise SoftmaxSetupError(
            f"model path {str(path)!r} is a directory but not a SavedModel "
            f"(it has no {SAVED_MODEL_MARKER}); pass a .keras / .h5 file or a SavedModel directory"
        )
    _require_tensorflow_backend(path)
    from .saved_model import load_saved_model

    return load_saved_model(path, safe_mode=safe_mode)


def _require_tensorflow_backend(path: Path) -> None:
    """A SavedModel is a TensorFlow graph: only the TensorFlow backend runs it."""
    backend = str(_keras().backend.backend())
    if backend != "tensorflow":
        raise SoftmaxSetupError(
            f"model path {str(path)!r} is a TensorFlow SavedModel directory, which only the TensorFlow backend "
            f"can run, and Keras runs on {backend!r} here (KERAS_BACKEND); check it with KERAS_BACKEND=tensorflow, "
            "or save the model as a .keras file (model.save('model.keras')), which every backend loads"
        )


def _load_file(path: Path, safe_mode: bool) -> Any:
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise SoftmaxSetupError(
            f"model path {str(path)!r} is not a .keras or .h5 file nor a SavedModel directory"
        )
    # Reads the raw file first: refuses code in safe mode and names what a
    # non-model file is, before Keras deserialises anything.
    config = inspect_model_file(path, safe_mode=safe_mode)
    try:
        return _keras().saving.load_model(str(path), compile=False, safe_mode=safe_mode)
    except Exception as exc:  # Keras raises many types for unreadable files
        unregistered = _unregistered_classes(config)
        if unregistered:
            raise SoftmaxSetupError(_unregistered_message(path, unregistered)) from exc
        hint = f"; if you trust this file, {opt_in()}" if safe_mode and "safe_mode" in str(exc) else ""
        raise SoftmaxSetupError(f"could not load model file {str(path)!r}: {first_line(exc)}{hint}") from exc


def _unregistered_classes(config: Any) -> list[str]:
    """Custom classes the file names that no imported module registered:
    Keras then fails with a TypeError naming neither the class nor the fix."""
    get = _keras().saving.get_registered_object
    return [name for name in custom_class_names(config) if get(name) is None]


def _unregistered_message(path: Path, names: list[str]) -> str:
    listed = ", ".join(names)
    package = names[0].split(">")[0] if ">" in names[0] else "mypkg"
    return (
        f"could not load model file {str(path)!r}: it uses custom class{'es' if len(names) > 1 else ''} "
        f"{listed}, not registered in this process. Import the module that defines "
        f"{'them' if len(names) > 1 else 'it'} (decorated with "
        f"@keras.saving.register_keras_serializable(package={package!r})) before the check, "
        "e.g. `import mypackage.layers` in conftest.py"
    )


def resolve_model(source: object, *, safe_mode: bool = True) -> Any:
    """A Keras model (or SavedModel adapter) from what the user passed."""
    if isinstance(source, (str, os.PathLike)):
        return load_path(Path(os.fspath(source)), safe_mode=safe_mode)
    keras = _keras()
    if isinstance(source, keras.Model):
        return source
    if callable(source) and not isinstance(source, keras.layers.Layer):
        refuse_non_factory(source)
        try:
            built = source()
        except Exception as exc:
            name = getattr(source, "__name__", repr(source))
            raise SoftmaxSetupError(f"model factory {name}() raised {type(exc).__name__}: {exc}") from exc
        if isinstance(built, (str, os.PathLike, keras.Model)):
            return resolve_model(built, safe_mode=safe_mode)
        raise SoftmaxSetupError(
            f"model factory {getattr(source, '__name__', source)!r} returned "
            f"{type(built).__name__}, not a keras.Model"
        )
    raise SoftmaxSetupError(f"cannot check {type(source).__name__} {source!r:.80}: expected {ACCEPTED}")


def refuse_non_factory(source: object) -> None:
    """A callable is taken as a model factory only if it can be called with
    no argument.  A ``tf.Module``, a forward function ``f(x)`` or a callable
    object computing outputs is recognised *before* anything is called: the
    user's code must not run only to be misreported as a broken factory."""
    # An object can only be a tf.Module if TensorFlow is already imported;
    # importing it here would load TensorFlow into a JAX or PyTorch process.
    tf = sys.modules.get("tensorflow")
    what = type(source).__name__
    if tf is not None and isinstance(source, tf.Module) and not isinstance(source, type):
        raise SoftmaxSetupError(
            f"model= {what} is a tf.Module, not a keras.Model: pytest-softmax checks Keras models; save the "
            "module with tf.saved_model.save(module, path, signatures=...) and pass that directory, or wrap "
            f"its computation in a keras.Model. Expected {ACCEPTED}"
        )
    required = _required_parameters(source)
    if not required:
        return
    if inspect.isfunction(source) or inspect.ismethod(source):
        described = f"function {getattr(source, '__qualname__', what)}({', '.join(required)}) takes arguments"
    elif isinstance(source, type):
        described = f"class {source.__qualname__} needs arguments ({', '.join(required)}) to be built"
    else:
        described = f"{what} object is a callable that takes arguments ({', '.join(required)})"
    raise SoftmaxSetupError(
        f"model= {described}: it is not a model and not a zero-argument factory, so it was not called; "
        "pass the keras.Model itself, a factory that takes no arguments and returns one (e.g. "
        f"functools.partial or a lambda around this one), or a model file. Expected {ACCEPTED}"
    )


def _required_parameters(source: object) -> list[str]:
    """Names of the parameters a call must supply; none when unknown."""
    try:
        signature = inspect.signature(source)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # builtins and C callables: let the call decide
        return []
    return [
        name for name, p in signature.parameters.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                       inspect.Parameter.KEYWORD_ONLY)
    ]


def adapt(source: object, *, safe_mode: bool = True) -> ModelAdapter:
    model = resolve_model(source, safe_mode=safe_mode)
    if isinstance(model, ModelAdapter):  # a SavedModel signature adapts itself
        return model
    from .adapter import KerasModelAdapter

    return KerasModelAdapter(model)
