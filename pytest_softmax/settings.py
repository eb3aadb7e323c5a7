"""Settings of pytest-softmax: what each one means, how it is parsed, and in
which order the places a user can set it are consulted.

This module is imported at pytest start-up, so it uses the standard library
only. Every setting is resolved in one place (:func:`resolve`), in one order:
marker argument > command line > ini file > dtype-aware default.  An unset
value is ``None`` all the way through; defaults are applied last.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from .tolerance import SUPPORTED_DTYPES

DEFAULT_RTOL = 0.0
DEFAULT_MAX_EXAMPLES = 100
DEFAULT_BATCH_SIZE = 32


class SettingError(ValueError):
    """A setting has a value that cannot be used; the message says where it
    came from and how to fix it."""


def parse_tolerance(raw: object) -> float:
    """A finite, non-negative float."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a number")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a number; use a non-negative float such as 1e-5") from None
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{raw!r} is not finite; use a non-negative float such as 1e-5")
    if value < 0:
        raise ValueError(f"{raw!r} is negative; a tolerance must be >= 0")
    return value


def parse_positive_int(raw: object) -> int:
    """A whole number >= 1."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a whole number")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(f"{raw!r} is not a whole number")
        raw = int(raw)
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number; use an integer >= 1") from None
    if value < 1:
        raise ValueError(f"{raw!r} must be at least 1")
    return value


def parse_bool(raw: object) -> bool:
    """true/false, yes/no, 1/0, on/off."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{raw!r} is not a boolean; use true or false")


def parse_axis_text(raw: object) -> int:
    """An integer axis, e.g. -1 or 1."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not an integer axis; use e.g. -1")
    try:
        return raw if isinstance(raw, int) else int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer axis; use e.g. -1 or 1") from None


def parse_output_list(raw: object) -> tuple[str | int, ...]:
    """Output names or indices, separated by commas (or given as a list):
    ``probs`` or ``probs, 2``; a whole number is an index."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw).replace(",", " ").split()
    parsed: list[str | int] = []
    for item in items:
        text = str(item).strip()
        if text:
            parsed.append(int(text) if text.lstrip("-").isdigit() else text)
    if not parsed:
        raise ValueError(f"{raw!r} names no output; use output names or indices, e.g. probs or probs,logits")
    return tuple(parsed)


@dataclass(frozen=True)
class Setting:
    """One user-facing setting: its ini key, its flag (if any) and one help
    text shared by both, so the two can never drift apart."""

    name: str
    help: str
    parse: Callable[[object], Any]
    has_flag: bool = True
    metavar: str = "VALUE"

    @property
    def ini_key(self) -> str:
        return f"softmax_{self.name}"

    @property
    def flag(self) -> str:
        return "--softmax-" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "atol",
        "absolute tolerance on |row sum - 1| and on the [0, 1] range "
        "(default: derived from the output dtype and the number of classes)",
        parse_tolerance,
        metavar="FLOAT",
    ),
    Setting(
        "rtol",
        f"relative tolerance added to atol (default: {DEFAULT_RTOL})",
        parse_tolerance,
        metavar="FLOAT",
    ),
    Setting(
        "max_examples",
        f"Hypothesis examples (input batches) per check (default: {DEFAULT_MAX_EXAMPLES})",
        parse_positive_int,
        metavar="N",
    ),
    Setting(
        "batch_size",
        f"rows in each generated input batch (default: {DEFAULT_BATCH_SIZE})",
        parse_positive_int,
        metavar="N",
    ),
    Setting(
        "outputs",
        "outputs to check, by name or index, separated by commas, e.g. probs or probs,2; for a model "
        "whose other outputs are not distributions (logits, a score) (default: every output)",
        parse_output_list,
        metavar="NAMES",
    ),
    Setting(
        "axis",
        "the class axis along which each row must sum to 1, e.g. 1 for a (batch, classes, time) "
        "output (default: -1, the last axis)",
        parse_axis_text,
        metavar="INT",
    ),
    Setting(
        "safe_mode",
        "refuse model files that carry Python code (a Lambda layer's bytecode, parts of a .pt2 file "
        "torch.export.load would unpickle), as Keras' safe_mode does; set false only for files you trust "
        "(default: true)",
        parse_bool,
        metavar="BOOL",
    ),
    Setting(
        "allow_masked_rows",
        "accept all-zero output rows, which Keras' Softmax writes for a row its mask hides entirely "
        "(e.g. a padding-only sequence); NaN is never accepted (default: false)",
        parse_bool,
        metavar="BOOL",
    ),
    *(
        Setting(
            f"atol_{dtype}",
            f"absolute tolerance for {dtype} outputs, overriding the default for that dtype "
            "and the generic softmax_atol (--softmax-atol and the marker's atol= take precedence)",
            parse_tolerance,
            has_flag=False,
        )
        for dtype in SUPPORTED_DTYPES
    ),
)
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


