"""A check's steady-state cost per example against each Keras backend's own floor.

For each backend (tensorflow, jax, torch), in its own subprocess (Keras picks
its backend once per process), measured side by side in one run, medians
over repeats:

* check vs floor: ``check_softmax(model, max_examples=N, batch_size=32)``
  per example, once the model is traced (a first check is run and not
  timed), against the *floor*: the backend's own compiled forward over
  pre-made batches of the same shape (TensorFlow: a ``tf.function``;
  JAX: ``jax.jit`` over ``stateless_call`` with arrays already on the
  device; PyTorch: the model under ``torch.no_grad()`` on pre-made tensors),
  once on standard normal batches and once on the very batches a check
  generated (recorded beforehand): a forward pass can cost more on the
  check's extreme values (tiny, huge, subnormal results) than on normal
  data, which is the model's cost, not the check's;
* the fallback forward: a ``TimeDistributed`` tagger on ``Input((None, 15))``
  whose ``tf.function`` over the signature cannot run it; the forward the
  check falls back to, per batch, against the eager call and the floor (a
  compiled forward of the same concrete shape).

Usage::

    python benchmarks/bench_backends.py            # all three backends (~5 min on 2 CPUs)
    python benchmarks/bench_backends.py --quick    # fewer repeats and examples
    python benchmarks/bench_backends.py --backends jax,torch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from collections.abc import Callable
from typing import Any

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BATCH = 32
TARGET = 2.0


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def repeat(step: Callable[[], Any], times: int) -> None:
    for _ in range(times):
        step()


def build_models() -> dict[str, Any]:
    import keras

    keras.utils.set_random_seed(0)
    return {
        "small LSTM (10, 48) -> LSTM(64) -> Dense(25, softmax)": keras.Sequential([
            keras.Input((10, 48)), keras.layers.LSTM(64), keras.layers.Dense(25, activation="softmax")]),
        "MLP (256) -> Dense(512, relu) -> Dense(100, softmax)": keras.Sequential([
            keras.Input((256,)), keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(100, activation="softmax")]),
    }


def tagger() -> Any:
    import keras

    return keras.Sequential([keras.Input((None, 15)), keras.layers.GRU(16, return_sequences=True),
                             keras.layers.TimeDistributed(keras.layers.Dense(8, activation="softmax"),
                                                          name="tags")])


def floor_forward(model: Any, shape: tuple[int, ...], data: list[Any] | None = None) -> Callable[[], Any]:
    """The backend's own compiled forward over pre-made batches of ``shape``
    (standard normal values, or ``data``: the batches a check generated)."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    data = data or [rng.standard_normal(shape, dtype=np.float32) for _ in range(2)]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)])
        tensors = [tf.constant(x) for x in data]
        step: Callable[[Any], Any] = lambda x: fn(x).numpy()
    elif backend == "jax":
        import jax

        jitted = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        tensors = [jax.device_put(x) for x in data]
        step = lambda x: np.asarray(jitted(tv, ntv, x))
    else:
        import torch

        tensors = [torch.from_numpy(x) for x in data]

        def step(x: Any) -> Any:
            with torch.no_grad():
                return model(x, training=False).cpu().numpy()
    for x in tensors:
        step(x)  # trace / warm up outside the timing
    state = {"i": 0}

    def one() -> None:
        state["i"] += 1
        step(tensors[state["i"] % len(tensors)])

    return one


def generated_batches(model: Any, examples: int) -> list[Any]:
    """The input batches one check feeds the model (recorded, not timed)."""
    from pytest_softmax import check_softmax
    from pytest_softmax.adapters.keras.adapter import KerasModelAdapter

    fed: list[Any] = []
    forward = KerasModelAdapter.forward

    def recording(self: Any, inputs: Any) -> Any:
        fed.append(inputs[0])
        return forward(self, inputs)

    KerasModelAdapter.forward = recording  # type: ignore[method-assign]
    try:
        check_softmax(model, max_examples=examples, batch_size=BATCH)
    finally:
        KerasModelAdapter.forward = forward  # type: ignore[method-assign]
    return fed


