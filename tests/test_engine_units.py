"""The engine without pytest: invariants, settings resolution, input
recipes and the plain ``check_softmax`` API."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import softmax  # noqa: E402
from hypothesis import find, given, settings

from pytest_softmax import SoftmaxInvariantError, SoftmaxReport, check_softmax, default_tolerance
from pytest_softmax.adapters.base import InputDomain, InputSpec
from pytest_softmax.core.inputs.batches import GeneratedBatch
from pytest_softmax.core.inputs.recipes import MAX_SPIKES, ArrayRecipe
from pytest_softmax.core.inputs.strategies import generated_batches
from pytest_softmax.core.invariants import check_batch
from pytest_softmax.settings import (
    MarkerSettings,
    Origin,
    SessionSettings,
    SettingError,
    Source,
    parse_marker,
    resolve,
)


class TestInvariants:
    def test_a_true_distribution_passes(self) -> None:
        probs = softmax(np.random.default_rng(0).normal(size=(16, 10))).astype(np.float32)
        check = check_batch(probs, -1, default_tolerance("float32", 10))
        assert check.passed and check.rows == 16 and check.n_classes == 10

    def test_rows_off_by_more_than_the_tolerance_fail(self) -> None:
        probs = softmax(np.zeros((4, 5))) * np.array([[1.0], [1.0], [0.5], [1.0]])
        check = check_batch(probs, -1, 1e-6)
        assert not check.passed
        assert check.unnormalized_rows == 1 and check.worst_index == (2,)
        assert check.worst_error == pytest.approx(0.5)

    def test_nan_and_inf_are_not_finite_and_rank_above_any_error(self) -> None:
        probs = softmax(np.zeros((3, 4)))
        probs[1, 2] = np.nan
        probs[2, 0] = np.inf
        check = check_batch(probs, -1, 1e-6)
        assert check.nonfinite_values == 2 and check.nonfinite_rows == 2
        assert check.severity > check_batch(probs[:1] * 2, -1, 1e-6).severity

    def test_values_outside_zero_one_are_out_of_range_even_if_rows_sum_to_one(self) -> None:
        probs = np.array([[1.5, -0.5, 0.0]])
        check = check_batch(probs, -1, 1e-6)
        assert check.out_of_range_rows == 1 and check.range_excess == pytest.approx(0.5)
        assert check.unnormalized_rows == 0

    def test_the_axis_is_respected(self) -> None:
        probs = softmax(np.random.default_rng(1).normal(size=(2, 7, 3)), axis=1)
        assert check_batch(probs, 1, 1e-9).passed
        assert not check_batch(probs, -1, 1e-9).passed

    def test_sums_are_taken_in_float64(self) -> None:
        # 100k float16 values of 1/100k: a float16 accumulation would stall far below 1.
        probs = np.full((1, 100_000), 1e-5, dtype=np.float16)
        check = check_batch(probs, -1, default_tolerance("float16", 100_000))
        exact = abs(float(np.float16(1e-5)) * 100_000 - 1)
        assert check.worst_error == pytest.approx(exact)


class TestSettingsResolution:
    def test_defaults_apply_last(self) -> None:
        resolved = resolve(None)
        assert (resolved.atol, resolved.rtol, resolved.max_examples, resolved.batch_size) == (None, 0.0, 100, 32)
        assert resolved.atol_for("float32", 10) == default_tolerance("float32", 10)

    def test_marker_beats_command_line_beats_per_dtype_ini_beats_ini(self) -> None:
        ini_only = SessionSettings(atol=1e-3, atol_by_dtype={"float16": 5e-3}, sources={"atol": Source(Origin.INI, "ini softmax_atol")})
        assert resolve(ini_only).atol_for("float16", 10) == 5e-3
        assert resolve(ini_only).atol_for("float32", 10) == 1e-3
        from_flag = SessionSettings(atol=2e-4, atol_by_dtype={"float16": 5e-3}, sources={"atol": Source(Origin.FLAG, "--softmax-atol")})
        assert resolve(from_flag).atol_for("float16", 10) == 2e-4
        assert resolve(from_flag, MarkerSettings(atol=7e-2)).atol_for("float16", 10) == 7e-2

    def test_marker_parsing_rejects_unknown_and_bad_arguments(self) -> None:
        with pytest.raises(SettingError, match="unknown argument atoll=1; valid arguments are: model, axis"):
            parse_marker((), {"atoll": 1})
        with pytest.raises(SettingError, match="max_examples=0 must be at least 1"):
            parse_marker((), {"max_examples": 0})
        with pytest.raises(SettingError, match="both positionally and as model="):
            parse_marker(("a.keras",), {"model": "b.keras"})
        assert parse_marker(("a.keras",), {"axis": 1}) == MarkerSettings(model="a.keras", axis=1)


class TestRecipes:
    def test_expansion_is_exactly_reproducible(self) -> None:
        recipe = ArrayRecipe(pattern="normal", scale=10.0, offset=1.0, seed=42, spikes=((7, 1e4),))
        first = recipe.expand((8, 5, 3), "float32")
        assert np.array_equal(first, recipe.expand((8, 5, 3), "float32"))
        assert first.dtype == np.float32 and first.reshape(-1)[7] == np.float32(1e4)

    @pytest.mark.parametrize(("dtype", "low", "high", "valid"), [
        ("int32", 0, 100, (0, 99)),
        ("int32", 5, 17, (5, 16)),
        ("int8", 0, 1000, (0, 127)),  # narrowed to what the dtype holds
    ])
    def test_integer_recipes_stay_in_range(self, dtype: str, low: int, high: int, valid: tuple[int, int]) -> None:
        """Every pattern (not only the all-``low`` array a search starts from)
        stays within ``[low, high)``, and the edges pattern reaches both ends."""
        spec = InputSpec("ids", (12,), dtype, low=low, high=high)
        seen: dict[str, set[int]] = {}

        @settings(max_examples=150, database=None, deadline=None)
        @given(generated_batches([spec], 16))
        def stays_in_range(batch: GeneratedBatch) -> None:
            (ids,), (recipe,) = batch.arrays, batch.recipes
            assert ids.dtype == np.dtype(dtype) and ids.shape == (16, 12)
            assert valid[0] <= ids.min() and ids.max() <= valid[1]
            assert recipe is not None and recipe.integer
            seen.setdefault(recipe.pattern, set()).update(np.unique(ids).tolist())

        stays_in_range()
        assert set(seen) == {"constant", "uniform", "edges"}
        assert set(valid) <= seen["edges"]
        assert len(seen["uniform"]) > 2

    def test_a_failure_shrinks_to_a_one_line_recipe(self) -> None:
        spec = InputSpec("x", (6,), "float32")
        big = find(generated_batches([spec], 4), lambda b: np.abs(b.arrays[0]).max() > 500,
                   settings=settings(database=None, max_examples=2000))
        (recipe,) = big.recipes
        assert recipe is not None and len(recipe.describe()) < 60
        assert np.abs(recipe.expand((4, 6), "float32")).max() > 500

    @pytest.mark.parametrize("spec", [
        InputSpec("x", (6,), "float32"), InputSpec("ids", (6,), "int32", low=0, high=50),
        InputSpec("mask", (6,), "bool", domain=InputDomain(kind="mask")),
    ], ids=["float", "ids", "mask"])
    def test_recipes_draw_what_changes_the_array(self, spec: InputSpec) -> None:
        """A seed only for the patterns built from a random generator (the
        rebuild line of a constant shows seed=0), at most one spike per place
        (a later one would overwrite it), and every spike count up to the limit."""
        counts: set[int] = set()

        @settings(max_examples=300, database=None, deadline=None)
        @given(generated_batches([spec], 4))
        def drawn(batch: GeneratedBatch) -> None:
            (recipe,) = batch.recipes
            assert recipe is not None
            if recipe.pattern not in {"normal", "uniform", "padding"}:
                assert recipe.seed == 0
            positions = [p for p, _ in recipe.spikes]
            assert len(positions) == len(set(positions))
            counts.add(len(positions))

        drawn()
        assert counts == ({0} if spec.is_mask else set(range(MAX_SPIKES + 1)))


class TestCheckSoftmaxApi:
    def test_returns_a_report_for_a_healthy_model(self) -> None:
        import model_zoo

        report = check_softmax(model_zoo.lstm_dense_softmax(), max_examples=10, batch_size=4)
        assert isinstance(report, SoftmaxReport) and report.passed
        # 17 edge rows in batches of 4 fill 5 batches; the edge phase stops at 3 passes.
        assert (report.examples, report.edge_batches, report.dtype) == (10, 3, "float32")
        assert report.rows == (10 + 3) * 4
        assert report.tolerance == default_tolerance("float32", 4)
        assert "softmax invariant holds" in str(report)
        assert "over 52 rows in 10 examples and 3 batches of edge rows" in str(report)

    def test_raises_an_assertion_error_carrying_the_report(self) -> None:
        import model_zoo

        with pytest.raises(AssertionError) as caught:
            check_softmax(model_zoo.lstm_softmax(), max_examples=10)
        assert isinstance(caught.value, SoftmaxInvariantError)
        report = caught.value.report
        assert not report.passed and report.violations[0].layer_class == "LSTM"
        assert str(caught.value).startswith("softmax invariant violated: output 'lstm' (lstm: LSTM)")

    def test_bad_arguments_name_the_argument(self) -> None:
        import model_zoo

        with pytest.raises(ValueError, match=r"check_softmax\(\): atol='x' is not a number"):
            check_softmax(model_zoo.lstm_dense_softmax(), atol="x")  # type: ignore[arg-type]

    def test_the_reported_seed_replays_the_same_failure(self) -> None:
        import model_zoo

        with pytest.raises(SoftmaxInvariantError) as first:
            check_softmax(model_zoo.gru_softmax(), max_examples=20)
        seed = first.value.report.seed
        assert seed is not None and f"check_softmax(..., seed={seed})" in str(first.value)
        with pytest.raises(SoftmaxInvariantError) as again:
            check_softmax(model_zoo.gru_softmax(), max_examples=20, seed=seed)
        assert again.value.report.failing_input == first.value.report.failing_input
        assert again.value.report.violations == first.value.report.violations