class Origin(enum.Enum):
    """Where a session setting came from: it decides precedence (a generic
    ini tolerance yields to a per-dtype ini key, a flag does not)."""

    FLAG = "flag"
    INI = "ini"


@dataclass(frozen=True)
class Source:
    """A setting's origin and how to name it to the user
    (``--softmax-atol``, ``ini softmax_atol``)."""

    origin: Origin
    label: str

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class SessionSettings:
    """Settings from the command line and the ini file, validated once at
    start-up.  ``None`` means the user did not set it."""

    atol: float | None = None
    rtol: float | None = None
    max_examples: int | None = None
    batch_size: int | None = None
    safe_mode: bool | None = None
    allow_masked_rows: bool | None = None
    outputs: tuple[str | int, ...] | None = None
    axis: int | None = None
    atol_by_dtype: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, Source] = field(default_factory=dict)

    def origin_of(self, name: str) -> Origin | None:
        source = self.sources.get(name)
        return source.origin if source is not None else None


def load_session_settings(
    get_flag: Callable[[str], object],
    get_ini: Callable[[str], object],
    ini_path: os.PathLike[str] | str | None,
) -> SessionSettings:
    """Read and validate every setting; raise :class:`SettingError` naming
    the flag or the ini key (and file) of the first bad value."""
    where_ini = f" in {ini_path}" if ini_path else ""
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for setting in SETTINGS:
        raw_flag = get_flag(setting.name) if setting.has_flag else None
        if raw_flag is not None:
            try:
                values[setting.name] = setting.parse(raw_flag)
            except ValueError as exc:
                raise SettingError(f"{setting.flag}: {exc}") from None
            sources[setting.name] = Source(Origin.FLAG, setting.flag)
            continue
        raw_ini = get_ini(setting.ini_key)
        if raw_ini is None or (isinstance(raw_ini, str) and not raw_ini.strip()):
            continue
        try:
            values[setting.name] = setting.parse(raw_ini)
        except ValueError as exc:
            raise SettingError(f"ini key {setting.ini_key} = {raw_ini!r}{where_ini}: {exc}") from None
        sources[setting.name] = Source(Origin.INI, f"ini {setting.ini_key}")
    atol_by_dtype = {d: values.pop(f"atol_{d}") for d in SUPPORTED_DTYPES if f"atol_{d}" in values}
    return SessionSettings(**values, atol_by_dtype=atol_by_dtype, sources=sources)


MARKER_SIGNATURE = (
    "softmax_invariant(model=None, *, axis=-1, atol=None, rtol=None, max_examples=None, "
    "batch_size=None, inputs=None, outputs=None, safe_mode=None, allow_masked_rows=None)"
)
MARKER_ARGUMENTS = (
    "model", "axis", "atol", "rtol", "max_examples", "batch_size", "inputs", "outputs", "safe_mode",
    "allow_masked_rows",
)


@dataclass(frozen=True)
class MarkerSettings:
    """The ``softmax_invariant`` marker's arguments, parsed and validated once."""

    model: object = None
    axis: int | None = None  # None: the command line, the ini file, else -1
    atol: float | None = None
    rtol: float | None = None
    max_examples: int | None = None
    batch_size: int | None = None
    inputs: object = None
    outputs: object = None
    safe_mode: bool | None = None
    allow_masked_rows: bool | None = None