def worker(quick: bool) -> dict[str, Any]:
    import keras
    from hypothesis import settings

    settings.register_profile("softmax-bench", database=None)
    settings.load_profile("softmax-bench")
    from pytest_softmax import check_softmax
    from pytest_softmax.adapters.keras.adapter import KerasModelAdapter

    examples, repeats = (40, 3) if quick else (100, 5)
    rows: list[dict[str, Any]] = []
    for name, model in build_models().items():
        check_softmax(model, max_examples=5, batch_size=BATCH)  # traces; not timed
        check = median_time(partial(check_softmax, model, max_examples=examples, batch_size=BATCH), repeats)
        shape = (BATCH, *model.input_shape[1:])
        floor = median_time(partial(repeat, floor_forward(model, shape), 20), repeats) / 20
        fed = [x for x in generated_batches(model, examples) if x.shape == shape]
        same_data = median_time(partial(repeat, floor_forward(model, shape, fed), len(fed)), repeats) / len(fed)
        rows.append({"model": name, "check_per_example": check / examples, "floor_per_batch": floor,
                     "floor_same_data": same_data})
    # The fallback forward: a tagger on a None time axis, 10 steps.
    model = tagger()
    adapter = KerasModelAdapter(model)
    import numpy as np

    x = np.random.default_rng(1).standard_normal((BATCH, 10, 15)).astype("float32")
    adapter.forward([x])  # falls back (TensorFlow) and traces
    runner = adapter.model_forward()
    fallback = median_time(lambda: [adapter.forward([x]) for _ in range(20)], repeats) / 20
    eager = median_time(lambda: [keras.ops.convert_to_numpy(model(x, training=False)) for _ in range(5)],
                        repeats) / 5
    floor_step = floor_forward(model, (BATCH, 10, 15))
    floor = median_time(lambda: [floor_step() for _ in range(20)], repeats) / 20
    check_softmax(model, max_examples=5, batch_size=BATCH)
    check = median_time(lambda: check_softmax(model, max_examples=examples, batch_size=BATCH), repeats)
    return {"backend": keras.backend.backend(), "keras": keras.__version__, "rows": rows,
            "tagger": {"form": runner.form, "note": runner.note, "forward_per_batch": fallback,
                       "eager_per_batch": eager, "floor_per_batch": floor, "check_per_example": check / examples}}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def table(results: list[dict[str, Any]]) -> str:
    lines = [("| backend | model | check per example | floor per batch, normal data | ratio | "
              "floor per batch, the check's own batches | ratio (target <= 2x) |"),
             "|---|---|---|---|---|---|---|"]
    for result in results:
        for row in result["rows"]:
            check = row["check_per_example"]
            lines.append(f"| {result['backend']} | {row['model']} | {ms(check)} | "
                         f"{ms(row['floor_per_batch'])} | {check / row['floor_per_batch']:.2f}x | "
                         f"{ms(row['floor_same_data'])} | {check / row['floor_same_data']:.2f}x |")
    lines += ["", ("| backend | tagger forward used | forward per batch | eager call | floor (same shape) | "
                   "check per example |"), "|---|---|---|---|---|---|"]
    for result in results:
        t = result["tagger"]
        lines.append(f"| {result['backend']} | {t['form']} | {ms(t['forward_per_batch'])} "
                     f"({t['forward_per_batch'] / t['floor_per_batch']:.2f}x floor) | {ms(t['eager_per_batch'])} | "
                     f"{ms(t['floor_per_batch'])} | {ms(t['check_per_example'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.quick)))
        return
    results = []
    for backend in args.backends.split(","):
        print(f"measuring on {backend}...", file=sys.stderr, flush=True)
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, os.path.abspath(__file__), "--worker", *(["--quick"] if args.quick else [])]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the {backend} worker failed")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(table(results))


if __name__ == "__main__":
    main()
