"""The `qrnn` command line end to end, as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from pennylane_qrnn.cli import main

TINY = [
    "--task",
    "elman-xor",
    "--length",
    "9",
    "--workspace",
    "2",
    "--stages",
    "1",
    "--degree",
    "2",
    "--batch-size",
    "4",
    "--eval-every",
    "5",
    "--quiet",
]


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "pennylane_qrnn", *args], capture_output=True, text=True, timeout=600
    )


def test_train_writes_model_plot_and_metrics(tmp_path):
    out = tmp_path / "run"
    result = _run("train", *TINY, "--steps", "20", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout
    for name in (
        "model.pt",
        "checkpoint.pt",
        "metrics.csv",
        "summary.json",
        "curves.png",
        "config.json",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 20 and 0 <= summary["val_accuracy_argmax"] <= 1
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 21 and rows[0].startswith("step,loss")
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    steps = "400"
    whole = tmp_path / "whole"
    assert (
        main(["train", *TINY, "--steps", steps, "--checkpoint-every", "5", "--out", str(whole)])
        == 0
    )

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pennylane_qrnn",
            "train",
            *TINY,
            "--steps",
            steps,
            "--checkpoint-every",
            "5",
            "--out",
            str(killed),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "model.pt").exists(), "the run finished before it could be killed"
    checkpoint = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert 0 < checkpoint["step"] < int(steps)

    assert main(["train", "--resume", "--quiet", "--out", str(killed)]) == 0
    assert not [
        p.name for p in killed.iterdir() if p.name.endswith(".tmp")
    ]  # a killed write's leftovers are gone
    a = torch.load(whole / "model.pt", weights_only=True)["model"]
    b = torch.load(killed / "model.pt", weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (
        json.loads((whole / "summary.json").read_text())["val_loss"]
        == json.loads((killed / "summary.json").read_text())["val_loss"]
    )


def test_eval_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "10", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out / "model.pt"), "--batches", "2", "--seeds", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["seeds"] == 3 and 0 <= result["accuracy_sampled_mean"] <= 1
    assert (
        result["accuracy_sampled_stderr"] >= 0
        and result["log_success_min"] <= result["log_success_median"] <= 0
    )
    assert main(["eval", str(out / "model.pt"), "--protocol", "measured", "--batches", "1"]) == 0
    assert "accuracy (sampled)" in capsys.readouterr().out
    assert (
        main(["sample", str(out / "model.pt"), "--prefix", "0,1", "--steps", "5", "--count", "3"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(
        len(line.split()) == 7 and line.startswith("0 1") for line in lines
    )


def test_tasks_and_devices(capsys):
    assert main(["tasks"]) == 0
    listing = capsys.readouterr().out
    assert "elman-xor" in listing and "dna-rvqe" in listing and "dna-reference" not in listing
    assert main(["devices"]) == 0
    devices = capsys.readouterr().out
    assert "default.qubit" in devices and "lightning.qubit" in devices


# Bad input (one line, nonzero exit, no traceback): tests/test_cli_errors.py


def test_train_on_a_circuit_device_validates_on_the_engine(tmp_path):
    """Validation samples scored steps, which the circuit path cannot; a run on default.qubit used
    to fail at its first validation. Its validation now runs the same weights on the exact
    engine."""
    from pennylane_qrnn.evaluation import evaluate
    from pennylane_qrnn.training import load_trained_model

    out = tmp_path / "dq"
    flags = [
        "--task",
        "elman-xor",
        "--length",
        "4",
        "--workspace",
        "1",
        "--stages",
        "1",
        "--degree",
        "1",
        "--order",
        "1",
        "--batch-size",
        "2",
        "--quiet",
    ]
    assert (
        main(["train", *flags, "--device", "default.qubit", "--steps", "1", "--out", str(out)]) == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "default.qubit" and summary["steps"] == 1
    model, task, loaded = load_trained_model(out / "model.pt")
    generator = torch.Generator().manual_seed(loaded.seed + 1_000_003)
    batches = [
        task.batch(loaded.batch_size, generator, split="validate")
        for _ in range(loaded.eval_batches)
    ]
    assert evaluate(model, batches, generator=generator).loss == pytest.approx(
        summary["val_loss"], rel=1e-6
    )


def test_sample_bad_prefix(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["sample", str(out / "model.pt"), "--prefix", "0,9"]) == 2
    assert "--prefix tokens must lie in [0, 3] for elman-xor; got '0,9'" in capsys.readouterr().err


def test_baseline_training_matches_parameter_count(tmp_path, capsys):
    out = tmp_path / "lstm"
    assert (
        main(
            [
                "train",
                "--task",
                "dna-rvqe",
                "--length",
                "10",
                "--model",
                "lstm",
                "--steps",
                "5",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["model"] == "lstm" and summary["parameters"] == 888
    )  # the paper's LSTM, vs the QRNN's 837
    assert (
        main(
            [
                "train",
                "--task",
                "dna",
                "--model",
                "qrnn",
                "--hidden",
                "4",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "hidden is for the classical baselines" in capsys.readouterr().err


def test_sample_digits_renders_terminal_and_png(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "digits"
    assert main(["train", "--task", "digits01", "--steps", "2", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    png = tmp_path / "samples.png"
    assert (
        main(
            [
                "sample",
                str(out / "model.pt"),
                "--prefix",
                "1",
                "--steps",
                "62",
                "--count",
                "2",
                "--png",
                str(png),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line and set(line) <= {"#", "."}]
    assert len(rows) == 16 and all(len(r) == 8 for r in rows)  # two 8x8 images
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rvqe_loss_and_best_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "10", "--loss", "rvqe", "--out", str(out)]) == 0
    best = torch.load(out / "best.pt", weights_only=True)
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < best["step"] <= 10 and summary["best_val_loss"] <= summary["val_loss"] + 1e-12


def test_rvqe_loss_values():
    """The reference implementation's (RVQE's) loss: cross entropy over probabilities used as
    logits, minus its minimum, so a perfect prediction scores 0 and a uniform one log(V) - ...
    computed by hand here."""
    import math

    from pennylane_qrnn.training import rvqe_loss

    perfect = torch.log(torch.tensor([[[1.0, 1e-30, 1e-30, 1e-30]]]))
    assert rvqe_loss(perfect, torch.tensor([[0]]), torch.tensor([[True]])).item() == pytest.approx(
        0.0, abs=1e-6
    )
    uniform = torch.log(torch.full((1, 1, 4), 0.25))
    expected = math.log(4 * math.exp(0.25)) - 0.25 - (math.log(3 + math.e) - 1)
    assert rvqe_loss(uniform, torch.tensor([[2]]), torch.tensor([[True]])).item() == pytest.approx(
        expected, rel=1e-6
    )


# --- where the MNIST tasks find their files: --data-dir, else $QRNN_MNIST_DIR ---------------------

TINY_MNIST = [
    "--task",
    "mnist01",
    "--workspace",
    "1",
    "--stages",
    "1",
    "--degree",
    "1",
    "--order",
    "1",
    "--batch-size",
    "2",
    "--eval-every",
    "1",
    "--steps",
    "1",
    "--quiet",
]


def _tiny_mnist(folder, test_rows=(2, 3)):
    """mnist-simple files for digits 0 and 1, with test_rows test images, so a count shows which
    folder was read."""
    from tests.tasks.mnist_helpers import write_simple_files

    for digit, count in zip((0, 1), test_rows, strict=True):
        write_simple_files(
            folder, digits=(digit,), splits=("train", "validate"), row=[7 * digit] * 100
        )
        write_simple_files(folder, digits=(digit,), splits=("test",), count=count)
    return folder


def test_data_dir_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("QRNN_MNIST_DIR", raising=False)
    data = _tiny_mnist(tmp_path / "data")
    out = tmp_path / "run"
    # without a folder: refused in one line that says where to get the files, before any run
    # folder exists
    assert main(["train", *TINY_MNIST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        "error: MNIST folder must hold mnist-simple-D-SPLIT.csv.gz files" in err
        and "got no folder" in err
    )
    assert (
        "github.com/CLEconomides/RVQE" in err
        and "--data-dir" in err
        and len(err.strip().splitlines()) == 1
    )
    assert not out.exists()
    # with --data-dir: trains, and the folder is not saved with the run (it belongs to the machine)
    assert main(["train", *TINY_MNIST, "--out", str(out), "--data-dir", str(data)]) == 0
    assert str(data) not in (out / "config.json").read_text()
    assert "QRNN_MNIST_DIR" not in os.environ  # set for the command only
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                str(out / "model.pt"),
                "--full",
                "--seeds",
                "1",
                "--json",
                "--data-dir",
                str(data),
            ]
        )
        == 0
    )
    assert (
        json.loads(capsys.readouterr().out)["sequences"] == 5
    )  # the 2 + 3 test rows of that folder
    # the flag wins over the variable, which is the default
    other = _tiny_mnist(tmp_path / "other", test_rows=(1, 1))
    monkeypatch.setenv("QRNN_MNIST_DIR", str(other))
    assert main(["eval", str(out / "model.pt"), "--full", "--seeds", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sequences"] == 2
    assert (
        main(
            [
                "eval",
                str(out / "model.pt"),
                "--full",
                "--seeds",
                "1",
                "--json",
                "--data-dir",
                str(data),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["sequences"] == 5
    assert os.environ["QRNN_MNIST_DIR"] == str(other)  # restored
    # a folder that is not there, or lacks the files
    assert main(["eval", str(out / "model.pt"), "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert (
        f"--data-dir must be an existing folder; got {str(tmp_path / 'nowhere')!r}"
        in capsys.readouterr().err
    )
    assert main(["eval", str(out / "model.pt"), "--full", "--data-dir", str(tmp_path)]) == 2
    assert (
        f"got {str(tmp_path)!r} (QRNN_MNIST_DIR={str(tmp_path)!r}) without "
        "mnist-simple-0-test.csv.gz" in capsys.readouterr().err
    )


def test_sample_digits_fewer_steps_than_pixels(tmp_path, capsys):
    """`qrnn sample` on a digit task with fewer steps than pixels shows full 8x8 images, the pixels
    not sampled as background (it used to fail: the image side was guessed from the length)."""
    pytest.importorskip("sklearn")
    out = tmp_path / "digits"
    assert main(["train", "--task", "digits01", "--steps", "1", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert (
        main(["sample", str(out / "model.pt"), "--prefix", "1", "--steps", "5", "--count", "2"])
        == 0
    )
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line and set(line) <= {"#", "."}
    ]
    assert len(rows) == 16 and all(len(r) == 8 for r in rows)
    assert all(
        set(r) == {"."} for r in rows[1:8] + rows[9:16]
    )  # only pixels 1..5, in the first row
