"""A model built by a factory in a Python file: ``path/to/file.py:factory``.

Naming a ``.py`` file and a factory (``--softmax-model``, ini
``softmax_models``) is the user's explicit opt-in to run that code, as
pytest runs a ``conftest.py``: safe mode, which guards model *files* against
code hidden in them, does not refuse it.  A directory scan never imports a
``.py`` file; only a file named with its factory is imported.

The file is imported under a unique module name that is in ``sys.modules``
only while the file runs (``dataclasses`` and ``typing`` look a module up
there during its import), and ``sys.path`` is left as the user set it.
What the import prints is held back, as pytest holds back what a test
module prints while it is collected, and shown only if the import fails:
TensorFlow writes its start-up notices (absl, oneDNN, CUDA probes) to file
descriptor 2 before any log level applies, and they would otherwise be
the first lines under the check's result.

Standard library only and framework-neutral: what the factory returns goes
to the registry, which hands it to the framework that owns it.  Every
failure is a :class:`SoftmaxSetupError` naming the file, the factory and
the fix, never a traceback.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import inspect
import itertools
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .base import SoftmaxSetupError
from .base.held_output import held_output

PYTHON_SUFFIX = ".py"
FULL_TRACEBACK = "pytest --tb=long shows the full traceback"

_module_numbers = itertools.count()
# Files already imported in this process, by path and content stamp: the
# items of two factories in one file import it once.
_IMPORTED: dict[tuple[str, int, int], ModuleType] = {}


@dataclass(frozen=True)
class FactoryReference:
    """``file.py:factory`` as the user wrote it; ``display`` is the file's
    name in messages (relative to the rootdir)."""

    path: Path
    factory: str
    display: str

    @property
    def label(self) -> str:
        return f"{self.display}:{self.factory}"


def split_factory(text: str) -> tuple[str, str] | None:
    """``('dir:1/file.py', 'build')`` from ``'dir:1/file.py:build'``: split
    on the last colon, and only when what precedes it names a ``.py`` file,
    so a colon inside a directory name is part of the path."""
    head, colon, name = text.rpartition(":")
    if not colon or not head.lower().endswith(PYTHON_SUFFIX):
        return None
    return head, name


def bad_factory_name(file: str, factory: str) -> str | None:
    """Why ``factory`` cannot name a function in ``file`` (for a message
    prefixed with where it was written), or ``None`` when it can."""
    if factory.isidentifier():
        return None
    return ("after the colon comes the name of the function that builds the model, a Python identifier "
            f"({file}:build_model)")


def is_python_file(path: Path) -> bool:
    return path.suffix.lower() == PYTHON_SUFFIX


def build(reference: FactoryReference) -> object:
    """Import the file, find the factory, call it; what it returned."""
    factory = find_factory(import_file(reference), reference)
    refuse_arguments(factory, reference)
    try:
        built = factory()
    except Exception as exc:  # the user's code: any exception is theirs
        raise SoftmaxSetupError(
            f"{reference.label}() raised {_quoted(exc)}{_where(exc, reference)}: fix the factory so it "
            f"builds the model ({FULL_TRACEBACK})"
        ) from exc
    if built is None:
        raise SoftmaxSetupError(
            f"{reference.label}() returned None, not a model: end the factory with `return model` "
            "(is the return statement missing?)"
        )
    return built


def import_file(reference: FactoryReference) -> ModuleType:
    path = reference.path
    if not path.is_file():
        raise SoftmaxSetupError(
            f"{reference.label}: the file {reference.display} does not exist (looked for {path}); "
            "name an existing Python file, path/to/file.py:factory"
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _IMPORTED:
        _IMPORTED[key] = _execute(path, reference)
    return _IMPORTED[key]


def _execute(path: Path, reference: FactoryReference) -> ModuleType:
    stem = re.sub(r"\W", "_", path.stem)
    name = f"pytest_softmax_factory_{next(_module_numbers)}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SoftmaxSetupError(f"{reference.label}: {reference.display} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with held_output():  # written out if the import fails
            spec.loader.exec_module(module)
    # The user's code raises what it likes; a script's sys.exit() must not end the run.
    except (Exception, SystemExit) as exc:
        raise SoftmaxSetupError(_import_failure(exc, reference)) from exc
    finally:
        sys.modules.pop(name, None)  # the file may have removed itself
    return module


def _import_failure(exc: BaseException, reference: FactoryReference) -> str:
    text = (f"{reference.label}: importing {reference.display} raised {_quoted(exc)}"
            f"{_where(exc, reference)}; fix the file ({FULL_TRACEBACK})")
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if isinstance(exc, SystemExit):
        text += (". The file runs as a script when imported: put that work under "
                 "`if __name__ == \"__main__\":`, so importing it only defines the factory")
    if missing:
        text += (f". The file is imported without changing sys.path: if {missing!r} sits beside it, make it "
                 f"importable (pytest's `pythonpath = {reference.path.parent}` ini option, or install it)")
    return text


def find_factory(module: ModuleType, reference: FactoryReference) -> Callable[[], object]:
    try:
        found = getattr(module, reference.factory)
    except AttributeError:
        raise SoftmaxSetupError(
            f"{reference.label}: {reference.display} has no {reference.factory!r}; "
            f"{_suggestions(module, reference)}"
        ) from None
    if not callable(found):
        raise SoftmaxSetupError(
            f"{reference.label} is {article(found)}, not callable: name a function that takes no arguments "
            "and returns the model (def build_model(): ...)"
        )
    if not _is_factory(found):
        # A model object is callable (on inputs): calling it with nothing
        # would fail inside the framework and be misreported.
        raise SoftmaxSetupError(
            f"{reference.label} is {article(found)} object, not a factory: name a function that takes no "
            f"arguments and returns it (def build_model(): return {reference.factory})"
        )
    factory: Callable[[], object] = found
    return factory


def _is_factory(value: object) -> bool:
    return (inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value)
            or inspect.isclass(value) or isinstance(value, functools.partial))


def _suggestions(module: ModuleType, reference: FactoryReference) -> str:
    names = [n for n in vars(module) if not n.startswith("__")]
    close = difflib.get_close_matches(reference.factory, names, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(n) for n in close) + "?"
    defined = [n for n, v in vars(module).items()
               if inspect.isfunction(v) and v.__module__ == module.__name__ and not n.startswith("_")]
    if defined:
        return "functions defined there: " + ", ".join(defined)
    return "it defines no function: add one that builds and returns the model"


def refuse_arguments(factory: Callable[..., object], reference: FactoryReference) -> None:
    required = required_parameters(factory)  # None: a builtin without a signature, the call decides
    if required:
        raise SoftmaxSetupError(
            f"{reference.label}({', '.join(required)}) takes arguments, and a factory is called with none: "
            "give them defaults, or add a zero-argument function that calls it "
            f"(def build(): return {reference.factory}({', '.join('...' for _ in required)}))"
        )


def required_parameters(factory: object) -> list[str] | None:
    """The parameters a call must fill (no default, not ``*args``/``**kwargs``);
    None when ``factory`` has no signature Python can read."""
    try:
        signature = inspect.signature(factory)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.KEYWORD_ONLY)
    return [name for name, p in signature.parameters.items()
            if p.default is inspect.Parameter.empty and p.kind in positional]


def _quoted(exc: BaseException) -> str:
    # A SyntaxError's str() repeats the file and line that _where gives.
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _where(exc: BaseException, reference: FactoryReference) -> str:
    """`` (at file.py:12)``: the last line of the user's file the exception
    passed through (a syntax error's own line), else the line that raised."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f" (at {_short(exc.filename, reference)}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    mine = [f for f in frames if _same_file(f.filename, reference.path)]
    frame = mine[-1] if mine else frames[-1]
    return f" (at {_short(frame.filename, reference)}:{frame.lineno})"


def _same_file(filename: str, path: Path) -> bool:
    try:
        return Path(filename).resolve() == path.resolve()
    except OSError:
        return False


def _short(filename: str, reference: FactoryReference) -> str:
    return reference.display if _same_file(filename, reference.path) else filename


def article(value: Any) -> str:
    """``a Dense``, ``an int``: a value's type for messages."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
