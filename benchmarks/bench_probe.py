"""Cost of localization: building the per-layer probe and one probe pass,
as ratios of a plain compiled forward pass (medians).

    python benchmarks/bench_probe.py [--repeats 7]

The search never pays these costs on a healthy model without internal
softmax sites; they are paid once per model (build) and once per failure
(one pass) to explain what broke.  For a model with internal softmax sites
the search runs ``forward_with_sites`` instead of the plain forward: its
ratio is printed for the attention-pooling model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from pytest_softmax.adapters.keras.adapter import KerasModelAdapter  # noqa: E402
from pytest_softmax.adapters.keras.probe import KerasProbe  # noqa: E402


def small_lstm() -> keras.Model:
    return keras.Sequential([keras.Input((10, 8)), keras.layers.LSTM(16), keras.layers.Dense(5, activation="softmax")])


def mobilenet() -> keras.Model:
    return keras.applications.MobileNetV3Small(input_shape=(224, 224, 3), weights=None,
                                               classifier_activation="softmax")


def masked_attention() -> keras.Model:
    tokens = keras.Input((12,), dtype="int32")
    mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0))(tokens)
    embedded = keras.layers.Embedding(50, 16)(tokens)
    scores = keras.layers.Lambda(lambda e: keras.ops.sum(e, axis=-1))(embedded)
    weights = keras.layers.Softmax()(scores, mask=mask)
    pooled = keras.layers.Lambda(lambda a: keras.ops.einsum("bt,btd->bd", a[0], a[1]))([weights, embedded])
    return keras.Model(tokens, keras.layers.Dense(4, activation="softmax")(pooled))


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def once(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(name: str, model: keras.Model, batch: list[np.ndarray], repeats: int) -> None:
    adapter = KerasModelAdapter(model)
    forward_build = once(lambda: adapter.forward(batch))
    forward = median_seconds(lambda: adapter.forward(batch), repeats)
    probe = KerasProbe(adapter)
    probe_build = once(lambda: probe.run(batch))  # trace + first pass
    probe_pass = median_seconds(lambda: probe.run(batch), repeats)
    layers = len(probe.run(batch).records)
    print(f"{name}: batch {batch[0].shape[0]}, {layers} layer calls probed")
    print(f"  plain forward: build {forward_build * 1e3:.0f} ms, pass {forward * 1e3:.2f} ms (median)")
    print(f"  probe build:   {probe_build * 1e3:.0f} ms = {probe_build / forward:.0f}x a forward pass "
          f"({probe_build / forward_build:.2f}x the forward's own build)")
    print(f"  probe pass:    {probe_pass * 1e3:.2f} ms = {probe_pass / forward:.2f}x a forward pass")
    if adapter.internal_softmax_sites():
        sites_build = once(lambda: adapter.forward_with_sites(batch))
        sites = median_seconds(lambda: adapter.forward_with_sites(batch), repeats)
        print(f"  forward + internal sites (used by the search): build {sites_build * 1e3:.0f} ms, "
              f"pass {sites / forward:.2f}x a forward pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    measure("small LSTM (LSTM(16) + Dense(5, softmax))", small_lstm(),
            [rng.normal(size=(32, 10, 8)).astype("float32")], args.repeats)
    measure("masked attention pooling (internal Softmax with mask)", masked_attention(),
            [rng.integers(0, 50, size=(32, 12)).astype("int32")], args.repeats)
    measure("MobileNetV3Small 224x224x3, weights=None", mobilenet(),
            [rng.uniform(0, 255, size=(8, 224, 224, 3)).astype("float32")], args.repeats)


if __name__ == "__main__":
    main()
