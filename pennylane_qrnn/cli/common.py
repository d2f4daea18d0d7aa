"""What every ``qrnn`` command shares: the one-line refusal, renamed flag values, shared flags."""

from __future__ import annotations

import sys
from pathlib import Path

from ..neuron import MODES
from ..tasks.mnist_files import DATA_DIR_ENV, using_data_dir

__all__ = ["UsageError", "Renamed", "note", "add_model_flags", "add_data_flag", "data_dir"]


class UsageError(Exception):
    """A bad flag value or path: reported in one line, no traceback.

    **Example**

    >>> from pennylane_qrnn.cli import UsageError
    >>> from pennylane_qrnn.cli.common import data_dir
    >>> try:
    ...     data_dir("no-such-folder")
    ... except UsageError as error:
    ...     print(error)
    --data-dir must be an existing folder; got 'no-such-folder'
    """


def note(message: str) -> None:
    """One line on stderr that is not an error (a deprecation, where a run writes)."""
    print(f"qrnn: {message}", file=sys.stderr)


class Renamed:
    """An argparse ``type`` for a flag whose values were renamed: a former name becomes its
    current one, with a one-line note on stderr; any other value passes on unchanged (to the
    flag's ``choices``, if it has them).

    Args:
        flag: the flag, for the note (``"--protocol"``)
        renamed: former name -> current name
    """

    def __init__(self, flag: str, renamed: dict):
        self.flag = flag
        self.renamed = dict(renamed)
        self.__name__ = flag  # argparse names the type in its messages

    def __call__(self, value: str) -> str:
        if value in self.renamed:
            new = self.renamed[value]
            note(f"note: {self.flag} {value} is deprecated: it stands for {self.flag} {new}")
            return new
        return value


def add_model_flags(parser) -> None:
    group = parser.add_argument_group("model (default: the task's paper configuration)")
    group.add_argument("--workspace", type=int, help="workspace qubits H")
    group.add_argument("--stages", type=int, help="work stages per cell")
    group.add_argument("--degree", type=int, help="neuron degree")
    group.add_argument("--order", type=int, help="neuron order")
    group.add_argument("--mode", choices=MODES, help="neuron mode (default postselect)")


def add_data_flag(parser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"folder of the paper's MNIST files, for the MNIST tasks (sets {DATA_DIR_ENV} for "
        f"this command; default: ${DATA_DIR_ENV})",
    )


def data_dir(folder):
    """``--data-dir``: where the MNIST tasks read their files during this command (a fact about
    this machine, not about the run, so a run's config does not keep it)."""
    if folder is not None and not Path(folder).expanduser().is_dir():
        raise UsageError(f"--data-dir must be an existing folder; got {folder!r}")
    return using_data_dir(folder)
