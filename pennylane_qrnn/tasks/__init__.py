"""Datasets of the paper's tasks, usable without the command line.

>>> from pennylane_qrnn.tasks import get_task
>>> task = get_task("elman-xor")
>>> batch = task.batch(8)
>>> batch.tokens.shape, batch.scored.sum().item()
(torch.Size([36, 8]), 96)
"""

from __future__ import annotations

from ..errors import QRNNValueError
from .base import SPLITS, Batch, SequenceTask, TaskDefaults
from .digits import MNISTUMAP, GenerativeDigits, MNISTPixels, SklearnDigits
from .synthetic import DNA, ElmanLetters, ElmanXOR, Memorisation

__all__ = [
    "Batch",
    "SequenceTask",
    "TaskDefaults",
    "SPLITS",
    "Memorisation",
    "ElmanXOR",
    "ElmanLetters",
    "DNA",
    "MNISTPixels",
    "SklearnDigits",
    "MNISTUMAP",
    "GenerativeDigits",
    "TASKS",
    "get_task",
]

#: task name -> (constructor, fixed keyword arguments)
TASKS = {
    "memorise": (Memorisation, {}),
    "memorise-reference": (Memorisation, {"variant": "reference"}),
    "elman-xor": (ElmanXOR, {}),
    "elman-letters": (ElmanLetters, {}),
    "dna": (DNA, {"variant": "paper"}),
    "dna-reference": (DNA, {"variant": "reference"}),
    "mnist01": (MNISTPixels, {"digits": (0, 1)}),
    "mnist36": (MNISTPixels, {"digits": (3, 6)}),
    "mnist-all": (MNISTPixels, {"digits": tuple(range(10)), "scanlines": (0, 1)}),
    "mnist-umap": (MNISTUMAP, {}),
    "mnist-gen": (GenerativeDigits, {"digits": (0, 1)}),
    "digits01": (SklearnDigits, {"digits": (0, 1)}),
}


def get_task(name: str, **kwargs) -> SequenceTask:
    """The task called ``name`` (see :data:`TASKS`), with e.g. ``length=...``."""
    if name not in TASKS:
        raise QRNNValueError(f"task must be one of {', '.join(sorted(TASKS))}; got {name!r}")
    constructor, fixed = TASKS[name]
    return constructor(**{**fixed, **kwargs})
