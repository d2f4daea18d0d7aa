"""The ``qrnn`` command line: train, evaluate and sample QRNNs on the paper's tasks."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

__all__ = ["main"]


class UsageError(Exception):
    """A bad flag value or path: reported in one line, no traceback."""


def _add_model_flags(parser):
    group = parser.add_argument_group("model (default: the task's paper configuration)")
    group.add_argument("--workspace", type=int, help="workspace qubits H")
    group.add_argument("--stages", type=int, help="work stages per cell")
    group.add_argument("--degree", type=int, help="neuron degree")
    group.add_argument("--order", type=int, help="neuron order")
    group.add_argument("--mode", choices=["postselect", "amplified"], default="postselect")


def _parser():
    parser = argparse.ArgumentParser(prog="qrnn", description="Recurrent quantum neural networks on the paper's tasks.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a QRNN on a task")
    train.add_argument("--task", help="task name (see `qrnn tasks`); not needed with --resume")
    train.add_argument("--length", type=int, help="sequence length (tasks that have one)")
    train.add_argument("--device", default="exact",
                       help="'exact' (the embedded exact simulator, default) or a PennyLane device name (circuit path)")
    train.add_argument("--torch-device", default="cpu", help="torch device of the exact engine, e.g. cuda")
    _add_model_flags(train)
    train.add_argument("--model", choices=["qrnn", "lstm", "rnn"], default="qrnn",
                       help="the QRNN, or a classical baseline with as many parameters (default qrnn)")
    train.add_argument("--hidden", type=int, help="hidden size of a classical baseline (default: matched)")
    opt = train.add_argument_group("optimisation (default: the task's)")
    opt.add_argument("--steps", type=int)
    opt.add_argument("--batch-size", type=int)
    opt.add_argument("--lr", type=float)
    opt.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop"])
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--loss", choices=["nll", "reference"],
                     help="nll, or the reference implementation's cross entropy over probabilities (default: the task's)")
    opt.add_argument("--protocol", choices=["reference", "measured"], default="reference",
                     help="reference: postselect every step on its target (the paper); measured: "
                          "measure the steps instead (what a QPU run can do)")
    opt.add_argument("--eval-every", type=int, default=25)
    opt.add_argument("--checkpoint-every", type=int, default=25)
    opt.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--out", default="runs/latest", help="output folder (default runs/latest)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = sub.add_parser("eval", help="evaluate a trained model")
    evaluate.add_argument("model", help="model.pt written by `qrnn train`")
    evaluate.add_argument("--protocol", choices=["reference", "measured"], default="reference")
    evaluate.add_argument("--split", choices=["train", "validate", "test"], default="test")
    evaluate.add_argument("--full", action="store_true",
                          help="every sequence of the split (dataset tasks, e.g. all 2115 MNIST 0/1 test images)")
    evaluate.add_argument("--batches", type=int, default=8)
    evaluate.add_argument("--batch-size", type=int)
    evaluate.add_argument("--seeds", type=int, default=3, help="sampling seeds for error bars")
    evaluate.add_argument("--json", action="store_true", help="print JSON")

    sample = sub.add_parser("sample", help="generate sequences from a trained model")
    sample.add_argument("model", help="model.pt written by `qrnn train`")
    sample.add_argument("--prefix", default="0", help="comma-separated tokens to start from")
    sample.add_argument("--steps", type=int, default=20)
    sample.add_argument("--count", type=int, default=4)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--png", help="digit tasks: also write the sampled images to this PNG")

    imp = sub.add_parser("import-reference", help="import a trained model of the paper's reference implementation")
    imp.add_argument("checkpoint", help="an RVQE checkpoint (.tar, legacy torch.save)")
    imp.add_argument("--out", required=True, help="model file to write (for `qrnn eval` / `qrnn sample`)")

    sub.add_parser("tasks", help="list the tasks with their sizes and defaults")
    sub.add_parser("devices", help="list installed PennyLane devices and what each supports")
    return parser


def _load_model(path):
    import torch  # pylint: disable=import-outside-toplevel

    from .training import TrainConfig, build_model  # pylint: disable=import-outside-toplevel

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model must be a model.pt file written by `qrnn train`; got {str(path)!r} (no such file)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig(**saved["config"]).resolved()
    except Exception as error:  # a file of another format
        raise UsageError(f"model must be a model.pt file written by `qrnn train`; could not read {str(path)!r}: {error}") from error
    task = config.make_task()
    config.backend = None
    model = build_model(config, task)
    model.load_state_dict(saved["model"])
    return model, task, config


def _train(args):
    from .training import TrainConfig, Trainer  # pylint: disable=import-outside-toplevel

    if args.task is None and not args.resume:
        raise UsageError("--task is required (one of the names `qrnn tasks` lists), unless --resume")
    backend = None if args.device == "exact" else args.device
    if backend is not None:
        from .devices.catalogue import installed_devices  # pylint: disable=import-outside-toplevel

        if backend not in installed_devices():
            raise UsageError(f"--device must be 'exact' or an installed PennyLane device ({', '.join(sorted(installed_devices()))}); got {backend!r}")
    config = TrainConfig(
        task=args.task or "", model=args.model, hidden=args.hidden, protocol=args.protocol, loss=args.loss, length=args.length, workspace=args.workspace, stages=args.stages,
        degree=args.degree, order=args.order, mode=args.mode, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, seed=args.seed,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, backend=backend, torch_device=args.torch_device, dtype=args.dtype,
    )
    trainer = Trainer(config, args.out, resume=args.resume)
    c = trainer.config
    kind = "QRNN" if c.model == "qrnn" else f"{c.model.upper()} baseline, matched to the QRNN's size:"
    print(f"qrnn: training a {kind} on {trainer.task.name} ({trainer.task.io_bits} i/o bits, length {getattr(trainer.task, 'length', '-')}) "
          f"with H{c.workspace} S{c.stages} d{c.degree} order {c.order} {c.mode}, "
          f"{sum(p.numel() for p in trainer.model.parameters())} parameters, on {args.device}", file=sys.stderr)
    summary = trainer.run(progress=not args.quiet)
    out = Path(args.out)
    print(f"qrnn: {'converged' if summary['converged'] else 'finished'} after {summary['steps']} steps: "
          f"validation loss {summary['val_loss']:.4g}, accuracy {100 * summary['val_accuracy_argmax']:.1f}% (argmax), "
          f"{100 * summary['val_accuracy_sampled']:.1f}% (sampled), min postselection probability {summary['val_min_postselection']:.3g}")
    print(f"qrnn: wrote {out / 'model.pt'}, {out / 'metrics.csv'}, {out / 'summary.json'}, {out / 'curves.png'}")
    return 0


def _eval(args):
    import torch  # pylint: disable=import-outside-toplevel

    from .evaluation import evaluate, mean_and_error  # pylint: disable=import-outside-toplevel

    model, task, config = _load_model(args.model)
    size = args.batch_size or config.batch_size
    if args.full:
        if not hasattr(task, "dataset"):
            raise UsageError(f"--full needs a task with a fixed dataset (MNIST, digits); {task.name} draws fresh sequences, use --batches")
        whole = task.dataset(args.split)
        chunk = args.batch_size or 512
        batches = [_columns(whole, start, start + chunk) for start in range(0, whole.size, chunk)]
    else:
        data = torch.Generator().manual_seed(config.seed + 2_000_029)
        batches = [task.batch(size, data, split=args.split) for _ in range(args.batches)]
    runs = [evaluate(model, batches, args.protocol, generator=torch.Generator().manual_seed(s)) for s in range(args.seeds)]
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
        print(json.dumps(result, indent=2))
    else:
        print(f"{task.name}: {result['sequences']} sequences, protocol {args.protocol}")
        print(f"  accuracy (argmax)   {100 * result['accuracy_argmax']:.2f} %")
        print(f"  accuracy (expected) {100 * result['accuracy_expected']:.2f} %")
        print(f"  accuracy (sampled)  {100 * sampled[0]:.2f} +- {100 * sampled[1]:.2f} % over {args.seeds} seeds")
        print(f"  NLL per scored step {result['loss']:.4g}")
        print(f"  wrong (argmax)      {result['wrong_argmax']} of {_scored_count(batches)} scored steps")
        print(f"  log postselection success per sequence: median {result['log_success_median']:.4g}, min {result['log_success_min']:.4g}")
        print(f"    of which i/o teacher forcing: median {result['log_io_success_median']:.4g}, min {result['log_io_success_min']:.4g}; "
              f"neurons: median {result['log_neuron_success_median']:.4g}")
    return 0


def _columns(batch, start, stop):
    from .tasks import Batch  # pylint: disable=import-outside-toplevel

    return Batch(batch.tokens[:, start:stop], batch.targets[:, start:stop], batch.scored[:, start:stop],
                 batch.forced[:, start:stop], None if batch.labels is None else batch.labels[start:stop])


def _scored_count(batches):
    return int(sum(int(b.scored.sum()) for b in batches))


def _import_reference(args):
    from dataclasses import asdict as _asdict  # pylint: disable=import-outside-toplevel

    from .reference import import_reference, reference_task  # pylint: disable=import-outside-toplevel
    from .training import TrainConfig, atomic_save  # pylint: disable=import-outside-toplevel

    model, info = import_reference(args.checkpoint)
    task, options = reference_task(info["dataset"])
    config = TrainConfig(task=task, task_options=options, workspace=info["workspace"], stages=info["stages"],
                         degree=info["degree"], order=info["order"], dtype="float64")
    config.resolved()  # the task must exist here (e.g. its data folder)
    atomic_save({"config": _asdict(config), "model": model.state_dict(), "reference": {k: (float(v) if hasattr(v, "item") else v) for k, v in info.items()}}, Path(args.out))
    print(f"qrnn: imported {info['tag']} (dataset {info['dataset']}, epoch {info['epoch']}): "
          f"H{info['workspace']} S{info['stages']} d{info['degree']} order {info['order']}, "
          f"{sum(p.numel() for p in model.parameters())} parameters -> {args.out}")
    return 0


def _sample(args):
    import torch  # pylint: disable=import-outside-toplevel

    model, task, _ = _load_model(args.model)
    try:
        prefix = [int(t) for t in args.prefix.split(",") if t.strip()]
    except ValueError as error:
        raise UsageError(f"--prefix must be comma-separated integers; got {args.prefix!r}") from error
    if not prefix:
        raise UsageError("--prefix must hold at least one token; got none")
    if any(not 0 <= t < model.vocabulary_size for t in prefix):
        raise UsageError(f"--prefix tokens must lie in [0, {model.vocabulary_size - 1}] for {task.name}; got {args.prefix!r}")
    tokens = torch.tensor(prefix).unsqueeze(1).expand(-1, args.count)
    generated = model.sample(tokens, args.steps, generator=torch.Generator().manual_seed(args.seed))
    from .tasks.digits import MNISTPixels, SklearnDigits  # pylint: disable=import-outside-toplevel

    if isinstance(task, (MNISTPixels, SklearnDigits)):
        return _show_digits(generated, task, args)
    for column in generated.T.tolist():
        print(" ".join(str(t) for t in column))
    return 0


def _show_digits(generated, task, args):
    """Render sampled pixel sequences as images: in the terminal, and as a PNG with --png."""
    from .tasks.digits import render_digit, to_ascii  # pylint: disable=import-outside-toplevel

    side = 10 if task.length == 99 else 8
    # token 0 is the prefix (a label word for the generative task, else pixel 0)
    images = [render_digit(column[1: side * side], scanlines=getattr(task, "scanlines", (0, 1)), first=1) for column in generated.T.tolist()]
    for index, image in enumerate(images):
        print(f"sample {index}:")
        print(to_ascii(image))
    if args.png:
        import matplotlib  # pylint: disable=import-outside-toplevel

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

        figure, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 1.9), squeeze=False)
        for axis, image in zip(axes[0], images):
            axis.imshow(image, cmap="gray_r", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        figure.suptitle(f"{task.name}: samples after prefix {args.prefix}")
        figure.savefig(args.png, dpi=120, bbox_inches="tight")
        plt.close(figure)
        print(f"qrnn: wrote {args.png}")
    return 0


def _tasks(_args):
    from .tasks import TASKS, get_task  # pylint: disable=import-outside-toplevel

    print(f"{'task':<20} {'i/o bits':>8} {'length':>7}  {'default model':<22} {'steps':>6} {'batch':>6} {'lr':>6}  paper")
    for name in TASKS:
        task = get_task(name)
        d = task.defaults
        model = f"H{d.workspace} S{d.stages} d{d.degree} ord{d.order}"
        print(f"{name:<20} {task.io_bits:>8} {getattr(task, 'length', '-')!s:>7}  {model:<22} {d.steps:>6} {d.batch_size:>6} {d.lr:>6}  {task.paper_result}")
    return 0


def _devices(_args):
    from .devices.catalogue import describe_devices  # pylint: disable=import-outside-toplevel

    print(f"{'device':<22} {'postselect':>10} {'mcm method':>15}  notes")
    for row in describe_devices():
        print(f"{row['name']:<22} {('yes' if row['postselect'] else 'no'):>10} {str(row['mcm_method']):>15}  {row['notes']}")
    return 0


COMMANDS = {"train": _train, "eval": _eval, "sample": _sample, "tasks": _tasks, "devices": _devices,
            "import-reference": _import_reference}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ValueError, TypeError, FileNotFoundError) as error:
        print(f"qrnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qrnn {args.command}: interrupted; resume with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
