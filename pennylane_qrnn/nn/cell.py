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

    Inputs: ``token, target=None, state=None, generator=None``
        * **token**: ``(N,)`` or scalar, the input token
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
    """

    def forward(
        self,
        token: Any,
        target: Any = None,
        state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> SequenceOutput:
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
        state = self._check_state(state, tokens.shape[1])
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
