"""The ``qrnn`` command line: train, evaluate and sample QRNNs on the paper's tasks.

One module per command (:mod:`.train`, :mod:`.evaluate`, :mod:`.sample`, :mod:`.rvqe`,
:mod:`.listing`), each adding its parser and running it; :mod:`.common` holds what they share.
Choice lists are read from the modules that own them (``pennylane_qrnn.training``,
``pennylane_qrnn.protocols``, ``pennylane_qrnn.tasks``, ``pennylane_qrnn.neuron``).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import QRNNError
from . import evaluate, listing, rvqe, sample, train
from .common import UsageError, data_dir, note

__all__ = ["main", "COMMANDS", "UsageError"]

#: command -> the function that runs it
COMMANDS = {
    "train": train.run,
    "eval": evaluate.run,
    "sample": sample.run,
    "tasks": listing.run_tasks,
    "devices": listing.run_devices,
    "import-rvqe": rvqe.run,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qrnn", description="Recurrent quantum neural networks on the paper's tasks."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_parser(sub)
    evaluate.add_parser(sub)
    sample.add_parser(sub)
    rvqe.add_parser(sub)
    listing.add_parsers(sub)
    return parser


def _renamed_command(argv: list[str]) -> list[str]:
    """``argv`` with a former command name replaced by its current one (and a note on stderr).
    The command is the first word that is not an option: ``qrnn`` itself takes only ``-h``."""
    for index, word in enumerate(argv):
        if not word.startswith("-"):
            if word in rvqe.RENAMED_COMMANDS:
                new = rvqe.RENAMED_COMMANDS[word]
                note(f"note: `qrnn {word}` is deprecated: it is now `qrnn {new}`")
                return [*argv[:index], new, *argv[index + 1 :]]
            break
    return argv


def main(argv=None) -> int:
    """Run the ``qrnn`` command line; returns the exit status.

    A deliberate refusal (:class:`~pennylane_qrnn.errors.QRNNError`, a bad flag, a file that
    cannot be read or written) is one line on stderr and status 2; anything else is a bug and
    keeps its traceback.

    Args:
        argv (list[str] or None): the arguments after ``qrnn``; ``None`` reads ``sys.argv``

    Returns:
        int: the exit status: 0 on success, 2 for a refusal, 130 when interrupted

    **Example**

    >>> from pennylane_qrnn.cli import main
    >>> main(["tasks"])  # doctest: +ELLIPSIS
    task ... paper
    memorise ...
    0
    >>> main(["eval", "no-such-folder/model.pt"])  # the reason is one line on stderr
    2
    """
    argv = _renamed_command(list(sys.argv[1:] if argv is None else argv))
    args = _parser().parse_args(argv)
    try:
        with data_dir(getattr(args, "data_dir", None)):
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
