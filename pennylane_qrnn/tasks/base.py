"""What a sequence task hands to a QRNN: inputs, targets, which steps count, which are forced."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from ..errors import QRNNValueError
from ..validation import check_choice

__all__ = ["Batch", "SequenceTask", "SPLITS", "check_split"]

#: the splits a dataset task draws from (synthetic tasks accept and ignore them)
SPLITS = ("train", "validate", "test")


def check_split(split):
    """``split`` if it is one of :data:`SPLITS`."""
    return check_choice("split", split, SPLITS)


@dataclass
class Batch:
    """A batch of sequences, time-major.

    Attributes:
        tokens: ``(L, N)`` the token written at each step
        targets: ``(L, N)`` what each step predicts (teacher forcing postselects on it)
        scored: ``(L, N)`` bool, the steps that enter the loss and the accuracy
        forced: ``(L, N)`` bool, the steps an evaluation postselects on their target; the others
            are measured (sampled), as the reference implementation validates
        labels: ``(N,)`` class labels for classification tasks, else ``None``

    Raises:
        QRNNValueError: ``targets``, ``scored`` or ``forced`` not shaped like ``tokens``

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.tasks import Batch
    >>> tokens = torch.tensor([[0, 1], [1, 1], [0, 0]])  # (L, N) = (3, 2)
    >>> scored = torch.tensor([[False, False], [False, False], [True, True]])
    >>> batch = Batch(tokens, targets=tokens.roll(-1, 0), scored=scored, forced=~scored)
    >>> batch.length, batch.size, batch.columns(1, 2).tokens[:, 0].tolist()
    (3, 2, [1, 1, 0])
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    scored: torch.Tensor
    forced: torch.Tensor
    labels: torch.Tensor | None = None

    def __post_init__(self):
        shape = self.tokens.shape
        for name in ("targets", "scored", "forced"):
            if getattr(self, name).shape != shape:
                raise QRNNValueError(
                    f"{name} must have shape {tuple(shape)}; got {tuple(getattr(self, name).shape)}"
                )

    @property
    def length(self) -> int:
        return self.tokens.shape[0]

    def columns(self, start: int, stop: int) -> Batch:
        """Sequences ``start:stop`` of the batch (views, not copies)."""
        labels = None if self.labels is None else self.labels[start:stop]
        return Batch(
            self.tokens[:, start:stop],
            self.targets[:, start:stop],
            self.scored[:, start:stop],
            self.forced[:, start:stop],
            labels,
        )

    @property
    def size(self) -> int:
        return self.tokens.shape[1]


@dataclass
class TaskDefaults:
    """Per-task training defaults, from the paper and its reference scripts.

    Attributes:
        workspace: workspace qubits ``H``
        stages: work stages per cell
        degree: the neurons' degree
        order: the neurons' order
        steps: optimiser steps
        batch_size: sequences per step
        lr: learning rate
        optimizer: the optimiser's name (:data:`pennylane_qrnn.training.OPTIMIZERS`)
        target_loss: stop once the validation loss is below this (``None``: run every step)
        loss: the training loss (:data:`pennylane_qrnn.training.LOSSES`)
        extra: further task-specific settings

    **Example**

    >>> from pennylane_qrnn.tasks import ElmanXOR
    >>> defaults = ElmanXOR.defaults
    >>> defaults.workspace, defaults.stages, defaults.degree, defaults.lr
    (4, 1, 3, 0.05)
    """

    workspace: int
    stages: int
    degree: int
    order: int = 2
    steps: int = 500
    batch_size: int = 16
    lr: float = 0.05
    optimizer: str = "adam"
    target_loss: float | None = None
    #: the training loss (:data:`pennylane_qrnn.training.LOSSES`): "nll", or "rvqe" (the reference
    #: implementation's cross entropy over probabilities, which the pixel-by-pixel MNIST tasks
    #: need to get past chance; see docs/reproduction.md)
    loss: str = "nll"
    extra: dict = field(default_factory=dict)


class SequenceTask(ABC):
    """A dataset of token sequences for a QRNN.

    Subclasses set ``name``, ``io_bits`` and ``defaults`` and implement :meth:`batch`.

    **Example**

    A task that repeats the token ``1`` (two i/o bits: tokens 0..3):

    >>> import torch
    >>> from pennylane_qrnn.tasks import Batch, SequenceTask, TaskDefaults
    >>> class Ones(SequenceTask):
    ...     name, io_bits = "ones", 2
    ...     defaults = TaskDefaults(workspace=2, stages=1, degree=2)
    ...     def batch(self, size, generator=None, split="train"):
    ...         tokens = torch.ones(4, size, dtype=torch.long)
    ...         scored = torch.ones(4, size, dtype=torch.bool)
    ...         return Batch(tokens, tokens, scored, forced=~scored)
    >>> task = Ones()
    >>> task.vocabulary_size, tuple(task.batch(3).tokens.shape)
    (4, (4, 3))
    """

    name: str = ""
    io_bits: int = 1
    defaults: TaskDefaults
    #: where the task comes from (the paper's table row)
    paper_result: str = ""

    @abstractmethod
    def batch(
        self, size: int, generator: torch.Generator | None = None, split: str = "train"
    ) -> Batch:
        """Draw ``size`` sequences. Synthetic tasks ignore ``split``; dataset tasks read it."""

    def check_data(self, splits=SPLITS) -> None:
        """Read now what drawing from ``splits`` needs (files, optional packages), so that a run
        refuses before it starts rather than at its first batch. Synthetic tasks need nothing.

        Raises:
            DataNotFoundError: for dataset tasks whose files are missing (see the task)
        """
        for split in splits:
            check_split(split)

    @property
    def vocabulary_size(self) -> int:
        return 2**self.io_bits

    def describe(self) -> dict:
        """A summary for ``qrnn tasks``."""
        return {
            "name": self.name,
            "io_bits": self.io_bits,
            "length": getattr(self, "length", None),
            "defaults": self.defaults,
            "paper": self.paper_result,
        }

    def __repr__(self):
        return f"{type(self).__name__}({getattr(self, 'length', '')})"
