"""How the engine reports numbers out of range: :class:`NumericalRangeWarning` for probabilities
below the dtype's smallest number, :func:`check_finite` for NaN or infinite inputs."""

from __future__ import annotations

import math
import warnings

import torch

from ..errors import NonFiniteError


class NumericalRangeWarning(RuntimeWarning):
    """A probability fell below the smallest number of the dtype; the affected values are NaN
    (or, for an outcome collapsed on, a bound). Given by both exact engines after a run, with
    what to change (``dtype=torch.float64``, or a lower order).

    **Example**

    >>> import warnings
    >>> from pennylane_qrnn.engine import NumericalRangeWarning
    >>> issubclass(NumericalRangeWarning, RuntimeWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", NumericalRangeWarning)  # make it an error
    ...     try:
    ...         warnings.warn("every branch underflowed", NumericalRangeWarning)
    ...     except NumericalRangeWarning as caught:
    ...         print(caught)
    every branch underflowed
    """


def warn_out_of_range(
    floored: int, log_chosen: torch.Tensor, dtype: torch.dtype, stacklevel: int = 3
) -> None:
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
            stacklevel=stacklevel,
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
            stacklevel=stacklevel,
        )


def check_finite(hint: str = "", **tensors: torch.Tensor) -> None:
    """Raise :class:`~pennylane_qrnn.errors.NonFiniteError` naming the first keyword argument that
    holds a NaN or an infinity (one device synchronisation for all of them).

    Args:
        hint (str): what to do about it, appended to the message in parentheses
        **tensors (torch.Tensor): the tensors to check, by the names the message gives them

    Raises:
        NonFiniteError: a tensor holds a NaN or an infinity

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.engine import check_finite
    >>> check_finite(weights=torch.ones(3))  # finite: nothing happens
    >>> check_finite("lower the learning rate", weights=torch.tensor([1.0, float("nan")]))
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.NonFiniteError: weights must be finite; got 1 NaN ... (lower the ...)
    """
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
