"""Zero-code checks: one generated test item per model file.

``--softmax-model PATH`` (repeatable) and the ini key ``softmax_models`` name
model files, SavedModel directories, directories holding them, or globs.  Each
model found becomes a :class:`SoftmaxModelItem` with the node id
``softmax::<path relative to the rootdir>``, checked with the settings in force
(command line > ini > default), so ``pytest --softmax-model clf.keras`` in an
empty folder checks that one file.  The items are ordinary pytest items:
``-k``, ``-m``, ``--lf``, ``-x``, ``--deselect`` and pytest-xdist treat them
like any test.

Standard library and pytest only: this module is imported at start-up.
Which files are models is the adapter registry's knowledge (by suffix and
directory marker, without importing any framework).

``path/to/file.py:factory`` names a zero-argument function in a Python file
that builds the model: the item ``softmax::path/to/file.py:factory`` imports
the file when it runs (never at collection), and naming the file is the
user's opt-in to run its code.  A directory is never searched for ``.py``
files: only files named with a factory are imported.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..adapters.registry import (
    FactoryReference,
    bad_factory_name,
    is_model_directory,
    is_python_file,
    model_suffixes,
    split_factory,
)
from ..settings import MarkerSettings, Mode, checking_in, resolve
from .keys import SETUP_PREFIX, replay_command_key
from .runner import run_item_check, session_settings, with_cause

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

MODEL_SUFFIXES = model_suffixes()
NODE_PREFIX = "softmax"
MODELS_INI = "softmax_models"
MODELS_HELP = (
    "model files (.keras, .h5), SavedModel directories, directories holding them, globs, or "
    "path/to/file.py:factory (a zero-argument function in a Python file that returns the model), "
    "each checked as a generated test item `softmax::<path>` with the settings in force "
    "(flag: repeatable, relative to the current directory; ini: relative to the rootdir, "
    "used when pytest is given no file arguments, like testpaths)"
)
_GLOB_CHARS = re.compile(r"[*?\[]")
# What `-k` accepts as one identifier (pytest's expression grammar).
_K_IDENT = re.compile(r"[\w:+\-.\[\]\\/]+")


@dataclass(frozen=True)
class ModelSource:
    """One model to check: where it is and where the user named it."""

    path: Path
    name: str  # the path relative to the rootdir, POSIX style (":factory" added): the item's name
    origin: str  # "--softmax-model" or "ini softmax_models"
    factory: FactoryReference | None = None  # set for path/to/file.py:factory


models_key = pytest.StashKey[tuple[ModelSource, ...]]()


def add_options(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    group.addoption(
        "--softmax-model", action="append", dest="softmax_models", default=[],
        metavar="PATH", help=MODELS_HELP,
    )
    parser.addini(MODELS_INI, help=MODELS_HELP, type="args", default=[])


def configure(config: pytest.Config) -> None:
    """Find every model named by the flag and the ini key; a name that finds
    nothing stops the run at start-up, before any test runs."""
    found: dict[tuple[Path, str | None], ModelSource] = {}
    for raw in config.getoption("softmax_models", None) or []:
        for source in _expand(raw, config.invocation_params.dir, "--softmax-model", config.rootpath):
            found.setdefault(_identity(source), source)
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        where = f"ini {MODELS_INI}" + (f" in {config.inipath}" if config.inipath else "")
        for raw in config.getini(MODELS_INI) or []:
            for source in _expand(raw, config.rootpath, where, config.rootpath):
                found.setdefault(_identity(source), source)
    config.stash[models_key] = tuple(found.values())
    warn_if_ini_moved(config)


# pytest's config files, in the order it looks for them in each directory,
# and the text that makes a shared file (pyproject, tox, setup.cfg) count.
_INI_FILES = (
    ("pytest.toml", ""), (".pytest.toml", ""), ("pytest.ini", ""), (".pytest.ini", ""),
    ("pyproject.toml", "[tool.pytest"), ("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]"),
)


def warn_if_ini_moved(config: pytest.Config) -> None:
    """``--softmax-model ../elsewhere/m.keras`` (two arguments) is read as a
    test path when pytest picks its rootdir, before this plugin's options
    are known: the rootdir moves to the common ancestor and the project's
    ini file can silently stop applying.  Say so, and how to avoid it."""
    args = [str(a) for a in config.invocation_params.args]
    if any(a in ("-c", "--config-file", "--rootdir") or a.startswith(("--config-file=", "--rootdir="))
           for a in args):
        return  # the user chose the ini file or the rootdir
    here = config.invocation_params.dir
    outside = [value for flag, value in itertools.pairwise(args)
               if flag == "--softmax-model" and not _is_under(here / os.path.expanduser(value), here)]
    expected = _ini_from(here)
    actual = Path(config.inipath).resolve() if config.inipath else None
    if not outside or expected == actual:
        return
    config.issue_config_time_warning(pytest.PytestConfigWarning(
        f"pytest-softmax: --softmax-model {outside[0]} lies outside {here}, and given as a separate "
        f"argument pytest also took it as a test path: the rootdir moved to {config.rootpath} and the ini "
        f"file in use is {actual or 'none'} instead of {expected or 'none'}, so the settings in "
        f"{expected or 'the project ini file'} do not apply. Write --softmax-model={outside[0]} (with =), "
        "or pass --rootdir / -c to choose"
    ), stacklevel=2)


def _is_under(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def _ini_from(directory: Path) -> Path | None:
    """The config file pytest would use when run from ``directory`` with no
    path arguments (its search, in its order, upwards)."""
    for folder in (directory.resolve(), *directory.resolve().parents):
        for name, needs in _INI_FILES:
            candidate = folder / name
            if candidate.is_file() and (not needs or needs in _read(candidate)):
                return candidate
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def configured_models(config: pytest.Config) -> tuple[ModelSource, ...]:
    return config.stash.get(models_key, ())


def _identity(source: ModelSource) -> tuple[Path, str | None]:
    return source.path, source.factory.factory if source.factory else None


def _expand(raw: str, base: Path, origin: str, rootpath: Path) -> list[ModelSource]:
    pattern = os.path.expanduser(raw)
    factory = split_factory(pattern)
    if factory is not None:
        return [_factory_source(raw, base / factory[0], factory[1], origin, rootpath)]
    if _GLOB_CHARS.search(pattern):
        matches = sorted(glob.glob(pattern, root_dir=base, recursive=True))
        if not matches:
            raise pytest.UsageError(f"pytest-softmax: {origin}: {raw!r} matches no file or directory")
        candidates = [base / m for m in matches]
    else:
        candidate = base / pattern
        if not candidate.exists():
            raise pytest.UsageError(
                f"pytest-softmax: {origin}: {raw!r} does not exist "
                f"(looked for {candidate}); expected a .keras / .h5 file or a SavedModel directory"
            )
        if candidate.is_file() and is_python_file(candidate):
            raise pytest.UsageError(
                f"pytest-softmax: {origin}: {raw!r} is a Python file: name the function in it that builds "
                f"the model, {raw}:build_model (a zero-argument function returning the model)"
            )
        candidates = [candidate]
    paths: list[Path] = []
    named = not _GLOB_CHARS.search(pattern)
    visited: set[Path] = set()
    for candidate in candidates:
        paths.extend(_models_in(candidate.resolve(), visited, named=named))
    paths = list(dict.fromkeys(paths))
    if not paths:
        raise pytest.UsageError(
            f"pytest-softmax: {origin}: {raw!r} holds no model "
            f"({', '.join(MODEL_SUFFIXES)} files or SavedModel directories)"
        )
    return [ModelSource(path=p, name=_display(p, rootpath), origin=origin) for p in paths]


def _factory_source(raw: str, path: Path, factory: str, origin: str, rootpath: Path) -> ModelSource:
    """``path/to/file.py:factory``: checked at start-up as far as can be
    without running the file (it is imported when its item runs)."""
    problem = bad_factory_name(raw.rpartition(":")[0], factory)
    if problem is not None:
        raise pytest.UsageError(f"pytest-softmax: {origin}: {raw!r}: {problem}")
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise pytest.UsageError(
            f"pytest-softmax: {origin}: {raw!r}: the file {what} (looked for {path}); "
            "expected path/to/file.py:factory naming an existing Python file"
        )
    display = _display(path.resolve(), rootpath)
    reference = FactoryReference(path=path.resolve(), factory=factory, display=display)
    return ModelSource(path=reference.path, name=reference.label, origin=origin, factory=reference)


def _models_in(path: Path, visited: set[Path], *, named: bool = False) -> list[Path]:
    """A model file or SavedModel itself, or the models found below a directory
    (sorted, so every xdist worker collects the same items in the same order).
    Each real directory is walked once: a symlink back up the tree (``ln -s .
    again``) neither repeats models nor loops."""
    path = path.resolve()
    if path.is_file():
        # A file named explicitly is checked whatever its suffix: the loader
        # then says why it is not a model, instead of the file being ignored.
        return [path] if named or path.suffix.lower() in MODEL_SUFFIXES else []
    if path in visited:
        return []
    visited.add(path)
    if is_model_directory(path):
        return [path]
    found: list[Path] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            found.extend(_models_in(child, visited))
        elif child.suffix.lower() in MODEL_SUFFIXES:
            found.append(child.resolve())
    return found


def is_link_loop(collection_path: Path, config: pytest.Config) -> bool | None:
    """pytest's own walk of the test directories follows a symlink back up
    the tree (``ln -s . again``) until the OS says "too many levels": one
    such link repeats the directory forty times, two make the walk
    exponential and collection never ends.  In a run that checks models
    (which often sit in such folders), such a link is skipped."""
    if not configured_models(config) or not collection_path.is_symlink():
        return None
    try:
        target = collection_path.resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling or self-referencing link
        return None
    parent = collection_path.parent.resolve()
    return True if target.is_dir() and (target == parent or target in parent.parents) else None


def _display(path: Path, rootpath: Path) -> str:
    root = rootpath.resolve()
    if path.anchor != root.anchor:  # another drive: no relative path exists
        return printable(path.as_posix())
    return printable(Path(os.path.relpath(path, root)).as_posix())


def printable(name: str) -> str:
    """A file name as text every output can carry: a byte that is not
    UTF-8 (which Python holds as a lone surrogate) is spelled ``\\xff``, so
    the node id, the terminal, junit and the JSON report all show the same
    plain name instead of a raw byte or an encoding error."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file-system decode produces
        raw = name.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


