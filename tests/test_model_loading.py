"""A model file is loaded once per process, however many tests use it,
also under pytest-xdist (once per worker)."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

COUNTING_CONFTEST = """
    import os, keras

    loads = []
    _load = keras.saving.load_model

    def counting_load(path, *args, **kwargs):
        loads.append(str(path))
        return _load(path, *args, **kwargs)

    keras.saving.load_model = counting_load

    def pytest_sessionfinish(session):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"loads-{worker}.txt", "w") as out:
            out.write("\\n".join(loads))
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_process_loads_a_model_file_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    # When this suite itself runs under xdist, its worker variables must not
    # leak into the run under test.
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.save(pytester.path / "clf.keras")
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(test_many="""
        import pytest
        @pytest.mark.parametrize("i", range(6))
        @pytest.mark.softmax_invariant(model="clf.keras", max_examples=3)
        def test_marked(i):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--softmax-model", "clf.keras", *workers)
    result.assert_outcomes(passed=7)
    counts = {path.name: path.read_text().split() for path in Path(pytester.path).glob("loads-*.txt")}
    processes = {"loads-main.txt"} if not workers else {"loads-main.txt", "loads-gw0.txt", "loads-gw1.txt"}
    assert set(counts) == processes
    if workers:
        assert counts["loads-main.txt"] == [], "the xdist controller runs no check, so loads no model"
    for loaded in counts.values():
        assert len(loaded) <= 1, counts
    assert sum(len(v) for v in counts.values()) >= 1


@pytest.mark.parametrize("same_size", [False, True], ids=["other-size", "same-size-in-place"])
def test_a_model_file_rewritten_with_its_old_mtime_is_loaded_again(tmp_path: Path, same_size: bool) -> None:
    """The load cache must not hand back the healthy model once the file
    holds something else, even when its mtime was put back (issue 12, 13)."""
    import os

    from pytest_softmax import SoftmaxSetupError, check_softmax

    path = tmp_path / "p.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]).save(path)
    before = path.stat()
    assert check_softmax(path, max_examples=2).passed
    if same_size:  # in place: same inode, same size
        with path.open("r+b") as handle:
            handle.write(b"\0" * before.st_size)
    else:
        path.write_bytes(b"broken")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(SoftmaxSetupError, match="p.keras"):
        check_softmax(path, max_examples=2)
