"""A PyTorch check per example against the eager ``inference_mode`` floor.

For each model (an LSTM classifier, a small transformer encoder with a
padding mask and a softmax head) the check runs ``check_softmax(model,
inputs=example, max_examples=N, batch_size=32)`` once to warm up (the
export of the signature and the first recording are one-time costs, said
apart), then R more times; each measured check repeats one with the
same seed (so the same batches, warm), the batches it fed the model are
kept, and the *floor* (run once before it is timed) is the model's own eager forward under ``torch.inference_mode``
over those same batches, made into tensors beforehand.  Medians over the
repeats, side by side, and their ratio (target: steady state within 2x).
Also Hypothesis' own engine per test case (an empty test drawing one
integer), the adapter's own pass over the same batches, inside
``preserved_state`` as in a check, and, for a model with softmax sites
inside, the same forward on the path its recorded pass must take (MHA fast
path off, math SDPA) with nothing recorded: the part of the gap that comes
from seeing the softmax inside fused attention at all.

Usage::

    python benchmarks/bench_torch.py            # N = 100, R = 5
    python benchmarks/bench_torch.py --quick    # N = 30, R = 3
    python benchmarks/bench_torch.py --threads 1  # torch's intra-op threads, for check and floor alike

On a loaded machine, torch's intra-op threads stall: a forward waits for a
worker the scheduler has not run yet.  The check feeds one batch, then
works in Python (generating the next), so its workers sleep and wake on
every example, while the floor calls the model back to back; ``--threads
1`` takes that waiting out of both sides, to show what is the adapter's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_softmax import check_softmax
from pytest_softmax.adapters.torch import adapter as torch_adapter
from pytest_softmax.adapters.torch.convert import to_tensor
from pytest_softmax.adapters.torch.recording import recording_backends

BATCH = 32
settings.register_profile("softmax-bench", database=None)
settings.load_profile("softmax-bench")


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(48, 64, batch_first=True)
        self.head = nn.Linear(64, 25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(x)
        return torch.softmax(self.head(hidden[-1]), dim=-1)


class SmallTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(1000, 64)
        layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(self.embed(tokens), src_key_padding_mask=padding_mask)
        return torch.softmax(self.head(hidden[:, 0]), dim=-1)


MODELS: dict[str, tuple[Any, Any]] = {
    "LSTM classifier (10x48 -> 25)": (LSTMClassifier, torch.zeros(4, 10, 48)),
    "transformer encoder (2 layers, d=64, padded)": (
        SmallTransformer, (torch.zeros(4, 16, dtype=torch.long), torch.zeros(4, 16, dtype=torch.bool))),
}


class Batches:
    """Keeps every batch a check feeds the model (its own batches)."""

    def __init__(self) -> None:
        self.seen: list[list[np.ndarray]] = []
        self._patched: list[tuple[str, Any]] = []

    def __enter__(self) -> Batches:
        for name in ("forward", "forward_with_sites"):
            original = getattr(torch_adapter.TorchModuleAdapter, name)

            def keeping(adapter: Any, inputs: Any, _original: Any = original) -> Any:
                self.seen.append([np.array(x) for x in inputs])
                return _original(adapter, inputs)

            self._patched.append((name, original))
            setattr(torch_adapter.TorchModuleAdapter, name, keeping)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._patched:
            setattr(torch_adapter.TorchModuleAdapter, name, original)


def floor_per_example(model: nn.Module, batches: list[list[np.ndarray]], dtypes: list[str],
                      by_keyword: bool, names: list[str], *, slow_path: bool = False) -> float:
    """The eager forward per batch; with ``slow_path``, as the recorded pass
    runs it (MHA fast path off, math SDPA) but with nothing recorded."""
    tensors = [[to_tensor(x, d, torch.device("cpu")) for x, d in zip(batch, dtypes)] for batch in batches]
    model.eval()
    with torch.inference_mode(), recording_backends() if slow_path else contextlib.nullcontext():
        start = time.perf_counter()
        for batch in tensors:
            if by_keyword:
                model(**dict(zip(names, batch)))
            else:
                model(*batch)
        return (time.perf_counter() - start) / max(len(tensors), 1)


def hypothesis_per_example(n: int) -> float:
    """Seconds per test case of a Hypothesis test with an empty body drawing
    one integer, under the settings a check runs with: what the engine costs
    around every batch, before any input is drawn or any model is run."""
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.integers())
    def empty(_: int) -> None:
        pass

    started = time.perf_counter()
    empty()
    return (time.perf_counter() - started) / n


def measure(name: str, factory: Any, example: Any, examples: int, repeats: int) -> None:
    model = factory()
    started = time.perf_counter()
    check_softmax(model, inputs=example, max_examples=examples, batch_size=BATCH, seed=0)
    first = time.perf_counter() - started
    checks, floors, passes, slow = [], [], [], []
    for repeat in range(repeats):
        # Each measured check repeats a check with the same seed (the same
        # batches), and the floor runs those batches once before it is timed:
        # both warm, as a test suite that checks a model runs.
        check_softmax(model, inputs=example, max_examples=examples, batch_size=BATCH, seed=repeat + 1)
        with Batches() as kept:
            started = time.perf_counter()
            report = check_softmax(model, inputs=example, max_examples=examples, batch_size=BATCH, seed=repeat + 1)
            elapsed = time.perf_counter() - started
        adapter = torch_adapter.TorchModuleAdapter(model)
        adapter.learn_signature(example)
        signature = adapter._signature
        assert signature is not None
        # The preflight batch is not an example: the floor runs every batch the check ran.
        checks.append(elapsed / max(len(kept.seen), 1))
        floor_per_example(model, kept.seen, [s.dtype for s in adapter.input_specs()], signature.by_keyword,
                          signature.names)
        floors.append(floor_per_example(model, kept.seen, [s.dtype for s in adapter.input_specs()],
                                        signature.by_keyword, signature.names))
        # The adapter's own pass (conversions, recording where the model has
        # sites) over the same batches: what of the gap is the adapter's.  Its
        # share that no recorder can avoid: the slow path the recorded pass takes.
        dtypes = [s.dtype for s in adapter.input_specs()]
        floor_per_example(model, kept.seen, dtypes, signature.by_keyword, signature.names, slow_path=True)
        slow.append(floor_per_example(model, kept.seen, dtypes, signature.by_keyword, signature.names,
                                      slow_path=True))
        # Inside preserved_state, as in a check: what a check sets up once
        # (the module in eval mode, the softmax kernels registered) is not per example.
        run = adapter.forward_with_sites if adapter.internal_softmax_sites() else adapter.forward
        with adapter.preserved_state():
            started = time.perf_counter()
            for batch in kept.seen:
                run(batch)
            passes.append((time.perf_counter() - started) / max(len(kept.seen), 1))
        assert report.passed
    engine = statistics.median(hypothesis_per_example(examples) for _ in range(repeats))
    check, floor, own = statistics.median(checks), statistics.median(floors), statistics.median(passes)
    slowest = statistics.median(slow)
    recorded = adapter.internal_softmax_sites()
    kind = "recorded pass" if recorded else "pass (plain forward)"
    slow_path = (f"; fast path off + math SDPA, nothing recorded {slowest * 1e3:.2f} ms "
                 f"({slowest / floor:.2f}x)")
    print(f"{name}: first check (export, first recording) {first:.2f} s; steady state per example: "
          f"check {check * 1e3:.2f} ms vs floor {floor * 1e3:.2f} ms -> ratio {check / floor:.2f}x; "
          f"the adapter's {kind} alone {own * 1e3:.2f} ms ({own / floor:.2f}x)"
          f"{slow_path if recorded else ''} (median of {repeats}, {examples} examples each); "
          f"Hypothesis' engine alone (one integer drawn per test case) {engine * 1e3:.2f} ms ({engine / floor:.2f}x): "
          f"with one batch per test case a check costs at least the adapter's pass plus that, "
          f"{(own + engine) / floor:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the whole run")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    examples, repeats = (30, 3) if args.quick else (100, 5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    for name, (factory, example) in MODELS.items():
        measure(name, factory, example, examples, repeats)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")


if __name__ == "__main__":
    main()
