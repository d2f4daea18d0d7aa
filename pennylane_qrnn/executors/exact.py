"""The exact executor: the transfer-matrix engine (:mod:`pennylane_qrnn.engine`)."""

from __future__ import annotations

from typing import Any, cast

import torch

from .. import engine
from ..results import PostselectionStats, SequenceOutput
from .base import Executor, RunnableModel, postselection_mask

__all__ = ["Exact"]


class Exact(Executor):
    """Runs sequences exactly on the torch engine: batched, differentiable (forward and
    backward), on CPU or CUDA tensors, with any protocol and an initial ``state``.

    Example::

        >>> import torch
        >>> from pennylane_qrnn import QRNN
        >>> model = QRNN(2, 3, executor=Exact())
        >>> tokens = torch.randint(0, 4, (5, 8))
        >>> log_probs, state = model(tokens[:-1], tokens[1:])
        >>> tuple(log_probs.shape), tuple(state.shape)
        ((4, 8, 4), (8, 8))
    """

    supports_state = True
    supports_mixed_protocols = True
    differentiable = True

    def run(
        self,
        model: RunnableModel,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        postselected: torch.Tensor | None,
        state: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> SequenceOutput:
        result = engine.run_sequence(
            model.operators(),
            tokens,
            targets,
            state=state,
            generator=generator,
            collapse=None if targets is None else postselected,
        )
        # run_sequence always fills both logs (their None default is for older constructors)
        stats = PostselectionStats.from_logs(
            cast(torch.Tensor, result.log_neuron_success),
            cast(torch.Tensor, result.log_outcome_probability),
            postselection_mask(tokens, targets, postselected),
        )
        return SequenceOutput(result.log_probs, result.state, result.outcomes, stats, None, "exact")

    def plan(self) -> dict[str, Any]:
        return {"backend": None, "path": "engine"}