def _parse_strict_bool(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not True or False")
    return raw


def _parse_axis(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"{raw!r} is not an integer axis; use e.g. axis=-1")
    return raw


def _parse_outputs(raw: object) -> object:
    if raw is None or isinstance(raw, (str, int)) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, (list, tuple)) and all(
        isinstance(x, (str, int)) and not isinstance(x, bool) for x in raw
    ):
        return tuple(raw)
    raise ValueError(f"{raw!r} is not an output name, an index, or a list of them")


_MARKER_PARSERS: dict[str, Callable[[object], Any]] = {
    "axis": _parse_axis,
    "atol": parse_tolerance,
    "rtol": parse_tolerance,
    "max_examples": parse_positive_int,
    "batch_size": parse_positive_int,
    "outputs": _parse_outputs,
    "safe_mode": _parse_strict_bool,
    "allow_masked_rows": _parse_strict_bool,
}


def parse_overrides(kwargs: Mapping[str, object], where: str) -> dict[str, Any]:
    """Validate keyword arguments given to the marker or to the
    ``softmax_check`` fixture; ``where`` names the place for error messages."""
    parsed: dict[str, Any] = {}
    for key, raw in kwargs.items():
        if key not in MARKER_ARGUMENTS:
            valid = ", ".join(MARKER_ARGUMENTS)
            raise SettingError(f"{where}: unknown argument {key}={raw!r}; valid arguments are: {valid}")
        parser = _MARKER_PARSERS.get(key)
        if parser is None or raw is None:
            parsed[key] = raw
            continue
        try:
            parsed[key] = parser(raw)
        except ValueError as exc:
            raise SettingError(f"{where}: {key}={exc}") from None
    return parsed


def parse_marker(args: tuple[object, ...], kwargs: Mapping[str, object]) -> MarkerSettings:
    """Turn ``@pytest.mark.softmax_invariant(...)`` arguments into a
    :class:`MarkerSettings`; raise :class:`SettingError` for bad ones."""
    where = "@pytest.mark.softmax_invariant"
    if len(args) > 1:
        raise SettingError(
            f"{where}: takes at most one positional argument (the model), got {len(args)}; "
            f"signature: {MARKER_SIGNATURE}"
        )
    merged: dict[str, object] = dict(kwargs)
    if args:
        if "model" in merged:
            raise SettingError(f"{where}: the model is given both positionally and as model=")
        merged["model"] = args[0]
    return MarkerSettings(**parse_overrides(merged, where))


class Mode(enum.Enum):
    """How a check was asked for, which decides how a setting can be
    changed: a message must only suggest a fix the user's mode can take."""

    MARKER = "marker"  # @pytest.mark.softmax_invariant
    FIXTURE = "fixture"  # the softmax_check fixture
    MODEL_ITEM = "model item"  # --softmax-model / softmax_models
    FUNCTION = "function"  # check_softmax()


_current_mode: ContextVar[Mode] = ContextVar("pytest_softmax_mode", default=Mode.FUNCTION)


@contextmanager
def checking_in(mode: Mode) -> Iterator[None]:
    """Messages raised inside (by the engine or an adapter, which do not
    know how the check was asked for) phrase their fixes for ``mode``."""
    token = _current_mode.set(mode)
    try:
        yield
    finally:
        _current_mode.reset(token)


def how_to_set(name: str, value: str, cli_value: str | None = None) -> str:
    """How the user sets ``name`` to ``value`` in the mode of the check
    running now: a marker argument, a fixture or function keyword, or for
    a ``--softmax-model`` item a flag and ini key (and, for what those
    cannot take, a marked test)."""
    mode = _current_mode.get()
    if mode is Mode.MARKER:
        return f"@pytest.mark.softmax_invariant(..., {name}={value})"
    if mode is Mode.FIXTURE:
        return f"softmax_check(model, {name}={value})"
    if mode is Mode.FUNCTION:
        return f"check_softmax(model, {name}={value})"
    setting = SETTINGS_BY_NAME.get(name)
    if setting is None or not setting.has_flag:
        return (f"a marked test instead of --softmax-model, since only a test can pass {name}=: "
                f"@pytest.mark.softmax_invariant(model='path/to/model', {name}={value})")
    text = value if cli_value is None else cli_value
    return f"{setting.flag}={text} (or {setting.ini_key} = {text} in the ini file)"


