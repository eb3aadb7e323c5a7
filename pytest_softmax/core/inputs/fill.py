"""Fast numpy expansion of an input recipe into a (possibly huge) array.

A batch of 32 images at 224x224x3 holds 4.8 million numbers; a vision
model's forward pass over it takes ~150 ms on 2 CPUs, so building the batch
must cost a few milliseconds or the generator, not the model, sets the pace.
Three things keep it cheap:

* values are built directly in the target dtype, in place, with no float64
  temporaries (float64 inputs are built in float64, everything else in
  float32 and narrowed once);
* random patterns take a block of at most :data:`RANDOM_BLOCK` values per
  input, a stretch of a table of random values drawn once per process (at a
  place the recipe's seed picks), and give every row of the batch a
  circular stretch of that block starting at a random place: each row of a
  large batch is then a different tensor whose values are all distinct (up
  to the block's size), at the cost of copying one block instead of drawing
  millions of random numbers;
* patterns without randomness are written with slice assignments.

Everything is a pure function of the recipe and the shape, so a failing
input can be rebuilt exactly from its one-line description.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

# 2**18 = 262,144 values: more than one 224x224x3 image (150,528), so each
# image of a batch is (almost) one rotated stretch of distinct random values.
RANDOM_BLOCK = 1 << 18
# Random blocks are stretches of one table per pattern and dtype, four
# blocks long: a million starting places, so no two examples of a search
# share a block in practice.
RANDOM_TABLE = 4 * RANDOM_BLOCK
_TABLE_SEED = 20260101
# The alignment TensorFlow needs to use a buffer it did not allocate (Eigen's
# largest, for AVX-512).
BUFFER_ALIGNMENT = 64
_UINT64 = (1 << 64) - 1


def work_dtype(dtype: str) -> np.dtype[np.floating]:
    """The dtype values are computed in: float64 for float64 inputs, float32
    otherwise (float16 is narrowed afterwards, bfloat16 by the adapter)."""
    return np.dtype(np.float64) if dtype == "float64" else np.dtype(np.float32)


def batch_buffer(size: int, dtype: np.dtype[Any]) -> np.ndarray:
    """An uninitialized flat array whose data starts on a
    :data:`BUFFER_ALIGNMENT`-byte boundary, which lets a framework adopt the
    batch without copying it (TensorFlow copies every other numpy array)."""
    dtype = np.dtype(dtype)
    raw = np.empty(size * dtype.itemsize + BUFFER_ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % BUFFER_ALIGNMENT
    return raw[start:start + size * dtype.itemsize].view(dtype)


@functools.cache
def _random_table(pattern: str, dtype: np.dtype[np.floating]) -> np.ndarray:
    """:data:`RANDOM_TABLE` values of the pattern (standard normal, or
    uniform in [-1, 1)), drawn once per process from a fixed seed."""
    rng = np.random.default_rng(_TABLE_SEED)
    table = np.empty(RANDOM_TABLE, dtype=dtype)
    if pattern == "normal":
        rng.standard_normal(dtype=dtype, out=table)
    else:
        rng.random(dtype=dtype, out=table)
        table *= 2
        table -= 1
    table.flags.writeable = False
    return table


def _random_block(pattern: str, count: int, dtype: np.dtype[np.floating], seed: int) -> np.ndarray:
    """``count`` random values of the pattern: a circular stretch of its
    table starting at a place the seed picks.  Copying a stretch costs a
    fraction of drawing fresh values (a standard normal draw costs ~11 ns a
    value, 3 ms for one block), and another seed gives another block."""
    table = _random_table(pattern, dtype)
    block = batch_buffer(count, dtype)
    start, position = table_start(seed), 0
    while position < count:
        length = min(table.size - start, count - position)
        block[position:position + length] = table[start:start + length]
        position += length
        start = 0
    return block


def table_start(seed: int) -> int:
    """Where a seed's block starts in a table: SplitMix64's finalizer, so
    neighbouring seeds start far apart.  A plain function of the seed, not
    a numpy generator, which costs ~15 us to seed: as much as building the
    whole batch of a small model."""
    mixed = (seed + 0x9E3779B97F4A7C15) & _UINT64
    mixed = ((mixed ^ (mixed >> 30)) * 0xBF58476D1CE4E5B9) & _UINT64
    mixed = ((mixed ^ (mixed >> 27)) * 0x94D049BB133111EB) & _UINT64
    return (mixed ^ (mixed >> 31)) % RANDOM_TABLE


def _tile_rows(rng: np.random.Generator, block: np.ndarray, out: np.ndarray, rows: int) -> None:
    """Fill each of ``rows`` equal rows of ``out`` with a circular stretch of
    ``block`` starting at a random place: a row no longer than the block
    holds distinct values, and no two rows are the same."""
    count = block.size
    row_length = out.size // max(rows, 1)
    for row in range(max(rows, 1)):
        start = 0 if row == 0 else int(rng.integers(count))
        end = out.size if row == rows - 1 else (row + 1) * row_length
        position = row * row_length
        while position < end:
            length = min(count - start, end - position)
            out[position:position + length] = block[start:start + length]
            position += length
            start = 0


def float_values(
    pattern: str,
    size: int,
    dtype: str,
    *,
    scale: float,
    offset: float,
    seed: int,
    spikes: Sequence[tuple[int, float]],
    limit: float,
    rows: int = 1,
) -> np.ndarray:
    """A flat array of ``size`` values (``rows`` rows of equal length):
    ``(base + offset) * scale`` with the pattern's base in [-1, 1] (standard
    normal for ``normal``), then the spikes written over it.  Returned in
    :func:`work_dtype`."""
    work = work_dtype(dtype)
    if pattern == "one-hot":  # one value per row, ``scale`` at position int(offset) of the row (-1: the last)
        flat = batch_buffer(size, work)
        flat.fill(0)
        _one_per_row(flat, rows, int(offset), max(-limit, min(limit, scale)))
    elif pattern == "constant":
        flat = batch_buffer(size, work)
        flat.fill(max(-limit, min(limit, (1.0 + offset) * scale)))
    else:
        # Offset, scale and clip go on the pattern's values before a random
        # block is tiled over millions of positions: the same values, each
        # computed once per block rather than once per position.
        values, largest_base = _base_pattern(pattern, size, work, seed)
        if offset:
            values += offset
        if scale != 1.0:
            values *= scale
        # A pass is skipped when no value can exceed the limit, which is the
        # common case (every magnitude but the largest).
        if (largest_base + abs(offset)) * abs(scale) > limit:
            np.clip(values, -limit, limit, out=values)
        flat = _tiled(values, size, rows, seed) if values.size < size else values
    if size:
        for position, value in spikes:
            flat[position % size] = max(-limit, min(limit, value))
    return flat


def _one_per_row(flat: np.ndarray, rows: int, position: int, value: float) -> None:
    """Write ``value`` at ``position`` of each of ``rows`` equal rows of ``flat``."""
    row_length = flat.size // max(rows, 1)
    if row_length:
        flat.reshape(max(rows, 1), row_length)[:, position % row_length] = value


def _base_pattern(pattern: str, size: int, work: np.dtype[np.floating], seed: int) -> tuple[np.ndarray, float]:
    """The pattern's values before offset and scale, and the largest
    |value|: all ``size`` of them, or for a random pattern one block of at
    most :data:`RANDOM_BLOCK` (:func:`_tiled` spreads it over the rest)."""
    if pattern == "ramp":
        flat = np.arange(size, dtype=work)
        flat *= 2.0 / max(size - 1, 1)
        flat -= 1
        return flat, 1.0
    if pattern == "alternating":
        flat = batch_buffer(size, work)
        flat[0::2] = 1
        flat[1::2] = -1
        return flat, 1.0
    block = _random_block(pattern, min(size, RANDOM_BLOCK), work, seed)
    return block, float(np.abs(block).max(initial=0.0))


def _tiled(block: np.ndarray, size: int, rows: int, seed: int) -> np.ndarray:
    """``size`` values made of ``rows`` rows, each a stretch of ``block``
    starting where the seed's generator says."""
    flat = batch_buffer(size, block.dtype)
    _tile_rows(np.random.default_rng(seed), block, flat, rows)
    return flat


