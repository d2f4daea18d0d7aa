"""``qrnn train``: train a QRNN (or a matched classical baseline) on a task."""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import QRNNError
from ..tasks import RENAMED_TASKS
from ..training import (
    DEPRECATED_NAMES,
    DTYPES,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    RESULT_FILES,
    TRAIN_PROTOCOLS,
    TrainConfig,
    check_trainable,
    config_from_file,
    distributed,
    load_checkpoint,
)
from ..training.config import GRADIENTS, LR_SCHEDULES
from ..training.shot_optim import make_trainer
from ..validation import check_choice
from .common import Renamed, UsageError, add_data_flag, add_model_flags, data_dir, note

__all__ = ["add_parser", "run", "TRAIN_FIELDS"]

# flag -> TrainConfig field, for the flags of `qrnn train` that define or steer a run
TRAIN_FIELDS = {
    "task": "task",
    "model": "model",
    "hidden": "hidden",
    "protocol": "protocol",
    "loss": "loss",
    "length": "length",
    "workspace": "workspace",
    "stages": "stages",
    "degree": "degree",
    "order": "order",
    "mode": "mode",
    "steps": "steps",
    "batch_size": "batch_size",
    "lr": "lr",
    "optimizer": "optimizer",
    "seed": "seed",
    "eval_every": "eval_every",
    "checkpoint_every": "checkpoint_every",
    "torch_device": "torch_device",
    "dtype": "dtype",
    "shots": "shots",
    "budget": "budget",
    "gradient": "gradient",
    "pseudo_count": "pseudo_count",
    "lr_schedule": "lr_schedule",
    "init_bias": "init_bias",
    "init_from": "init_from",
}


def add_parser(sub) -> None:
    train = sub.add_parser("train", help="train a QRNN on a task")
    train.add_argument(
        "--task",
        type=Renamed("--task", RENAMED_TASKS),
        help="task name (see `qrnn tasks`); not needed with --resume",
    )
    train.add_argument("--length", type=int, help="sequence length (tasks that have one)")
    train.add_argument(
        "--device",
        help="'exact' (the embedded exact simulator, default), a PennyLane device that "
        "postselects (circuit path: default.qubit, lightning.qubit), or with --optimizer spsa "
        "or --gradient parameter-shift a shot device (qiskit.aer, braket.local.qubit, "
        "braket.aws.qubit: whole sequences with shots, each batch one submission, recorded in "
        "OUT/submissions.json)",
    )
    train.add_argument(
        "--torch-device", help="torch device of the exact engine, e.g. cuda (default cpu)"
    )
    add_model_flags(train)
    train.add_argument(
        "--model",
        choices=MODELS,
        help="the QRNN, or a classical baseline with as many parameters (default qrnn)",
    )
    train.add_argument(
        "--hidden", type=int, help="hidden size of a classical baseline (default: matched)"
    )
    opt = train.add_argument_group("optimisation (default: the task's)")
    opt.add_argument("--steps", type=int)
    opt.add_argument("--batch-size", type=int)
    opt.add_argument("--lr", type=float)
    opt.add_argument(
        "--init-bias",
        type=float,
        help="the workspace neurons' initial bias mean (default pi/4, the paper's: the "
        "activation's steepest point; smaller starts the cell nearer the identity)",
    )
    opt.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from the weights of MODEL (a model.pt or best.pt of an earlier run of the "
        "same architecture): fine-tuning, or a curriculum over --length",
    )
    opt.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="constant (default); cosine: from --lr down to --lr/100 along half a cosine; "
        "warmup-cosine: a linear ramp over the first 5%% of the steps, then the cosine",
    )
    opt.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help="spsa: gradient-free, two loss evaluations a step (the one that trains on shots)",
    )
    opt.add_argument(
        "--gradient",
        choices=GRADIENTS,
        help="parameter-shift: on a shot --device, train with a gradient --optimizer (adam, ...) "
        "whose gradients are estimated from shots by the shift rule (each step one submission "
        "of 1 + 2GL circuits per sequence: G weight-dependent rotations per cell, L steps)",
    )
    opt.add_argument("--shots", type=int, help="shots per sequence on a shot --device")
    opt.add_argument(
        "--pseudo-count",
        type=float,
        help="on a shot --device, the loss reads a step's counts as (n_k + a) / (n + V a); "
        "default 0.5 (Krichevsky-Trofimov); 0: plain frequencies (a target no shot read "
        "stops the run)",
    )
    opt.add_argument(
        "--budget",
        type=float,
        help="USD, a spending limit for a priced shot device: every submission is priced and "
        "counted, and one that would pass the limit is refused before it is sent",
    )
    opt.add_argument("--seed", type=int, help="default 0")
    opt.add_argument(
        "--loss",
        choices=LOSSES,
        type=Renamed("--loss", DEPRECATED_NAMES["loss"]),
        help="nll, or rvqe: the reference implementation's cross entropy over probabilities "
        "(default: the task's)",
    )
    opt.add_argument(
        "--protocol",
        choices=TRAIN_PROTOCOLS,
        type=Renamed("--protocol", DEPRECATED_NAMES["protocol"]),
        help="teacher-forced (default): postselect every step on its target (the paper); "
        "measured: measure the steps instead; qpu: nothing postselected, the output stage only "
        "at scored steps (with --mode amplified a QPU runs it without discarding a shot; tasks "
        "scored at the last step only)",
    )
    opt.add_argument("--eval-every", type=int, help="default 25")
    opt.add_argument("--checkpoint-every", type=int, help="default 25")
    opt.add_argument("--dtype", choices=DTYPES, help="default float32")
    train.add_argument(
        "--out",
        help="output folder; default: a new folder runs/TASK-N. An existing run is never "
        "overwritten: continue it with --resume, or pick another folder",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT from OUT/checkpoint.pt; --steps and the eval/checkpoint "
        "intervals may change, every other flag must match the run",
    )
    train.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="data-parallel training in N local processes (gloo on the CPU, NCCL on cuda); "
        "--batch-size is the global batch and must divide by N. Under torchrun, leave it out",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_flag(train)


