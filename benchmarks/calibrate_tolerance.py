"""Calibrate ``pytest_softmax.tolerance.default_tolerance`` against real softmaxes.

For every storage dtype, implementation, number of classes, logit spread,
logit distribution and XLA on/off, this runs a *correct* softmax and records
the worst ``|sum - 1|`` of its rows, the sum being taken in float64 from the
output array exactly as the plugin does.  It then compares the worst error
with the default tolerance: ``margin = tolerance / worst`` must be >= 1 (no
false alarm), and we want it comfortably above that.

It also checks the other direction: a row whose sum is off by 10x the
tolerance (injected into a correct output and rounded to the storage dtype)
must be flagged.

Usage::

    /tmp/venv/bin/python benchmarks/calibrate_tolerance.py [--quick] [--detail]

Exit status: 0 if every margin >= 1 and every injected error is flagged,
1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pytest_softmax.tolerance import (  # noqa: E402
    MACHINE_EPSILON,
    default_tolerance,
)

N_CLASSES = (2, 10, 100, 1000, 10_000, 32_000, 128_000)
SPREADS = (0.1, 1.0, 5.0, 10.0, 100.0)
# uniform: U(-s, s); normal: N(0, s); peaked: one logit at +s, the rest
# N(0, 0.01 s) -- a one-hot-like row.
DISTRIBUTIONS = ("uniform", "normal", "peaked")
# "mixed_float16" = Keras policy: float32 variables, float16 compute/output.
DTYPES = ("float16", "bfloat16", "float32", "float64", "mixed_float16")
IMPLS = (
    "keras.ops.softmax",
    "tf.nn.softmax",
    "layers.Softmax",
    "layers.Dense(softmax)",
    "layers.Softmax(axis=(1,2))",
)
# Implementations that honour a Keras dtype policy (the others take a tensor).
POLICY_IMPLS = ("layers.Softmax", "layers.Dense(softmax)", "layers.Softmax(axis=(1,2))")
# Multi-axis softmax: n = h * w.
GRID_2D = {
    2: (1, 2),
    10: (2, 5),
    100: (10, 10),
    1000: (25, 40),
    10_000: (100, 100),
    32_000: (160, 200),
    128_000: (320, 400),
}
# Max elements per call (all spreads x distributions packed into one batch).
ELEMENT_BUDGET = 4_000_000
MAX_ROWS_PER_CELL = 256
MIN_ROWS_PER_CELL = 2
# Distinct logit patterns per distribution held in the Dense kernel.
DENSE_PATTERNS = 4


def storage_dtype(dtype: str) -> str:
    """The dtype the softmax output is stored in (what the plugin sees)."""
    return "float16" if dtype == "mixed_float16" else dtype


def rows_per_cell(n: int) -> int:
    cells = len(SPREADS) * len(DISTRIBUTIONS)
    return max(MIN_ROWS_PER_CELL, min(MAX_ROWS_PER_CELL, ELEMENT_BUDGET // (n * cells)))


def make_basis(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-spread logit patterns, one row per distribution (3, n), float64."""
    uniform = rng.uniform(-1.0, 1.0, n)
    normal = rng.standard_normal(n)
    peaked = 0.01 * rng.standard_normal(n)
    peaked[rng.integers(n)] = 1.0
    return np.stack([uniform, normal, peaked])


