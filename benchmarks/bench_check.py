"""How fast and how light a softmax check is, against the floor and the naive loop.

Everything is measured side by side in one run and reported as medians over
repeats, with ratios, because the machine this runs on is usually shared:

* first check vs floor: a check of a *fresh* model (its trace included,
  N = 100) against the floor of a fresh model: its trace, its first call and
  N - 1 more compiled passes; and the same model checked again, per example,
  against one compiled pass (issue 13's two ratios), on the small LSTM and on
  MobileNetV3Small, in wall time and in CPU time (which load from other
  programs changes least); for the small LSTM also the parts of an example beyond
  the pass: Hypothesis' engine alone and the recipe draws with expansion;
* check vs floor: ``check_softmax(model, max_examples=N, batch_size=32)`` per
  example against the *floor*, a compiled ``tf.function`` forward pass over
  pre-made batches of the same shape; the one-time cost (tracing) apart;
* naive loop vs check: Hypothesis ``arrays`` + ``model.predict`` +
  ``np.allclose`` at N = 100 on the small LSTM, all costs counted (fresh
  model each repeat, so tracing and ``predict``'s set-up are included);
* large inputs: generating one 32x224x224x3 example against the forward
  pass, and how varied the generated images are (fraction of distinct values);
* tracing: traces of the cached forward after two checks of one model, and
  after a check of a model with a variable-length input;
* memory: peak RSS of a check vs the floor script on MobileNetV3Small, each
  in its own process;
* scale: time of a check for N = 10, 100, 1000 on the small LSTM.

Usage::

    python benchmarks/bench_check.py            # full run (~10 min on 2 CPUs)
    python benchmarks/bench_check.py --quick    # fewer repeats and examples (~3 min)
    python benchmarks/bench_check.py --only tracing,scale

The start-up cost of the plugin is measured by ``bench_startup.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras
import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pytest_softmax import check_softmax
from pytest_softmax.adapters.keras import adapter as keras_adapter
from pytest_softmax.adapters.base import InputSpec
from pytest_softmax.adapters.registry import adapt
from pytest_softmax.core.inputs.edges import edge_batches
from pytest_softmax.core.inputs.strategies import generated_batches

BATCH = 32
SECTIONS = ("first", "check", "naive", "large", "tracing", "memory", "scale")

# No example database: a benchmark must not replay or store examples.
settings.register_profile("softmax-bench", database=None)
settings.load_profile("softmax-bench")


def small_lstm(length: int | None = 10) -> keras.Model:
    return keras.Sequential([
        keras.Input((length, 48)),
        keras.layers.LSTM(64),
        keras.layers.Dense(25, activation="softmax"),
    ])


def mobilenet() -> keras.Model:
    return keras.applications.MobileNetV3Small(
        weights=None, input_shape=(224, 224, 3), classifier_activation="softmax"
    )


MODELS: dict[str, Callable[[], keras.Model]] = {"small LSTM": small_lstm, "MobileNetV3Small": mobilenet}


@dataclass
class Table:
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, what: str, measured: str, target: str = "") -> None:
        self.rows.append((what, measured, target))
        print(f"  {what}: {measured}" + (f"  [target {target}]" if target else ""), flush=True)

    def markdown(self) -> str:
        lines = ["| measure | measured (median) | target |", "|---|---|---|"]
        lines += [f"| {w} | {m} | {t} |" for w, m, t in self.rows]
        return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


class Floor:
    """A compiled forward pass over pre-made batches: what any check costs at least."""

    def __init__(self, model: keras.Model, batches: int = 2) -> None:
        shape = (BATCH, *model.input_shape[1:])
        self.forward = tf.function(
            lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, *shape[1:]), tf.float32)]
        )
        rng = np.random.default_rng(0)
        self.data = [tf.constant(rng.standard_normal(shape, dtype=np.float32)) for _ in range(batches)]
        self.forward(self.data[0]).numpy()  # trace outside the timing

    def per_batch(self, count: int) -> float:
        return self.per_batch_both(count)[0]

    def per_batch_both(self, count: int) -> tuple[float, float]:
        """Wall and CPU time per batch."""
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(count):
            self.forward(self.data[i % len(self.data)]).numpy()
        return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def check_per_example(model: keras.Model, n: int) -> float:
    return check_per_example_both(model, n)[0]


def check_per_example_both(model: keras.Model, n: int) -> tuple[float, float]:
    """Wall and CPU time per example of a whole check."""
    wall, cpu = time.perf_counter(), time.process_time()
    report = check_softmax(model, max_examples=n, batch_size=BATCH)
    examples = max(report.examples, 1)
    return (time.perf_counter() - wall) / examples, (time.process_time() - cpu) / examples


def bench_check(table: Table, opts: argparse.Namespace, floors: dict[str, float]) -> None:
    for name, build in MODELS.items():
        big = name == "MobileNetV3Small"
        n, repeats = (opts.n_big, opts.repeats_big) if big else (opts.n_small, opts.repeats)
        model = build()
        one_time = timed(check_softmax, model, max_examples=1, batch_size=BATCH)
        floor = Floor(model)
        floor_times, check_times = [], []
        for _ in range(repeats):  # interleaved, so both see the same machine load
            floor_times.append(floor.per_batch(n))
            check_times.append(check_per_example(model, n))
        f, c = statistics.median(floor_times), statistics.median(check_times)
        floors[name] = f
        target = "≤ 1.25×" if big else "≤ 3×"
        table.add(f"check vs floor, {name} (N={n}, batch {BATCH})",
                  f"{ms(c)}/example vs {ms(f)}/batch = {c / f:.2f}×", target)
        table.add(f"one-time cost of the first check, {name} (tracing)", ms(max(one_time - c, 0.0)))


def fresh_floor(build: Callable[[], keras.Model], n: int) -> float:
    """A fresh model's trace + first call + ``n - 1`` compiled passes: the
    least a first check of ``n`` examples can cost."""
    model = build()
    shape = (BATCH, *model.input_shape[1:])
    data = [np.random.default_rng(i).standard_normal(shape, dtype=np.float32) for i in range(2)]
    started = time.perf_counter()
    forward = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec((None, *shape[1:]), tf.float32)]).get_concrete_function()
    for i in range(n):
        np.asarray(forward(tf.convert_to_tensor(data[i % 2])))
    return time.perf_counter() - started


def bench_first(table: Table, opts: argparse.Namespace) -> None:
    for name, build in MODELS.items():
        big = name == "MobileNetV3Small"
        n, repeats = (opts.n_first_big, opts.repeats_big) if big else (100, opts.repeats)
        fresh_floor(build, 2)  # TensorFlow warm: neither side pays its first-use cost
        check_softmax(build(), max_examples=2, batch_size=BATCH)
        firsts, floors, agains, passes, agains_cpu, passes_cpu = [], [], [], [], [], []
        for _ in range(repeats):  # interleaved, so both see the same machine load
            floors.append(fresh_floor(build, n))
            model = build()
            firsts.append(timed(check_softmax, model, max_examples=n, batch_size=BATCH))
            wall, cpu = check_per_example_both(model, n)
            agains.append(wall)
            agains_cpu.append(cpu)
            wall, cpu = Floor(model).per_batch_both(n)
            passes.append(wall)
            passes_cpu.append(cpu)
        first, floor = statistics.median(firsts), statistics.median(floors)
        again, one_pass = statistics.median(agains), statistics.median(passes)
        table.add(f"first check of a fresh {name}, N={n}, vs trace + first call + {n - 1} passes",
                  f"{ms(first)} vs {ms(floor)} = {first / floor:.2f}×", "≤ 1.25×" if big else "≤ 2.0×")
        table.add(f"the same {name} checked again, per example vs one compiled pass",
                  f"{ms(again)} vs {ms(one_pass)} = {again / one_pass:.2f}×", "≤ 1.1×" if big else "≤ 1.8×")
        # CPU time (all threads): what other programs on a shared machine
        # change least, since waiting for a CPU is not counted.
        again_cpu, pass_cpu = statistics.median(agains_cpu), statistics.median(passes_cpu)
        table.add(f"the same {name} checked again, CPU time per example vs one compiled pass's",
                  f"{ms(again_cpu)} vs {ms(pass_cpu)} = {again_cpu / pass_cpu:.2f}×")
        bench_edge_phase(table, name, model, opts.repeats)
        if not big:
            bench_per_example_parts(table, name, build(), n, opts.repeats)


def bench_edge_phase(table: Table, name: str, model: keras.Model, repeats: int) -> None:
    """The edge phase's cost in compiled passes: building its batches and
    running each through the check's own forward, interleaved with the floor."""
    adapter = adapt(model, safe_mode=True)
    specs = list(adapter.input_specs())
    floor = Floor(model)
    edges, passes, count = [], [], 0
    for _ in range(repeats):
        passes.append(floor.per_batch(10))
        started = time.perf_counter()
        batches = edge_batches(specs, BATCH)
        for batch in batches:
            adapter.forward(batch.arrays)
        edges.append(time.perf_counter() - started)
        count = len(batches)
    edge, one_pass = statistics.median(edges), statistics.median(passes)
    table.add(f"edge phase of {name}: {count} batch(es) built and run, vs one compiled pass",
              f"{ms(edge)} vs {ms(one_pass)} = {edge / one_pass:.2f} passes", "≤ 3 passes")


