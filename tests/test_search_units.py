"""The search, in-process: a test's own Hypothesis strategy, the settings the
search runs under, and a profile that runs no example.

These run in the test process (no pytester subprocess), so a mutation tool
that switches mutants inside the process sees them; the pytester tests of the
same behaviour are in test_no_vacuous_checks.py and test_seed_replay.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase

from pytest_softmax import SoftmaxInvariantError, SoftmaxSetupError, check_softmax
from pytest_softmax.core.database import NamespacedDatabase
from pytest_softmax.core.search import _search_seed, _search_settings
from pytest_softmax.settings import CheckSettings


@pytest.fixture
def hm():  # type: ignore[no-untyped-def]
    import hardening_models

    return hardening_models


@pytest.fixture
def loaded_profile() -> Iterator[callable]:  # type: ignore[valid-type]
    """Load a Hypothesis profile for one test, and the default one after it."""
    def load(**values: object) -> None:
        settings.register_profile("softmax-search-units", settings(settings.get_profile("default"), **values))
        settings.load_profile("softmax-search-units")

    try:
        yield load
    finally:
        settings.load_profile("default")


# The test's own strategy ----------------------------------------------------------


def test_a_strategy_of_healthy_batches_passes_and_counts_their_rows(hm) -> None:  # type: ignore[no-untyped-def]
    report = check_softmax(hm.healthy(), inputs=st.just(np.full((5, 4), 0.5, "float32")), max_examples=3)
    assert report.passed
    assert report.examples >= 1
    assert report.rows == 5 * report.examples
    assert report.failing_input == []


def test_a_strategy_batch_that_breaks_the_model_is_reported_with_its_shape(hm) -> None:  # type: ignore[no-untyped-def]
    import keras

    inp = keras.Input((4,), name="x")
    logits = keras.Model(inp, keras.layers.Dense(3, name="logits")(inp), name="logits_head")
    batch = np.arange(12, dtype="float32").reshape(3, 4)
    with pytest.raises(SoftmaxInvariantError) as failed:
        check_softmax(logits, inputs=st.just(batch), max_examples=3)
    report = failed.value.report
    assert report.rows == 3 * report.examples  # Hypothesis replays a failure once
    assert len(report.failing_input) == 1
    summary = report.failing_input[0]
    assert (summary.name, summary.shape, summary.min_value, summary.max_value) == ("x", (3, 4), 0.0, 11.0)


def test_a_strategy_drawing_non_finite_values_is_a_setup_error_naming_the_input(hm) -> None:  # type: ignore[no-untyped-def]
    batch = np.full((3, 4), 0.5, "float32")
    batch[1, 2] = np.nan
    with pytest.raises(SoftmaxSetupError, match=r"input 'x' has 1 NaN/Inf values \(the first at index \[1, 2\]"):
        check_softmax(hm.healthy(), inputs=st.just(batch), max_examples=3)


def test_a_strategy_drawing_an_empty_batch_is_a_setup_error(hm) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SoftmaxSetupError, match=r"the inputs= strategy drew a batch of 0 rows"):
        check_softmax(hm.healthy(), inputs=st.just(np.zeros((0, 4), "float32")), max_examples=3)


def test_a_strategy_for_two_inputs_feeds_each_by_name() -> None:
    """The strategy's dict is arranged into the model's input order."""
    import keras

    a, b = keras.Input((2,), name="a"), keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], keras.layers.Dense(4, activation="softmax", name="probs")(joined))
    strategy = st.just({"b": np.ones((2, 3), "float32"), "a": np.zeros((2, 2), "float32")})
    report = check_softmax(model, inputs=strategy, max_examples=2)
    assert report.passed and report.rows == 2 * report.examples


# A profile that runs no example ---------------------------------------------------


@pytest.mark.parametrize("phases", [[Phase.explicit], [Phase.explicit, Phase.reuse], [Phase.reuse]])
def test_a_profile_without_generate_is_an_error_that_names_the_setting(
    hm, loaded_profile, phases: list[Phase]  # type: ignore[no-untyped-def]
) -> None:
    loaded_profile(phases=phases, database=None)
    with pytest.raises(SoftmaxSetupError, match=(r"Hypothesis ran no examples: the Hypothesis profile "
                                                     r"'softmax-search-units' sets phases=.*add Phase.generate")):
        check_softmax(hm.healthy(), max_examples=5)


def test_a_profile_that_generates_runs_the_requested_examples(hm, loaded_profile) -> None:  # type: ignore[no-untyped-def]
    loaded_profile(phases=[Phase.generate], database=None)
    assert check_softmax(hm.healthy(), max_examples=7).examples == 7


# The settings the search runs under -----------------------------------------------


def settings_with(max_examples: int = 100) -> CheckSettings:
    return CheckSettings(atol=None, rtol=0.0, max_examples=max_examples, batch_size=32)


def test_search_settings_keep_the_profile_and_set_what_the_check_needs(loaded_profile) -> None:  # type: ignore[no-untyped-def]
    inner = InMemoryExampleDatabase()
    loaded_profile(database=inner, suppress_health_check=[HealthCheck.filter_too_much], deadline=500,
                   report_multiple_bugs=True)
    configured = _search_settings(settings_with(max_examples=17), "ns")
    assert configured.max_examples == 17
    assert configured.deadline is None  # a forward pass may take longer than any deadline
    assert configured.database == NamespacedDatabase(inner, "ns")
    assert Phase.explain not in configured.phases
    assert set(configured.phases) == set(Phase) - {Phase.explain}
    assert set(configured.suppress_health_check) == {
        HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture}
    assert configured.report_multiple_bugs is False
    assert configured.verbosity == Verbosity.quiet


def test_search_settings_without_a_database_save_nothing(loaded_profile) -> None:  # type: ignore[no-untyped-def]
    loaded_profile(database=None)
    assert _search_settings(settings_with(), "ns").database is None


@pytest.mark.parametrize(
    ("profile", "used"),
    [(Verbosity.quiet, Verbosity.quiet), (Verbosity.normal, Verbosity.quiet),
     (Verbosity.verbose, Verbosity.verbose), (Verbosity.debug, Verbosity.debug)],
)
def test_search_settings_are_quiet_unless_the_profile_asks_for_more(
    loaded_profile, profile: Verbosity, used: Verbosity  # type: ignore[no-untyped-def]
) -> None:
    loaded_profile(verbosity=profile)
    assert _search_settings(settings_with(), "ns").verbosity == used


def test_a_verbose_profile_shows_each_edge_batch_as_one_line(
    loaded_profile, hm, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    loaded_profile(verbosity=Verbosity.verbose, database=None)
    check_softmax(hm.healthy(), max_examples=2, batch_size=4)

    shown = capsys.readouterr().out
    assert "Trying explicit example: search_for_violation(" in shown
    assert "batch=GeneratedBatch(" in shown and "edge rows in turn: constant 0; constant 1;" in shown
    assert "arrays=" not in shown and "array(" not in shown  # not field by field, arrays included


def test_the_search_seed_is_the_forced_one_else_none_when_derandomized_else_random() -> None:
    assert _search_seed(7, settings(derandomize=True)) == 7
    assert _search_seed(0, settings()) == 0
    assert _search_seed(None, settings(derandomize=True)) is None
    drawn = [_search_seed(None, settings(derandomize=False)) for _ in range(20)]
    assert None not in drawn and len(set(drawn)) > 1
    assert all(0 <= s < 2**32 for s in drawn)  # type: ignore[operator]
    assert max(drawn) >= 2**16  # type: ignore[type-var]  # the full 32-bit range (fails with odds 2**-320)


def test_a_strategy_that_draws_nothing_says_what_hypothesis_said(hm) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SoftmaxSetupError, match=r"drew no batch, so nothing was checked \(Cannot generate test "
                                                r"cases from empty strategy: nothing\(\)"):
        check_softmax(hm.healthy(), inputs=st.nothing(), max_examples=5)


def alternating_on_large_inputs():  # type: ignore[no-untyped-def]
    """A softmax that doubles its output on every other call, but only for
    inputs above 50: the plain preflight input sees a deterministic model,
    the search fails once and then passes on the same input."""
    import keras

    class EveryOtherCall(keras.layers.Layer):
        def build(self, input_shape):  # type: ignore[no-untyped-def]
            self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

        def call(self, x):  # type: ignore[no-untyped-def]
            self.calls.assign_add(1.0)
            odd = keras.ops.equal(keras.ops.mod(self.calls, 2.0), 1.0)
            large = keras.ops.max(x) > 50.0
            factor = keras.ops.where(keras.ops.logical_and(odd, large), 2.0, 1.0)
            return keras.ops.softmax(x) * factor

    inp = keras.Input((4,), name="x")
    return keras.Model(inp, EveryOtherCall(name="flaky")(inp), name="alternating")


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax",
                    reason="on JAX the compiled stateless call drops a layer's variable writes: the model cannot alternate")
def test_a_model_that_fails_and_then_passes_on_the_same_input_is_called_non_deterministic() -> None:
    strategy = st.just(np.full((2, 4), 100.0, "float32"))
    with pytest.raises(SoftmaxSetupError, match=r"model 'alternating' failed on an input and then passed on the "
                                                r"same input: its output changes between two calls"):
        check_softmax(alternating_on_large_inputs(), inputs=strategy, max_examples=5)


def test_each_output_result_sums_what_every_example_saw() -> None:
    """The per-output figures the JSON report shows: where the output is,
    its tolerance, and counts summed over every example the search ran
    (Hypothesis runs a failing example again, so each count is per example)."""
    import keras

    from pytest_softmax import default_tolerance

    inp = keras.Input((3,), name="x")
    model = keras.Model(inp, keras.layers.Activation("linear", name="probs")(inp), name="passthrough")
    rows = np.array([[0.6, 0.6, -0.2],  # sums to 1, out of range
                     [0.5, 0.2, 0.2],   # in range, sums to 0.9
                     [0.2, 0.3, 0.5]], "float32")
    with pytest.raises(SoftmaxInvariantError) as failed:
        check_softmax(model, inputs=st.just(rows), max_examples=3)
    report = failed.value.report
    (result,) = report.outputs
    examples = report.examples
    assert examples >= 2
    assert (result.output, result.layer_name, result.layer_class) == ("probs", "probs", "Activation")
    assert (result.dtype, result.axis, result.n_classes) == ("float32", -1, 3)
    assert (result.atol, result.rtol) == (default_tolerance("float32", 3), 0.0)
    assert result.tolerance == default_tolerance("float32", 3)
    assert (result.rows, result.out_of_range, result.unnormalized_rows, result.nonfinite) == (
        3 * examples, examples, examples, 0)
    assert (result.min_value, result.max_value) == (pytest.approx(-0.2), pytest.approx(0.6))
    assert result.worst_error == pytest.approx(0.1, abs=1e-6)


def test_an_output_whose_values_are_all_negative_reports_its_true_maximum() -> None:
    import keras

    inp = keras.Input((3,), name="x")
    model = keras.Model(inp, keras.layers.Activation("linear", name="probs")(inp), name="negative")
    with pytest.raises(SoftmaxInvariantError) as failed:
        check_softmax(model, inputs=st.just(np.array([[-0.5, -0.25, -0.75]], "float32")), max_examples=2)
    (result,) = failed.value.report.outputs
    assert (result.min_value, result.max_value) == (-0.75, -0.25)


# hypothesis.target ----------------------------------------------------------------


def test_hypothesis_target_gets_each_examples_severity_in_whole_doublings(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The search climbs towards larger violations: every example whose
    worst |sum - 1| reaches a quarter of the tolerance is reported to
    hypothesis.target as floor(log2(error / tolerance)), under one label."""
    import keras

    from pytest_softmax.core import search as search_module

    def scaled(factor: float) -> keras.Model:
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="softmax"),
                                 keras.layers.Rescaling(factor)])

    calls: list[tuple[float, str]] = []
    monkeypatch.setattr(search_module, "target", lambda score, label: calls.append((score, label)))
    tolerance = check_softmax(scaled(1.0), max_examples=3, seed=1).tolerance
    assert calls == []  # a correct softmax: rounding noise, below the floor, is not a target
    for fraction, doublings in ((0.3, -2.0), (0.6, -1.0)):
        calls.clear()
        report = check_softmax(scaled(1.0 + fraction * tolerance), max_examples=4, seed=1)
        assert report.passed and report.worst_error / report.tolerance == pytest.approx(fraction, rel=0.15)
        assert calls == [(doublings, "log2 of worst |sum - 1| / tolerance")] * (report.examples + report.edge_batches)
    calls.clear()
    with pytest.raises(SoftmaxInvariantError):
        check_softmax(scaled(1.5), max_examples=4, seed=1)
    # |sum - 1| = 0.5 against a tolerance of a few 1e-6: 2**17 times over.
    assert calls and calls[0][0] == float(np.floor(np.log2(0.5 / tolerance)))
