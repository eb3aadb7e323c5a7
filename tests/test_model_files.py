"""What the pre-load inspection of a model file refuses, and what it says:
archives that inflate to gigabytes, Keras 2 lambdas without their marker,
custom classes nobody registered (issue 12, items 9 and 19)."""

from __future__ import annotations

import importlib
import json
import sys
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import keras
import pytest

from pytest_softmax import SoftmaxSetupError, check_softmax
from pytest_softmax.adapters.keras.safe_loading import inspect_model_file

MIB = 2**20


def _bomb(path: Path, member: str, mib: int) -> Path:
    """A small archive holding ``member`` that inflates to ``mib`` MiB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if member != "config.json":
            archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        with archive.open(member, "w") as handle:
            for _ in range(mib):
                handle.write(b" " * MIB)
    return path


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_an_archive_that_inflates_to_gigabytes_is_refused_without_reading_it(tmp_path: Path, member: str) -> None:
    path = _bomb(tmp_path / "bomb.keras", member, 96)
    assert path.stat().st_size < MIB
    tracemalloc.start()
    try:
        with pytest.raises(SoftmaxSetupError, match=rf"bomb.keras'?: its {member} inflates to 96.0 MiB") as info:
            inspect_model_file(path, safe_mode=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB, f"the inspection held {peak / MIB:.0f} MiB"
    assert "zip bomb" in str(info.value)
    with pytest.raises(SoftmaxSetupError, match="inflates to"):
        check_softmax(path)


def test_a_keras2_lambda_without_function_type_is_code(tmp_path: Path) -> None:
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_input_shape": [None, 4], "dtype": "float32"}},
        {"class_name": "Lambda", "config": {"name": "lam", "function": ["4wEAAAAAAAAA", None, None],
                                            "output_shape": None, "arguments": {}}},
    ]}}
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = "2.15.0"
    with pytest.raises(SoftmaxSetupError, match=r"contains Python code \(Lambda layer 'lam' holds a Python lambda"):
        check_softmax(path)


LAYERS_MODULE = """
    import keras

    @keras.saving.register_keras_serializable(package="mypkg")
    class Temperature(keras.layers.Layer):
        def call(self, x):
            return x / 2.0
"""


def test_an_unregistered_custom_class_is_named_with_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mylayers=LAYERS_MODULE)
    sys.path.insert(0, str(pytester.path))
    try:
        layers = importlib.import_module("mylayers")
    finally:
        sys.path.remove(str(pytester.path))
        sys.modules.pop("mylayers", None)
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), layers.Temperature(),
                      keras.layers.Softmax()]).save(pytester.path / "m.keras")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--softmax-model", "m.keras")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("*pytest-softmax: could not load model file *m.keras': it uses custom class mypkg>Temperature, "
        "not registered in this process. Import the module that defines it*conftest.py*"),
    ])
    assert "could not be deserialized" not in result.stdout.str()

    pytester.makeconftest("import mylayers")
    fixed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--softmax-model", "m.keras",
                                          "--softmax-max-examples=3")
    fixed.assert_outcomes(passed=1)
