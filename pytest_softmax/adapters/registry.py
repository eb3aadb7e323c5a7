"""Which framework handles what the user passed.

Standard library only: the pytest layer asks it at start-up which files are
models (``--softmax-model DIR`` finds them by suffix), long before any
framework may be imported.  A framework is one entry in :data:`FRAMEWORKS`:
its formats (suffixes, the file that marks a model directory) and the
module that adapts models, imported only when a check runs.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .keras import config as keras_config
from .keras import formats as keras_formats
from .torch import formats as torch_formats

if TYPE_CHECKING:
    from .base import ModelAdapter


@dataclass(frozen=True)
class Framework:
    name: str
    module: str  # exposes adapt(model, *, safe_mode) -> ModelAdapter
    model_suffixes: tuple[str, ...]
    directory_markers: tuple[str, ...]  # a directory holding one of these is a model
    # An object whose class (or a base class) is defined in one of these
    # modules belongs to this framework: told apart without importing it.
    object_modules: tuple[str, ...] = ()


FRAMEWORKS: tuple[Framework, ...] = (
    # Keras first: on the torch backend a keras.Model is also a torch.nn.Module.
    Framework("keras", "pytest_softmax.adapters.keras.loading", keras_formats.MODEL_SUFFIXES,
              keras_formats.DIRECTORY_MARKERS, ("keras.", "tf_keras.", "tensorflow.")),
    Framework("torch", "pytest_softmax.adapters.torch.loading", torch_formats.MODEL_SUFFIXES, (),
              torch_formats.OBJECT_MODULES),
)


def model_suffixes() -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for f in FRAMEWORKS for s in f.model_suffixes))


def is_model_directory(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for f in FRAMEWORKS for m in f.directory_markers)


def _object_framework(model: object) -> Framework | None:
    """The framework defining the object's class or a base of it, most
    derived class first (a user's subclass of ``torch.nn.Module``)."""
    classes = model.__mro__ if isinstance(model, type) else type(model).__mro__
    for cls in classes:
        module = f"{getattr(cls, '__module__', '')}."
        for framework in FRAMEWORKS:
            if module.startswith(framework.object_modules):
                return framework
    return None


def _framework_for(model: object) -> Framework:
    """The framework whose formats match a path or whose classes the object
    is made of; else the first (Keras), whose adapter says plainly what it
    cannot check."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(os.fspath(model))
        for framework in FRAMEWORKS:
            if path.suffix.lower() in framework.model_suffixes or any(
                (path / m).exists() for m in framework.directory_markers
            ):
                return framework
        return FRAMEWORKS[0]
    return _object_framework(model) or FRAMEWORKS[0]


def _takes_no_arguments(factory: Any) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.default is inspect.Parameter.empty and p.kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) for p in parameters)


def _built_by_factory(model: object) -> object:
    """A zero-argument factory (a function, a lambda, a class) is called
    once and what it returns is dispatched; anything else is as passed (a
    framework's loader refuses callables that need arguments, naming them)."""
    if isinstance(model, (str, os.PathLike)) or not callable(model) or not _takes_no_arguments(model):
        return model
    if not isinstance(model, type) and _object_framework(model) is not None:
        return model  # a model object is callable too: it is not a factory
    from .base import SoftmaxSetupError

    try:
        built = model()
    except Exception as exc:
        name = getattr(model, "__name__", repr(model))
        raise SoftmaxSetupError(f"model factory {name}() raised {type(exc).__name__}: {exc}") from exc
    if isinstance(built, (str, os.PathLike)) or _object_framework(built) is not None:
        return built

    def returned() -> object:  # the framework's loader names what the factory returned
        return built

    returned.__name__ = getattr(model, "__name__", "factory")
    return returned


def adapt(model: object, *, safe_mode: bool = True) -> ModelAdapter:
    """The adapter for ``model`` (an adapter, a model object, a factory or a
    path); raises ``SoftmaxSetupError`` naming what was passed and what is
    accepted."""
    from .base import ModelAdapter

    if isinstance(model, ModelAdapter):
        return model
    model = _built_by_factory(model)
    if isinstance(model, ModelAdapter):
        return model
    adapter: ModelAdapter = import_module(_framework_for(model).module).adapt(model, safe_mode=safe_mode)
    return adapter


def runtime_description() -> str:
    """What will run the models, for the run's header (no framework import)."""
    return f"keras backend={keras_config.configured_backend()}"
