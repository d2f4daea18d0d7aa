"""TrainConfig.init_from / ``qrnn train --init-from``: a run that starts from an earlier run's
weights (fine-tuning, a curriculum over lengths), refusing files of another architecture."""

import subprocess
import sys

import pytest
import torch

from pennylane_qrnn.errors import QRNNTypeError, QRNNValueError
from pennylane_qrnn.training import TrainConfig, Trainer, build_model
from pennylane_qrnn.training.runs import load_trained_model

from .cli_flags import TINY_TRAIN_CONFIG, TINY_TRAIN_FLAGS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny run (QRNN) and a finished tiny LSTM run."""
    out = tmp_path_factory.mktemp("runs")
    for model in ("qrnn", "lstm"):
        config = TrainConfig(**TINY_TRAIN_CONFIG, model=model, seed=3)
        Trainer(config, out / model).run(progress=False)
    return out


def _config(**extra):
    return TrainConfig(**{**TINY_TRAIN_CONFIG, **extra}).resolved()


@pytest.mark.parametrize("model", ["qrnn", "lstm"])
def test_the_new_run_starts_from_the_files_weights(trained, model):
    source, _, _ = load_trained_model(trained / model / "model.pt")
    # another seed and another length: the weights are the file's, not the seed's
    config = _config(model=model, seed=0, length=9, init_from=str(trained / model / "model.pt"))
    started = build_model(config, config.make_task())
    fresh = build_model(_config(model=model, seed=0), config.make_task())
    for (name, a), b in zip(started.named_parameters(), source.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert any(
        not torch.equal(a, b) for a, b in zip(started.parameters(), fresh.parameters(), strict=True)
    )


def test_a_trainer_starts_from_it_and_trains(trained, tmp_path):
    source, _, _ = load_trained_model(trained / "qrnn" / "model.pt")
    config = TrainConfig(**TINY_TRAIN_CONFIG, seed=0, init_from=str(trained / "qrnn" / "model.pt"))
    trainer = Trainer(config, tmp_path / "again")
    for a, b in zip(trainer.model.parameters(), source.parameters(), strict=True):
        assert torch.equal(a, b)
    summary = trainer.run(progress=False)
    assert summary["steps"] == 2
    moved = load_trained_model(tmp_path / "again" / "model.pt")[0]
    assert any(
        not torch.equal(a, b) for a, b in zip(moved.parameters(), source.parameters(), strict=True)
    )


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        ({"workspace": 2}, QRNNValueError, "must hold a model with this run's layout"),
        ({"mode": "amplified"}, QRNNValueError, "must hold a model with this run's layout"),
        ({"model": "rnn"}, QRNNValueError, "must hold a 'rnn' model; got a 'qrnn' model"),
    ],
)
def test_another_architecture_is_refused(trained, extra, error, message):
    config = _config(init_from=str(trained / "qrnn" / "model.pt"), **extra)
    with pytest.raises(error, match=message):
        build_model(config, config.make_task())


def test_lstm_of_another_size_is_refused(trained):
    config = _config(model="lstm", hidden=3, init_from=str(trained / "lstm" / "model.pt"))
    with pytest.raises(QRNNValueError, match="must hold parameters of the shapes"):
        build_model(config, config.make_task())


def test_missing_or_bad_path_refused_when_resolved(tmp_path):
    with pytest.raises(QRNNValueError, match="init-from must be a model file .* not a file"):
        _config(init_from=str(tmp_path / "nothing.pt"))
    with pytest.raises(QRNNTypeError, match="init-from must be a path"):
        _config(init_from=3)


def test_a_started_run_no_longer_needs_the_file(trained, tmp_path):
    """init_from is read once, when a fresh run starts: a warm-started run resumes, loads and
    evaluates after the file it started from is gone (its config keeps the path as a record)."""
    source = tmp_path / "source.pt"
    source.write_bytes((trained / "qrnn" / "model.pt").read_bytes())
    out = tmp_path / "run"
    config = TrainConfig(**{**TINY_TRAIN_CONFIG, "steps": 3}, seed=0, init_from=str(source))
    Trainer(config, out).run(progress=False, stop_after=2)
    source.unlink()
    with pytest.raises(QRNNValueError, match="init-from must be a model file .* not a file"):
        Trainer(config, tmp_path / "fresh")  # a fresh run still needs it
    resumed = Trainer(config, out, resume=True)
    assert resumed.step == 2
    assert resumed.run(progress=False)["steps"] == 3
    model, _, saved = load_trained_model(out / "model.pt")
    assert saved.init_from == str(source.resolve())
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint[name]), name
    done = subprocess.run(
        [sys.executable, "-m", "pennylane_qrnn", "eval", str(out / "model.pt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    again = subprocess.run(
        [sys.executable, "-m", "pennylane_qrnn", "train", "--resume", "--quiet", "--steps", "4"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-2000:]


def test_cli_init_from(trained, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pennylane_qrnn", "train", *TINY_TRAIN_FLAGS]
        + ["--steps", "2", "--length", "9", "--out", str(tmp_path / "run")]
        + ["--init-from", str(trained / "qrnn" / "model.pt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _, _, config = load_trained_model(tmp_path / "run" / "model.pt")
    assert config.init_from == str((trained / "qrnn" / "model.pt").resolve())
    bad = subprocess.run(
        [sys.executable, "-m", "pennylane_qrnn", "train", *TINY_TRAIN_FLAGS]
        + ["--steps", "2", "--workspace", "2", "--out", str(tmp_path / "bad")]
        + ["--init-from", str(trained / "qrnn" / "model.pt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
    assert "must hold a model with this run's layout" in bad.stderr
