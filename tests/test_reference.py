"""Import of the reference implementation's checkpoints: safe loading, the weight mapping against
the reference code's own numbers (measured by running it; QRNN.md), and its errors."""

import os
import pickle
from pathlib import Path

import pytest
import torch

from pennylane_qrnn.cli import main
from pennylane_qrnn.reference import ReferenceImportError, import_reference, load_reference_checkpoint, reference_task
from pennylane_qrnn.tasks import MNISTPixels

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST01 = SHARED / "reference-checkpoints" / "mnist01" / "checkpoint--experiment-mnist01-35557-mnist01--6c0e97--2020-05-28--05-27-44.tar"
needs_shared = pytest.mark.skipif(
    not (MNIST01.is_file() and (SHARED / "mnist").is_dir()),
    reason="needs ../shared/data (reference checkpoints and MNIST files beside the repository)",
)


class _Exploit:
    """Unpickling this would create a file, if the loader ran what a checkpoint names."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_restricted_loader_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = {"model_state_dict": {"w": torch.zeros(2)}, "_original_args": _Exploit(marker)}
    path = tmp_path / "evil.tar"
    torch.save(payload, path, _use_new_zipfile_serialization=False, pickle_protocol=2)
    checkpoint = load_reference_checkpoint(path)
    assert not marker.exists()
    assert torch.equal(checkpoint["model_state_dict"]["w"], torch.zeros(2))
    with pytest.raises(ReferenceImportError, match="_original_args must be an argparse.Namespace"):
        import_reference(path)


@pytest.mark.parametrize(
    "content, error, match",
    [
        (None, FileNotFoundError, "checkpoint must be an existing file"),
        (b"not a checkpoint", ReferenceImportError, "checkpoint must be a reference \\(RVQE\\) torch.save file"),
        ({"epoch": 1}, ReferenceImportError, "checkpoint must hold 'model_state_dict' and '_original_args'"),
    ],
)
def test_errors(tmp_path, content, error, match):
    path = tmp_path / "file.tar"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(error, match=match):
        load_reference_checkpoint(path)


def test_reference_task_names():
    assert reference_task("mnist01") == ("mnist01", {})
    assert reference_task("mnist-umap-d3-r4") == ("mnist-umap", {"dims": 3, "resolution": 4})
    with pytest.raises(ReferenceImportError, match="got 'mnist36-ds'"):
        reference_task("mnist36-ds")


@needs_shared
def test_quick_check_numbers():
    """Test image 0 of each digit: the reference code's step-0 distribution and label
    probabilities (QRNN.md)."""
    model, info = import_reference(MNIST01)
    assert (info["workspace"], info["stages"], info["degree"], info["order"], info["io_bits"]) == (8, 2, 2, 2, 2)
    assert sum(p.numel() for p in model.parameters()) == 1212
    task = MNISTPixels((0, 1), folder=SHARED / "mnist")
    data = task.dataset("test")
    first = {0: 0, 1: int((data.labels == 1).nonzero()[0])}
    columns = torch.tensor([first[0], first[1]])
    log_probs, _ = model(data.tokens[:, columns], data.targets[:, columns])
    expected_step0 = torch.tensor([0.00244664, 0.997362, 8.96e-5, 1.02e-4], dtype=torch.float64)
    for k in range(2):
        assert torch.allclose(log_probs[0, k].exp(), expected_step0, rtol=2e-3, atol=1e-7)
    assert log_probs[-1, 0, 0].exp().item() == pytest.approx(0.998244, abs=2e-6)
    assert log_probs[-1, 1, 1].exp().item() == pytest.approx(0.996132, abs=2e-6)


@needs_shared
def test_reproduces_reference_accuracy_on_all_test_images(tmp_path, capsys):
    """`qrnn import-reference` + `qrnn eval --full`: argmax 99.48 % (11 wrong) and expected 98.84 %
    on all 2115 test images, the reference code's own numbers, within 0.1 %."""
    out = tmp_path / "mnist01.pt"
    assert main(["import-reference", str(MNIST01), "--out", str(out)]) == 0
    capsys.readouterr()
    os.environ["QRNN_MNIST_DIR"] = str(SHARED / "mnist")
    try:
        assert main(["eval", str(out), "--full", "--seeds", "2", "--json"]) == 0
    finally:
        del os.environ["QRNN_MNIST_DIR"]
    import json

    result = json.loads(capsys.readouterr().out)
    assert result["sequences"] == 2115
    assert result["wrong_argmax"] == 11
    assert abs(result["accuracy_argmax"] - 0.9948) < 0.001
    assert abs(result["accuracy_expected"] - 0.9884) < 0.001
    # the postselection cost stays visible: i/o postselection alone about e^-57 .. e^-306
    assert -310 < result["log_io_success_min"] < result["log_io_success_median"] < -50
