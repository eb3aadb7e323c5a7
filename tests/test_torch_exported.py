"""``torch.export`` programs and ``.pt2`` files: their own signature, the
directory search of ``--softmax-model``, and safe mode refusing any part
``torch.export.load`` would unpickle."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
from helpers import FULL_INSTALL, needs

pytestmark = needs("torch")  # CI's full leg selects these by needs_extra
torch = pytest.importorskip("torch", reason=f"torch is not installed (an optional extra): {FULL_INSTALL}")

import torch_zoo  # noqa: E402

from pytest_softmax import SoftmaxInvariantError, SoftmaxSetupError, check_softmax  # noqa: E402

torch_zoo.warm_up()
FAST = ("-p", "no:cacheprovider", "--softmax-max-examples=10", "--softmax-batch-size=8")


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A broken policy head and a healthy encoder, exported with dynamic dims and saved."""
    from torch.export import Dim

    folder = tmp_path_factory.mktemp("pt2")
    policy = torch.export.export(torch_zoo.PolicyDim0().eval(), (torch.zeros(8, 6),),
                                 dynamic_shapes=({0: Dim.AUTO},))
    encoder = torch.export.export(
        torch_zoo.EncoderClassifier().eval(),
        (torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 6, dtype=torch.bool)),
        dynamic_shapes=({0: Dim.AUTO, 1: Dim.AUTO}, {0: Dim.AUTO, 1: Dim.AUTO}))
    torch.export.save(policy, folder / "policy.pt2")
    torch.export.save(encoder, folder / "encoder.pt2")
    return {"policy": folder / "policy.pt2", "encoder": folder / "encoder.pt2"}


def test_an_exported_program_is_checked_on_its_own_signature(programs: dict[str, Path]) -> None:
    program = torch.export.load(programs["policy"])
    with pytest.raises(SoftmaxInvariantError, match=r"softmax over the batch axis \(dim 0\)"):
        check_softmax(program, seed=1, max_examples=10)


def test_a_pt2_file_carries_its_dynamic_dims(programs: dict[str, Path]) -> None:
    from pytest_softmax.adapters.registry import adapt

    adapter = adapt(programs["encoder"])
    specs = adapter.input_specs()
    assert [s.shape for s in specs] == [(None,), (None,)]  # the sequence length varies, as exported
    assert specs[0].high == 50 and specs[1].is_mask  # the embedding's vocabulary; a bool mask
    assert check_softmax(programs["encoder"], seed=2, max_examples=10).passed


def test_softmax_model_finds_pt2_files_in_a_directory(pytester: pytest.Pytester, programs: dict[str, Path]) -> None:
    for path in programs.values():
        (pytester.path / "models").mkdir(exist_ok=True)
        (pytester.path / "models" / path.name).write_bytes(path.read_bytes())
    result = pytester.runpytest(*FAST, "--softmax-model", "models")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*policy.pt2*softmax over the batch axis (dim 0)*"])


def _with_pickled_sample_inputs(source: Path, target: Path, marker: Path) -> None:
    """A copy of ``source`` whose sample inputs unpickle to a call that
    creates ``marker``: what a malicious file would do."""

    class Touch:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item.filename)
            if "/data/sample_inputs/" in item.filename:
                data = pickle.dumps(Touch())
            copy.writestr(item, data)


def test_safe_mode_refuses_a_pt2_that_would_unpickle_code(programs: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    unsafe = tmp_path / "unsafe.pt2"
    _with_pickled_sample_inputs(programs["policy"], unsafe, marker)
    with pytest.raises(SoftmaxSetupError) as refused:
        check_softmax(unsafe)
    message = str(refused.value)
    assert "unsafe.pt2 holds parts torch.export.load would unpickle (sample inputs" in message
    assert "If you trust this file, load it anyway with check_softmax(model, safe_mode=False)" in message
    assert not marker.exists()


def test_a_file_that_is_not_an_exported_program_is_a_setup_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.pt2"
    bogus.write_bytes(b"not a zip archive")
    with pytest.raises(SoftmaxSetupError, match=r"model.pt2 is not a \.pt2 archive \(not a zip file\)"):
        check_softmax(bogus)
