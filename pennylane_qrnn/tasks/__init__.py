"""Datasets of the paper's tasks, usable without the command line.

>>> from pennylane_qrnn.tasks import get_task
>>> task = get_task("elman-xor")
>>> batch = task.batch(8)
>>> batch.tokens.shape, batch.scored.sum().item()
(torch.Size([36, 8]), 96)
"""

from __future__ import annotations

import warnings

from ..errors import QRNNValueError
from .base import SPLITS, Batch, SequenceTask, TaskDefaults
from .digits import MNISTUMAP, GenerativeDigits, MNISTPixels, SklearnDigits
from .synthetic import DNA, VARIANTS, ElmanLetters, ElmanXOR, Memorisation

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
    "RENAMED_TASKS",
    "VARIANTS",
    "get_task",
    "canonical_task_name",
]

#: task name -> (constructor, fixed keyword arguments)
TASKS = {
    "memorise": (Memorisation, {}),
    "memorise-rvqe": (Memorisation, {"variant": "rvqe"}),
    "elman-xor": (ElmanXOR, {}),
    "elman-letters": (ElmanLetters, {}),
    "dna": (DNA, {"variant": "paper"}),
    "dna-rvqe": (DNA, {"variant": "rvqe"}),
    "mnist01": (MNISTPixels, {"digits": (0, 1)}),
    "mnist36": (MNISTPixels, {"digits": (3, 6)}),
    "mnist-all": (MNISTPixels, {"digits": tuple(range(10)), "scanlines": (0, 1)}),
    "mnist-umap": (MNISTUMAP, {}),
    "mnist-gen": (GenerativeDigits, {"digits": (0, 1)}),
    "digits01": (SklearnDigits, {"digits": (0, 1)}),
}


#: former task names, still accepted (with a FutureWarning), and the name each stands for now
RENAMED_TASKS = {"memorise-reference": "memorise-rvqe", "dna-reference": "dna-rvqe"}


def canonical_task_name(name: str, warn: bool = True) -> str:
    """``name``, or the current name of a former one (:data:`RENAMED_TASKS`), with a
    :class:`FutureWarning` unless ``warn`` is false. Unknown names pass through unchanged.

    Args:
        name (str): a task name
        warn (bool): whether a former name warns

    Returns:
        str: the current name

    **Example**

    >>> from pennylane_qrnn.tasks import canonical_task_name
    >>> canonical_task_name("dna-reference", warn=False), canonical_task_name("dna")
    ('dna-rvqe', 'dna')
    """
    if isinstance(name, str) and name in RENAMED_TASKS:
        new = RENAMED_TASKS[name]
        if warn:
            warnings.warn(
                f"task {name!r} is deprecated: the reference implementation's variants are now "
                f"named 'rvqe'; pass {new!r}",
                FutureWarning,
                stacklevel=3,
            )
        return new
    return name


def get_task(name: str, **kwargs) -> SequenceTask:
    """The task called ``name`` (see :data:`TASKS`), with e.g. ``length=...``.

    The former names ``memorise-reference`` and ``dna-reference`` still work, with a
    :class:`FutureWarning` (:data:`RENAMED_TASKS`).

    Args:
        name (str): one of the names in :data:`TASKS`
        **kwargs: keyword arguments for the task's constructor (``length``, ``folder``, ...)

    Returns:
        SequenceTask: the task

    Raises:
        QRNNValueError: an unknown name, or an option the task refuses

    **Example**

    >>> from pennylane_qrnn.tasks import get_task
    >>> get_task("dna", length=10)
    DNA(10)
    >>> get_task("memorise-rvqe").variant
    'rvqe'
    """
    name = canonical_task_name(name)
    if name not in TASKS:
        raise QRNNValueError(f"task must be one of {', '.join(sorted(TASKS))}; got {name!r}")
    constructor, fixed = TASKS[name]
    return constructor(**{**fixed, **kwargs})
