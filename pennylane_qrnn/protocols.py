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

    Raises:
        QRNNValueError: ``postselect`` or ``output`` is not one of the rules above

    **Example**

    Use the protocols in :data:`PROTOCOLS` (or :func:`get_protocol`); a protocol turns a task
    batch's ``forced`` and ``scored`` masks into the model's ``postselected=`` argument:

    >>> import torch
    >>> from pennylane_qrnn.protocols import MEASURED, QPU
    >>> forced = torch.tensor([[True], [False], [False]])
    >>> scored = torch.tensor([[False], [False], [True]])
    >>> MEASURED.postselected(forced, scored)[:, 0].tolist()
    [False, False, False]
    >>> QPU.skips_output(forced, scored)[:, 0].tolist()  # read out only at the scored step
    [True, True, False]
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

    def _scored_after_measured(self, forced: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        measured = (~self.postselected(forced, scored) & ~self.skips_output(forced, scored)).int()
        return scored.bool() & ((torch.cumsum(measured, 0) - measured) > 0)

    def needs_mixture(self, forced: torch.Tensor, scored: torch.Tensor) -> bool:
        """Whether an exact loss under this protocol needs the workspace's mixed state: it skips
        output stages and a scored step follows a measured step of the same sequence (Elman XOR
        and letters under ``qpu``). Such a loss is computed with ``mixed=True``
        (:mod:`pennylane_qrnn.engine.mixed`). Protocols that never skip (``measured``,
        ``forced-steps``) train on sampled histories, as before: ``False`` for them.

        Args:
            forced (torch.Tensor): ``(L, N)`` bool, the task's forced steps
            scored (torch.Tensor): ``(L, N)`` bool, the task's scored steps

        Returns:
            bool: whether some sequence is scored at a step after a measured one
        """
        if self.output == "every":
            return False
        return bool(self._scored_after_measured(forced, scored).any())

    def check_loss(self, forced: torch.Tensor, scored: torch.Tensor, mixed: bool = False) -> None:
        """Refuse a training loss this protocol would not give exactly.

        A protocol that skips output stages keeps the workspace pure until the first measured
        step, so the log-probability of a target there is exact and differentiable (tasks whose
        only scored step is the last: MNIST pixels, DNA). A scored step after a measured one is
        different: the measurement leaves a mixture over its outcomes. Following one sampled
        history, the gradient would lack the score-function term, so this refuses such a loss
        unless it is computed on the mixture (``mixed=True``, :meth:`needs_mixture`). Protocols
        that never skip (``measured``, ``forced-steps``) keep their behaviour: they train on
        sampled histories, as before.

        Args:
            forced (torch.Tensor): ``(L, N)`` bool, the task's forced steps
            scored (torch.Tensor): ``(L, N)`` bool, the task's scored steps
            mixed (bool): whether the loss is computed on the mixed state

        Raises:
            QRNNValueError: a scored step follows a measured step of the same sequence and
                ``mixed`` is false
        """
        if self.output == "every" or mixed:
            return
        after = self._scored_after_measured(forced, scored)
        if bool(after.any()):
            step = int(after.any(dim=1).nonzero()[0])
            raise QRNNValueError(
                f"protocol {self.name!r} trains exactly only where no scored step follows a "
                f"measured step; got {int(after.any(dim=0).sum())} sequence(s) scored at a step "
                f"after a measured one (first at step {step}): the measurement leaves a mixture, "
                "which a sampled history does not differentiate exactly. Run it with mixed=True "
                "on the Exact executor (density matrices), score only the last step, or train "
                "under 'teacher-forced'"
            )

    def training_masks(
        self, forced: torch.Tensor, scored: torch.Tensor, mixed_ok: bool
    ) -> dict[str, Any]:
        """:meth:`forward_masks` for an exact training loss: with ``mixed=True`` added where
        :meth:`needs_mixture` and the model can (``mixed_ok``); refused (:meth:`check_loss`)
        where it needs a mixture the model cannot compute.

        Args:
            forced (torch.Tensor): ``(L, N)`` bool, the task's forced steps
            scored (torch.Tensor): ``(L, N)`` bool, the task's scored steps
            mixed_ok (bool): whether the model runs ``mixed=True``

        Returns:
            dict: the forward pass's keyword arguments

        **Example**

        >>> import torch
        >>> forced = torch.tensor([[False], [False], [False]])
        >>> scored = torch.tensor([[True], [False], [True]])
        >>> sorted(get_protocol("qpu").training_masks(forced, scored, mixed_ok=True))
        ['mixed', 'postselected', 'skip_output']
        """
        mixed = mixed_ok and self.needs_mixture(forced, scored)
        self.check_loss(forced, scored, mixed)
        masks: dict[str, Any] = dict(self.forward_masks(forced, scored))
        if mixed:
            masks["mixed"] = True
        return masks

    @property
    def samples_scored_steps(self) -> bool:
        """Whether scored steps are measured, so that a sampled accuracy means something."""
        return self.postselect != "every"

    def __str__(self) -> str:
        return self.name


#: every step postselected on its target: the paper's training
TEACHER_FORCED = Protocol(
    "teacher-forced", "every", "every step postselected on its target (the paper's training)"
)
#: the forced, unscored steps postselected, the rest measured: the reference's validation
FORCED_STEPS = Protocol(
    "forced-steps",
    "forced-unscored",
    "the task's forced, unscored steps postselected; every other step measured",
)
#: every step measured, nothing postselected on the i/o lanes
MEASURED = Protocol("measured", "none", "every step measured; nothing postselected on the i/o")
#: output stages only at scored steps, which are measured: what a QPU runs without discarding
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
        protocol (Protocol or str): a :class:`Protocol` or one of the names in :data:`PROTOCOLS`;
            the deprecated ``"reference"`` resolves by ``purpose`` and warns
        purpose (str): ``"training"`` or ``"evaluation"``, only to resolve ``"reference"``

    Returns:
        Protocol: the protocol

    Raises:
        QRNNValueError: an unknown name

    **Example**

    >>> from pennylane_qrnn import get_protocol
    >>> get_protocol("forced-steps").postselect
    'forced-unscored'
    >>> from pennylane_qrnn.protocols import QPU
    >>> get_protocol(QPU) is QPU
    True
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
