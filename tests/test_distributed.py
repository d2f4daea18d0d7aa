"""Data-parallel training (:mod:`pennylane_qrnn.training.distributed`): two processes joined by
gloo over loopback compute what one process computes on the same global batch.

Tolerance: the runs below are float64, and the two-process numbers (averaged gradients, weights
after 3 SGD steps, the logged losses and validation metrics) must equal the single-process ones to
``rtol = atol = 1e-12`` (what differs is only the order of float additions: the all-reduce sums
two shard sums where one process sums the whole batch). The command-line run is float32, to
``1e-6``. Each multi-process test starts fresh interpreters, which import torch and PennyLane
(several seconds each on a loaded 2-core machine): the module is kept to two launches.
"""

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from pennylane_qrnn.cli import main
from pennylane_qrnn.training import RUN_FILES, TrainConfig, Trainer, distributed
from tests.cli_flags import TINY_TRAIN_CONFIG, TINY_TRAIN_FLAGS

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="needs torch.distributed with the gloo backend",
)

TOL = dict(rtol=1e-12, atol=1e-12)
#: batch 4 on 2 ranks; float64; plain SGD without clipping, so a gradient off by any factor
#: shows in the weights (Adam and clipping would hide a constant factor)
CONFIG = {
    **TINY_TRAIN_CONFIG,
    "batch_size": 4,
    "steps": 3,
    "checkpoint_every": 1,
    "dtype": "float64",
    "optimizer": "sgd",
    "clip": 0.0,
}


def _uneven_batch(task):
    """A global batch of 4 whose two shards score different numbers of steps (1 and 4), where
    the mean of the shard means is not the global mean."""
    batch = task.batch(4, torch.Generator().manual_seed(7), split="train")
    scored = batch.scored.clone()
    scored[:, :2] = False
    scored[scored.shape[0] - 1, 0] = True  # one scored step in rank 0's rows, 4 in rank 1's
    batch.scored = scored
    return batch


def _worker(folder: str) -> int:
    """One rank: (a) the gradients of one step on the uneven batch, (b, c) a 3-step run counting
    the files this rank writes, and a resume of a single-process run."""
    from pennylane_qrnn.training import trainer as trainer_module

    folder = Path(folder)
    ranks = distributed.join_group("cpu")
    writes = []
    for name, where in (("atomic_save", 1), ("atomic_write_text", 0)):
        original = getattr(trainer_module, name)

        def counted(*args, original=original, where=where):
            writes.append(Path(args[where]).name)
            return original(*args)

        setattr(trainer_module, name, counted)
    finished = False
    try:
        # `trainer` (and its DDP wrapper) outlives leave_group: that used to hang a rank at exit
        # about one run in three (see leave_group)
        trainer = Trainer(TrainConfig(**CONFIG), folder / "gradients", ranks=ranks)
        trainer.train_step(_uneven_batch(trainer.task))
        grads = {name: p.grad for name, p in trainer.model.named_parameters()}
        torch.save(grads, folder / f"gradients-rank{ranks.rank}.pt")
        Trainer(TrainConfig(**CONFIG), folder / "run", ranks=ranks).run(progress=False)
        Trainer(TrainConfig(**CONFIG), folder / "resumed", resume=True, ranks=ranks).run(
            progress=False
        )
        finished = True
    finally:
        distributed.leave_group(finished)
    (folder / f"writes-rank{ranks.rank}.json").write_text(json.dumps(writes))
    return 0


def _metrics(path):
    with open(path, newline="") as stream:
        return [
            {k: float(v) for k, v in row.items() if v and k != "steps_per_second"}
            for row in csv.DictReader(stream)
        ]


def _assert_same_metrics(a, b, **tol):
    assert [sorted(row) for row in a] == [sorted(row) for row in b]
    for row_a, row_b in zip(a, b, strict=True):
        for key in row_a:
            torch.testing.assert_close(row_a[key], row_b[key], **tol, msg=key)


def test_share_of_loss_makes_the_average_the_global_mean():
    """Unequal scored counts per shard: the average of the ranks' shares is the global mean (a
    plain average of shard means is not). No processes: the arithmetic alone."""
    values = torch.arange(1.0, 9.0, dtype=torch.float64).reshape(2, 4)  # (L, N)
    scored = torch.tensor([[True, False, True, True], [False, False, True, True]])
    global_mean = (values * scored).sum() / scored.sum()
    shares, means = [], []
    for rank in range(2):
        rows = slice(2 * rank, 2 * rank + 2)
        part, mask = values[:, rows], scored[:, rows]
        means.append((part * mask).sum() / mask.sum().clamp_min(1))
        share = distributed.Ranks(rank, 2).share_of_loss(means[-1], mask.sum(), scored.sum())
        shares.append(share)
    torch.testing.assert_close(sum(shares) / 2, global_mean, **TOL)
    assert not torch.isclose(sum(means) / 2, global_mean)  # what a plain DDP average would give


