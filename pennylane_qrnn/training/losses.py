"""The training losses a run can use, by name (:data:`LOSSES`).

* ``"nll"``: the negative log-likelihood of the targets per scored step (the model's own
  :meth:`~pennylane_qrnn.QRNN.loss`).
* ``"rvqe"``: the reference implementation's (RVQE's) loss, :func:`rvqe_loss`. Its former name
  ``"reference"`` is still accepted, with a :class:`FutureWarning`.
"""

from __future__ import annotations

import math
import warnings

import torch

from ..validation import check_choice

__all__ = ["LOSSES", "rvqe_loss", "reference_loss", "canonical_loss", "training_loss"]

#: the training losses by name
LOSSES = ("nll", "rvqe")
#: the losses' former names, and the name each stands for now
DEPRECATED_LOSSES = {"reference": "rvqe"}


def rvqe_loss(log_probs, targets, mask):
    """The reference implementation's (RVQE's) training loss: cross entropy with the step
    *probabilities* used as logits, minus its minimum ``log(V - 1 + e) - 1``, averaged over scored
    steps. Bounded gradients, unlike the NLL; kept to reproduce its training (its reported numbers
    are NLL-free accuracies).

    Args:
        log_probs (torch.Tensor): ``(L, N, V)`` per-step log-probabilities
        targets (torch.Tensor): ``(L, N)`` integer targets
        mask (torch.Tensor): ``(L, N)`` bool, the scored steps

    Returns:
        torch.Tensor: the scalar loss, 0 for perfect predictions

    Example::

        >>> import torch
        >>> perfect = torch.log(torch.tensor([[[1.0, 1e-30, 1e-30, 1e-30]]]))
        >>> loss = rvqe_loss(perfect, torch.tensor([[0]]), torch.tensor([[True]]))
        >>> abs(loss.item()) < 1e-6  # a perfect prediction scores 0
        True
    """
    probs = log_probs.exp()
    vocabulary = probs.shape[-1]
    ce = torch.logsumexp(probs, dim=-1) - probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    ce = ce - (math.log(vocabulary - 1 + math.e) - 1)
    weight = mask.to(ce.dtype)
    # where, not a product: an unscored step may be unmeasured (NaN), and NaN * 0 is NaN
    ce = torch.where(weight != 0, ce * weight, torch.zeros_like(ce))
    return ce.sum() / weight.sum().clamp_min(1)


#: the former name of :func:`rvqe_loss`
reference_loss = rvqe_loss


def canonical_loss(name, warn: bool = True) -> str:
    """``name`` checked against :data:`LOSSES`; the former ``"reference"`` becomes ``"rvqe"``
    (with a :class:`FutureWarning` unless ``warn`` is false).

    Args:
        name (str): a loss name
        warn (bool): whether the former name warns

    Returns:
        str: the current name

    Raises:
        QRNNValueError: a name not in :data:`LOSSES`

    **Example**

    >>> from pennylane_qrnn.training import canonical_loss
    >>> canonical_loss("nll"), canonical_loss("reference", warn=False)
    ('nll', 'rvqe')
    """
    if isinstance(name, str) and name in DEPRECATED_LOSSES:
        new = DEPRECATED_LOSSES[name]
        if warn:
            warnings.warn(
                f"loss={name!r} is deprecated: it names the reference implementation's (RVQE's) "
                f"loss, now {new!r}: pass that name",
                FutureWarning,
                stacklevel=3,
            )
        name = new
    return check_choice("loss", name, LOSSES)


def training_loss(name: str, model, log_probs, targets, scored):
    """The loss ``name`` (:data:`LOSSES`) of ``log_probs`` against ``targets`` over ``scored``
    steps; ``"nll"`` is the model's own :meth:`loss`.

    Args:
        name (str): ``"nll"`` or ``"rvqe"``
        model (torch.nn.Module): the model that made ``log_probs`` (its ``loss`` method)
        log_probs (torch.Tensor): ``(L, N, V)`` per-step log-probabilities
        targets (torch.Tensor): ``(L, N)`` integer targets
        scored (torch.Tensor): ``(L, N)`` bool, the scored steps

    Returns:
        torch.Tensor: the scalar loss

    **Example**

    >>> import torch
    >>> from pennylane_qrnn import QRNN
    >>> from pennylane_qrnn.training import training_loss
    >>> log_probs = torch.tensor([[[0.5, 0.5]], [[0.25, 0.75]]]).log()
    >>> targets, scored = torch.tensor([[0], [1]]), torch.tensor([[True], [True]])
    >>> model = QRNN(io_bits=1, workspace=2)
    >>> round(float(training_loss("nll", model, log_probs, targets, scored)), 4)
    0.4904
    >>> round(float(training_loss("rvqe", model, log_probs, targets, scored)), 4)
    0.2704
    """
    if name == "rvqe":
        return rvqe_loss(log_probs, targets, scored)
    return model.loss(log_probs, targets, scored)
