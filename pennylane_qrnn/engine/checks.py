"""How the engine reports numbers out of range: :class:`NumericalRangeWarning` for probabilities
below the dtype's smallest number, :func:`check_finite` for NaN or infinite inputs."""

from __future__ import annotations

import torch

from ..errors import NonFiniteError


class NumericalRangeWarning(RuntimeWarning):
    """A probability fell below the smallest number of the dtype; the affected values are NaN."""


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
