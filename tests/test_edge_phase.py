"""The edge phase, in-process: the catalogue of structured rows each input
domain gets, what it costs in forward passes, and how a failure found there
reaches the user (one failing row, rebuilt by one line, under every seed)."""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np
import pytest
from hypothesis import Phase, settings

import pytest_softmax
from pytest_softmax import EdgeRows, SoftmaxInvariantError, check_softmax
from pytest_softmax.adapters.base import IDS, MASK, InputDomain, InputSpec
from pytest_softmax.core.inputs.edges import MAX_EDGE_PASSES, cases_for, edge_batches, narrowed
from pytest_softmax.core.inputs.recipes import ArrayRecipe

SEEDS = (1, 22, 333, 4444, 55555, 666666)


@pytest.fixture
def no_database() -> Iterator[None]:
    settings.register_profile("softmax-edge-no-db", settings(settings.get_profile("default"), database=None))
    settings.load_profile("softmax-edge-no-db")
    try:
        yield
    finally:
        settings.load_profile("default")


def rows_of(spec: InputSpec, batch_size: int = 32) -> set[tuple[float, ...]]:
    """Every distinct row the edge phase gives ``spec``, flattened."""
    arrays = [b.arrays[0] for b in edge_batches([spec], batch_size)]
    return {tuple(float(v) for v in row.ravel()) for array in arrays for row in array}


def test_float_rows_hold_zeros_ones_both_signs_up_to_the_limit_tiny_alternating_and_one_hot() -> None:
    rows = rows_of(InputSpec("x", (4,), "float32"))
    for row in [(0.0,) * 4, (1.0,) * 4, (-1.0,) * 4, (1e6,) * 4, (-1e6,) * 4, (1e2,) * 4, (-1e4,) * 4,
                (1.0, -1.0, 1.0, -1.0), (1e6, -1e6, 1e6, -1e6), (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)]:
        assert row in rows, row
    assert any(0 < abs(row[0]) < 1e-5 for row in rows)  # a tiny magnitude


def test_float_rows_stop_at_the_input_value_limit() -> None:
    rows = rows_of(InputSpec("x", (3,), "float16"))
    assert max(abs(v) for row in rows for v in row) == pytest.approx(6.0e4, rel=1e-3)
    assert rows_of(InputSpec("x", (3,), "float32", value_limit=500.0)) >= {(500.0,) * 3, (-500.0,) * 3}


def test_ids_rows_are_at_the_bottom_the_top_and_between() -> None:
    spec = InputSpec("ids", (3,), "int32", low=0, high=20, domain=InputDomain(IDS, "vocabulary of emb"))
    assert rows_of(spec) >= {(0.0,) * 3, (19.0,) * 3, (9.0,) * 3, (0.0, 19.0, 0.0)}
    assert (1.0,) * 3 not in rows_of(spec)  # a bounded vocabulary: no 0/1 flag rows


def test_an_integer_input_of_open_meaning_gets_0_1_rows_and_its_range_edges() -> None:
    rows = rows_of(InputSpec("candidate_valid", (3,), "int32"))
    assert rows >= {(0.0,) * 3, (1.0,) * 3, (255.0,) * 3, (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)}


def test_mask_rows_are_full_empty_padded_on_either_side_and_single() -> None:
    rows = rows_of(InputSpec("attention_mask", (4,), "int32", domain=InputDomain(MASK, "named as a mask")))
    assert rows == {(1.0,) * 4, (0.0,) * 4, (1.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 1.0), (1.0, 0.0, 0.0, 0.0)}


def test_variable_lengths_take_their_largest_and_smallest_size() -> None:
    spec = InputSpec("tokens", (None,), "int32", low=0, high=9, domain=InputDomain(IDS, "v", max_length=7))
    assert [b.arrays[0].shape for b in edge_batches([spec], 8)] == [(8, 7), (8, 1)]


@pytest.mark.parametrize(("max_length", "lengths"), [(2, [2, 1]), (1, [1])])
def test_a_length_limit_of_one_or_two_gives_each_length_once(max_length: int, lengths: list[int]) -> None:
    spec = InputSpec("tokens", (None,), "int32", low=0, high=9, domain=InputDomain(IDS, "v", max_length=max_length))
    assert [b.arrays[0].shape[1] for b in edge_batches([spec], 32)] == lengths


def test_ids_rows_start_at_the_lowest_id_of_a_range_not_starting_at_0() -> None:
    spec = InputSpec("ids", (2,), "int32", low=5, high=20, domain=InputDomain(IDS, "vocabulary of emb"))
    assert rows_of(spec) == {(5.0, 5.0), (19.0, 19.0), (12.0, 12.0), (5.0, 19.0)}
    assert [c.describe() for c in cases_for(spec)][-1] == "ids edges"


def test_no_edge_row_repeats_when_the_value_limit_is_one_of_the_large_magnitudes() -> None:
    cases = cases_for(InputSpec("x", (3,), "float32", value_limit=1e4))
    assert len(set(cases)) == len(cases)