def new_run_folder(task: str) -> Path:
    """Claim a new folder runs/TASK-N (the first N not taken; mkdir is the claim, so two runs
    started together get different folders)."""
    base = Path("runs")
    base.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        candidate = base / f"{task}-{number}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def refuse_existing_run(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a folder; got {str(out)!r}, which is a file")
    present = [name for name in RESULT_FILES if (out / name).exists()]
    if present:
        raise UsageError(
            f"--out {str(out)!r} already holds a run ({', '.join(present)}); continue it with "
            "--resume, "
            "or give another --out (without --out, each run gets a new folder runs/TASK-N)"
        )


def _backend(device):
    """``--device``: None for the exact engine, else an installed PennyLane device's name."""
    if device == "exact":
        return None
    from ..devices.catalogue import installed_devices

    return check_choice("--device", device, ("exact", *sorted(installed_devices())))


def run(args) -> int:
    """``qrnn train``: alone, as one rank of a ``torchrun`` launch, or launching ``--nproc``
    processes (:mod:`pennylane_qrnn.training.distributed`).

    In a multi-process run, a refusal every rank meets alike (bad flags, or one rank 0 met and
    sent to all) is reported by rank 0, with status 2; the other ranks leave quietly with status
    0, so that no launcher stops rank 0 before it has said why."""
    launched = distributed.launched_world_size()
    try:
        config, processes = _checked_config(args, launched)
    except (UsageError, QRNNError, OSError):
        if launched > 1 and distributed.launched_rank() > 0:
            return 0  # every rank checks the same flags and files: rank 0 reports
        raise
    if launched > 1:
        return _as_rank(args, config)
    if processes == 1:
        return _train(args, config, None)
    out, claimed = _claim_folder(args, config)
    if claimed:
        note(f"writing to {out} (a new folder; --out chooses another)")
    try:
        status = distributed.spawn(processes, _spawned, args, config)
    finally:
        if claimed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # refused before anything was written: leave no empty folder behind
    return status


def _as_rank(args, config) -> int:
    """``qrnn train`` as one rank of a data-parallel run (``torchrun``, or :func:`_spawned`)."""
    try:
        ranks = distributed.join_group(config.torch_device)
        finished = False
        try:
            status = _train(args, config, ranks)
            finished = True
            return status
        except BaseException as error:
            finished = distributed.is_shared(error)  # every rank raised it: all are here
            raise
        finally:
            distributed.leave_group(finished)
    except (UsageError, QRNNError, OSError) as error:
        if distributed.launched_rank() > 0 and distributed.is_shared(error):
            return 0  # rank 0 met it too and reports it
        raise