def test_two_processes_equal_one_on_the_global_batch(tmp_path):
    # the single-process reference, and a 2-step single-process run for the ranks to resume
    reference = Trainer(TrainConfig(**CONFIG), tmp_path / "one-gradients")
    batch = _uneven_batch(reference.task)
    assert batch.scored[:, :2].sum() != batch.scored[:, 2:].sum()
    reference.train_step(batch)
    Trainer(TrainConfig(**CONFIG), tmp_path / "one").run(progress=False)
    Trainer(TrainConfig(**{**CONFIG, "steps": 2}), tmp_path / "resumed").run(progress=False)

    assert distributed.spawn(2, _worker, str(tmp_path)) == 0

    # (a) the gradients DDP averaged are the single process's on the global batch, on each rank
    for rank in (0, 1):
        grads = torch.load(tmp_path / f"gradients-rank{rank}.pt", weights_only=True)
        for name, p in reference.model.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, **TOL, msg=name)
    # (b) the weights (and logged metrics) after 3 steps; also after resuming a 2-step
    # single-process run on two processes
    one = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["model"]
    for folder in ("run", "resumed"):
        two = torch.load(tmp_path / folder / "model.pt", weights_only=True)["model"]
        for key in one:
            torch.testing.assert_close(two[key], one[key], **TOL, msg=f"{folder}: {key}")
        _assert_same_metrics(
            _metrics(tmp_path / folder / "metrics.csv"),
            _metrics(tmp_path / "one" / "metrics.csv"),
            **TOL,
        )
    # (c) one set of files, all written by rank 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(RUN_FILES)
    writes = [json.loads((tmp_path / f"writes-rank{r}.json").read_text()) for r in (0, 1)]
    assert writes[1] == []
    assert writes[0].count("checkpoint.pt") == 3 + 1 + 1 + 1  # every step, end, and resumed run
    assert writes[0].count("model.pt") == 2 and writes[0].count("metrics.csv") == 2


def test_command_line_nproc_end_to_end_and_resume_single_process(tmp_path, capfd):
    flags = [*TINY_TRAIN_FLAGS, "--batch-size", "4", "--checkpoint-every", "1"]
    two, one = tmp_path / "two", tmp_path / "one"
    assert main(["train", *flags, "--steps", "2", "--nproc", "2", "--out", str(two)]) == 0
    captured = capfd.readouterr()  # written by rank 0, a child process
    assert f"wrote {two / 'model.pt'}" in captured.out and "in 2 processes" in captured.err
    assert sorted(p.name for p in two.iterdir()) == sorted(RUN_FILES)
    # a checkpoint from two processes resumes in one, as if one had trained all along
    assert main(["train", "--resume", "--quiet", "--steps", "3", "--out", str(two)]) == 0
    assert main(["train", *flags, "--steps", "3", "--out", str(one)]) == 0
    a = torch.load(two / "model.pt", weights_only=True)["model"]
    b = torch.load(one / "model.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-6, msg=key)
    _assert_same_metrics(
        _metrics(two / "metrics.csv"), _metrics(one / "metrics.csv"), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--nproc", "0"], "qrnn train: error: --nproc must be an int >= 1; got 0"),
        (["--nproc", "-2"], "qrnn train: error: --nproc must be an int >= 1; got -2"),
        (
            ["--nproc", "2", "--batch-size", "3"],
            "qrnn train: error: --batch-size must be divisible by the 2 processes (it is the "
            "global batch, split evenly over them); got 3",
        ),
    ],
)
def test_bad_nproc_refused_in_one_line_before_anything_starts(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train", *TINY_TRAIN_FLAGS, *flags, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == message
    assert not out.exists()


def test_nproc_must_match_torchrun(tmp_path, capsys, monkeypatch):
    """Under torchrun (its environment), --nproc may only repeat the number it started."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    out = tmp_path / "run"
    assert main(["train", *TINY_TRAIN_FLAGS, "--nproc", "3", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "qrnn train: error: --nproc must match the 2 processes torchrun started (or be left "
        "out: torchrun's --nproc-per-node sets it); got 3"
    )
    monkeypatch.setenv("RANK", "1")  # the other ranks leave quietly: rank 0 reports
    assert main(["train", *TINY_TRAIN_FLAGS, "--nproc", "3", "--out", str(out)]) == 0
    assert capsys.readouterr().err == "" and not out.exists()


def test_leave_group_releases_the_reducers_of_wrappers_still_alive():
    """A trainer that outlives the group must not hold it: its DDP wrapper gives up the reducer
    (the reducer's hold on the group is what deadlocked a rank at exit). In-process, a group of
    one."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = torch.nn.Linear(3, 2)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        wrapped = distributed.Ranks(0, 1).wrap(model)
        wrapped(torch.ones(4, 3)).sum().backward()
        assert "reducer" in wrapped.__dict__ and "logger" in wrapped.__dict__
    finally:
        distributed.leave_group()
    assert not dist.is_initialized()
    assert "reducer" not in wrapped.__dict__ and "logger" not in wrapped.__dict__
    for key, value in model.state_dict().items():  # the model itself is untouched
        assert torch.equal(value, before[key])
    assert model.weight.grad is not None
    distributed.leave_group()  # outside a group: nothing to do
