"""``qrnn eval``: accuracies and postselection statistics of a trained model, with error bars."""

from __future__ import annotations

import json
import math
import warnings

import torch

from .. import training
from ..evaluation import evaluate, mean_and_error
from ..protocols import FORCED_STEPS, PROTOCOLS, get_protocol
from ..tasks import SPLITS
from ..training.runs import json_safe
from ..validation import check_int
from .common import Renamed, UsageError, add_data_flag

__all__ = ["add_parser", "run"]


def _renamed_protocols() -> dict:
    """The former protocol names, and what each means in an evaluation (read from
    :func:`~pennylane_qrnn.protocols.get_protocol`, without its warning: the command line says
    it in one line instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return {"reference": get_protocol("reference", "evaluation").name}


def add_parser(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate a trained model")
    parser.add_argument("model", help="model.pt written by `qrnn train`")
    parser.add_argument(
        "--protocol",
        choices=tuple(PROTOCOLS),
        type=Renamed("--protocol", _renamed_protocols()),
        default=FORCED_STEPS.name,
        help="forced-steps (default): postselect the task's forced, unscored steps and measure "
        "the others (the reference implementation's validation); measured: measure every step; "
        "teacher-forced: postselect every step (nothing sampled); qpu: nothing postselected, the "
        "output stage only at scored steps (exact executor)",
    )
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument(
        "--full",
        action="store_true",
        help="every sequence of the split (dataset tasks, e.g. all 2115 MNIST 0/1 test images)",
    )
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds for error bars")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_data_flag(parser)


def run(args) -> int:
    for flag in ("--seeds", "--batches", "--batch-size"):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            check_int(flag, value, minimum=1)
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
    scored = _scored_count(batches)
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
        "wrong_argmax": round((1 - runs[0].accuracy_argmax) * scored),
    }
    if args.json:
        # JSON has no NaN: a value that was not measured (or an error bar of one seed) is null
        print(json.dumps(json_safe(result), indent=2, allow_nan=False))
    else:
        _print_report(result, sampled, scored, args)
    return 0


def _print_report(result, sampled, scored, args) -> None:
    if math.isfinite(sampled[1]):
        spread = f"+- {100 * sampled[1]:.2f} % over {args.seeds} seeds"
    else:
        spread = f"% ({args.seeds} seed{'s' if args.seeds != 1 else ''}: no error bar)"
    print(f"{result['task']}: {result['sequences']} sequences, protocol {args.protocol}")
    print(f"  accuracy (argmax)   {100 * result['accuracy_argmax']:.2f} %")
    print(f"  accuracy (expected) {100 * result['accuracy_expected']:.2f} %")
    print(f"  accuracy (sampled)  {100 * sampled[0]:.2f} {spread}")
    print(f"  NLL per scored step {result['loss']:.4g}")
    print(f"  wrong (argmax)      {result['wrong_argmax']} of {scored} scored steps")
    print(
        f"  log postselection success per sequence: median {result['log_success_median']:.4g}, "
        f"min {result['log_success_min']:.4g}"
    )
    print(
        f"    of which i/o teacher forcing: median {result['log_io_success_median']:.4g}, min "
        f"{result['log_io_success_min']:.4g}; "
        f"neurons: median {result['log_neuron_success_median']:.4g}"
    )


def _scored_count(batches) -> int:
    return int(sum(int(b.scored.sum()) for b in batches))
