"""Import of RVQE checkpoints (the reference implementation's): safe loading, the weight mapping
against RVQE's own numbers (measured by running it; QRNN.md), its errors, and the former names."""

import importlib
import os
import sys
from pathlib import Path

import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.cli import main
from pennylane_qrnn.rvqe import (
    RVQEImportError,
    import_rvqe_checkpoint,
    load_rvqe_checkpoint,
    rvqe_task,
)
from pennylane_qrnn.tasks import MNISTPixels

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST01 = (
    SHARED
    / "reference-checkpoints"
    / "mnist01"
    / "checkpoint--experiment-mnist01-35557-mnist01--6c0e97--2020-05-28--05-27-44.tar"
)
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
    checkpoint = load_rvqe_checkpoint(path)
    assert not marker.exists()
    assert torch.equal(checkpoint["model_state_dict"]["w"], torch.zeros(2))
    with pytest.raises(RVQEImportError, match="_original_args must be an argparse.Namespace"):
        import_rvqe_checkpoint(path)


def test_torchscript_archive_runs_nothing(tmp_path, capsys):
    """torch.load hands a TorchScript archive to torch.jit.load, which runs its __setstate__ (here:
    writing a file); the importer refuses the archive before torch sees it."""
    from tests.planted_files import torchscript_archive

    sentinel = tmp_path / "sentinel"
    path = torchscript_archive(tmp_path / "model.tar", sentinel)
    with pytest.raises(RVQEImportError, match="is a TorchScript archive .*: refused"):
        load_rvqe_checkpoint(path)
    assert not sentinel.exists()
    assert main(["import-rvqe", str(path), "--out", str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert not sentinel.exists() and not (tmp_path / "out.pt").exists()
    assert err.count("\n") == 1 and "TorchScript archive" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "content, error, match",
    [
        (
            None,
            FileNotFoundError,
            "checkpoint must be an RVQE checkpoint .*\\(no such file\\)",
        ),
        (
            b"not a checkpoint",
            RVQEImportError,
            "checkpoint must be an RVQE checkpoint \\(the reference implementation's\\), a legacy "
            "torch.save file; .* is not a torch.save file",
        ),
        (
            {"epoch": 1},
            RVQEImportError,
            "checkpoint must hold 'model_state_dict' and '_original_args'",
        ),
        ("zip", RVQEImportError, "is a torch.save zip archive: refused"),
    ],
)
def test_errors(tmp_path, content, error, match):
    path = tmp_path / "file.tar"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "zip":
        torch.save({"model_state_dict": {}, "_original_args": {}}, path)
    elif content is not None:
        torch.save(content, path, _use_new_zipfile_serialization=False)
    with pytest.raises(error, match=match):
        load_rvqe_checkpoint(path)


@pytest.mark.parametrize(
    "args, state, match",
    [
        ({"workspace": "2"}, {}, "_original_args.workspace must be an int; got str"),
        ({}, {"cell.output_layer.0.θ": "x"}, "model_state_dict must map names to tensors"),
        ({"dataset": 5}, None, "dataset must be an RVQE dataset name"),
        ({"initial_bias": float("nan")}, None, "must hold finite weights"),
    ],
)
def test_malformed_contents_refused(tmp_path, args, state, match):
    """A legacy file with the right keys but wrong contents: refused, no traceback-prone
    arithmetic on placeholders."""
    import argparse

    values = {
        "workspace": 1,
        "stages": 1,
        "order": 1,
        "degree": 1,
        "dataset": "elman-xor",
        "initial_bias": 0.5,
    }
    values.update(args)
    if state is None:
        model = QRNN(2, 1, 1, 1, 1)
        state = {f"cell.output_layer.{i}.θ": torch.zeros(()) for i in range(2)}
        state.update(
            {
                f"cell.output_layer.{i}.φ": torch.zeros(model.output_weights.shape[1] - 1)
                for i in range(2)
            }
        )
        state.update(
            {
                f"cell.input_layer.0.{k}": v
                for k, v in (
                    ("θ", torch.zeros(())),
                    ("φ", torch.zeros(model.input_weights.shape[1] - 1)),
                )
            }
        )
        state.update({"cell.kernel_layer.0.0.θs": torch.zeros(1)})
        state.update(
            {
                f"cell.kernel_layer.0.1.{k}": v
                for k, v in (
                    ("θ", torch.zeros(())),
                    ("φ", torch.zeros(model.stage_weights.shape[2] - 1)),
                )
            }
        )
    path = tmp_path / "ref.tar"
    torch.save(
        {"model_state_dict": state, "_original_args": argparse.Namespace(**values)},
        path,
        _use_new_zipfile_serialization=False,
    )
    from pennylane_qrnn.errors import NonFiniteError

    with pytest.raises(NonFiniteError if "finite" in match else RVQEImportError, match=match):
        model, info = import_rvqe_checkpoint(path)
        rvqe_task(info["dataset"])


def test_rvqe_task_names():
    assert rvqe_task("mnist01") == ("mnist01", {})
    assert rvqe_task("mnist-umap-d3-r4") == ("mnist-umap", {"dims": 3, "resolution": 4})
    with pytest.raises(RVQEImportError, match="got 'mnist36-ds'"):
        rvqe_task("mnist36-ds")


@needs_shared
def test_quick_check_numbers():
    """Test image 0 of each digit: the reference code's step-0 distribution and label
    probabilities (QRNN.md)."""
    model, info = import_rvqe_checkpoint(MNIST01)
    assert (info["workspace"], info["stages"], info["degree"], info["order"], info["io_bits"]) == (
        8,
        2,
        2,
        2,
        2,
    )
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
def test_reproduces_rvqe_accuracy_on_all_test_images(tmp_path, capsys):
    """`qrnn import-rvqe` + `qrnn eval --full`: argmax 99.48 % (11 wrong) and expected 98.84 %
    on all 2115 test images, the reference code's own numbers, within 0.1 %."""
    out = tmp_path / "mnist01.pt"
    assert main(["import-rvqe", str(MNIST01), "--out", str(out)]) == 0
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


def test_simple_seq_and_dna_map_to_the_rvqe_variants():
    assert rvqe_task("simple-seq") == ("memorise-rvqe", {})
    assert rvqe_task("dna") == ("dna-rvqe", {})


def test_former_module_warns_and_reexports():
    """``pennylane_qrnn.reference`` (the importer's former name) still works: same objects, and a
    FutureWarning on import that names the new module."""
    sys.modules.pop("pennylane_qrnn.reference", None)
    with pytest.warns(FutureWarning, match="import from pennylane_qrnn.rvqe"):
        old = importlib.import_module("pennylane_qrnn.reference")
    assert old.load_reference_checkpoint is load_rvqe_checkpoint
    assert old.import_reference is import_rvqe_checkpoint
    assert old.reference_task is rvqe_task
    assert old.ReferenceImportError is RVQEImportError


def test_former_command_name_still_works(tmp_path, capsys):
    """`qrnn import-reference` runs `qrnn import-rvqe`, with a one-line note on stderr."""
    missing = str(tmp_path / "none.tar")
    assert main(["import-reference", missing, "--out", str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0] == "qrnn: note: `qrnn import-reference` is deprecated: it is now `qrnn import-rvqe`"
    )
    assert len(err) == 2 and err[1].startswith(
        "qrnn import-rvqe: error: checkpoint must be an RVQE"
    )
