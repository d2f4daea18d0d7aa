"""What a run of a sequence model returns: outputs, outcomes and the postselection it cost.

Every executor (:mod:`pennylane_qrnn.executors`) and every sequence model (the QRNN and the
classical baselines) returns a :class:`SequenceOutput`. It unpacks as ``log_probs, state`` like
the pair ``torch.nn.RNN`` returns, and carries with it the token each step collapsed on
(:attr:`SequenceOutput.outcomes`) and the :class:`PostselectionStats` of that run: nothing is left
behind on the module to be read later.

The success probability of a sequence on a QPU is computed here and nowhere else
(:meth:`PostselectionStats.from_logs`): per step, the neurons' repeat-until-success
postselections and, where the protocol postselects the step (:mod:`pennylane_qrnn.protocols`),
the probability of its target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = ["PostselectionStats", "SequenceOutput"]


@dataclass
class PostselectionStats:
    """Postselection bookkeeping of one run (all tensors detached, time-major).

    Attributes:
        neuron: ``(L, N)`` probability that all neuron postselections of a step succeed (NaN
            where the path does not know it, e.g. a QNode that postselects inside the simulator)
        teacher_forcing: ``(L, N)`` probability of the target a step was postselected on (1 for
            steps that were measured instead)
        step: ``(L, N)`` their product, the success probability of one step on a QPU
        min_step: ``(N,)`` the smallest ``step`` over each sequence
        log_total: ``(N,)`` log of the whole sequence's success probability
        log_neuron: ``(N,)`` its part from the neurons' postselections
        log_teacher_forcing: ``(N,)`` its part from postselecting the i/o lanes on targets (the
            figure the reference implementation tracks)
        amplification_rounds: ``(N,)`` ``sum_t 1/sqrt(step_t)``, the rounds amplitude
            amplification would need (repeat-until-success needs ``sum_t 1/step_t`` tries)
        reach: ``(L, N)`` the fraction of shots that reach step ``t``'s readout: every
            postselection of the steps before, and the neurons' (and unwrite's) of step ``t``
        unwrite: ``(L, N)`` for real-valued inputs (:mod:`pennylane_qrnn.encoding`), the
            probability that a step's unwrite leaves the i/o lanes in ``|0...0>`` (part of
            ``step`` and ``reach``); ``None`` for tokens (always 1)

    **Example**

    Executors build it with :meth:`from_logs` or :meth:`from_probabilities`. Two steps of one
    sequence, the first postselected on a target of probability 0.5, the second measured:

    >>> import torch
    >>> from pennylane_qrnn.results import PostselectionStats
    >>> stats = PostselectionStats.from_probabilities(
    ...     neuron=torch.tensor([[0.9], [0.8]]),
    ...     outcome_probability=torch.tensor([[0.5], [0.25]]),
    ...     postselected=torch.tensor([[True], [False]]),
    ... )
    >>> [round(p, 4) for p in stats.step[:, 0].tolist()]  # 0.9 * 0.5, then 0.8 (any outcome)
    [0.45, 0.8]
    >>> round(float(stats.log_total.exp()), 4), round(float(stats.min_step), 4)
    (0.36, 0.45)
    """

    neuron: torch.Tensor
    teacher_forcing: torch.Tensor
    step: torch.Tensor
    min_step: torch.Tensor
    log_total: torch.Tensor
    log_neuron: torch.Tensor
    log_teacher_forcing: torch.Tensor
    amplification_rounds: torch.Tensor
    reach: torch.Tensor | None = None
    unwrite: torch.Tensor | None = None

    @classmethod
    def from_logs(
        cls,
        log_neuron: torch.Tensor,
        log_outcome: torch.Tensor,
        postselected: torch.Tensor,
        log_unwrite: torch.Tensor | None = None,
    ) -> PostselectionStats:
        """From per-step logs ``(L, N)`` of the neurons' success and of the outcome's
        probability; only ``postselected`` steps pay for their outcome, measured ones accept any.
        ``log_unwrite``: the log success of real-valued inputs' unwrite, paid at every step.

        Sums are taken over logs, so that nothing underflows where the probabilities do (a
        float32 step of 1e-50 is 0, its log is not)."""
        log_neuron = log_neuron.detach()
        postselected = postselected.to(log_neuron.device).bool()
        log_forced = torch.where(postselected, log_outcome.detach(), torch.zeros_like(log_neuron))
        # the unwrite of real-valued inputs comes before the readout, like the neurons'
        log_read = log_neuron if log_unwrite is None else log_neuron + log_unwrite.detach()
        log_step = log_read + log_forced
        neuron, teacher_forcing, step = log_neuron.exp(), log_forced.exp(), log_step.exp()
        # every postselection of earlier steps (an exclusive sum: -inf - -inf would be NaN)
        before = torch.cat([torch.zeros_like(log_step[:1]), torch.cumsum(log_step, 0)[:-1]])
        return cls(
            neuron=neuron,
            teacher_forcing=teacher_forcing,
            step=step,
            min_step=step.min(dim=0).values,
            log_total=log_step.sum(0),
            log_neuron=log_neuron.sum(0),
            log_teacher_forcing=log_forced.sum(0),
            amplification_rounds=torch.exp(-0.5 * log_step).sum(0),
            reach=(before + log_read).exp(),
            unwrite=None if log_unwrite is None else log_unwrite.detach().exp(),
        )

    @classmethod
    def from_probabilities(
        cls,
        neuron: torch.Tensor,
        outcome_probability: torch.Tensor,
        postselected: torch.Tensor,
    ) -> PostselectionStats:
        """:meth:`from_logs` from probabilities (NaN stays NaN; 0 gives ``-inf`` logs)."""
        neuron, outcome_probability = neuron.detach(), outcome_probability.detach()
        with torch.no_grad():
            return cls.from_logs(neuron.log(), outcome_probability.log(), postselected)

    @classmethod
    def certain(
        cls, postselected: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> PostselectionStats:
        """The stats of a model that postselects nothing it could fail: every probability 1
        (a classical model reads its outputs without discarding anything)."""
        zeros = torch.zeros(postselected.shape, dtype=dtype, device=postselected.device)
        return cls.from_logs(zeros, zeros, postselected)


@dataclass
class SequenceOutput:
    """The result of running a batch of sequences.

    Unpacks as ``log_probs, state`` (``log_probs, state = model(tokens, targets)``), like the
    pair a ``torch.nn`` recurrent layer returns; the rest is read by attribute.

    Attributes:
        log_probs: ``(L, N, V)`` each step's log-probabilities of the next token (``(N, L, V)``
            for a ``batch_first`` model; NaN for a step that was not measured)
        state: the final recurrent state (the workspace's amplitudes ``(N, 2**H)`` on the exact
            engine), or ``None`` where the executor has none to give (circuits, shots)
        outcomes: the token each step collapsed on, shaped like the tokens: the target where
            the step was postselected, else the sampled outcome
        postselection: the :class:`PostselectionStats` of this run (time-major ``(L, N)``)
        shot_estimates: on the shot path, one
            :class:`~pennylane_qrnn.devices.execution.ShotEstimate` per sequence (the counts
            each estimate rests on); ``None`` elsewhere
        executor: a short description of what ran it (e.g. ``"exact"``, ``"circuits:
            lightning.qubit"``)

    **Example**

    >>> import torch
    >>> from pennylane_qrnn import QRNN
    >>> model = QRNN(io_bits=1, workspace=2)
    >>> tokens = torch.tensor([[0], [1], [1]])  # (L, N) = (3, 1)
    >>> output = model(tokens, targets=torch.tensor([[1], [1], [0]]))
    >>> log_probs, state = output
    >>> tuple(log_probs.shape), tuple(state.shape)
    ((3, 1, 2), (1, 4))
    >>> output.outcomes[:, 0].tolist(), output.executor  # postselected: the targets
    ([1, 1, 0], 'exact')
    >>> tuple(output.postselection.step.shape)
    (3, 1)
    """

    log_probs: torch.Tensor
    state: torch.Tensor | None
    outcomes: torch.Tensor
    postselection: PostselectionStats
    shot_estimates: list | None = None
    executor: str = ""

    def __iter__(self) -> Iterator[torch.Tensor | None]:
        return iter((self.log_probs, self.state))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor | None:
        return (self.log_probs, self.state)[index]
