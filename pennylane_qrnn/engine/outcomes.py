"""What each step does with its i/o lanes, shared by both exact engines: the outcome it collapses
on (:func:`choose_outcome`), and steps whose output stage is skipped (:func:`check_skip_output`,
:func:`mark_skipped`).

A step may skip its output stage. The cell resets the i/o lanes after the input and work stages
(they were only controls there), so without the output stage they are back in ``|0>`` and there
is nothing to measure: the i/o register reads ``0`` with certainty and the next workspace state is
``W[x] psi`` renormalised (by the neurons' success alone; in amplified mode it has norm 1). Both
engines compute such a step as the branch ``u[0] = W[x] psi`` with every other branch 0 (the
output stage replaced by the identity), so that the readout, the collapse and the backward pass
are the ones of every other step; what they return for it is then overwritten by
:func:`mark_skipped`: no log-probabilities (NaN), the outcome :data:`NOT_MEASURED`, an outcome
probability of 1, and no random number drawn.
"""

from __future__ import annotations

import math

import torch

from ..errors import QRNNTypeError, QRNNValueError

#: the outcome recorded for a step whose output stage was skipped (nothing was measured)
NOT_MEASURED = -1


def check_skip_output(
    skip_output: torch.Tensor | None, tokens: torch.Tensor
) -> torch.Tensor | None:
    """Validate an ``(L, N)`` bool ``skip_output`` mask against ``tokens``; ``None`` where it skips
    nothing (so that a run without skipped steps is exactly the run without a mask)."""
    if skip_output is None:
        return None
    if not isinstance(skip_output, torch.Tensor) or skip_output.dtype != torch.bool:
        kind = (
            f"a {skip_output.dtype} tensor"
            if isinstance(skip_output, torch.Tensor)
            else type(skip_output).__name__
        )
        raise QRNNTypeError(f"skip_output must be a bool tensor or None; got {kind}")
    if skip_output.shape != tokens.shape:
        raise QRNNValueError(
            f"skip_output must have the tokens' shape {tuple(tokens.shape)}; got "
            f"{tuple(skip_output.shape)}"
        )
    skip_output = skip_output.to(tokens.device)
    return skip_output if bool(skip_output.any()) else None


class SkipPlan:
    """Per step, the items whose output stage is skipped: ``rows(step)`` is ``None`` (none), or an
    ``(N,)`` bool mask; ``every(step)`` whether it is every item (decided once, without a device
    synchronisation per step)."""

    def __init__(self, skip_output: torch.Tensor | None) -> None:
        self.mask = skip_output
        if skip_output is None:
            self._any: list[bool] = []
            self._all: list[bool] = []
        else:
            self._any = skip_output.any(dim=1).tolist()
            self._all = skip_output.all(dim=1).tolist()

    def rows(self, step: int) -> torch.Tensor | None:
        if self.mask is None or not self._any[step]:
            return None
        return self.mask[step]

    def every(self, step: int) -> bool:
        return self.mask is not None and self._all[step]


def choose_outcome(
    step: int,
    probs: torch.Tensor | None,
    targets: torch.Tensor | None,
    collapse: torch.Tensor | None,
    skipped: torch.Tensor | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The outcome each item of ``step`` collapses on: its target where postselected (``targets``
    given, and ``collapse`` absent or ``True``), else a sample from ``probs`` ``(N, n_y)``; 0 (the
    i/o lanes' untouched ``|0>``) where the output stage is ``skipped`` (``(N,)`` bool or
    ``None``). Without skipped items, one ``torch.multinomial`` call over the whole batch (the
    same generator use as ever); with some, one over the measured items only, and none at all
    when every item is skipped. ``probs`` may be ``None`` where nothing is drawn (``targets``
    given without ``collapse``)."""
    if skipped is None:
        if targets is not None and collapse is None:
            return targets[step]
        sampled = torch.multinomial(_given(probs), 1, generator=generator).squeeze(1)
        if targets is None or collapse is None:
            return sampled
        return torch.where(collapse[step], targets[step], sampled)
    measured = ~skipped
    outcome = torch.zeros(skipped.shape[0], dtype=torch.long, device=skipped.device)
    if targets is not None and collapse is None:
        return torch.where(measured, targets[step], outcome)
    rows = torch.nonzero(measured).squeeze(1)
    if rows.numel() == 0:
        return outcome
    sampled = torch.multinomial(_given(probs)[rows], 1, generator=generator).squeeze(1)
    if targets is not None and collapse is not None:
        sampled = torch.where(collapse[step][rows], targets[step][rows], sampled)
    outcome[rows] = sampled
    return outcome


def _given(probs: torch.Tensor | None) -> torch.Tensor:
    if probs is None:
        raise RuntimeError("choose_outcome: probs are needed to sample an outcome; got None")
    return probs


def mark_skipped(
    skip_output: torch.Tensor | None,
    log_probs: torch.Tensor,
    outcomes: torch.Tensor,
    log_chosen: torch.Tensor,
) -> torch.Tensor:
    """At skipped steps: ``log_probs`` NaN and ``log_chosen`` 0 (in place), and the outcomes
    returned with :data:`NOT_MEASURED` (a new tensor: the engines keep the branch index 0)."""
    if skip_output is None:
        return outcomes
    log_probs.masked_fill_(skip_output.unsqueeze(2), math.nan)
    log_chosen.masked_fill_(skip_output, 0.0)
    return outcomes.masked_fill(skip_output, NOT_MEASURED)