def hypothesis_per_example(strategy: st.SearchStrategy[Any], n: int) -> float:
    """Seconds per example of a Hypothesis test with an empty body, under the
    settings a check runs with."""
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def empty(_: Any) -> None:
        pass

    return timed(empty) / n


def bench_per_example_parts(table: Table, name: str, model: keras.Model, n: int, repeats: int) -> None:
    """Where a checked-again example's time goes beyond the forward pass:
    Hypothesis' own engine (a test drawing one integer; it saves, seeds and
    restores the global random generators around every example) and the
    recipe draws plus their expansion into arrays, each as a fraction of one
    compiled pass, measured interleaved."""
    spec = InputSpec("x", tuple(model.input_shape[1:]), "float32")
    floor = Floor(model)
    engines, generations, passes = [], [], []
    for _ in range(repeats):
        passes.append(floor.per_batch(n))
        engines.append(hypothesis_per_example(st.integers(), n))
        generations.append(hypothesis_per_example(generated_batches([spec], BATCH), n))
    one_pass = statistics.median(passes)
    engine, generation = statistics.median(engines), statistics.median(generations)
    table.add(f"{name}: Hypothesis engine alone (one integer drawn), per example vs one compiled pass",
              f"{ms(engine)} vs {ms(one_pass)} = {engine / one_pass:.2f}×")
    table.add(f"{name}: engine + recipe draws + expansion, per example vs one compiled pass",
              f"{ms(generation)} vs {ms(one_pass)} = {generation / one_pass:.2f}×")


