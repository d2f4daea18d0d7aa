"""Planted files: hostile (TorchScript whose __setstate__ writes a file, pickles naming os.system or
open) and broken (plain zip, truncated, empty, random) files handed to every loader and to every
command that takes a file. Each is refused with one line, nothing runs (the sentinel file is never
created) and no traceback is printed."""

import re
import warnings

import pytest
import torch

from pennylane_qrnn.checkpoints import file_format, load_file
from pennylane_qrnn.cli import main
from pennylane_qrnn.errors import UnsafeFileError
from pennylane_qrnn.rvqe import (
    RVQEImportError,
    import_rvqe_checkpoint,
    load_rvqe_checkpoint,
)
from pennylane_qrnn.training import TrainConfig, Trainer, load_checkpoint, load_trained_model
from tests.cli_flags import TINY_TRAIN_CONFIG, TINY_TRAIN_FLAGS
from tests.planted_files import KINDS, plant, torchscript_archive

TINY = TINY_TRAIN_CONFIG


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    Trainer(TrainConfig(**TINY), out).run(progress=False)
    return out / "model.pt"


def test_the_torchscript_archive_really_runs_code(tmp_path):
    """The planted archive is a real threat: plain torch.load (what the RVQE importer used)
    creates the sentinel. Everything below shows the loaders never get that far."""
    sentinel = tmp_path / "sentinel"
    path = torchscript_archive(tmp_path / "evil.pt", sentinel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(path, weights_only=False)
    assert sentinel.read_bytes() == b"P" * 8


def test_the_pickles_really_run_code(tmp_path):
    import pickle

    for kind in ("pickle-os-system", "pickle-text-open"):
        sentinel = tmp_path / f"sentinel-{kind}"
        path = plant(kind, tmp_path / f"{kind}.bin", sentinel)
        pickle.loads(path.read_bytes())  # what an unrestricted loader would do
        assert sentinel.exists(), kind


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("torchscript", "torchscript"),
        ("plain-zip", "zip"),
        ("zip-os-system", "torch-zip"),
        ("legacy-os-system", "legacy-pickle"),
        ("pickle-os-system", "legacy-pickle"),
        ("pickle-text-open", "unknown"),
        ("truncated-zip", "corrupt-zip"),
        ("empty", "empty"),
        ("random-bytes", "unknown"),
    ],
)
def test_file_format(tmp_path, model_file, kind, expected):
    path = plant(kind, tmp_path / "file", tmp_path / "sentinel", model_file)
    assert file_format(path) == expected
    assert file_format(model_file) == "torch-zip"


LOADERS = {
    "load_checkpoint": lambda path: load_checkpoint(path),
    "load_checkpoint(model)": lambda path: load_checkpoint(path, kind="model"),
    "load_trained_model": lambda path: load_trained_model(path),
    "import_rvqe_checkpoint": lambda path: import_rvqe_checkpoint(path),
    "load_file": lambda path: load_file(path, "a test file"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_every_loader_refuses_and_runs_nothing(tmp_path, model_file, kind, loader):
    sentinel = tmp_path / "sentinel"
    path = plant(kind, tmp_path / "planted.pt", sentinel, model_file)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even torch's "dispatching to torch.jit.load" warning
        with pytest.raises(UnsafeFileError) as raised:
            LOADERS[loader](path)
    assert not sentinel.exists()
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)
    if loader == "import_rvqe_checkpoint":
        assert isinstance(raised.value, RVQEImportError)


def _commands(path, out):
    return {
        "eval": ["eval", str(path), "--batches", "1", "--seeds", "1"],
        "sample": ["sample", str(path), "--steps", "2"],
        "import-rvqe": ["import-rvqe", str(path), "--out", str(out / "imported.pt")],
        "train --resume": ["train", "--resume", "--quiet", "--out", str(out)],
        "train --init-from": [
            *("train", "--task", "elman-xor", "--steps", "1", "--quiet"),
            *("--init-from", str(path), "--out", str(out / "warm")),
        ],
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "command", ["eval", "sample", "import-rvqe", "train --resume", "train --init-from"]
)
def test_every_command_refuses_in_one_line(tmp_path, model_file, capsys, kind, command):
    sentinel = tmp_path / "sentinel"
    out = tmp_path / "run"
    out.mkdir()
    # train --resume reads OUT/checkpoint.pt; the other commands take the path
    path = plant(kind, out / "checkpoint.pt", sentinel, model_file)
    assert main(_commands(path, out)[command]) == 2
    captured = capsys.readouterr()
    assert not sentinel.exists()
    assert "Traceback" not in captured.err and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert re.match(rf"qrnn {command.split()[0]}: error: \w+ must (be|hold) .+", lines[0]), lines[0]
    assert str(path) in lines[0]
    assert not (out / "imported.pt").exists() and not (out / "model.pt").exists()
    # the new run's folder may be made (empty, so a retry into it is accepted), but holds nothing
    assert not (out / "warm").exists() or not any((out / "warm").iterdir())


def test_legacy_rvqe_checkpoint_with_globals_is_read_inertly(tmp_path):
    """RVQE's format itself (a legacy pickle) still loads, its globals inert."""
    sentinel = tmp_path / "sentinel"
    path = plant("legacy-os-system", tmp_path / "ref.tar", sentinel)
    checkpoint = load_rvqe_checkpoint(path)
    assert not sentinel.exists()
    assert repr(checkpoint["_original_args"]) == "<inert placeholder>"


def test_model_file_with_nan_weights_refused(tmp_path, model_file, capsys):
    saved = torch.load(model_file, weights_only=True)
    name = next(iter(saved["model"]))
    saved["model"][name] = saved["model"][name] * float("nan")
    torch.save(saved, tmp_path / "nan.pt")
    assert main(["eval", str(tmp_path / "nan.pt")]) == 2
    err = capsys.readouterr().err
    assert (
        f"must hold finite weights; {name} holds NaN or infinity" in err and "Traceback" not in err
    )


FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAQRNNFAKESENTINEL7",
    "AWS_SECRET_ACCESS_KEY": "qrnnFakeSecretSentinel/9zXwK2+vB4nQ",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEqrnnFakeSessionTokenSentinel",
    "QISKIT_IBM_TOKEN": "qrnn-fake-ibm-token-sentinel-5d41402abc4b2a76",
    "IBM_QUANTUM_TOKEN": "qrnn-fake-ibm-quantum-token-sentinel-7f3e",
    "QISKIT_IBM_INSTANCE": "crn:v1:qrnn-fake-instance-sentinel::",
}


