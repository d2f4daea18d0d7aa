"""Evaluating a QRNN on a task: accuracies, losses and the postselection cost a QPU would pay.

Each evaluation runs under a :class:`~pennylane_qrnn.protocols.Protocol` (the same rules as in
training; see :mod:`pennylane_qrnn.protocols`):

* ``"forced-steps"`` (default; the reference implementation's validation): the steps a task
  forces are postselected on their targets unless they are scored; scored steps are measured
  (sampled, and the state collapses on the sample), so that the sampled accuracy counts real
  samples. A task may mark a scored step as forced (Elman letters forces its unpredictable
  steps and scores every step); such a step is sampled, as the reference implementation's
  evaluation does.
* ``"measured"`` (hardware-honest): every step is measured; nothing is postselected on the i/o
  lanes, so the only postselection left is the neurons' own.
* ``"teacher-forced"``: every step postselected on its target, as in the paper's training. No
  outcome is sampled, so the sampled accuracy is NaN (not measured).

Every evaluation reports the log postselection success probability per sequence: in total, of
the i/o postselections alone (the figure the reference implementation tracks) and of the
neurons' repeat-until-success circuits alone.

Accuracies over scored steps: ``argmax`` (the most likely token is right) and ``sampled`` (the
fraction of sampled outcomes that are right), plus ``expected`` (the mean probability of the right
token, the sampled accuracy's expectation over the sampled histories: the two agree within
binomial noise).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from .protocols import PROTOCOLS as _PROTOCOLS
from .protocols import Protocol, get_protocol

if TYPE_CHECKING:
    from .nn.contract import SequenceModel

__all__ = ["Evaluation", "evaluate", "collapse_mask", "PROTOCOLS"]

#: the protocol names an evaluation takes (``"reference"`` is still accepted, deprecated)
PROTOCOLS = tuple(_PROTOCOLS)


@dataclass
class Evaluation:
    """Aggregated metrics of :func:`evaluate` (floats, JSON-friendly).

    Loss and accuracies are per scored step; the success figures are per sequence, as natural
    logarithms of the probability that a QPU run of the sequence keeps its shot.

    Attributes:
        protocol: the protocol's name
        sequences: the sequences evaluated
        loss: NLL of the targets per scored step
        accuracy_argmax: how often the most likely token is the target
        accuracy_sampled: how often the sampled outcome is the target (NaN under a protocol that
            samples no scored step)
        accuracy_expected: the mean probability of the target
        log_success_median: median over sequences of the log success probability
        log_success_min: its minimum
        log_io_success_median: median of its part from postselecting the i/o lanes
        log_io_success_min: that part's minimum
        log_neuron_success_median: median of its part from the neurons' postselections
        min_step_probability: the smallest success probability of one step

    **Example**

    >>> from pennylane_qrnn.evaluation import Evaluation
    >>> result = Evaluation("measured", 4, 0.5, 0.75, 0.5, 0.6, -3.0, -4.0, 0.0, 0.0, -3.0, 0.1)
    >>> result.as_dict()["accuracy_sampled"]
    0.5
    """

    protocol: str
    sequences: int
    loss: float
    accuracy_argmax: float
    accuracy_sampled: float
    accuracy_expected: float
    log_success_median: float
    log_success_min: float
    log_io_success_median: float
    log_io_success_min: float
    log_neuron_success_median: float
    min_step_probability: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collapse_mask(batch: Any, protocol: Protocol | str = "forced-steps") -> torch.Tensor:
    """The steps of ``batch`` that an evaluation under ``protocol`` postselects on their target
    (:meth:`Protocol.mask <pennylane_qrnn.protocols.Protocol.mask>`).

    Args:
        batch (Batch): a task batch (its ``forced`` and ``scored`` masks)
        protocol (Protocol or str): the evaluation protocol (:data:`PROTOCOLS`)

    Returns:
        torch.Tensor: ``(L, N)`` bool, on the device of ``batch.forced``

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.evaluation import collapse_mask
    >>> from pennylane_qrnn.tasks import ElmanXOR
    >>> batch = ElmanXOR(length=6).batch(1, torch.Generator().manual_seed(0))
    >>> batch.scored[:, 0].tolist()
    [False, True, False, False, True, False]
    >>> collapse_mask(batch)[:, 0].tolist()  # forced-steps: the unscored steps
    [True, False, True, True, False, True]
    >>> collapse_mask(batch, "measured")[:, 0].tolist()
    [False, False, False, False, False, False]
    """
    return get_protocol(protocol, "evaluation").mask(batch)


@torch.no_grad()
def evaluate(
    model: SequenceModel,
    batches: Iterable[Any],
    protocol: Protocol | str = "forced-steps",
    generator: torch.Generator | None = None,
) -> Evaluation:
    """Evaluate ``model`` (a :class:`~pennylane_qrnn.QRNN`) on an iterable of task batches.

    ``model`` is any sequence model whose forward returns a
    :class:`~pennylane_qrnn.results.SequenceOutput` (the QRNN, the classical baselines).
    Each batch runs once: the steps of :func:`collapse_mask` are postselected on their targets,
    every other step (every scored one included) is sampled from the model's distribution with
    ``generator`` and the state collapses on the sample. All accuracies and the loss are over
    the scored steps of that run.

    Args:
        model (torch.nn.Module): the sequence model
        batches (Iterable[Batch]): task batches, as
            :meth:`~pennylane_qrnn.tasks.SequenceTask.batch` draws them
        protocol (Protocol or str): the evaluation protocol (:data:`PROTOCOLS`)
        generator (torch.Generator or None): for the sampled outcomes

    Returns:
        Evaluation: the metrics over every batch

    Example::

        >>> import torch
        >>> from pennylane_qrnn import QRNN
        >>> from pennylane_qrnn.tasks import get_task
        >>> task = get_task("elman-xor")
        >>> batches = [task.batch(8, torch.Generator().manual_seed(0))]
        >>> result = evaluate(QRNN(2, 4), batches, generator=torch.Generator().manual_seed(1))
        >>> result.sequences
        8
        >>> 0 <= result.accuracy_sampled <= 1 and 0 <= result.accuracy_expected <= 1
        True
    """
    protocol = get_protocol(protocol, "evaluation")
    totals: dict[str, float] = {
        "loss": 0.0,
        "argmax": 0.0,
        "sampled": 0.0,
        "expected": 0.0,
        "scored": 0,
    }
    log_success: list[torch.Tensor] = []
    log_io: list[torch.Tensor] = []
    log_neuron: list[torch.Tensor] = []
    min_step: list[torch.Tensor] = []
    sequences = 0
    for batch in batches:
        device = model.device
        tokens, targets = batch.tokens.to(device), batch.targets.to(device)
        scored = batch.scored.to(device)
        masks = protocol.forward_masks(batch.forced.to(device), scored)
        output = model(tokens, targets, generator=generator, **masks)
        log_probs, outcomes = output.log_probs, output.outcomes
        # unscored steps may be unmeasured (NaN): select, never multiply by 0
        picked = log_probs.gather(2, targets.unsqueeze(2)).squeeze(2)
        picked = torch.where(scored, picked, torch.zeros_like(picked))
        weight = scored.to(log_probs.dtype)
        totals["loss"] += float(-(picked * weight).sum())
        totals["argmax"] += float(((log_probs.argmax(-1) == targets) & scored).sum())
        totals["sampled"] += float(((outcomes == targets) & scored).sum())
        totals["expected"] += float((picked.exp() * weight).sum())
        totals["scored"] += int(scored.sum())
        stats = output.postselection
        log_success.append(stats.log_total.float().cpu())
        log_io.append(stats.log_teacher_forcing.float().cpu())
        log_neuron.append(stats.log_neuron.float().cpu())
        min_step.append(stats.min_step.float().cpu())
        sequences += tokens.shape[1]
    count = max(totals["scored"], 1)
    sampled = totals["sampled"] / count
    if not protocol.samples_scored_steps:
        warnings.warn(
            f"protocol {protocol.name!r} postselects every step, so no outcome is sampled: the "
            "sampled accuracy is NaN (use 'forced-steps' or 'measured' to measure it)",
            UserWarning,
            stacklevel=2,
        )
        sampled = float("nan")
    all_success, all_io, all_neuron = (
        torch.cat(log_success),
        torch.cat(log_io),
        torch.cat(log_neuron),
    )
    return Evaluation(
        protocol=protocol.name,
        sequences=sequences,
        loss=totals["loss"] / count,
        accuracy_argmax=totals["argmax"] / count,
        accuracy_sampled=sampled,
        accuracy_expected=totals["expected"] / count,
        log_success_median=float(all_success.median()),
        log_success_min=float(all_success.min()),
        log_io_success_median=float(all_io.median()),
        log_io_success_min=float(all_io.min()),
        log_neuron_success_median=float(all_neuron.median()),
        min_step_probability=float(torch.cat(min_step).min()),
    )


def mean_and_error(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard error of a list of floats."""
    values = list(values)
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))
