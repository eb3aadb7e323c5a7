"""Failures are saved in Hypothesis' example database and replayed first."""

from __future__ import annotations

import shutil

import pytest
from conftest import TESTS_DIR

# The edge phase would catch this overflow before the search, and its
# failures are never saved (they are found again on every run): this file's
# profile leaves it out, as a user's can, so the search finds and saves it.
NAIVE = """
    import keras, pytest
    from hypothesis import Phase, settings

    settings.register_profile("search-only", phases=[p for p in Phase if p is not Phase.explicit])
    settings.load_profile("search-only")

    def naive_softmax():
        # Fixed weights: every run (process) must build the same model for a
        # saved input to fail again.
        def naive(x):
            e = keras.ops.exp(x)
            return e / keras.ops.sum(e, axis=-1, keepdims=True)
        return keras.Sequential([
            keras.Input((4,)), keras.layers.Dense(3, kernel_initializer="ones"),
            keras.layers.Lambda(naive, name="naive"),
        ])

    @pytest.mark.softmax_invariant(model=naive_softmax, max_examples={n})
    def test_naive():
        pass
"""


def test_a_saved_failure_is_replayed_before_any_new_example(pytester: pytest.Pytester) -> None:
    """A naive exp/sum softmax only overflows on large inputs, which a single
    fresh example (Hypothesis starts from the simplest) never holds; after a
    failing run, one example is enough because the saved failure comes first."""
    # Subprocesses, so that each run opens the database in this test's folder.
    shutil.copy(TESTS_DIR / "model_zoo.py", pytester.path)
    pytester.makepyfile(test_naive=NAIVE.format(n=300))
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    first.assert_outcomes(failed=1)
    assert (pytester.path / ".hypothesis" / "examples").is_dir()

    pytester.makepyfile(test_naive=NAIVE.format(n=1))
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    replayed.assert_outcomes(failed=1)
    # The shrunk input sits at the overflow boundary, so it may fail as NaN or
    # as a row summing to 0: what matters is that the same input came back.
    rebuilt = [line for line in first.outlines if "rebuild:" in line]
    assert rebuilt and [line for line in replayed.outlines if "rebuild:" in line] == rebuilt
    replayed.stdout.fnmatch_lines(["*output 'naive' (naive: Lambda) is not*"])

    shutil.rmtree(pytester.path / ".hypothesis")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


# Derandomizing is about the random search: the edge phase, which catches
# this LSTM first (and, narrowing to the worst row of randomly initialised
# weights, may pick another row in each process), is left out of the profile.
LSTM = """
    import pytest, model_zoo
    from hypothesis import Phase, settings

    settings.register_profile("ci-search-only", parent=settings.get_profile("ci"),
                              phases=[p for p in Phase if p is not Phase.explicit])
    settings.load_profile("ci-search-only")

    @pytest.mark.softmax_invariant(model=model_zoo.lstm_softmax, max_examples=10)
    def test_seed_lstm():
        pass
"""


def test_under_hypothesis_ci_profile_the_search_is_derandomized(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CI set, Hypothesis loads its "ci" profile (derandomize, no
    database): the failure says a plain rerun finds it again, and does."""
    shutil.copy(TESTS_DIR / "model_zoo.py", pytester.path)
    pytester.makepyfile(test_lstm=LSTM)
    monkeypatch.setenv("CI", "true")
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines([
        "  replay: rerun with: pytest 'test_lstm.py::test_seed_lstm' (the Hypothesis profile in force "
        "derandomizes the search, as its 'ci' profile does when CI is set: every run finds this same failure)"
    ])
    assert not (pytester.path / ".hypothesis" / "examples").exists()
    again = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    again.assert_outcomes(failed=1)
    # (Each process builds the model with new random weights: compare the inputs.)
    assert [l for l in first.outlines if "rebuild:" in l] == [l for l in again.outlines if "rebuild:" in l]

    # A seed given on the command line beats derandomize, as in Hypothesis.
    seeded = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hypothesis-seed=7")
    seeded.stdout.fnmatch_lines(["  replay: rerun with: pytest 'test_lstm.py::test_seed_lstm' --hypothesis-seed=7"])