def test_open_integer_rows_are_described_as_ids() -> None:
    described = [c.describe() for c in cases_for(InputSpec("candidate_valid", (3,), "int32"))]
    assert described[-2:] == ["one-hot: 1 over ids at the lowest, at position 0 of each row",
                              "one-hot: 1 over ids at the lowest, at position -1 of each row"]


@pytest.mark.parametrize(("specs", "batch_size"), [
    ([InputSpec("x", (10, 48), "float32")], 32),  # the small LSTM of bench_check.py
    ([InputSpec("image", (224, 224, 3), "float32")], 32),  # MobileNetV3Small
    ([InputSpec("ids", (None,), "int32", low=0, high=50, domain=InputDomain(IDS, "v")),
      InputSpec("mask", (None,), "int32", domain=InputDomain(MASK, "m"))], 32),
    ([InputSpec("x", (4,), "float32")], 2),  # a batch too small for the catalogue: still at most 3 passes
])
def test_the_whole_catalogue_costs_at_most_three_forward_passes(specs: list[InputSpec], batch_size: int) -> None:
    batches = edge_batches(specs, batch_size)
    assert 1 <= len(batches) <= MAX_EDGE_PASSES
    if batch_size >= 32:  # every input's every case is in some batch
        for index, spec in enumerate(specs):
            shown = {case for b in batches for case in b.recipes[index].cases}  # type: ignore[union-attr]
            assert shown == set(cases_for(spec))


def test_one_batch_carries_a_different_edge_row_per_row_and_rebuilds_exactly() -> None:
    spec = InputSpec("x", (5,), "float32")
    (batch,) = edge_batches([spec], 32)
    recipe = batch.recipes[0]
    assert isinstance(recipe, EdgeRows) and len(recipe.cases) == len(cases_for(spec)) > 10
    for row, case in zip(batch.arrays[0], recipe.cases):
        np.testing.assert_array_equal(row, case.expand((1, 5), "float32")[0])
    np.testing.assert_array_equal(recipe.expand((32, 5), "float32"), batch.arrays[0])


def test_narrowing_finds_the_worst_row_and_gives_up_when_it_does_not_fail_alone() -> None:
    spec = InputSpec("x", (3,), "float32")
    (batch,) = edge_batches([spec], 32)

    def largest_magnitude(b):  # type: ignore[no-untyped-def]
        worst = float(np.abs(b.arrays[0]).max())
        return worst > 50, worst

    worst = narrowed(batch, largest_magnitude(batch)[1], largest_magnitude)
    assert worst is not None
    (case,) = worst.recipes[0].cases  # type: ignore[union-attr]
    assert case == ArrayRecipe(pattern="constant", scale=1e6)  # the first row holding 1e6
    # Only the whole batch fails (its rows disagree): no single row to report.
    assert narrowed(batch, 1.0, lambda b: (len({tuple(r) for r in b.arrays[0]}) > 1, 1.0)) is None


@pytest.mark.usefixtures("no_database")
@pytest.mark.parametrize(("factory", "needed_row"), [
    ("pointer_over_valid_candidates", "candidate_valid: int32 [32, 6], edge row, every row: ids constant (offset 0)"),
    ("nested_reader", "attention_mask: int32 [32, 16], edge row, every row: mask all zeros (every position padded)"),
])
def test_models_failing_on_one_structured_row_are_caught_under_every_seed_with_a_rebuild_line(
        factory: str, needed_row: str) -> None:
    import edge_models

    model = getattr(edge_models, factory)()
    for seed in SEEDS:
        with pytest.raises(SoftmaxInvariantError) as caught:
            check_softmax(model, max_examples=10, seed=seed)
        report = caught.value.report
        text = str(caught.value)
        assert "failing input (edge phase, before the search" in text
        assert needed_row in text
        # The rebuild lines give back inputs the model fails on.
        rebuilt = [eval(item.rebuild, {"pytest_softmax": pytest_softmax}) for item in report.failing_input]
        outputs = keras.ops.convert_to_numpy(model(rebuilt, training=False))
        sums = outputs.sum(axis=-1)
        assert not np.all(np.isfinite(sums) & (np.abs(sums - 1) < 1e-3))


def test_a_healthy_model_passes_the_edge_rows_and_the_report_counts_them_apart(no_database: None) -> None:
    import model_zoo

    report = check_softmax(model_zoo.lstm_dense_softmax(), max_examples=5, seed=1)
    assert report.passed and report.examples == 5 and report.edge_batches == 1
    assert report.rows == (5 + 1) * 32
    assert "in 5 examples and 1 batch of edge rows" in str(report)


def test_a_profile_without_the_explicit_phase_runs_no_edge_rows() -> None:
    import model_zoo

    settings.register_profile("softmax-edge-off", phases=[p for p in Phase if p is not Phase.explicit],
                              database=None)
    settings.load_profile("softmax-edge-off")
    try:
        report = check_softmax(model_zoo.lstm_dense_softmax(), max_examples=5, seed=1)
    finally:
        settings.load_profile("default")
    assert report.passed and report.edge_batches == 0 and report.rows == 5 * 32