def int_values(
    pattern: str,
    size: int,
    dtype: np.dtype[np.integer],
    *,
    low: int,
    high: int,
    offset: float,
    seed: int,
    spikes: Sequence[tuple[int, float]],
    rows: int = 1,
) -> np.ndarray:
    """A flat array of ids in ``[low, high)`` (narrowed to what ``dtype``
    holds), built in ``dtype``."""
    info = np.iinfo(dtype)
    low, high = max(low, int(info.min)), min(high, int(info.max) + 1)
    span = max(high - low, 1)
    if pattern == "constant":
        flat = batch_buffer(size, dtype)
        flat.fill(low + int(offset) % span)
    elif pattern == "uniform":
        flat = np.random.default_rng(seed).integers(low, high, size=size, dtype=dtype)
    elif pattern == "one-hot":  # low everywhere but low + 1 at position int(offset) of each row
        flat = batch_buffer(size, dtype)
        flat.fill(low)
        _one_per_row(flat, rows, int(offset), low + min(1, span - 1))
    else:  # edges: the first and last valid id, alternating
        flat = batch_buffer(size, dtype)
        flat[0::2] = low
        flat[1::2] = high - 1
    if size:
        for position, value in spikes:
            flat[position % size] = low + int(value) % span
    return flat


def mask_values(pattern: str, shape: Sequence[int], seed: int) -> np.ndarray:
    """A 0/1 mask of ``shape`` (batch first): ``ones`` (nothing masked),
    ``zeros`` (everything masked, an edge case) or ``padding`` (each row
    keeps a random prefix of 1 to all positions, as padded sequences do);
    the edge phase's fixed ones: ``right-padding`` (the first half kept),
    ``left-padding`` (the last half kept) and ``single`` (only the first
    position kept).  Padding runs along axis 1 of a (batch, sequence) mask,
    and along the last axis (the keys) of an attention mask (batch,
    queries, keys).  Built as int8; the caller casts."""
    shape = tuple(int(d) for d in shape)
    if pattern == "zeros":
        return np.zeros(shape, dtype=np.int8)
    axis = len(shape) - 1 if len(shape) > 2 and shape[-1] > 1 else 1
    if pattern == "ones" or len(shape) < 2 or shape[axis] == 0:
        return np.ones(shape, dtype=np.int8)
    positions = np.arange(shape[axis])[None, :]
    if pattern == "padding":
        lengths = np.random.default_rng(seed).integers(1, shape[axis] + 1, size=shape[0])
        keep = (positions < lengths[:, None]).astype(np.int8)
    else:
        keep = np.broadcast_to(_fixed_keep(pattern, shape[axis])[None, :], (shape[0], shape[axis]))
    view = [1] * len(shape)
    view[0], view[axis] = shape[0], shape[axis]
    return np.ascontiguousarray(np.broadcast_to(keep.reshape(view), shape))


def _fixed_keep(pattern: str, length: int) -> np.ndarray:
    """The positions a fixed edge mask keeps in a row of ``length``."""
    keep = np.zeros(length, dtype=np.int8)
    half = max(1, length // 2)
    if pattern == "right-padding":
        keep[:half] = 1
    elif pattern == "left-padding":
        keep[length - half:] = 1
    else:  # single: one valid position, the first
        keep[0] = 1
    return keep
