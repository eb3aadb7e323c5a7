"""The value patterns inputs are built from (core/inputs/fill.py), pinned
as a rebuild line promises them: a ramp from -1 to 1, uniform values in
[-1, 1), standard normal ones, and a batch larger than one random block
made of rows that are each a circular stretch of that block (all values of
a row distinct, no two rows alike, nothing left unwritten), each random
block a stretch of one table that is the same in every process, and every
batch on a boundary a framework can adopt without a copy.  In-process and
fast: these are what the mutation run of fill.py is checked against."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from pytest_softmax.core.inputs import fill
from pytest_softmax.core.inputs.fill import (
    BUFFER_ALIGNMENT,
    RANDOM_BLOCK,
    RANDOM_TABLE,
    float_values,
    int_values,
)
from pytest_softmax.core.inputs.recipes import ArrayRecipe


def values(pattern: str, size: int, *, dtype: str = "float32", rows: int = 1, seed: int = 7,
           scale: float = 1.0, offset: float = 0.0, limit: float = 1e6) -> np.ndarray:
    return float_values(pattern, size, dtype, scale=scale, offset=offset, seed=seed, spikes=(), limit=limit,
                        rows=rows)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_values_come_in_the_dtype_they_are_computed_in(dtype: str) -> None:
    expected = np.float64 if dtype == "float64" else np.float32
    for pattern in ("ramp", "alternating", "normal", "uniform", "constant", "one-hot"):
        assert values(pattern, 12, dtype=dtype, rows=3).dtype == expected, pattern


def test_a_ramp_runs_evenly_from_minus_one_to_one() -> None:
    ramp = values("ramp", 9)
    np.testing.assert_allclose(ramp, np.linspace(-1, 1, 9), atol=1e-6)
    assert values("ramp", 2).tolist() == [-1.0, 1.0]
    assert values("ramp", 1).tolist() == [-1.0]


def test_alternating_values_are_plus_and_minus_one() -> None:
    assert values("alternating", 5).tolist() == [1, -1, 1, -1, 1]


def test_uniform_values_fill_minus_one_to_one() -> None:
    uniform = values("uniform", 50_000)
    assert uniform.min() >= -1.0 and uniform.max() < 1.0
    assert uniform.min() < -0.99 and uniform.max() > 0.99
    assert abs(float(uniform.mean())) < 0.02 and abs(float(uniform.std()) - 1 / np.sqrt(3)) < 0.01


def test_normal_values_are_standard_normal() -> None:
    normal = values("normal", 50_000)
    assert abs(float(normal.mean())) < 0.02 and abs(float(normal.std()) - 1.0) < 0.02
    assert normal.min() < -3.5 and normal.max() > 3.5


def test_offset_then_scale_then_the_limit() -> None:
    base = values("uniform", 1000)
    np.testing.assert_allclose(values("uniform", 1000, offset=0.5, scale=4.0), (base + 0.5) * 4.0, rtol=1e-6)
    clipped = values("uniform", 1000, scale=1e4, limit=5e3)
    assert clipped.max() == 5e3 and clipped.min() == -5e3


def circular_starts(batch: np.ndarray, block: np.ndarray, rows: int) -> list[int]:
    """Where in ``block`` each row of ``batch`` starts, asserting that each
    row is a circular stretch of the block from there (a float32 value can
    recur in a block of 2**18, so every place it occurs is a candidate)."""
    starts = []
    for row in batch.reshape(rows, -1):
        index = (np.arange(row.size)[None, :] + np.flatnonzero(block == row[0])[:, None]) % block.size
        matching = [int(i[0]) for i in index if np.array_equal(block[i], row)]
        assert matching, "a row that is not a stretch of the block"
        starts.append(matching[0])
    return starts


@pytest.mark.parametrize("pattern", ["normal", "uniform"])
def test_a_batch_larger_than_one_block_is_rows_of_rotated_stretches(pattern: str) -> None:
    rows, row_length = 4, 100_000  # 400,000 values: more than one block of 2**18
    assert rows * row_length > RANDOM_BLOCK >= row_length
    block = values(pattern, RANDOM_BLOCK)
    batch = values(pattern, rows * row_length, rows=rows)
    starts = circular_starts(batch, block, rows)
    assert starts[0] == 0  # the first row is the block itself, from its start
    assert len(set(starts)) == rows  # no two rows alike
    for row in batch.reshape(rows, -1):  # distinct up to float32's own repeats
        assert np.unique(row).size > 0.99 * row.size


def test_one_row_longer_than_the_block_wraps_around_it() -> None:
    size = RANDOM_BLOCK + 1000
    block = values("normal", RANDOM_BLOCK)
    batch = values("normal", size, rows=1)
    np.testing.assert_array_equal(batch, block[np.arange(size) % RANDOM_BLOCK])


def test_a_tiled_batch_is_scaled_as_the_block_is() -> None:
    rows, row_length = 2, RANDOM_BLOCK
    block = values("uniform", RANDOM_BLOCK, offset=0.25, scale=3.0)
    batch = values("uniform", rows * row_length, rows=rows, offset=0.25, scale=3.0)
    circular_starts(batch, block, rows)


def test_a_constant_is_one_plus_offset_times_scale() -> None:
    assert values("constant", 3, offset=0.5, scale=2.0).tolist() == [3.0, 3.0, 3.0]


def test_every_scale_is_applied_even_two() -> None:
    np.testing.assert_allclose(values("normal", 100, scale=2.0), 2.0 * values("normal", 100), rtol=1e-6)


def test_an_offset_that_pushes_values_past_the_limit_is_clipped() -> None:
    # (1 + 0.5) * 1e4 = 1.5e4 passes the limit although 1e4 alone does not.
    pushed = values("uniform", 1000, offset=0.5, scale=1e4, limit=1.2e4)
    assert pushed.max() == 1.2e4


def test_an_empty_input_is_an_empty_array() -> None:
    for pattern in ("normal", "uniform", "ramp", "alternating", "constant"):
        assert values(pattern, 0).size == 0, pattern


def test_a_batch_of_exactly_one_block_is_the_block_itself() -> None:
    np.testing.assert_array_equal(values("normal", RANDOM_BLOCK, rows=2), values("normal", RANDOM_BLOCK))


def test_a_tiled_batch_keeps_its_dtype() -> None:
    assert values("normal", 2 * RANDOM_BLOCK, rows=2).dtype == np.float32
    assert values("normal", 2 * RANDOM_BLOCK, rows=2, dtype="float64").dtype == np.float64


@pytest.mark.parametrize("pattern", ["normal", "uniform"])
def test_a_random_block_is_a_stretch_of_the_pattern_table_that_wraps_around(
        pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    table = fill._random_table(pattern, np.dtype(np.float32))
    assert table.size == RANDOM_TABLE and not table.flags.writeable
    monkeypatch.setattr(fill, "table_start", lambda seed: RANDOM_TABLE - 3)

    wrapped = fill._random_block(pattern, 10, np.dtype(np.float32), seed=5)

    np.testing.assert_array_equal(wrapped, np.concatenate([table[-3:], table[:7]]))
    wrapped += 1  # the block is the caller's to scale in place; the table stays as drawn
    np.testing.assert_array_equal(table[:7], fill._random_table(pattern, np.dtype(np.float32))[:7])


def test_a_seed_starts_its_block_anywhere_in_the_table_and_neighbours_far_apart() -> None:
    starts = [fill.table_start(seed) for seed in range(1000)]
    assert all(0 <= start < RANDOM_TABLE for start in starts)
    assert len(set(starts)) == 1000
    gaps = [abs(a - b) for a, b in itertools.pairwise(starts)]
    assert sorted(gaps)[len(gaps) // 2] > RANDOM_TABLE // 8  # neighbouring seeds do not share most of a block
    assert max(starts) > RANDOM_TABLE * 0.99 and min(starts) < RANDOM_TABLE * 0.01
    # SplitMix64's published first output for seed 0, taken modulo the table size.
    assert fill.table_start(0) == 0xE220A8397B1DCDAF % RANDOM_TABLE


def test_each_pattern_has_its_own_table_per_dtype() -> None:
    normal, uniform = (fill._random_table(p, np.dtype(np.float32)) for p in ("normal", "uniform"))
    assert not np.array_equal(normal, uniform)
    assert fill._random_table("normal", np.dtype(np.float64)).dtype == np.float64


def test_random_values_depend_on_the_seed_and_on_nothing_else() -> None:
    first, again, other = values("normal", 1000, seed=7), values("normal", 1000, seed=7), values("normal", 1000, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_random_values_are_the_same_in_a_new_process() -> None:
    """A rebuild line is replayed in another process (a CI log, a colleague's
    machine): the table must not depend on anything but its fixed seed."""
    code = ("from pytest_softmax.core.inputs.fill import float_values; "
            "print(float_values('normal', 64, 'float32', scale=1.0, offset=0.0, seed=11, spikes=(), "
            "limit=1e6).tobytes().hex())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == values("normal", 64, seed=11).tobytes().hex()


@pytest.mark.parametrize("pattern", ["normal", "uniform", "ramp", "alternating", "constant", "one-hot"])
@pytest.mark.parametrize("shape", [(32, 10, 48), (32, 224, 224, 3), (3, 5)])
def test_float_batches_start_on_the_alignment_a_framework_can_adopt(pattern: str, shape: tuple[int, ...]) -> None:
    batch = ArrayRecipe(pattern, seed=3).expand(shape, "float32")
    if pattern != "ramp":  # numpy's arange allocates its own array
        assert batch.ctypes.data % BUFFER_ALIGNMENT == 0
    assert batch.flags.c_contiguous and batch.flags.writeable and batch.shape == shape


@pytest.mark.parametrize("pattern", ["constant", "one-hot", "edges"])
def test_id_batches_start_on_the_alignment_a_framework_can_adopt(pattern: str) -> None:
    ids = int_values(pattern, 1000, np.dtype(np.int32), low=0, high=50, offset=3.0, seed=1, spikes=(), rows=10)
    assert ids.ctypes.data % BUFFER_ALIGNMENT == 0 and ids.dtype == np.int32


@pytest.mark.parametrize("size", [0, 1, 7, 1000])
def test_a_batch_buffer_holds_exactly_the_values_asked_for(size: int) -> None:
    buffer = fill.batch_buffer(size, np.dtype(np.float64))
    assert buffer.shape == (size,) and buffer.dtype == np.float64
    assert size == 0 or buffer.ctypes.data % BUFFER_ALIGNMENT == 0  # an empty array has no data to align
