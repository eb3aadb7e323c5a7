"""Which framework handles what the user passed.

Standard library only: the pytest layer asks it at start-up which files are
models (``--softmax-model DIR`` finds them by suffix), long before any
framework may be imported.  A framework is one entry in :data:`FRAMEWORKS`:
its formats (suffixes, the file that marks a model directory) and the
module that adapts models, imported only when a check runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from . import python_files
from .base import SoftmaxSetupError
from .keras import config as keras_config
from .keras import formats as keras_formats
from .python_files import FactoryReference, is_python_file, split_factory

if TYPE_CHECKING:
    from .base import ModelAdapter

# The pytest layer reaches the adapters through this module: what it needs
# to parse ``path/to/file.py:factory`` is re-exported here.
__all__ = ["FRAMEWORKS", "FactoryReference", "adapt", "adapt_factory_file", "is_model_directory",
           "is_python_file", "model_suffixes", "quiet_native_logs", "runtime_description", "split_factory"]


@dataclass(frozen=True)
class Framework:
    name: str
    module: str  # exposes adapt(model, *, safe_mode) -> ModelAdapter
    model_suffixes: tuple[str, ...]
    directory_markers: tuple[str, ...]  # a directory holding one of these is a model
    # Quiets the framework's native start-up logs (standard library only:
    # it must run before the framework is imported).
    quiet_native_logs: Callable[[], None]
    # Whether an object is one of its models, asked without importing the
    # framework, and how messages name such a model.
    is_model_object: Callable[[object], bool]
    model_kind: str


FRAMEWORKS: tuple[Framework, ...] = (
    Framework("keras", "pytest_softmax.adapters.keras.loading", keras_formats.MODEL_SUFFIXES,
              keras_formats.DIRECTORY_MARKERS, keras_config.quiet_native_logs, keras_formats.is_model_object,
              keras_formats.MODEL_KIND),
)


def quiet_native_logs() -> None:
    """Keep every framework's native start-up noise out of test output,
    unless the user set its log level themselves (see ``docs/quiet.md``)."""
    for framework in FRAMEWORKS:
        framework.quiet_native_logs()


def model_suffixes() -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for f in FRAMEWORKS for s in f.model_suffixes))


def is_model_directory(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for f in FRAMEWORKS for m in f.directory_markers)


def _framework_for(model: object) -> Framework:
    """The framework whose formats match a path; for objects the first
    (Keras), whose adapter says plainly what it cannot check."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(os.fspath(model))
        for framework in FRAMEWORKS:
            if path.suffix.lower() in framework.model_suffixes or any(
                (path / m).exists() for m in framework.directory_markers
            ):
                return framework
    return FRAMEWORKS[0]


def adapt(model: object, *, safe_mode: bool = True) -> ModelAdapter:
    """The adapter for ``model`` (an adapter, a model object, a factory or a
    path); raises ``SoftmaxSetupError`` naming what was passed and what is
    accepted."""
    from .base import ModelAdapter

    if isinstance(model, ModelAdapter):
        return model
    adapter: ModelAdapter = import_module(_framework_for(model).module).adapt(model, safe_mode=safe_mode)
    return adapter


def adapt_factory_file(reference: FactoryReference, *, safe_mode: bool = True) -> ModelAdapter:
    """The adapter for the model a factory in a Python file builds
    (``path/to/file.py:factory``).  Naming the file is the user's opt-in to
    run it, so safe mode does not refuse the import; it still guards a model
    file the factory returns the path of."""
    built = python_files.build(reference)
    if not _is_model(built):
        kinds = " or ".join(f.model_kind for f in FRAMEWORKS)
        raise SoftmaxSetupError(
            f"{reference.label}() returned {python_files.article(built)}, not a model: return {kinds} "
            "(or the path of a model file)"
        )
    return adapt(built, safe_mode=safe_mode)


def _is_model(value: object) -> bool:
    from .base import ModelAdapter

    return (isinstance(value, (str, os.PathLike, ModelAdapter))
            or any(f.is_model_object(value) for f in FRAMEWORKS))


def runtime_description() -> str:
    """What will run the models, for the run's header (no framework import)."""
    return f"keras backend={keras_config.configured_backend()}"
