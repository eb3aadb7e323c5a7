"""Failures are saved in Hypothesis' example database and replayed first."""

from __future__ import annotations

import shutil

import pytest

from conftest import TESTS_DIR

NAIVE = """
    import pytest, model_zoo
    @pytest.mark.softmax_invariant(model=model_zoo.naive_softmax, max_examples={n})
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
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(failed=1)
    assert (pytester.path / ".hypothesis" / "examples").is_dir()

    pytester.makepyfile(test_naive=NAIVE.format(n=1))
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["*output 'naive' (naive: Lambda) is not finite*"])

    shutil.rmtree(pytester.path / ".hypothesis")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
