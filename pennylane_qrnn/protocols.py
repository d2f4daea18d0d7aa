"""Protocols: what every step of a sequence does with its i/o lanes.

After each step's output stage the i/o lanes hold the distribution of the next token and are
read out. A protocol decides, per step, whether the output stage runs at all
(:meth:`Protocol.skips_output`; without it the i/o lanes are back in ``|0>`` after the input is
unwritten, nothing is read and the workspace stays pure), and whether the readout is
*postselected* on the step's target (the state continues as if the target had been read; a QPU
pays the target's probability in discarded shots) or *measured* (an outcome is sampled and the
state collapses on it; nothing is discarded). Which steps are *scored* (enter the loss and the
accuracies) is the task's business (``batch.scored``); which steps the task *forces* onto a
known token is ``batch.forced``.

One :class:`Protocol` object carries that rule, with one meaning wherever it is used: training
(:class:`~pennylane_qrnn.training.Trainer`), evaluation
(:func:`~pennylane_qrnn.evaluation.evaluate`), the shot path and the noise studies.

==================  =================================================  =========================
name                postselected on the target                         measured
==================  =================================================  =========================
``teacher-forced``  every step (the paper's training)                  none
``forced-steps``    the task's forced steps that are not scored (the   every other step
                    reference implementation's validation)
``measured``        none (only the neurons' own postselection is left)  every step
``qpu``             none; the output stage runs only at scored steps    the scored steps
==================  =================================================  =========================

:data:`QPU` is the protocol a quantum computer runs without discarding a shot: with
``mode="amplified"`` neurons its success probability per sequence is exactly 1. The model's
forward pass takes its skipped output stages as ``skip_output=``; the exact and shot executors
run them (the circuit path refuses such a run). :func:`~pennylane_qrnn.evaluation.evaluate` and
training (:class:`~pennylane_qrnn.training.TrainConfig`) take ``"qpu"``.

The name ``"reference"`` once meant ``teacher-forced`` in training and ``forced-steps`` in
evaluation; :func:`get_protocol` still accepts it, with a :class:`FutureWarning` naming the
protocol it stands for.

Example::

    >>> import torch
    >>> forced = torch.tensor([[True], [True], [False]])
    >>> scored = torch.tensor([[False], [True], [True]])
    >>> get_protocol("forced-steps").postselected(forced, scored)[:, 0].tolist()
    [True, False, False]
    >>> get_protocol("teacher-forced").postselected(forced, scored)[:, 0].tolist()
    [True, True, True]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .errors import QRNNValueError
from .validation import check_choice

__all__ = [
    "Protocol",
    "TEACHER_FORCED",
    "FORCED_STEPS",
    "MEASURED",
    "QPU",
    "PROTOCOLS",
    "get_protocol",
]

_RULES = ("every", "forced-unscored", "none")
_OUTPUT_RULES = ("every", "scored")
#: what the deprecated name ``"reference"`` stood for, by where it was used
_REFERENCE_MEANINGS = {"training": "teacher-forced", "evaluation": "forced-steps"}


@dataclass(frozen=True)
class Protocol:
    """A rule that says which steps of a sequence are postselected on their targets.

    Attributes:
        name: the protocol's name (:data:`PROTOCOLS`)
        postselect: ``"every"``, ``"forced-unscored"`` or ``"none"``
        description: one line for help texts and reports
        output: where the output stage runs: ``"every"`` step (default) or only the
            ``"scored"`` ones
    """

    name: str
    postselect: str
    description: str
    output: str = "every"

    def __post_init__(self) -> None:
        check_choice("postselect", self.postselect, _RULES)
        check_choice("output", self.output, _OUTPUT_RULES)

    def postselected(self, forced: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        """``(L, N)`` bool: the steps postselected on their targets; every other step is
        measured (sampled, and the state collapses on the sample)."""
        if self.postselect == "every":
            return torch.ones_like(forced, dtype=torch.bool)
        if self.postselect == "none":
            return torch.zeros_like(forced, dtype=torch.bool)
        return forced.bool() & ~scored.bool()

    def skips_output(self, forced: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        """``(L, N)`` bool: the steps that skip their output stage (nothing is read there, and
        what :meth:`postselected` says of them does not apply); ``False`` everywhere but for
        protocols whose output stage runs only at scored steps."""
        if self.output == "every":
            return torch.zeros_like(forced, dtype=torch.bool)
        return ~scored.bool()

    def forward_masks(self, forced: torch.Tensor, scored: torch.Tensor) -> dict[str, torch.Tensor]:
        """The keyword arguments of a sequence model's forward pass under this protocol:
        ``postselected`` and, if any step skips its output stage, ``skip_output``."""
        masks = {"postselected": self.postselected(forced, scored)}
        skips = self.skips_output(forced, scored)
        if bool(skips.any()):
            masks["skip_output"] = skips
        return masks

    def mask(self, batch: Any) -> torch.Tensor:
        """:meth:`postselected` for a task batch (``batch.forced``, ``batch.scored``)."""
        return self.postselected(batch.forced, batch.scored)

    def check_loss(self, forced: torch.Tensor, scored: torch.Tensor) -> None:
        """Refuse a training loss this protocol would not give exactly.

        A protocol that skips output stages keeps the workspace pure until the first measured
        step, so the log-probability of a target there is exact and differentiable (tasks whose
        only scored step is the last: MNIST pixels, DNA). A scored step after a measured one is
        different: the measurement leaves a mixture over its outcomes, which the exact engine does
        not simulate (it follows one sampled history, and its gradient would lack the
        score-function term), so this refuses it. Protocols that never skip (``measured``,
        ``forced-steps``) keep their behaviour: they train on sampled histories, as before.

        Raises:
            QRNNValueError: a scored step follows a measured step of the same sequence
        """
        if self.output == "every":
            return
        measured = (~self.postselected(forced, scored) & ~self.skips_output(forced, scored)).int()
        after = scored.bool() & ((torch.cumsum(measured, 0) - measured) > 0)
        if bool(after.any()):
            step = int(after.any(dim=1).nonzero()[0])
            raise QRNNValueError(
                f"protocol {self.name!r} trains exactly only where no scored step follows a "
                f"measured step; got {int(after.any(dim=0).sum())} sequence(s) scored at a step "
                f"after a measured one (first at step {step}): the measurement leaves a mixture, "
                "which the exact engine does not simulate. Score only the last step, or train "
                "under 'teacher-forced'"
            )

    @property
    def samples_scored_steps(self) -> bool:
        """Whether scored steps are measured, so that a sampled accuracy means something."""
        return self.postselect != "every"

    def __str__(self) -> str:
        return self.name


TEACHER_FORCED = Protocol(
    "teacher-forced", "every", "every step postselected on its target (the paper's training)"
)
FORCED_STEPS = Protocol(
    "forced-steps",
    "forced-unscored",
    "the task's forced, unscored steps postselected; every other step measured",
)
MEASURED = Protocol("measured", "none", "every step measured; nothing postselected on the i/o")
QPU = Protocol(
    "qpu",
    "none",
    "output stage only at scored steps, which are measured; nothing postselected on the i/o",
    output="scored",
)

#: every protocol by name
PROTOCOLS = {p.name: p for p in (TEACHER_FORCED, FORCED_STEPS, MEASURED, QPU)}


def get_protocol(protocol: Protocol | str, purpose: str = "evaluation") -> Protocol:
    """The :class:`Protocol` named ``protocol`` (or ``protocol`` itself).

    Args:
        protocol: a :class:`Protocol` or one of the names in :data:`PROTOCOLS`; the deprecated
            ``"reference"`` resolves by ``purpose`` and warns
        purpose: ``"training"`` or ``"evaluation"``, only to resolve ``"reference"``
    """
    if isinstance(protocol, Protocol):
        return protocol
    if protocol == "reference":
        name = _REFERENCE_MEANINGS[check_choice("purpose", purpose, tuple(_REFERENCE_MEANINGS))]
        warnings.warn(
            f"protocol='reference' is deprecated: it meant 'teacher-forced' in training and "
            f"'forced-steps' in evaluation; here ({purpose}) it is {name!r}: pass that name",
            FutureWarning,
            stacklevel=3,
        )
        return PROTOCOLS[name]
    return PROTOCOLS[check_choice("protocol", protocol, tuple(PROTOCOLS))]
