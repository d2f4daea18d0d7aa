r"""The QRNN as a ``torch.nn`` module over whole sequences.

The maths lives in :mod:`pennylane_qrnn.neuron` and :mod:`pennylane_qrnn.engine`, where and how a
model runs in its executor (:mod:`pennylane_qrnn.executors`); this module owns the parameters
(:class:`~pennylane_qrnn.nn.base.QRNNBase`), the shapes of the inputs and the recurrence
contract.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch

from ..errors import QRNNTypeError, QRNNValueError
from ..results import PostselectionStats, SequenceOutput
from ..validation import check_int
from .base import QRNNBase
from .cell import QRNNCell
from .losses import sequence_nll

if TYPE_CHECKING:
    from ..executors import Executor

__all__ = ["QRNN", "QRNNCell", "PostselectionStats", "SequenceOutput", "sequence_nll"]


class QRNN(QRNNBase):
    r"""A recurrent quantum neural network over token sequences (Bausch, NeurIPS 2020).

    The workspace's quantum state is carried from step to step. Step ``t`` writes token
    ``tokens[t]`` onto the i/o lanes, applies a :class:`~pennylane_qrnn.QRNNCell` and reads the
    i/o lanes as the distribution of the next token. With ``targets`` (training, the paper's
    teacher forcing) the i/o lanes are then postselected on ``targets[t]``; without, an outcome is
    sampled and the state collapses on it, as a run on a QPU would. The i/o lanes are reset either
    way.

    Args:
        io_bits (int): ``I``, bits per token; the vocabulary has ``2**I`` tokens
        workspace (int): ``H``, workspace qubits (the hidden state)
        stages (int): work stages per cell
        degree (int): the neurons' degree
        order (int): the neurons' order
        mode (str): ``"postselect"`` or ``"amplified"`` (see :class:`~pennylane_qrnn.QuantumNeuron`)
        backend: shorthand for an executor: ``None`` for :class:`~pennylane_qrnn.executors.Exact`,
            or a PennyLane device or device name: :class:`~pennylane_qrnn.executors.Circuits` on
            a device that postselects, :class:`~pennylane_qrnn.executors.Shots` on one that
            cannot (``qiskit.*``, ``braket.*``) or when ``execution`` is given
        batch_first (bool): inputs are ``(N, L)`` instead of ``(L, N)``
        device (torch.device, str or None): torch factory argument: where the parameters live
        dtype (torch.dtype or None): torch factory argument: the parameters' floating dtype
        diff_method (str or None): with ``backend=`` a device: the gradient method of
            :class:`~pennylane_qrnn.executors.Circuits`; ``None`` picks one that is right
        backend_options (dict or None): keyword arguments for ``qml.device`` when ``backend`` is
            a device name
        shots (int or None): :class:`~pennylane_qrnn.executors.Shots`: shots per sequence
        execution (str or None): :class:`~pennylane_qrnn.executors.Shots`' ``method``: how
            mid-circuit measurements are realised (``"native"``, ``"dynamic"``, ``"deferred"``)
        seed (int or None): :class:`~pennylane_qrnn.executors.Shots`: the simulator's seed
        budget (float or None): :class:`~pennylane_qrnn.executors.Shots`: a spending limit in USD
        price_table (dict or None): :class:`~pennylane_qrnn.executors.Shots`: prices replacing the
            default table for the budget check
        min_survivors (int): :class:`~pennylane_qrnn.executors.Shots`: the surviving shots a step
            needs to be estimated
        on_insufficient_shots (str): :class:`~pennylane_qrnn.executors.Shots`: ``"warn"`` or
            ``"raise"`` when a step has too few survivors
        executor (Executor or None): where and how the model runs; excludes ``backend`` and the
            options above. Default: :class:`~pennylane_qrnn.executors.Exact`

    Inputs: ``tokens, targets=None, state=None, generator=None, postselected=None``
        * **tokens**: ``(L, N)``, ``(N, L)`` with ``batch_first``, or ``(L,)`` unbatched; integers
          in ``[0, 2**I)``. Or **real-valued inputs**: a floating ``(L, N, I)`` tensor (``(N, L,
          I)`` with ``batch_first``; always batched) of one angle per i/o lane and step, written
          by ``RY(2 angle)`` and unwritten by ``RY(-2 angle)`` with the i/o lanes postselected on
          ``|0...0>`` (:mod:`pennylane_qrnn.encoding`); differentiable with respect to the angles
          (e.g. from a classical layer: :class:`~pennylane_qrnn.nn.AngleEncoder`). Angles 0 and
          ``pi/2`` write the bits 0 and 1 exactly. On :class:`~pennylane_qrnn.executors.Exact`
          (transfer-matrix engine) and :class:`~pennylane_qrnn.executors.Circuits`
        * **targets**: same shape as ``tokens``; ``targets[t]`` is what step ``t`` is postselected
          on (usually ``tokens[t + 1]``)
        * **state**: ``(N, 2**H)`` initial workspace amplitudes (``(2**H,)`` unbatched), default
          ``|0...0>``; exact engine only
        * **generator**: ``torch.Generator`` for the sampled outcomes
        * **postselected**: bool, shaped like ``tokens``: the steps postselected on their target;
          the others are sampled (a :class:`~pennylane_qrnn.protocols.Protocol`'s mask). Default:
          every step when ``targets`` is given. (``collapse=`` is its former name.)
        * **skip_output**: bool, shaped like ``tokens``: the steps that skip their output stage
          (nothing is read there: log-probabilities NaN, outcome -1, the state stays pure), as the
          ``qpu`` protocol asks (:meth:`Protocol.skips_output
          <pennylane_qrnn.protocols.Protocol.skips_output>`); exact and shot executors
        * **mixed**: bool (default ``False``): keep every measured step (neither postselected nor
          skipped) as the mixture over its outcomes instead of collapsing on a sampled one, so that
          each step's ``log_probs`` are its exact marginal, differentiable without a sampling
          estimator (:mod:`pennylane_qrnn.engine.mixed`; the :class:`~pennylane_qrnn.Exact`
          executor only, cost ``~ 8**H`` per step). ``state`` is then the final
          ``(N, 2**H, 2**H)`` density matrix and each measured step's outcome a draw from its
          marginal

    Returns:
        :class:`~pennylane_qrnn.results.SequenceOutput`, which unpacks as ``log_probs, state``:

        * **log_probs**: ``(L, N, 2**I)`` (``(N, L, 2**I)`` with ``batch_first``, ``(L, 2**I)``
          unbatched), each step's log-probabilities of the next token
        * **state**: ``(N, 2**H)`` final workspace state (real amplitudes), or ``None`` on
          circuits and shots

        and carries ``outcomes`` (the token each step collapsed on, shaped like ``tokens``),
        ``postselection`` (:class:`~pennylane_qrnn.results.PostselectionStats`, time-major) and,
        on shots, ``shot_estimates``.

    Example::

        >>> import torch
        >>> model = QRNN(io_bits=2, workspace=4, stages=1, degree=2)
        >>> tokens = torch.randint(0, 4, (10, 8))                # (L, N)
        >>> log_probs, state = model(tokens[:-1], tokens[1:])
        >>> loss = model.loss(log_probs, tokens[1:])
        >>> output = model(tokens[:-1], tokens[1:])
        >>> tuple(output.postselection.log_total.shape)          # one per sequence
        (8,)
        >>> angles = torch.rand(9, 8, 2, requires_grad=True)     # real-valued inputs (L, N, I)
        >>> log_probs, state = model(angles, tokens[1:])
        >>> model.loss(log_probs, tokens[1:]).backward()
        >>> tuple(angles.grad.shape)
        (9, 8, 2)
    """

    def __init__(
        self,
        io_bits: int,
        workspace: int,
        stages: int = 1,
        degree: int = 2,
        order: int = 2,
        mode: str = "postselect",
        backend: Any = None,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        diff_method: str | None = None,
        backend_options: dict | None = None,
        shots: int | None = None,
        execution: str | None = None,
        seed: int | None = None,
        budget: float | None = None,
        price_table: dict | None = None,
        min_survivors: int = 1,
        on_insufficient_shots: str = "warn",
        executor: Executor | None = None,
    ) -> None:
        self.batch_first = bool(batch_first)
        super().__init__(
            io_bits,
            workspace,
            stages,
            degree,
            order,
            mode,
            backend=backend,
            device=device,
            dtype=dtype,
            diff_method=diff_method,
            backend_options=backend_options,
            shots=shots,
            execution=execution,
            seed=seed,
            budget=budget,
            price_table=price_table,
            min_survivors=min_survivors,
            on_insufficient_shots=on_insufficient_shots,
            executor=executor,
        )

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (", batch_first=True" if self.batch_first else "")

    def forward(
        self,
        tokens: Any,
        targets: Any = None,
        state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        collapse: Any = None,
        *,
        postselected: Any = None,
        skip_output: Any = None,
        mixed: bool = False,
    ) -> SequenceOutput:
        if not isinstance(mixed, bool):
            raise QRNNTypeError(f"mixed must be a bool; got {type(mixed).__name__}")
        tokens, targets, postselected, unbatched = self._sequence_inputs(
            tokens, targets, collapse, postselected
        )
        skip_output = self._step_mask("skip_output", skip_output, self._steps(tokens), unbatched)
        if state is not None and unbatched:
            state = state.unsqueeze(0)
        state = self._check_state(state, tokens.shape[1])
        output = self._run(tokens, targets, state, generator, postselected, skip_output, mixed)
        if unbatched:
            output = dataclasses.replace(
                output,
                log_probs=output.log_probs.squeeze(1),
                state=None if output.state is None else output.state.squeeze(0),
                outcomes=output.outcomes.squeeze(1),
            )
        elif self.batch_first:
            output = dataclasses.replace(
                output, log_probs=output.log_probs.transpose(0, 1), outcomes=output.outcomes.t()
            )
        return self._remember(output)

    def loss(
        self, log_probs: torch.Tensor, targets: Any, mask: Any = None, reduction: str = "mean"
    ) -> torch.Tensor:
        """NLL of ``targets`` over the scored steps (``mask``); see :func:`sequence_nll`."""
        targets = torch.as_tensor(targets, device=log_probs.device)
        if mask is not None:
            mask = torch.as_tensor(mask, device=log_probs.device)
        return sequence_nll(log_probs, targets, mask, reduction)

    @torch.no_grad()
    def sample(
        self, prefix: Any, steps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Generate ``steps`` tokens after ``prefix``.

        The prefix is fed with teacher forcing (each prefix token's successor postselected),
        then every sampled token is fed back as the next input.

        Args:
            prefix: ``(P, N)`` (``(N, P)`` with ``batch_first``) or ``(P,)``, ``P >= 1``
            steps (int): tokens to generate
            generator: ``torch.Generator``

        Returns:
            the prefix followed by the generated tokens, shaped like ``prefix`` with
            ``P + steps`` steps
        """
        check_int("steps", steps, 0)
        tokens, unbatched = self._to_time_major("prefix", prefix)
        if tokens.shape[0] == 0:
            raise QRNNValueError("prefix must hold at least one token; got length 0")
        if not self.executor.supports_state:
            raise QRNNValueError(
                "sample needs an executor that carries the state from call to call (the exact "
                f"engine, backend=None); got {self.executor!r}"
            )
        executor = self.executor.bind(self)  # the weights stay as they are meanwhile
        state = None
        if tokens.shape[0] > 1:
            state = executor.run(self, tokens[:-1], tokens[1:], None, None, None).state
        current = tokens[-1]
        generated = [tokens]
        for _ in range(steps):
            result = executor.run(self, current.unsqueeze(0), None, None, state, generator)
            state, current = result.state, result.outcomes[0]
            generated.append(current.unsqueeze(0))
        out = torch.cat(generated)
        if unbatched:
            return out.squeeze(1)
        return out.t() if self.batch_first else out
