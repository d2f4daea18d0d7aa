"""How the engine reports numbers out of range: :class:`NumericalRangeWarning` for probabilities
below the dtype's smallest number, :func:`check_finite` for NaN or infinite inputs."""

from __future__ import annotations

import math
import warnings

import torch

from ..errors import NonFiniteError


class NumericalRangeWarning(RuntimeWarning):
    """A probability fell below the smallest number of the dtype; the affected values are NaN."""


def warn_out_of_range(floored: int, log_chosen: torch.Tensor, dtype: torch.dtype) -> None:
    """The warnings both engines give after a run: ``floored`` outcomes collapsed on below the
    smallest number of ``dtype`` (their log-probabilities are bounds), and sequences whose every
    branch underflowed at some step (``log_chosen`` NaN from there on)."""
    if floored:
        warnings.warn(
            f"{floored} outcome(s) collapsed on had an amplitude below the smallest "
            f"{dtype} number; their log-probabilities are bounds (at most log(tiny**2) = "
            f"{2 * math.log(torch.finfo(dtype).tiny):.1f} below the step's largest). Use "
            "dtype=torch.float64, or a lower order",
            NumericalRangeWarning,
            stacklevel=3,
        )
    dead = torch.isnan(log_chosen)
    if bool(dead.any()):
        first = dead.float().argmax(dim=0)[dead.any(dim=0)]
        warnings.warn(
            f"{int(dead.any(dim=0).sum())} of {log_chosen.shape[1]} sequence(s) reached a step "
            f"(first at step {int(first.min())}) where every branch is below the smallest "
            f"{dtype} number; their log-probabilities from there on are NaN. Use "
            "dtype=torch.float64, or a lower order",
            NumericalRangeWarning,
            stacklevel=3,
        )


def check_finite(hint: str = "", **tensors: torch.Tensor) -> None:
    """Raise :class:`~pennylane_qrnn.errors.NonFiniteError` naming the first keyword argument that
    holds a NaN or an infinity (one device synchronisation for all of them); ``hint`` ends the
    message."""
    flags = torch.stack([torch.isfinite(t).all() for t in tensors.values()])
    if bool(flags.all()):
        return
    for (name, tensor), flag in zip(tensors.items(), flags.tolist(), strict=True):
        if not flag:
            bad = (~torch.isfinite(tensor)).sum().item()
            raise NonFiniteError(
                f"{name} must be finite; got {bad} NaN or infinite value(s) of {tensor.numel()}"
                + (f" ({hint})" if hint else "")
            )
