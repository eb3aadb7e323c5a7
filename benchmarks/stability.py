"""The same verdict on every run: how many seeds catch each broken model,
and how many let each healthy model pass.

Every model of the project's own corpora (tests/model_zoo.py,
tests/diagnosis_zoo.py, tests/domain_models.py, tests/hardening_models.py,
tests/edge_models.py and the narrow overflow of search_power.py) is checked
at ``max_examples=10`` with no example database under each of the seeds, as
a CI machine starting from nothing would.  Prints, per model, the seeds that
gave the expected verdict, and a total.

Usage::

    python benchmarks/stability.py                 # 6 seeds: 1 22 333 4444 55555 666666
    python benchmarks/stability.py --seeds 1 2 3
    python benchmarks/stability.py --only pointer  # models whose name contains a word
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import keras  # noqa: E402
from hypothesis import settings  # noqa: E402

import diagnosis_zoo as dz  # noqa: E402
import domain_models as dm  # noqa: E402
import edge_models as em  # noqa: E402
import hardening_models as hm  # noqa: E402
import model_zoo as mz  # noqa: E402
from pytest_softmax import SoftmaxInvariantError, SoftmaxSetupError, check_softmax  # noqa: E402

settings.register_profile("softmax-stability", database=None)
settings.load_profile("softmax-stability")

SEEDS = (1, 22, 333, 4444, 55555, 666666)
MAX_EXAMPLES = 10


class _Naive(keras.layers.Layer):
    def call(self, x):  # type: ignore[no-untyped-def]
        e = keras.ops.exp(x)
        return e / keras.ops.sum(e, axis=-1, keepdims=True)


def narrow_overflow() -> keras.Model:
    """search_power.py's model: overflows only past ~8.8e5 summed input."""
    inp = keras.Input((8,))
    dense = keras.layers.Dense(3, kernel_initializer=keras.initializers.Constant(1e-4), bias_initializer="zeros")
    return keras.Model(inp, _Naive()(dense(inp)), name="narrow_overflow")


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Any]
    broken: bool
    options: dict[str, Any] = field(default_factory=dict)


BROKEN = [
    Case("lstm_softmax", mz.lstm_softmax, True),
    Case("gru_softmax", mz.gru_softmax, True),
    Case("dense_logits", mz.dense_logits, True),
    Case("scaled_softmax", mz.scaled_softmax, True),
    Case("naive_softmax", mz.naive_softmax, True),
    Case("nested_lstm", dz.nested_lstm, True),
    Case("head_relu", lambda: dz.head_with("relu"), True),
    Case("head_tanh", lambda: dz.head_with("tanh"), True),
    Case("head_sigmoid", lambda: dz.head_with("sigmoid"), True),
    Case("zero_temperature", dz.zero_temperature, True),
    Case("dense_after_softmax", dz.dense_after_softmax, True),
    Case("float16_head_atol_1e-6", dz.float16_head, True, {"atol": 1e-6}),
    Case("single_class_gate", dz.single_class_gate, True),
    Case("nan_internal_site", dz.nan_internal_site, True),
    Case("subclassed_inside_functional", dz.subclassed_inside_functional, True),
    Case("conv_lstm_softmax", dz.conv_lstm_softmax, True),
    Case("masked_attention_neg_inf", dz.masked_attention_neg_inf, True),
    Case("float16_additive_mask", dz.float16_additive_mask, True),
    Case("float16_naive_softmax", dz.float16_naive_softmax, True),
    Case("masked_then_scaled", dz.masked_then_scaled, True),
    Case("pointer_softmax", dz.pointer_softmax, True),
    Case("regrouped_reshape", lambda: dz.regrouped_by("reshape"), True),
    Case("regrouped_permute", lambda: dz.regrouped_by("permute"), True),
    Case("regrouped_concat", lambda: dz.regrouped_by("concat"), True),
    Case("diverged_weights", dz.diverged_weights, True),
    Case("neg_inf_then_softmax_layer", dz.neg_inf_then_softmax_layer, True),
    Case("multiplied_mask", dz.multiplied_mask, True),
    Case("hand_masked_pointer", dz.hand_masked_pointer, True),
    Case("regrouped_inside_a_layer", dz.regrouped_inside_a_layer, True),
    Case("masked_mean_logits", dm.masked_mean_logits, True),
    Case("attention_over_one_element", dm.attention_over_one_element, True),
    Case("narrow_overflow", narrow_overflow, True),
    Case("pointer_over_valid_candidates", em.pointer_over_valid_candidates, True),
    Case("nested_reader", em.nested_reader, True),
]

HEALTHY = [
    Case("healthy", hm.healthy, False),
    Case("lstm_dense_softmax", mz.lstm_dense_softmax, False),
    Case("simple_rnn_softmax", mz.simple_rnn_softmax, False),
    Case("lambda_softmax", mz.lambda_softmax, False),
    Case("dropout_softmax", mz.dropout_softmax, False),
    Case("two_inputs_two_outputs", mz.two_inputs_two_outputs, False, {"outputs": "probs"}),
    Case("attention", dz.attention, False),
    Case("masked_attention_pooling", dz.masked_attention_pooling, False),
    Case("padding_masked_lstm", dz.padding_masked_lstm, False),
    Case("mixed_float16_classifier", dz.mixed_float16_classifier, False),
    Case("pointer_softmax_masked_rows_allowed", dz.pointer_softmax, False, {"allow_masked_rows": True}),
    Case("softmax_other_axis_axis_1", dz.softmax_other_axis, False, {"axis": 1}),
    Case("shared_embedding_in_nested_model", dm.shared_embedding_in_nested_model, False),
    Case("attention_pooling_weights_axis_1", dm.attention_pooling_weights, False, {"axis": 1}),
    Case("attention_pooling_classifier", dm.attention_pooling_classifier, False),
    Case("float_ids_embedding", dm.float_ids_embedding, False),
    Case("mobilenet", mz.mobilenet, False),
]


def verdict(case: Case, seed: int) -> str:
    """``caught``, ``passed`` or ``setup error: ...`` for one seed."""
    try:
        check_softmax(case.build(), max_examples=MAX_EXAMPLES, seed=seed, **case.options)
    except SoftmaxInvariantError:
        return "caught"
    except SoftmaxSetupError as exc:
        return f"setup error: {str(exc).splitlines()[0][:80]}"
    return "passed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--only", default="", help="check only models whose name contains this")
    args = parser.parse_args()
    cases = [c for c in BROKEN + HEALTHY if args.only in c.name]
    print(f"max_examples={MAX_EXAMPLES}, no database, seeds {args.seeds}, load {os.getloadavg()[0]:.1f}")
    print(f"{'model':<38} {'expected':<8} {'as expected':>11}  seconds  other verdicts")
    stable = 0
    for case in cases:
        started = time.perf_counter()
        verdicts = [verdict(case, seed) for seed in args.seeds]
        expected = "caught" if case.broken else "passed"
        good = sum(v == expected for v in verdicts)
        stable += good == len(args.seeds)
        others = sorted({v for v in verdicts if v != expected})
        print(f"{case.name:<38} {expected:<8} {good:>5}/{len(args.seeds):<5} {time.perf_counter() - started:8.1f}  "
              f"{'; '.join(others)}", flush=True)
    print(f"stable under every seed: {stable}/{len(cases)} models")


if __name__ == "__main__":
    main()
