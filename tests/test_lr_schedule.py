"""Learning-rate schedules of training runs (TrainConfig.lr_schedule, training.learning_rate)."""

import json
import math

import pytest

from pennylane_qrnn.errors import QRNNValueError
from pennylane_qrnn.training import LR_SCHEDULES, TrainConfig, Trainer, learning_rate

SMALL = dict(
    task="elman-xor",
    length=3,
    workspace=1,
    stages=1,
    degree=1,
    order=1,
    batch_size=2,
    eval_every=2,
    eval_batches=1,
    checkpoint_every=2,
)


def _config(schedule, steps=40, lr=0.2, **extra):
    return TrainConfig(lr=lr, steps=steps, lr_schedule=schedule, **{**SMALL, **extra}).resolved()


def test_constant_is_the_configured_rate_at_every_step():
    config = _config("constant")
    assert {learning_rate(config, k) for k in range(config.steps)} == {0.2}


def test_cosine_falls_from_lr_to_a_hundredth_along_half_a_cosine():
    config = _config("cosine", steps=41)
    rates = [learning_rate(config, k) for k in range(41)]
    assert rates[0] == pytest.approx(0.2)
    assert rates[-1] == pytest.approx(0.002)
    assert rates[20] == pytest.approx(0.002 + 0.198 * 0.5)  # half-way: the mean of the two
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))


def test_warmup_cosine_ramps_up_over_five_percent_then_decays():
    config = _config("warmup-cosine", steps=100)
    rates = [learning_rate(config, k) for k in range(100)]
    assert rates[0] == pytest.approx(0.002)
    assert max(rates) == pytest.approx(0.2)
    assert rates.index(max(rates)) == 5
    assert all(a < b for a, b in zip(rates[:5], rates[1:6], strict=True))
    assert all(a > b for a, b in zip(rates[5:], rates[6:], strict=False))


def test_the_trainer_sets_each_steps_rate_and_a_resumed_run_continues_the_curve(tmp_path):
    config = _config("cosine", steps=6)
    trainer = Trainer(config, tmp_path / "run")
    seen = []
    original = trainer.train_step

    def recording_step(batch=None):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return original(batch)

    trainer.train_step = recording_step
    trainer.run(progress=False, stop_after=4)
    resumed = Trainer(None, tmp_path / "run", resume=True)
    original_resumed = resumed.train_step

    def recording_resumed(batch=None):
        seen.append(resumed.optimizer.param_groups[0]["lr"])
        return original_resumed(batch)

    resumed.train_step = recording_resumed
    resumed.run(progress=False)
    assert seen == pytest.approx([learning_rate(config, k) for k in range(6)], rel=1e-12)
    assert math.isclose(seen[-1], 0.002)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_schedule": "linear"}, "lr-schedule must be one of"),
        ({"lr_schedule": "cosine", "optimizer": "spsa"}, "lr-schedule must be 'constant' with"),
    ],
)
def test_bad_schedules_are_refused(overrides, message):
    with pytest.raises(QRNNValueError, match=message):
        TrainConfig(**{**SMALL, **overrides}).resolved()


def test_every_schedule_is_positive_and_at_most_lr():
    for schedule in LR_SCHEDULES:
        config = _config(schedule, steps=17)
        assert all(0 < learning_rate(config, k) <= 0.2 + 1e-15 for k in range(17))


def test_the_command_line_takes_the_schedule(tmp_path, capsys):
    from pennylane_qrnn.cli import main

    out = tmp_path / "run"
    flags = ["--task", "elman-xor", "--length", "3", "--workspace", "1", "--stages", "1"]
    flags += ["--degree", "1", "--order", "1", "--batch-size", "2", "--eval-every", "2"]
    code = main(
        ["train", *flags, "--steps", "2", "--lr-schedule", "cosine", "--quiet"]
        + ["--out", str(out)]
    )
    assert code == 0
    assert json.loads((out / "config.json").read_text())["lr_schedule"] == "cosine"
    with pytest.raises(SystemExit):
        main(["train", *flags, "--lr-schedule", "linear", "--out", str(tmp_path / "bad")])
    assert "invalid choice: 'linear'" in capsys.readouterr().err
