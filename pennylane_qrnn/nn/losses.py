"""The sequence loss: negative log-likelihood of the targets over the scored steps."""

from __future__ import annotations

import torch

from ..errors import QRNNValueError

__all__ = ["sequence_nll"]


def sequence_nll(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood of ``targets`` under per-step ``log_probs``, over scored steps.

    Args:
        log_probs (torch.Tensor): ``(L, N, V)`` (or ``(N, L, V)`` together with ``(N, L)``
            targets: only the last axis matters, the others must agree)
        targets (torch.Tensor): integer tensor of ``log_probs.shape[:-1]``
        mask (torch.Tensor or None): bool or float tensor of the same shape, 1 where a step is
            scored; ``None`` scores every step
        reduction (str): ``"mean"`` (per scored step), ``"sum"`` or ``"none"`` (per step, masked)

    Returns:
        torch.Tensor: the loss, a scalar (``"mean"``, ``"sum"``) or shaped like ``targets``

    Raises:
        QRNNValueError: ``targets`` or ``mask`` of the wrong shape, or an unknown ``reduction``

    **Example**

    Two steps of one sequence; only the second is scored:

    >>> import torch
    >>> from pennylane_qrnn import sequence_nll
    >>> log_probs = torch.tensor([[[0.5, 0.5]], [[0.25, 0.75]]]).log()  # (L, N, V) = (2, 1, 2)
    >>> targets = torch.tensor([[0], [1]])
    >>> round(float(sequence_nll(log_probs, targets)), 4)  # (log 2 + log 4/3) / 2
    0.4904
    >>> mask = torch.tensor([[False], [True]])
    >>> round(float(sequence_nll(log_probs, targets, mask)), 4)  # -log 0.75
    0.2877
    """
    if targets.shape != log_probs.shape[:-1]:
        raise QRNNValueError(
            f"targets must have shape {tuple(log_probs.shape[:-1])} to match log_probs; "
            f"got {tuple(targets.shape)}"
        )
    picked = -log_probs.gather(-1, targets.unsqueeze(-1).long()).squeeze(-1)
    if mask is not None:
        if mask.shape != targets.shape:
            raise QRNNValueError(
                f"mask must have shape {tuple(targets.shape)}; got {tuple(mask.shape)}"
            )
        mask = mask.to(picked.dtype)
        # where, not a product: an unscored step may be unmeasured (NaN), and NaN * 0 is NaN
        picked = torch.where(mask != 0, picked * mask, torch.zeros_like(picked))
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    if reduction == "mean":
        count = mask.sum() if mask is not None else picked.new_tensor(picked.numel())
        return picked.sum() / count.clamp_min(1)
    raise QRNNValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")
