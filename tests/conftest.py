from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

# In-process pytester runs restore sys.modules after each run; numpy and
# the Keras backend (TensorFlow, JAX or PyTorch, as KERAS_BACKEND says)
# cannot be imported twice in one process, so import them up front.
import keras  # noqa: E402
import numpy  # noqa: E402,F401

BACKEND = keras.backend.backend()
importlib.import_module(BACKEND)

# Deselected on JAX and PyTorch: TensorFlow-only features, and the tests that
# already run every backend in subprocesses from the TensorFlow leg.
TF_LEG_ONLY = ("tensorflow_only", "backend_matrix")


def pytest_report_header(config: pytest.Config) -> str:
    return f"keras backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On JAX or PyTorch, tests of TensorFlow-only features (SavedModel,
    tf.function traces) are deselected, visibly: pytest counts them."""
    if BACKEND == "tensorflow":
        return
    deselected = [item for item in items if any(item.get_closest_marker(m) for m in TF_LEG_ONLY)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]

from helpers import importing  # noqa: E402

TESTS_DIR = Path(__file__).parent


@pytest.fixture
def zoo(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose test files can ``import model_zoo`` (cached models)."""
    return importing(pytester, "model_zoo")


@pytest.fixture
def diag(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose test files can ``import diagnosis_zoo, model_zoo``."""
    return importing(pytester, "diagnosis_zoo", "model_zoo")


# Hypothesis loads its "ci" profile (derandomize, no database) when CI is set,
# as it is on CI machines.  The tests below assert what users see under the
# default profile (seeds, the example database); tests of the ci profile set
# it explicitly.  Subprocesses inherit the environment, hence both steps.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.load_profile("default")
CI_VARIABLES = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "CIRRUS_CI",
                "CODEBUILD_BUILD_ID", "TEAMCITY_VERSION", "HEROKU_TEST_RUN_ID", "bamboo.buildKey",
                "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI")


@pytest.fixture(autouse=True)
def _default_hypothesis_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # An in-process pytester run with --hypothesis-seed sets Hypothesis'
    # process-wide forced seed (which also turns the example database off)
    # and never unsets it: undo that after each test, or every later search
    # in this process would run from that seed.
    import hypothesis.core

    monkeypatch.setattr(hypothesis.core, "global_force_seed", hypothesis.core.global_force_seed)