def naive_loop(model: keras.Model, n: int) -> None:
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(arrays(np.float32, (BATCH, 10, 48), elements=st.floats(-10, 10, width=32)))
    def loop(x: np.ndarray) -> None:
        y = model.predict(x, verbose=0)
        assert np.allclose(y.sum(axis=-1), 1.0, atol=1e-5)

    loop()


def bench_naive(table: Table, opts: argparse.Namespace) -> None:
    n = 100
    naive, ours = [], []
    for _ in range(opts.repeats_naive):
        keras.backend.clear_session()
        model = small_lstm()
        naive.append(timed(naive_loop, model, n))
        model = small_lstm()
        ours.append(timed(check_softmax, model, max_examples=n, batch_size=BATCH))
    a, b = statistics.median(naive), statistics.median(ours)
    table.add(f"naive arrays+predict+allclose vs check, small LSTM, N={n}, all costs",
              f"{a:.2f} s vs {b:.2f} s = {a / b:.0f}× faster", "≥ 20×")


def distinct_fraction(image: np.ndarray) -> float:
    return float(np.unique(image).size / image.size)


def generation_cost(strategy: st.SearchStrategy[Any], n: int) -> tuple[float, list[float]]:
    """Per-example time of drawing from ``strategy`` (Hypothesis included,
    the measuring excluded), and the fraction of distinct values in the
    first image of each example."""
    fractions: list[float] = []
    measuring = 0.0

    @settings(max_examples=n, deadline=None, database=None)
    @given(strategy)
    def draw(value: Any) -> None:
        nonlocal measuring
        started = time.perf_counter()
        fractions.append(distinct_fraction((value.arrays[0] if hasattr(value, "arrays") else value)[0]))
        measuring += time.perf_counter() - started

    total = timed(draw)
    return (total - measuring) / max(len(fractions), 1), fractions