@dataclass(frozen=True)
class CheckSettings:
    """Everything one check needs, after precedence has been applied.

    ``atol`` stays ``None`` when nobody set it: the tolerance then depends on
    the dtype and class count of each output, known only after the forward
    pass (see :meth:`tolerance_for`)."""

    atol: float | None
    rtol: float
    max_examples: int
    batch_size: int
    axis: int = -1
    atol_by_dtype: Mapping[str, float] = field(default_factory=dict)
    ini_atol: float | None = None
    outputs: object = None
    inputs: object = None
    safe_mode: bool = True
    # All-zero output rows (a masked Softmax's fully masked rows) are
    # accepted, on the user's word; NaN never is.
    allow_masked_rows: bool = False
    mode: Mode = Mode.FUNCTION

    def atol_for(self, dtype: str, n_classes: int) -> float:
        """The absolute tolerance for one output: a forced ``atol`` (marker or
        command line), else the ini key for that dtype, else the generic ini
        key, else the dtype-aware default."""
        from .tolerance import default_tolerance

        if self.atol is not None:
            return self.atol
        if dtype in self.atol_by_dtype:
            return self.atol_by_dtype[dtype]
        if self.ini_atol is not None:
            return self.ini_atol
        return default_tolerance(dtype, n_classes)

    def tolerance_for(self, dtype: str, n_classes: int) -> float:
        """What ``|sum - 1|`` may reach for one output: ``atol + rtol``."""
        return self.atol_for(dtype, n_classes) + self.rtol


def resolve(
    session: SessionSettings | None,
    marker: MarkerSettings | None = None,
    overrides: Mapping[str, Any] | None = None,
    mode: Mode | None = None,
) -> CheckSettings:
    """The one place where precedence is applied:
    fixture overrides / marker > command line > ini > default."""
    session = session or SessionSettings()
    marker = marker or MarkerSettings()
    layered = replace(marker, **(overrides or {}))

    def pick(name: str, default: Any) -> Any:
        for value in (getattr(layered, name), getattr(session, name)):
            if value is not None:
                return value
        return default

    # A generic ini atol is less specific than a per-dtype ini key, so it only
    # applies after it; one from the command line or the marker beats both.
    atol_from_ini = session.origin_of("atol") is Origin.INI
    forced_atol = layered.atol if layered.atol is not None else (None if atol_from_ini else session.atol)
    return CheckSettings(
        atol=forced_atol,
        ini_atol=session.atol if atol_from_ini else None,
        rtol=pick("rtol", DEFAULT_RTOL),
        max_examples=pick("max_examples", DEFAULT_MAX_EXAMPLES),
        batch_size=pick("batch_size", DEFAULT_BATCH_SIZE),
        axis=pick("axis", -1),
        atol_by_dtype=dict(session.atol_by_dtype),
        outputs=pick("outputs", None),
        inputs=layered.inputs,
        safe_mode=pick("safe_mode", True),
        allow_masked_rows=pick("allow_masked_rows", False),
        mode=mode or Mode.FUNCTION,
    )


def unknown_ini_key_error(key: str, value: object, ini_path: os.PathLike[str] | str | None) -> SettingError:
    """pytest only warns about an unknown ini key, so a typo such as
    ``softmax_atol_float8`` would silently leave the default in force."""
    import difflib

    where = f" in {ini_path}" if ini_path else ""
    known = [s.ini_key for s in SETTINGS]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    per_dtype = ", ".join(f"softmax_atol_{d}" for d in SUPPORTED_DTYPES)
    return SettingError(
        f"unknown ini key {key} = {value!r}{where}; {hint}per-dtype tolerances exist for {per_dtype}; "
        f"all keys: {', '.join(known)}"
    )
