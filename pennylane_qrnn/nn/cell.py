r"""One QRNN step as a ``torch.nn`` module (the counterpart of ``nn.RNNCell``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..errors import QRNNValueError
from ..results import SequenceOutput
from .base import QRNNBase

__all__ = ["QRNNCell"]


class QRNNCell(QRNNBase):
    r"""One QRNN step as a ``torch.nn`` module (the counterpart of ``nn.RNNCell``).

    Same arguments as :class:`~pennylane_qrnn.QRNN` (without ``batch_first``).

    Args:
        io_bits (int): ``I``, bits per token; the vocabulary has ``2**I`` tokens
        workspace (int): ``H``, workspace qubits (the hidden state)
        stages (int): work stages per cell
        degree (int): the neurons' degree
        order (int): the neurons' order
        mode (str): ``"postselect"`` or ``"amplified"`` (see :class:`~pennylane_qrnn.QuantumNeuron`)
        backend (Any): shorthand for an executor: ``None`` for
            :class:`~pennylane_qrnn.executors.Exact`, or a PennyLane device or device name
            (see :func:`~pennylane_qrnn.executors.executor_for`)
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
        executor (Executor or None): where and how the cell runs; excludes ``backend`` and the
            options above. Default: :class:`~pennylane_qrnn.executors.Exact`

    Inputs: ``token, target=None, state=None, generator=None``
        * **token**: ``(N,)`` or scalar, the input token; or real-valued inputs: a floating
          ``(N, I)`` tensor of one angle per i/o lane (always batched; see
          :class:`~pennylane_qrnn.QRNN` and :mod:`pennylane_qrnn.encoding`)
        * **target**: like ``token``: postselect the i/o lanes on it; ``None`` samples
        * **state**: ``(N, 2**H)`` (``(2**H,)`` for a scalar token), default ``|0...0>``

    Returns:
        a :class:`~pennylane_qrnn.results.SequenceOutput` that unpacks as ``log_probs, state``:
        ``(N, 2**I)`` and the next workspace state ``(N, 2**H)`` (``None`` on circuits and
        shots); its ``outcomes`` are ``(N,)`` and its ``postselection`` is ``(1, N)``.

    Example::

        >>> import torch
        >>> cell = QRNNCell(2, 3)
        >>> log_probs, state = cell(torch.tensor([1, 2]), torch.tensor([3, 0]))
        >>> tuple(log_probs.shape), tuple(state.shape)
        ((2, 4), (2, 8))
        >>> log_probs, state = cell(torch.tensor([3, 0]), state=state)  # sampled
        >>> log_probs, state = cell(torch.rand(2, 2), torch.tensor([1, 0]))  # angles (N, I)
        >>> tuple(log_probs.shape)
        (2, 4)
    """

    def forward(
        self,
        token: Any,
        target: Any = None,
        state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> SequenceOutput:
        if not isinstance(token, torch.Tensor):
            token = torch.as_tensor(token)
        if self._is_angles("token", token, 2):
            token = self._check_angles("token", token)
            scalar, tokens = False, token.unsqueeze(0)
            token = token[:, 0]  # its shape is the batch's
        else:
            token = self._check_tokens("token", token)
            scalar = token.dim() == 0
            if token.dim() > 1:
                raise QRNNValueError(f"token must have shape (N,) or (); got {tuple(token.shape)}")
            tokens = token.reshape(1, -1)
        if target is not None:
            target = self._check_tokens("target", target)
            if target.shape != token.shape:
                raise QRNNValueError(
                    f"target must have the shape of token {tuple(token.shape)}; "
                    f"got {tuple(target.shape)}"
                )
            target = target.reshape(1, -1)
        if state is not None and scalar:
            state = state.unsqueeze(0)
        state = self._check_state(state, tokens.shape[1])  # (1, N) or angles (1, N, I)
        output = self._run(tokens, target, state, generator)
        final = output.state
        if scalar:
            output = dataclasses.replace(
                output,
                log_probs=output.log_probs[0, 0],
                state=None if final is None else final[0],
                outcomes=output.outcomes[0, 0],
            )
        else:
            output = dataclasses.replace(
                output, log_probs=output.log_probs[0], outcomes=output.outcomes[0]
            )
        return self._remember(output)
