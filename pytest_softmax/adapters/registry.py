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
from typing import TYPE_CHECKING, Any

from . import python_files
from .base import SoftmaxSetupError
from .keras import config as keras_config
from .keras import formats as keras_formats
from .python_files import FactoryReference, bad_factory_name, is_python_file, split_factory
from .torch import formats as torch_formats

if TYPE_CHECKING:
    from .base import ModelAdapter

# The pytest layer reaches the adapters through this module: what it needs
# to parse ``path/to/file.py:factory`` is re-exported here.
__all__ = ["FRAMEWORKS", "FactoryReference", "adapt", "adapt_factory_file", "bad_factory_name", "is_model_directory",
           "is_python_file", "model_suffixes", "quiet_native_logs", "runtime_description", "split_factory"]


@dataclass(frozen=True)
class Framework:
    name: str
    module: str  # exposes adapt(model, *, safe_mode) -> ModelAdapter
    model_suffixes: tuple[str, ...]
    directory_markers: tuple[str, ...]  # a directory holding one of these is a model
    # An object whose class (or a base class) is defined in one of these
    # modules belongs to this framework: told apart without importing it.
    object_modules: tuple[str, ...]
    # Whether an object is one of its models, asked without importing the
    # framework, and how messages name such a model.
    is_model_object: Callable[[object], bool]
    model_kind: str
    # Quiets the framework's native start-up logs (standard library only:
    # it must run before the framework is imported).
    quiet_native_logs: Callable[[], None] = lambda: None


FRAMEWORKS: tuple[Framework, ...] = (
    # Keras first: on the torch backend a keras.Model is also a torch.nn.Module.
    Framework("keras", "pytest_softmax.adapters.keras.loading", keras_formats.MODEL_SUFFIXES,
              keras_formats.DIRECTORY_MARKERS, keras_formats.OBJECT_MODULES, keras_formats.is_model_object,
              keras_formats.MODEL_KIND, keras_config.quiet_native_logs),
    Framework("torch", "pytest_softmax.adapters.torch.loading", torch_formats.MODEL_SUFFIXES, (),
              torch_formats.OBJECT_MODULES, torch_formats.is_model_object, torch_formats.MODEL_KIND),
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
    return python_files.required_parameters(factory) == []


def _built_by_factory(model: object) -> object:
    """A zero-argument factory (a function, a lambda, a class) is called
    once and what it returns is dispatched; anything else is as passed (a
    framework's loader refuses callables that need arguments, naming them)."""
    if isinstance(model, (str, os.PathLike)) or not callable(model) or not _takes_no_arguments(model):
        return model
    if not isinstance(model, type) and _object_framework(model) is not None:
        return model  # a model object is callable too: it is not a factory
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
    reference = _factory_reference(model)
    if reference is not None:
        return adapt_factory_file(reference, safe_mode=safe_mode)
    model = _built_by_factory(model)
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


def _factory_reference(model: object) -> FactoryReference | None:
    """``"path/to/file.py:factory"`` given as ``model=`` (relative to the
    working directory, as any model path there is); ``None`` for anything
    else.  Writing it is the opt-in to run the file, as on the command line."""
    if not isinstance(model, (str, os.PathLike)):
        return None
    split = split_factory(os.path.expanduser(os.fspath(model)))
    if split is None:
        return None
    file, factory = split
    problem = bad_factory_name(file, factory)
    if problem is not None:
        raise SoftmaxSetupError(f"model={os.fspath(model)!r}: {problem}")
    return FactoryReference(path=Path(file).resolve(), factory=factory, display=file)


def _is_model(value: object) -> bool:
    from .base import ModelAdapter

    if isinstance(value, (str, os.PathLike, ModelAdapter)):
        return True
    # Asked of the framework the object belongs to: on Keras' torch backend a
    # Keras layer is also a torch.nn.Module, but it is not a model.
    framework = _object_framework(value)
    return framework is not None and framework.is_model_object(value)


def runtime_description() -> str:
    """What will run the models, for the run's header (no framework import)."""
    return f"keras backend={keras_config.configured_backend()}"
