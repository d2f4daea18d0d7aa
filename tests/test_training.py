"""The trainer keeps runs: kill and resume after convergence, no temporary files left, a second
run never destroys the first, --resume honours a new --steps and refuses a conflicting config,
consistent file modes, and a NaN/inf guard that keeps the last good checkpoint."""

import json
import os
from dataclasses import replace

import pytest
import torch

from pennylane_qrnn.cli import main
from pennylane_qrnn.errors import NonFiniteError, QRNNValueError
from pennylane_qrnn.training import RUN_FILES, TrainConfig, Trainer
from tests.cli_flags import TINY_TRAIN_CONFIG, TINY_TRAIN_FLAGS

TINY = {**TINY_TRAIN_CONFIG, "steps": 4, "checkpoint_every": 1}
TINY_FLAGS = [*TINY_TRAIN_FLAGS, "--checkpoint-every", "1"]


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_resume_after_convergence_finishes_without_training(tmp_path, monkeypatch):
    """Killed after it converged but before model.pt was written: the resumed run writes its final
    files and trains no further (it used to train on to --steps)."""
    config = TrainConfig(
        **{**TINY, "steps": 50, "target_loss": 1e9}
    )  # converges at the first validation
    trainer = Trainer(config, tmp_path)

    def killed(self, converged):
        raise KeyboardInterrupt  # the process dies before model.pt and summary.json

    monkeypatch.setattr(Trainer, "finish", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.run(progress=False)
    monkeypatch.undo()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2 and saved["converged"] is True
    assert not (tmp_path / "model.pt").exists()

    resumed = Trainer(config, tmp_path, resume=True)
    monkeypatch.setattr(Trainer, "train_step", lambda self: pytest.fail("trained past convergence"))
    summary = resumed.run(progress=False)
    assert summary["converged"] is True and summary["steps"] == 2
    for key, value in _weights(tmp_path / "model.pt").items():
        assert torch.equal(value, saved["model"][key]), key
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 2


def test_stale_temporaries_removed_and_none_left(tmp_path):
    """A killed atomic write leaves .NAME.*.tmp behind; resuming deletes them (and only them)."""
    Trainer(TrainConfig(**{**TINY, "steps": 2}), tmp_path).run(progress=False)
    stale = [
        tmp_path / ".checkpoint.pt.k1ll3d00.tmp",
        tmp_path / ".model.pt.ab12cd34.tmp",
        tmp_path / ".metrics.csv.tmp",
        tmp_path / ".summary.json.0000.tmp",
    ]
    kept = [tmp_path / "notes.txt", tmp_path / ".mine.tmp", tmp_path / ".checkpoint.pt.user-backup"]
    for path in stale + kept:
        path.write_bytes(b"partial")
    Trainer(TrainConfig(**{**TINY, "steps": 3}), tmp_path, resume=True).run(progress=False)
    assert [p for p in stale if p.exists()] == []
    assert all(p.read_bytes() == b"partial" for p in kept)
    ours = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") and p not in kept]
    assert ours == []


def test_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    from pennylane_qrnn import checkpoints

    def broken(obj, stream):
        stream.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.atomic_save({"a": 1}, tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


def test_second_run_never_destroys_the_first(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--steps", "2", "--out", str(out)]) == 0
    first = _snapshot(out)
    # the same --out again, even with other flags: refused, nothing touched
    assert main(["train", *TINY_FLAGS, "--steps", "3", "--seed", "1", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert _snapshot(out) == first
    # the Python API refuses too, unless told to overwrite
    with pytest.raises(QRNNValueError, match="already holds a run"):
        Trainer(TrainConfig(**TINY), out)
    assert _snapshot(out) == first
    Trainer(TrainConfig(**{**TINY, "steps": 1}), out, overwrite=True).run(progress=False)
    assert json.loads((out / "summary.json").read_text())["steps"] == 1


def test_default_out_is_a_new_folder_per_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for number in (1, 2):
        assert main(["train", *TINY_FLAGS, "--steps", "1"]) == 0
        captured = capsys.readouterr()
        folder = os.path.join("runs", f"elman-xor-{number}")
        assert (
            f"writing to {folder}" in captured.err
            and os.path.join(folder, "model.pt") in captured.out
        )
    assert (tmp_path / "runs" / "elman-xor-1" / "model.pt").is_file()
    assert (tmp_path / "runs" / "elman-xor-2" / "model.pt").is_file()


def test_resume_honours_new_steps_and_matches_an_uninterrupted_run(tmp_path):
    short, whole = tmp_path / "short", tmp_path / "whole"
    assert main(["train", *TINY_FLAGS, "--steps", "3", "--out", str(short)]) == 0
    assert main(["train", "--resume", "--quiet", "--steps", "7", "--out", str(short)]) == 0
    assert json.loads((short / "summary.json").read_text())["steps"] == 7
    assert main(["train", *TINY_FLAGS, "--steps", "7", "--out", str(whole)]) == 0
    a, b = _weights(short / "model.pt"), _weights(whole / "model.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the flags of the run itself may be repeated unchanged
    assert main(["train", "--resume", *TINY_FLAGS, "--steps", "8", "--out", str(short)]) == 0
    assert torch.load(short / "checkpoint.pt", weights_only=True)["step"] == 8


def test_resume_refuses_a_conflicting_config(tmp_path):
    config = TrainConfig(**{**TINY, "steps": 2})
    Trainer(config, tmp_path).run(progress=False)
    before = _snapshot(tmp_path)
    for change in (
        {"task": "memorise"},
        {"workspace": 2},
        {"lr": 0.5},
        {"mode": "amplified"},
        {"seed": 3},
        {"dtype": "float64"},
        {"protocol": "measured"},
    ):
        with pytest.raises(
            QRNNValueError, match=f"{next(iter(change))} must match the run being resumed"
        ):
            Trainer(replace(config, **change), tmp_path, resume=True)
    assert _snapshot(tmp_path) == before
    resumed = Trainer(
        replace(config, steps=3, eval_every=1, checkpoint_every=2), tmp_path, resume=True
    )
    assert resumed.step == 2 and resumed.config.steps == 3


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_file_modes_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        Trainer(TrainConfig(**{**TINY, "steps": 2}), tmp_path / "run").run(progress=False)
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert set(modes) == set(RUN_FILES)
    assert set(modes.values()) == {0o666 & ~umask}, modes


def _inject_nan_loss(trainer, monkeypatch):
    monkeypatch.setattr(
        trainer.model, "loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True)
    )


def _inject_nan_gradient(trainer, monkeypatch):
    trainer.model.output_weights.register_hook(lambda grad: grad * float("nan"))


def _inject_inf_parameter(trainer, monkeypatch):
    step = trainer.optimizer.step

    def exploding_step(*args, **kwargs):
        step(*args, **kwargs)
        with torch.no_grad():
            trainer.model.stage_weights[0, 0, 0] = float("inf")

    monkeypatch.setattr(trainer.optimizer, "step", exploding_step)


@pytest.mark.parametrize(
    "inject, message, stepped",
    [
        (_inject_nan_loss, "the training loss must be finite; got nan", False),
        (
            _inject_nan_gradient,
            "the gradients must be finite; got NaN or infinity in output_weights",
            False,
        ),
        (
            _inject_inf_parameter,
            "the parameters must stay finite; the update made stage_weights NaN or infinite",
            True,
        ),
    ],
)
def test_nonfinite_stops_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, inject, message, stepped
):
    trainer = Trainer(TrainConfig(**{**TINY, "steps": 10}), tmp_path)
    trainer.run(progress=False, stop_after=2)
    good = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert good["step"] == 2
    inject(trainer, monkeypatch)
    with pytest.raises(
        NonFiniteError,
        match=rf"training stopped at step 3: {message}; .*checkpoint.pt' \(step 2\) is the last "
        r"good checkpoint",
    ):
        trainer.run(progress=False)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2
    for key, value in saved["model"].items():
        assert torch.equal(value, good["model"][key]), key
    assert not (tmp_path / "model.pt").exists()
    for name in ("checkpoint.pt", "best.pt"):
        state = torch.load(tmp_path / name, weights_only=True)["model"]
        assert all(bool(torch.isfinite(v).all()) for v in state.values()), name
    if not stepped:  # refused before the update: the weights in memory are the good ones
        for key, value in trainer.model.state_dict().items():
            assert torch.equal(value, good["model"][key]), key
