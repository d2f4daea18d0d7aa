"""``qrnn sample``: generate sequences from a trained model (digit tasks: images)."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import training
from ..tasks import MNISTPixels, SklearnDigits
from ..tasks.render import ascii_samples, render_samples, write_png
from ..validation import check_int
from .common import UsageError, add_data_flag

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    sample = sub.add_parser("sample", help="generate sequences from a trained model")
    sample.add_argument("model", help="model.pt written by `qrnn train`")
    sample.add_argument("--prefix", default="0", help="comma-separated tokens to start from")
    sample.add_argument("--steps", type=int, default=20)
    sample.add_argument("--count", type=int, default=4)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--png", help="digit tasks: also write the sampled images to this PNG")
    add_data_flag(sample)


def run(args) -> int:
    check_int("--count", args.count, minimum=1)
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


def _show_digits(generated, task, args) -> int:
    """Sampled pixel sequences as images: in the terminal, and as a PNG with --png."""
    images = render_samples(generated, task)
    print(ascii_samples(images))
    if args.png:
        write_png(images, args.png, title=f"{task.name}: samples after prefix {args.prefix}")
        print(f"qrnn: wrote {args.png}")
    return 0