class SoftmaxModelItem(pytest.Item):
    """A generated check of one model file, run with the settings in force."""

    def __init__(self, *, source: ModelSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        # `-k softmax_model` selects every generated check.
        self.extra_keyword_matches.add("softmax_model")
        self.stash[replay_command_key] = self.replay_command()

    def runtest(self) -> None:
        # The check goes through the same code path as a marked test, so
        # settings, seed, example database namespace and report recording
        # are shared; the model is loaded there (once per process).
        run_item_check(self, self._model(), MarkerSettings(), mode=Mode.MODEL_ITEM)

    def _model(self) -> object:
        """The model file's path, or the model a factory in a Python file
        builds (imported now, not at collection: ``--collect-only`` runs
        no user code beyond pytest's own)."""
        if self.source.factory is None:
            return self.source.path
        from ..adapters.registry import adapt_factory_file

        settings = resolve(session_settings(self.config), MarkerSettings(), mode=Mode.MODEL_ITEM)
        with checking_in(Mode.MODEL_ITEM):  # fixes are phrased as flags and ini keys
            return adapt_factory_file(self.source.factory, safe_mode=settings.safe_mode)

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None,
    ) -> str | TerminalRepr:
        from ..errors import SoftmaxInvariantError, SoftmaxSetupError

        if isinstance(excinfo.value, SoftmaxInvariantError):
            return str(excinfo.value)
        if isinstance(excinfo.value, SoftmaxSetupError):
            return with_cause(f"{SETUP_PREFIX}{excinfo.value}", excinfo.value, self.config)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.source.path, None, f"softmax check of {self.source.name}"

    def replay_command(self) -> str:
        """The command line that reruns this check alone, from the rootdir."""
        select = f" -k {shlex.quote(self.name)}" if _K_IDENT.fullmatch(self.name) else ""
        return f"pytest --softmax-model {shlex.quote(self.source.name)}{select}"


class SoftmaxModels(pytest.Collector):
    """The virtual collector ``softmax`` holding the generated items, so
    they get node ids ``softmax::<path>`` and are counted like any test."""

    def collect(self) -> list[pytest.Item]:
        return [
            SoftmaxModelItem.from_parent(self, name=source.name, path=source.path, source=source)
            for source in configured_models(self.config)
        ]


def add_items(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Collect the generated items and append them to the collected ones.
    Runs first in pytest_collection_modifyitems, so selection (-k, -m, --lf,
    --deselect) applies to them like to any test; goes through the public
    collection hooks so reporters count and list them."""
    if not configured_models(session.config):
        return
    collector = SoftmaxModels.from_parent(session, name=NODE_PREFIX, nodeid=NODE_PREFIX,
                                          path=session.config.rootpath)
    collect_report = session.ihook.pytest_make_collect_report(collector=collector)
    session.ihook.pytest_collectreport(report=collect_report)
    for node in collect_report.result:
        if isinstance(node, pytest.Item):
            session.ihook.pytest_itemcollected(item=node)
            items.append(node)
