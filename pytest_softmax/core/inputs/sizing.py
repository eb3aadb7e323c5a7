"""Size a generated batch before building it.

A batch is built in numpy (and copied once more into the framework's
tensor), so a signature of ``(200000, 100000)`` or ``batch_size=10**12``
would otherwise end in numpy's ``MemoryError: Unable to allocate 2.33 TiB``
from deep inside the generator.  The largest batch a search can draw is
known in advance (variable dimensions at their largest), so it is sized
first and refused with the batch size that fits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ...adapters.base import InputSpec
from ...errors import SoftmaxSetupError
from ...settings import DEFAULT_BATCH_SIZE, how_to_set
from .recipes import concrete_shape, numpy_dtype

# The batch plus its copy in the framework's tensor must fit in what is free,
# with room left for the model's activations: half the available memory.
MEMORY_SHARE = 0.5


def available_memory() -> int | None:
    """Bytes of memory available now (Linux' MemAvailable, which counts the
    page cache the kernel can drop), else the total physical memory, else
    ``None`` (the framework's out-of-memory error is then explained after
    the fact)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def batch_bytes(specs: Sequence[InputSpec], rows: int, variable_size: int) -> int:
    """Bytes of one batch of ``rows`` rows, with variable dimensions at ``variable_size``."""
    total = 0
    for spec in specs:
        shape = concrete_shape(spec, rows, variable_size)
        total += int(np.prod(shape, dtype=object)) * numpy_dtype(spec.dtype).itemsize
    return total


def format_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.3g} {unit}"
        count /= 1024
    return f"{count:.3g} PiB"  # pragma: no cover - the loop always returns


def require_batch_fits(model_name: str, specs: Sequence[InputSpec], batch_size: int, variable_size: int,
                       budget: int | None = None) -> None:
    """Raise :class:`SoftmaxSetupError` if the largest generated batch cannot
    fit in memory, naming the bytes it needs and a batch size that fits."""
    free = available_memory() if budget is None else budget
    if free is None or not specs:
        return
    allowed = int(free * MEMORY_SHARE) if budget is None else budget
    needed = batch_bytes(specs, batch_size, variable_size)
    if needed <= allowed:
        return
    described = "; ".join(
        f"input {s.name!r}: {numpy_dtype(s.dtype).name} {list(concrete_shape(s, batch_size, variable_size))}"
        for s in specs)
    one_row = batch_bytes(specs, 1, variable_size)
    head = (f"a generated batch of {batch_size} rows for model {model_name!r} needs {format_bytes(needed)} "
            f"({described}), more than the {format_bytes(allowed)} the check allows itself "
            f"(half the memory available)")
    if one_row > allowed:
        raise SoftmaxSetupError(
            f"{head}; even one row needs {format_bytes(one_row)}: the model's input signature is too large to "
            "generate, so pass inputs= with smaller arrays (or a Hypothesis strategy) the model accepts: "
            f"{how_to_set('inputs', '...')}"
        )
    fits = max(allowed // one_row, 1)
    # The default batch size where it fits, else the largest power of two that does.
    smaller = min(DEFAULT_BATCH_SIZE, 1 << (int(fits).bit_length() - 1))
    raise SoftmaxSetupError(
        f"{head}; lower the batch size: {how_to_set('batch_size', str(smaller))} (at most {fits} rows fit)"
    )
