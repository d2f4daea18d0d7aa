"""The ``qrnn`` command line: train, evaluate and sample QRNNs on the paper's tasks."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from . import training
from .checkpoints import atomic_save
from .errors import QRNNError
from .evaluation import PROTOCOLS, evaluate, mean_and_error
from .tasks import SPLITS, TASKS, MNISTPixels, SklearnDigits, get_task
from .tasks.mnist_files import DATA_DIR_ENV, using_data_dir
from .tasks.render import render_samples, to_ascii, write_png
from .templates import MODES
from .training import (
    LOSSES,
    MODELS,
    OPTIMIZERS,
    RESULT_FILES,
    TrainConfig,
    Trainer,
    config_from_file,
    load_checkpoint,
)

__all__ = ["main"]


class UsageError(Exception):
    """A bad flag value or path: reported in one line, no traceback."""


def _positive(flag, value):
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be a positive integer; got {value}")


def _add_model_flags(parser):
    group = parser.add_argument_group("model (default: the task's paper configuration)")
    group.add_argument("--workspace", type=int, help="workspace qubits H")
    group.add_argument("--stages", type=int, help="work stages per cell")
    group.add_argument("--degree", type=int, help="neuron degree")
    group.add_argument("--order", type=int, help="neuron order")
    group.add_argument("--mode", choices=MODES, help="neuron mode (default postselect)")


def _add_data_flag(parser):
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"folder of the paper's MNIST files, for the MNIST tasks (sets {DATA_DIR_ENV} for "
        f"this command; default: ${DATA_DIR_ENV})",
    )


def _parser():
    parser = argparse.ArgumentParser(
        prog="qrnn", description="Recurrent quantum neural networks on the paper's tasks."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a QRNN on a task")
    train.add_argument("--task", help="task name (see `qrnn tasks`); not needed with --resume")
    train.add_argument("--length", type=int, help="sequence length (tasks that have one)")
    train.add_argument(
        "--device",
        help="'exact' (the embedded exact simulator, default) or a PennyLane device that "
        "postselects (circuit path: default.qubit, lightning.qubit)",
    )
    train.add_argument(
        "--torch-device", help="torch device of the exact engine, e.g. cuda (default cpu)"
    )
    _add_model_flags(train)
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
    opt.add_argument("--optimizer", choices=OPTIMIZERS)
    opt.add_argument("--seed", type=int, help="default 0")
    opt.add_argument(
        "--loss",
        choices=LOSSES,
        help="nll, or the reference implementation's cross entropy over probabilities (default: "
        "the task's)",
    )
    opt.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="reference (default): postselect every step on its target (the paper); measured: "
        "measure the steps instead (what a QPU run can do)",
    )
    opt.add_argument("--eval-every", type=int, help="default 25")
    opt.add_argument("--checkpoint-every", type=int, help="default 25")
    opt.add_argument("--dtype", choices=["float32", "float64"], help="default float32")
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
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_flag(train)

    evaluate = sub.add_parser("eval", help="evaluate a trained model")
    evaluate.add_argument("model", help="model.pt written by `qrnn train`")
    evaluate.add_argument("--protocol", choices=PROTOCOLS, default="reference")
    evaluate.add_argument("--split", choices=SPLITS, default="test")
    evaluate.add_argument(
        "--full",
        action="store_true",
        help="every sequence of the split (dataset tasks, e.g. all 2115 MNIST 0/1 test images)",
    )
    evaluate.add_argument("--batches", type=int, default=8)
    evaluate.add_argument("--batch-size", type=int)
    evaluate.add_argument("--seeds", type=int, default=3, help="sampling seeds for error bars")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    _add_data_flag(evaluate)

    sample = sub.add_parser("sample", help="generate sequences from a trained model")
    sample.add_argument("model", help="model.pt written by `qrnn train`")
    sample.add_argument("--prefix", default="0", help="comma-separated tokens to start from")
    sample.add_argument("--steps", type=int, default=20)
    sample.add_argument("--count", type=int, default=4)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--png", help="digit tasks: also write the sampled images to this PNG")
    _add_data_flag(sample)

    imp = sub.add_parser(
        "import-reference", help="import a trained model of the paper's reference implementation"
    )
    imp.add_argument("checkpoint", help="an RVQE checkpoint (.tar, legacy torch.save)")
    imp.add_argument(
        "--out", required=True, help="model file to write (for `qrnn eval` / `qrnn sample`)"
    )
    _add_data_flag(imp)

    sub.add_parser("tasks", help="list the tasks with their sizes and defaults")
    sub.add_parser("devices", help="list installed PennyLane devices and what each supports")
    return parser


# flag -> TrainConfig field, for the flags of `qrnn train` that define or steer a run
_TRAIN_FIELDS = {
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
}


def _new_run_folder(task: str) -> Path:
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


def _train(args):
    if args.task is None and not args.resume:
        raise UsageError(
            "--task is required (one of the names `qrnn tasks` lists), unless --resume"
        )
    if args.out is not None and not args.out.strip():
        raise UsageError("--out must name a folder; got an empty string")
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out, the folder of the run to continue")
    given = {
        field: getattr(args, flag)
        for flag, field in _TRAIN_FIELDS.items()
        if getattr(args, flag) is not None
    }
    if args.device is not None:
        backend = None if args.device == "exact" else args.device
        if backend is not None:
            from .devices.catalogue import installed_devices

            if backend not in installed_devices():
                raise UsageError(
                    "--device must be 'exact' or an installed PennyLane device "
                    f"({', '.join(sorted(installed_devices()))}); got {backend!r}"
                )
        given["backend"] = backend
    if args.resume:
        out = Path(args.out)
        checkpoint = out / "checkpoint.pt"
        if not checkpoint.is_file():
            raise UsageError(f"--resume needs a checkpoint at {str(checkpoint)!r}; none found")
        config = replace(config_from_file(load_checkpoint(checkpoint), checkpoint), **given)
    else:
        config = TrainConfig(**given).resolved()  # refuse bad values before a folder is made
        config.make_task().check_data(("train", "validate"))  # and missing data files
    claimed = not args.resume and args.out is None
    if claimed:
        out = _new_run_folder(config.task)
        args.out = str(out)
    elif not args.resume:
        out = Path(args.out)
        _refuse_existing_run(out)
    try:
        trainer = Trainer(config, out, resume=args.resume)
    except BaseException:
        if claimed and not any(out.iterdir()):
            out.rmdir()  # refused before anything was written: leave no empty folder behind
        raise
    if claimed:
        print(f"qrnn: writing to {out} (a new folder; --out chooses another)", file=sys.stderr)
    c = trainer.config
    kind = (
        "QRNN" if c.model == "qrnn" else f"{c.model.upper()} baseline, matched to the QRNN's size:"
    )
    verb = f"resuming at step {trainer.step} of {c.steps}" if args.resume else "training"
    print(
        f"qrnn: {verb} a {kind} on {trainer.task.name} ({trainer.task.io_bits} i/o bits, length "
        f"{getattr(trainer.task, 'length', '-')}) with H{c.workspace} S{c.stages} d{c.degree} "
        f"order {c.order} {c.mode}, {sum(p.numel() for p in trainer.model.parameters())} "
        f"parameters, on {c.backend or 'exact'}",
        file=sys.stderr,
    )
    summary = trainer.run(progress=not args.quiet)
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


def _refuse_existing_run(out: Path):
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a folder; got {str(out)!r}, which is a file")
    present = [name for name in RESULT_FILES if (out / name).exists()]
    if present:
        raise UsageError(
            f"--out {str(out)!r} already holds a run ({', '.join(present)}); continue it with "
            "--resume, "
            "or give another --out (without --out, each run gets a new folder runs/TASK-N)"
        )


def _eval(args):
    _positive("--seeds", args.seeds)
    _positive("--batches", args.batches)
    _positive("--batch-size", args.batch_size)
    model, task, config = training.load_trained_model(args.model)
    size = args.batch_size if args.batch_size is not None else config.batch_size
    if args.full:
        if not hasattr(task, "dataset"):
            raise UsageError(
                f"--full needs a task with a fixed dataset (MNIST, digits); {task.name} draws "
                "fresh sequences, use --batches"
            )
        whole = task.dataset(args.split)
        chunk = args.batch_size if args.batch_size is not None else 512
        batches = [whole.columns(start, start + chunk) for start in range(0, whole.size, chunk)]
    else:
        data = torch.Generator().manual_seed(config.seed + 2_000_029)
        batches = [task.batch(size, data, split=args.split) for _ in range(args.batches)]
    runs = [
        evaluate(model, batches, args.protocol, generator=torch.Generator().manual_seed(s))
        for s in range(args.seeds)
    ]
    sampled = mean_and_error(r.accuracy_sampled for r in runs)
    result = {
        "task": task.name,
        "protocol": args.protocol,
        "sequences": runs[0].sequences,
        "seeds": args.seeds,
        "loss": runs[0].loss,
        "accuracy_argmax": runs[0].accuracy_argmax,
        "accuracy_expected": runs[0].accuracy_expected,
        "accuracy_sampled_mean": sampled[0],
        "accuracy_sampled_stderr": sampled[1],
        "log_success_median": runs[0].log_success_median,
        "log_success_min": runs[0].log_success_min,
        "log_io_success_median": runs[0].log_io_success_median,
        "log_io_success_min": runs[0].log_io_success_min,
        "log_neuron_success_median": runs[0].log_neuron_success_median,
        "wrong_argmax": round((1 - runs[0].accuracy_argmax) * _scored_count(batches)),
    }
    if args.json:
        # JSON has no NaN: a value that was not measured (or an error bar of one seed) is null
        print(json.dumps(_json_safe(result), indent=2, allow_nan=False))
    else:
        if math.isfinite(sampled[1]):
            spread = f"+- {100 * sampled[1]:.2f} % over {args.seeds} seeds"
        else:
            spread = f"% ({args.seeds} seed{'s' if args.seeds != 1 else ''}: no error bar)"
        print(f"{task.name}: {result['sequences']} sequences, protocol {args.protocol}")
        print(f"  accuracy (argmax)   {100 * result['accuracy_argmax']:.2f} %")
        print(f"  accuracy (expected) {100 * result['accuracy_expected']:.2f} %")
        print(f"  accuracy (sampled)  {100 * sampled[0]:.2f} {spread}")
        print(f"  NLL per scored step {result['loss']:.4g}")
        print(
            f"  wrong (argmax)      {result['wrong_argmax']} of {_scored_count(batches)} scored "
            "steps"
        )
        print(
            f"  log postselection success per sequence: median {result['log_success_median']:.4g}, "
            f"min {result['log_success_min']:.4g}"
        )
        print(
            f"    of which i/o teacher forcing: median {result['log_io_success_median']:.4g}, min "
            f"{result['log_io_success_min']:.4g}; "
            f"neurons: median {result['log_neuron_success_median']:.4g}"
        )
    return 0


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _scored_count(batches):
    return int(sum(int(b.scored.sum()) for b in batches))


def _import_reference(args):
    from .reference import import_reference, reference_task

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(
            f"--out must be a model file to write; got {str(out)!r}, which is a folder"
        )
    model, info = import_reference(args.checkpoint)
    task, options = reference_task(info["dataset"])
    config = TrainConfig(
        task=task,
        task_options=options,
        workspace=info["workspace"],
        stages=info["stages"],
        degree=info["degree"],
        order=info["order"],
        dtype="float64",
    )
    config.resolved()  # the task must exist here (e.g. its data folder)
    atomic_save({"config": asdict(config), "model": model.state_dict(), "reference": info}, out)
    print(
        f"qrnn: imported {info['tag']} (dataset {info['dataset']}, epoch {info['epoch']}): "
        f"H{info['workspace']} S{info['stages']} d{info['degree']} order {info['order']}, "
        f"{sum(p.numel() for p in model.parameters())} parameters -> {args.out}"
    )
    return 0


def _sample(args):
    _positive("--count", args.count)
    if args.png is not None and not Path(args.png).parent.resolve().is_dir():
        raise UsageError(f"--png must be a file in an existing folder; got {args.png!r}")
    model, task, _ = training.load_trained_model(args.model)
    try:
        prefix = [int(t) for t in args.prefix.split(",") if t.strip()]
    except ValueError as error:
        raise UsageError(
            f"--prefix must be comma-separated integers; got {args.prefix!r}"
        ) from error
    if not prefix:
        raise UsageError("--prefix must hold at least one token; got none")
    if any(not 0 <= t < model.vocabulary_size for t in prefix):
        raise UsageError(
            f"--prefix tokens must lie in [0, {model.vocabulary_size - 1}] for {task.name}; got "
            f"{args.prefix!r}"
        )
    tokens = torch.tensor(prefix).unsqueeze(1).expand(-1, args.count)
    generated = model.sample(tokens, args.steps, generator=torch.Generator().manual_seed(args.seed))
    if isinstance(task, (MNISTPixels, SklearnDigits)):
        return _show_digits(generated, task, args)
    if args.png is not None:
        raise UsageError(
            f"--png is for the digit tasks (images); {task.name} samples token sequences"
        )
    for column in generated.T.tolist():
        print(" ".join(str(t) for t in column))
    return 0


def _show_digits(generated, task, args):
    """Render sampled pixel sequences as images: in the terminal, and as a PNG with --png."""
    images = render_samples(generated, task)
    for index, image in enumerate(images):
        print(f"sample {index}:")
        print(to_ascii(image))
    if args.png:
        write_png(images, args.png, title=f"{task.name}: samples after prefix {args.prefix}")
        print(f"qrnn: wrote {args.png}")
    return 0


def _tasks(_args):
    print(
        f"{'task':<20} {'i/o bits':>8} {'length':>7}  {'default model':<22} {'steps':>6} "
        f"{'batch':>6} {'lr':>6}  paper"
    )
    for name in TASKS:
        task = get_task(name)
        d = task.defaults
        model = f"H{d.workspace} S{d.stages} d{d.degree} ord{d.order}"
        print(
            f"{name:<20} {task.io_bits:>8} {getattr(task, 'length', '-')!s:>7}  {model:<22} "
            f"{d.steps:>6} {d.batch_size:>6} {d.lr:>6}  {task.paper_result}"
        )
    return 0


def _devices(_args):
    from .devices.catalogue import describe_devices

    print(f"{'device':<22} {'postselect':>10} {'mcm method':>15}  notes")
    for row in describe_devices():
        print(
            f"{row['name']:<22} {('yes' if row['postselect'] else 'no'):>10} "
            f"{str(row['mcm_method']):>15}  {row['notes']}"
        )
    return 0


def _data_dir(folder):
    """``--data-dir``: where the MNIST tasks read their files during this command (a fact about
    this machine, not about the run, so a run's config does not keep it)."""
    if folder is not None and not Path(folder).expanduser().is_dir():
        raise UsageError(f"--data-dir must be an existing folder; got {folder!r}")
    return using_data_dir(folder)


COMMANDS = {
    "train": _train,
    "eval": _eval,
    "sample": _sample,
    "tasks": _tasks,
    "devices": _devices,
    "import-reference": _import_reference,
}


def main(argv=None) -> int:
    """Run the ``qrnn`` command line; returns the exit status.

    A deliberate refusal (:class:`~pennylane_qrnn.errors.QRNNError`, a bad flag, a file that
    cannot be read or written) is one line on stderr and status 2; anything else is a bug and
    keeps its traceback.
    """
    args = _parser().parse_args(argv)
    try:
        with _data_dir(getattr(args, "data_dir", None)):
            return COMMANDS[args.command](args)
    except (UsageError, QRNNError, OSError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"qrnn {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = (
            f"; continue with `qrnn train --resume --out {args.out}`"
            if args.command == "train" and args.out
            else ""
        )
        print(f"qrnn {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