def test_planted_credentials_appear_nowhere(tmp_path, monkeypatch, capsys, caplog):
    """Fake cloud credentials in the environment: after a short train, eval and sample, and the
    credential-refusal paths, no output, log record, warning, error, repr or written file holds
    any of them."""
    import logging

    from pennylane_qrnn import QRNN
    from pennylane_qrnn.devices.braket import (
        BraketTarget,
        MissingCredentialsError,
        aws_credentials_available,
        require_credentials,
    )
    from pennylane_qrnn.devices.catalogue import installed_devices
    from pennylane_qrnn.errors import QRNNError

    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    caplog.set_level(logging.DEBUG)
    texts = []
    out = tmp_path / "run"
    flags = TINY_TRAIN_FLAGS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", *flags, "--steps", "2", "--out", str(out)]) == 0
        assert (
            main(["eval", str(out / "model.pt"), "--batches", "1", "--seeds", "2", "--json"]) == 0
        )
        assert main(["sample", str(out / "model.pt"), "--steps", "3"]) == 0
        assert main(["train", "--resume", "--quiet", "--steps", "3", "--out", str(out)]) == 0
        for device in ("braket.aws.qubit", "qiskit.remote"):
            if device in installed_devices():  # refused before any device is made
                assert (
                    main(
                        [
                            "train",
                            *flags,
                            "--device",
                            device,
                            "--mode",
                            "amplified",
                            "--out",
                            str(tmp_path / device),
                        ]
                    )
                    == 2
                )
        if "braket.aws.qubit" in installed_devices():
            assert aws_credentials_available() is True  # a bool, never the credentials
            target = BraketTarget(
                "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet", "amazon-braket-qrnn-test"
            )
            texts.append(repr(target))
            model = QRNN(2, 1, 1, 1, 1, mode="amplified", backend="braket.aws.qubit")
            texts.append(repr(model))
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                monkeypatch.delenv(name)
            monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
            monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
            with pytest.raises(MissingCredentialsError) as missing:
                require_credentials()
            texts.append(str(missing.value))
            with pytest.raises(QRNNError) as refused:
                model(torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, 1, dtype=torch.long))
            texts.append(str(refused.value))
            with pytest.raises(MissingCredentialsError):
                target.device(wires=3)
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(w.message) for w in caught]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"checkpoint.pt", "model.pt", "metrics.csv", "summary.json", "config.json"} <= {
        p.name for p in written
    }
    for name, value in FAKE_CREDENTIALS.items():
        for text in texts:
            assert value not in text, name
        for path in written:
            assert value.encode() not in path.read_bytes(), (name, path)


def test_every_file_a_run_writes_loads(model_file):
    """The loaders accept what the trainer writes: model.pt, best.pt and checkpoint.pt."""
    reference = load_trained_model(model_file)[0].state_dict()
    for name in ("model.pt", "best.pt", "checkpoint.pt"):
        model, task, config = load_trained_model(model_file.parent / name)
        assert task.name == "elman-xor" and config.workspace == 1
        assert set(model.state_dict()) == set(reference)
    assert load_checkpoint(model_file.parent / "checkpoint.pt")["step"] == 2
