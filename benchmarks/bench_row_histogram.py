"""What the margin histogram of ``--softmax-html`` costs the search.

Every batch's rows are counted into a few log-spaced bins of
|row sum - 1| / tolerance (``invariants.row_error_counts``).  This measures,
side by side in one run, ``check_batch`` with the counting and with it
replaced by a no-op, on softmax outputs of a classifier (32 x 10), a token
tagger (32 x 128 x 50) and a language-model head (8 x 128 x 32000), and
prints the medians and their ratio, and the counting alone on the same rows
(the ratio of two large timings is noisy on a loaded machine; the counting
alone is not).  numpy only, no model: it isolates the
counting from the forward pass (which costs far more than either).

Usage::

    python benchmarks/bench_row_histogram.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pytest_softmax.core import invariants

SHAPES = {"classifier 32x10": (32, 10), "tagger 32x128x50": (32, 128, 50), "lm head 8x128x32000": (8, 128, 32000)}


def softmax_rows(shape: tuple[int, ...]) -> np.ndarray:
    logits = np.random.default_rng(0).normal(size=shape).astype("float32")
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    counting = invariants.row_error_counts
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; medians of {repeats} runs")
    print(f"{'output':<22}{'rows':>9}{'with counts':>14}{'without':>12}{'ratio':>8}{'counting alone':>16}")
    for name, shape in SHAPES.items():
        output = softmax_rows(shape)
        check = partial(invariants.check_batch, output, -1, 1e-5)
        check()  # warm-up
        with_counts, without = [], []
        for _ in range(3):  # alternated, so drifts in load hit both sides alike
            invariants.row_error_counts = counting
            with_counts.append(median_seconds(check, repeats))
            invariants.row_error_counts = lambda errors, tolerance: ()  # type: ignore[assignment]
            without.append(median_seconds(check, repeats))
        invariants.row_error_counts = counting
        a, b = statistics.median(with_counts), statistics.median(without)
        rows = int(np.prod(shape[:-1]))
        errors = np.abs(output.astype("float64").sum(axis=-1) - 1.0)
        alone = median_seconds(partial(counting, errors, 1e-5), repeats * 10)
        print(f"{name:<22}{rows:>9}{a * 1e3:>12.3f}ms{b * 1e3:>10.3f}ms{a / b:>8.3f}{alone * 1e6:>14.1f}us")


if __name__ == "__main__":
    main()