def bench_large(table: Table, opts: argparse.Namespace, floors: dict[str, float]) -> None:
    if "MobileNetV3Small" not in floors:
        floors["MobileNetV3Small"] = statistics.median(Floor(mobilenet()).per_batch(3) for _ in range(3))
    forward = floors["MobileNetV3Small"]
    spec = InputSpec("image", (224, 224, 3), "float32")
    costs, fractions = [], []
    for _ in range(opts.repeats):
        cost, fracs = generation_cost(generated_batches([spec], BATCH), opts.n_large)
        costs.append(cost)
        fractions += fracs
    cost = statistics.median(costs)
    table.add("generating one 32×224×224×3 example vs its forward pass",
              f"{ms(cost)} vs {ms(forward)} = {cost / forward:.1%}", "≤ 10%")
    varied = sum(f > 0.5 for f in fractions) / len(fractions)
    table.add("distinct values per generated 224×224×3 image",
              f"median {statistics.median(fractions):.2f}; {varied:.0%} of images have > 50% distinct values "
              "(the rest: deliberate constant / alternating patterns)")
    # One image per example (not a batch of 32): Hypothesis' arrays is far
    # slower per element, and the point here is how varied it is.
    image = arrays(np.float32, (224, 224, 3), elements=st.floats(-1e3, 1e3, width=32))
    cost, fracs = generation_cost(image, max(opts.n_large // 3, 5))
    table.add("for comparison: hypothesis arrays(), one 224×224×3 image",
              f"{ms(cost)} per image; median distinct fraction {statistics.median(fracs):.4f}")


def tracing_count(model: keras.Model) -> int:
    return int(keras_adapter._FORWARD_CACHE[model].experimental_get_tracing_count())


def bench_tracing(table: Table, opts: argparse.Namespace) -> None:
    model = small_lstm()
    check_softmax(model, max_examples=20, batch_size=BATCH)
    check_softmax(model, max_examples=20, batch_size=8)
    table.add("traces after two checks of one model (batch 32, then 8)", str(tracing_count(model)), "1")
    variable = small_lstm(length=None)
    check_softmax(variable, max_examples=50, batch_size=BATCH)
    table.add("traces after 50 examples of variable length (1..16) ", str(tracing_count(variable)), "1")


MEMORY_CHILD = "--memory-child"


def memory_child(mode: str, n: int) -> None:
    model = mobilenet()
    if mode == "floor":
        Floor(model).per_batch(n)
    else:
        check_softmax(model, max_examples=n, batch_size=BATCH)
    print(json.dumps({"max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def bench_memory(table: Table, opts: argparse.Namespace) -> None:
    peaks: dict[str, list[float]] = {"floor": [], "check": []}
    for _ in range(opts.repeats_memory):
        for mode, seen in peaks.items():
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), MEMORY_CHILD, mode, str(opts.n_memory)],
                check=True, capture_output=True, text=True,
            ).stdout
            seen.append(json.loads(out.strip().splitlines()[-1])["max_rss_kb"] / 1024)
    f, c = statistics.median(peaks["floor"]), statistics.median(peaks["check"])
    table.add("peak RSS, check vs floor script, MobileNetV3Small",
              f"{c:.0f} MB vs {f:.0f} MB = {c / f:.2f}×", "≤ 1.5×")


def bench_scale(table: Table, opts: argparse.Namespace) -> None:
    model = small_lstm()
    check_softmax(model, max_examples=1, batch_size=BATCH)  # trace first
    line = []
    for n in opts.scale:
        total = statistics.median(timed(check_softmax, model, max_examples=n, batch_size=BATCH)
                                  for _ in range(opts.repeats))
        line.append(f"N={n}: {total:.2f} s ({ms(total / n)}/example)")
    table.add("scale, small LSTM (steady state)", "; ".join(line), "linear")


def machine() -> str:
    return (f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"GPUs: {len(tf.config.list_physical_devices('GPU'))}, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}, numpy {np.__version__}, "
            f"load average {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and examples")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    opts = parser.parse_args(argv)
    quick = opts.quick
    opts.repeats = 3 if quick else 7
    opts.repeats_big = 3
    opts.repeats_naive = 1 if quick else 3
    opts.repeats_memory = 1 if quick else 3
    opts.n_small = 100 if quick else 200
    opts.n_big = 20 if quick else 100
    opts.n_first_big = 20 if quick else 100
    opts.n_memory = 10 if quick else 20
    opts.n_large = 15 if quick else 40
    opts.scale = (10, 100, 300) if quick else (10, 100, 1000)
    wanted = [s.strip() for s in opts.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")

    print(f"machine: {machine()}", flush=True)
    table, floors = Table(), {}
    runners: dict[str, Callable[[], None]] = {
        "first": lambda: bench_first(table, opts),
        "check": lambda: bench_check(table, opts, floors),
        "naive": lambda: bench_naive(table, opts),
        "large": lambda: bench_large(table, opts, floors),
        "tracing": lambda: bench_tracing(table, opts),
        "memory": lambda: bench_memory(table, opts),
        "scale": lambda: bench_scale(table, opts),
    }
    for section in SECTIONS:
        if section in wanted:
            print(f"[{section}]", flush=True)
            runners[section]()
    print()
    print(table.markdown())
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == MEMORY_CHILD:
        memory_child(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(main())