def make_logits(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Logits (rows, n) float64 and the (spread, distribution) of each row."""
    rows, labels = [], []
    for spread in SPREADS:
        for d_index, dist in enumerate(DISTRIBUTIONS):
            for _ in range(k):
                row = make_basis(n, rng)[d_index]
                rows.append(spread * row)
                labels.append((spread, dist))
    return np.stack(rows), labels


@dataclass
class Case:
    dtype: str
    impl: str
    n: int
    xla: bool


def build_fn(
    impl: str, dtype: str, n: int, rng: np.random.Generator
) -> tuple[Callable[[tf.Tensor], tf.Tensor], Callable[[np.ndarray], tf.Tensor] | None, object]:
    """Return (fn, make_input, reduce_axis) for one implementation.

    ``make_input`` turns float64 logits (rows, n) into the tensor fed to fn;
    ``fn`` returns the softmax output.  For Dense, the logits are produced by
    the layer itself: kernel row r holds a unit-spread pattern and the input
    is ``spread * e_r`` so that ``x @ W`` reproduces the wanted logits.
    """
    policy = dtype
    tensor_dtype = tf.float32 if dtype == "mixed_float16" else tf.as_dtype(dtype)

    if impl == "keras.ops.softmax":
        return (lambda x: keras.ops.softmax(x, axis=-1)), (lambda z: tf.cast(tf.constant(z), tensor_dtype)), -1
    if impl == "tf.nn.softmax":
        return (lambda x: tf.nn.softmax(x, axis=-1)), (lambda z: tf.cast(tf.constant(z), tensor_dtype)), -1
    if impl == "layers.Softmax":
        layer = keras.layers.Softmax(axis=-1, dtype=policy)
        return (lambda x: layer(x)), (lambda z: tf.cast(tf.constant(z), tensor_dtype)), -1
    if impl == "layers.Softmax(axis=(1,2))":
        h, w = GRID_2D[n]
        layer = keras.layers.Softmax(axis=(1, 2), dtype=policy)
        return (
            (lambda x: layer(x)),
            (lambda z: tf.cast(tf.constant(z.reshape(z.shape[0], h, w)), tensor_dtype)),
            (1, 2),
        )
    if impl == "layers.Dense(softmax)":
        layer = keras.layers.Dense(n, activation="softmax", dtype=policy)
        layer.build((None, len(DISTRIBUTIONS) * DENSE_PATTERNS))
        # Kernel row DENSE_PATTERNS * d + r: pattern r of distribution d.
        kernel = np.concatenate([make_basis(n, rng) for _ in range(DENSE_PATTERNS)])
        order = [r * len(DISTRIBUTIONS) + d for d in range(len(DISTRIBUTIONS)) for r in range(DENSE_PATTERNS)]
        layer.set_weights([kernel[order].astype(np.float32), np.zeros(n, np.float32)])
        return (lambda x: layer(x)), None, -1
    raise ValueError(impl)


def run_case(case: Case, seed: int) -> dict[tuple[float, str], float]:
    """Worst |sum - 1| per (spread, distribution) for one case."""
    rng = np.random.default_rng(seed)
    fn, make_input, axis = build_fn(case.impl, case.dtype, case.n, rng)
    k = rows_per_cell(case.n)
    labels = [(s, d) for s in SPREADS for d in DISTRIBUTIONS for _ in range(k)]
    if make_input is None:  # Dense: input spread * e_j selects kernel row j
        d_index = {d: i for i, d in enumerate(DISTRIBUTIONS)}
        x = np.zeros((len(labels), len(DISTRIBUTIONS) * DENSE_PATTERNS), np.float32)
        for row, (s, d) in enumerate(labels):
            x[row, d_index[d] * DENSE_PATTERNS + row % DENSE_PATTERNS] = s
        inputs = tf.constant(x)
    else:
        logits, labels = make_logits(case.n, k, rng)
        inputs = make_input(logits)

    call = tf.function(fn, jit_compile=True) if case.xla else fn
    out = call(inputs)
    out_np = out.numpy()
    expected = storage_dtype(case.dtype)
    got = str(out_np.dtype)
    if got != expected:
        raise AssertionError(f"{case}: output dtype {got}, expected {expected}")
    sums = out_np.astype(np.float64).sum(axis=axis)
    errors = np.abs(sums - 1.0)
    if not np.all(np.isfinite(errors)):
        raise AssertionError(f"{case}: non-finite row sums")
    worst: dict[tuple[float, str], float] = defaultdict(float)
    for err, label in zip(errors.tolist(), labels):
        worst[label] = max(worst[label], err)
    return dict(worst)


def injected_error_is_caught(dtype: str, n: int) -> bool:
    """Inject a 10x-tolerance error into a correct output and check it is flagged.

    The perturbed probability is rounded to the storage dtype, so this also
    verifies that the tolerance is not below what the dtype can represent.
    """
    import ml_dtypes

    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    tol = default_tolerance(dtype, n)
    rng = np.random.default_rng(n)
    z = rng.uniform(-5, 5, n)
    p = np.exp(z - z.max())
    p /= p.sum()
    for sign in (1.0, -1.0):
        q = p.astype(np_dtype)
        i = int(np.argmax(p))
        q[i] = np.asarray(p[i] + sign * 10.0 * tol).astype(np_dtype)
        err = abs(float(q.astype(np.float64).sum()) - 1.0)
        if not err > tol:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n <= 1000 only")
    parser.add_argument("--detail", action="store_true", help="print every cell")
    parser.add_argument("--dtypes", nargs="*", default=list(DTYPES))
    parser.add_argument("--impls", nargs="*", default=list(IMPLS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    ns = [n for n in N_CLASSES if n <= 1000] if args.quick else list(N_CLASSES)

    start = time.perf_counter()
    # (dtype, impl, n, spread, dist, xla) -> worst error
    results: dict[tuple[str, str, int, float, str, bool], float] = {}
    for dtype in args.dtypes:
        for impl in args.impls:
            if dtype == "mixed_float16" and impl not in POLICY_IMPLS:
                continue
            for n in ns:
                for xla in (False, True):
                    case = Case(dtype, impl, n, xla)
                    seed = zlib.crc32(f"{args.seed}/{dtype}/{impl}/{n}/{xla}".encode())
                    for (spread, dist), err in run_case(case, seed).items():
                        results[(dtype, impl, n, spread, dist, xla)] = err
            print(f"# measured {dtype:14s} {impl:28s} ({time.perf_counter() - start:6.1f}s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start

    if args.detail:
        print("dtype,impl,n_classes,spread,dist,xla,worst_err,worst_eps,tolerance,margin")
        for (dtype, impl, n, spread, dist, xla), err in sorted(results.items()):
            sd = storage_dtype(dtype)
            tol = default_tolerance(sd, n)
            eps = MACHINE_EPSILON[sd]
            margin = tol / err if err > 0 else math.inf
            print(f"{dtype},{impl},{n},{spread},{dist},{xla},{err:.3e},{err / eps:.2f},{tol:.3e},{margin:.1f}")
        print()

    # Summary table per (dtype, n): worst over impl, spread, dist, xla.
    ok = True
    header = (
        f"{'dtype':14s} {'n_classes':>9s} {'worst_err':>10s} {'worst/eps':>9s} "
        f"{'tolerance':>10s} {'tol/eps':>8s} {'margin':>8s}  worst case (impl, spread, dist, xla)"
    )
    print(header)
    print("-" * len(header))
    min_margin: dict[str, float] = {}
    for dtype in args.dtypes:
        sd = storage_dtype(dtype)
        eps = MACHINE_EPSILON[sd]
        for n in ns:
            cells = {k: v for k, v in results.items() if k[0] == dtype and k[2] == n}
            if not cells:
                continue
            key, err = max(cells.items(), key=lambda kv: kv[1])
            tol = default_tolerance(sd, n)
            margin = tol / err if err > 0 else math.inf
            min_margin[dtype] = min(min_margin.get(dtype, math.inf), margin)
            flag = "" if margin >= 1 else "  <-- FALSE ALARM"
            ok &= margin >= 1
            print(
                f"{dtype:14s} {n:9d} {err:10.3e} {err / eps:9.2f} {tol:10.3e} "
                f"{tol / eps:8.1f} {margin:8.1f}  ({key[1]}, {key[3]:g}, {key[4]}, "
                f"{'xla' if key[5] else 'eager'}){flag}"
            )
    print()

    # Per-implementation minimum margin (which implementation drives the bound).
    print("minimum margin per (dtype, implementation):")
    for dtype in args.dtypes:
        sd = storage_dtype(dtype)
        parts = []
        for impl in args.impls:
            ms = [
                default_tolerance(sd, k[2]) / v
                for k, v in results.items()
                if k[0] == dtype and k[1] == impl and v > 0
            ]
            if ms:
                parts.append(f"{impl}={min(ms):.1f}")
        print(f"  {dtype:14s} " + "  ".join(parts))
    print()

    caught = all(
        injected_error_is_caught(storage_dtype(d), n) for d in args.dtypes for n in ns
    )
    ok &= caught
    print(f"injected 10x-tolerance errors flagged for every dtype and n: {'yes' if caught else 'NO'}")
    print(f"cases: {len(results)} cells, {elapsed:.0f}s")
    summary = ", ".join(f"{d}={m:.1f}" for d, m in min_margin.items())
    print(f"SUMMARY min margin per dtype: {summary} -> {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