def _spawned(args, config) -> int:
    """One process of ``qrnn train --nproc N`` (:func:`distributed.spawn`): a rank, reporting its
    refusals in one line as the command line does."""
    try:
        with data_dir(getattr(args, "data_dir", None)):
            return _as_rank(args, config)
    except (UsageError, QRNNError, OSError) as error:
        rank = distributed.launched_rank()
        who = f" (rank {rank})" if rank else ""
        print(f"qrnn train{who}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _checked_config(args, launched: int):
    """The run's resolved config and number of processes; refuses bad flags before anything
    starts (no folder, no process)."""
    if args.task is None and not args.resume:
        raise UsageError(
            "--task is required (one of the names `qrnn tasks` lists), unless --resume"
        )
    if args.out is not None and not args.out.strip():
        raise UsageError("--out must name a folder; got an empty string")
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out, the folder of the run to continue")
    processes = launched if args.nproc is None else args.nproc
    if launched > 1 and args.nproc is not None and args.nproc != launched:
        raise UsageError(
            f"--nproc must match the {launched} processes torchrun started (or be left out: "
            f"torchrun's --nproc-per-node sets it); got {args.nproc}"
        )
    given = {
        field: getattr(args, flag)
        for flag, field in TRAIN_FIELDS.items()
        if getattr(args, flag) is not None
    }
    if args.device is not None:
        given["backend"] = _backend(args.device)
    if args.resume:
        checkpoint = Path(args.out) / "checkpoint.pt"
        if not checkpoint.is_file():
            raise UsageError(f"--resume needs a checkpoint at {str(checkpoint)!r}; none found")
        config = replace(config_from_file(load_checkpoint(checkpoint), checkpoint), **given)
        config = config.resolved(started=True)
    else:
        config = TrainConfig(**given).resolved()  # refuse bad values before a folder is made
        check_trainable(config)  # and a device that cannot train with these flags
        config.make_task().check_data(("train", "validate"))  # and missing data files
    try:
        distributed.check_processes(processes, config.batch_size, config.torch_device)
    except QRNNError as error:
        raise UsageError(f"--{error}") from None
    return config, processes


def _claim_folder(args, config) -> tuple[Path, bool]:
    """The run's folder: ``--out`` (refused if it holds another run), else a new runs/TASK-N
    (then ``args.out`` is set to it). Says whether the folder was claimed here."""
    if args.resume:
        return Path(args.out), False
    if args.out is None:
        out = new_run_folder(config.task)
        args.out = str(out)
        return out, True
    out = Path(args.out)
    refuse_existing_run(out)
    return out, False


def _train(args, config, ranks) -> int:
    """Train ``config`` in ``args.out`` (claimed by rank 0 if not given); prints on rank 0."""
    main = ranks is None or ranks.is_main
    if ranks is None:
        out, claimed = _claim_folder(args, config)
    else:  # rank 0 claims the folder, every rank writes (rank 0) or resumes in it
        out, claimed = ranks.from_main(lambda: _claim_folder(args, config))
        args.out = str(out)
    try:
        trainer = make_trainer(config, out, resume=args.resume, ranks=ranks)
    except BaseException:
        if claimed and main and not any(out.iterdir()):
            out.rmdir()  # refused before anything was written: leave no empty folder behind
        raise
    if claimed and main:
        note(f"writing to {out} (a new folder; --out chooses another)")
    c = trainer.config
    kind = (
        "QRNN" if c.model == "qrnn" else f"{c.model.upper()} baseline, matched to the QRNN's size:"
    )
    verb = f"resuming at step {trainer.step} of {c.steps}" if args.resume else "training"
    where = "" if ranks is None else f", in {ranks.world_size} processes"
    if main:
        print(
            f"qrnn: {verb} a {kind} on {trainer.task.name} ({trainer.task.io_bits} i/o bits, "
            f"length {getattr(trainer.task, 'length', '-')}) with H{c.workspace} S{c.stages} "
            f"d{c.degree} order {c.order} {c.mode}, "
            f"{sum(p.numel() for p in trainer.model.parameters())} parameters, on "
            f"{c.backend or 'exact'}{where}",
            file=sys.stderr,
        )
    summary = trainer.run(progress=not args.quiet)
    if not main:
        return 0
    print(
        f"qrnn: {'converged' if summary['converged'] else 'finished'} after {summary['steps']} "
        f"steps: validation loss {summary['val_loss']:.4g}, accuracy "
        f"{100 * summary['val_accuracy_argmax']:.1f}% (argmax), "
        f"{100 * summary['val_accuracy_sampled']:.1f}% (sampled), min postselection probability "
        f"{summary['val_min_postselection']:.3g}"
    )
    print(
        f"qrnn: wrote {out / 'model.pt'}, {out / 'metrics.csv'}, {out / 'summary.json'}, "
        f"{out / 'curves.png'}"
    )
    return 0
