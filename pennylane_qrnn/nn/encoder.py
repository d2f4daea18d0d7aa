r"""A classical layer that feeds real-valued data into a QRNN's i/o lanes as angles."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_int

__all__ = ["AngleEncoder"]


class AngleEncoder(nn.Module):
    r"""A linear layer squashed into angles: ``angles = pi/2 * sigmoid(linear(x))``.

    Its output is the real-valued input a :class:`~pennylane_qrnn.QRNN` takes instead of tokens
    (:mod:`pennylane_qrnn.encoding`): one angle per i/o lane in ``(0, pi/2)``, so that every
    lane's amplitudes ``cos a, sin a`` are positive and the token weights ``a_x**2`` can reach
    any product distribution over the ``2**I`` tokens (``0`` and ``pi/2`` are the bits 0 and 1).
    Any other differentiable map to angles works as well; this is the recipe.

    Args:
        in_features (int): the size of each step's real-valued features
        io_bits (int): ``I``, the QRNN's i/o lanes (one angle each)
        bias (bool): whether the linear layer has a bias
        device (torch.device, str or None): torch factory argument
        dtype (torch.dtype or None): torch factory argument

    Inputs: ``x`` of shape ``(..., in_features)``, e.g. ``(L, N, in_features)``

    Returns:
        torch.Tensor: ``(..., io_bits)`` angles in ``(0, pi/2)``

    **Example**

    >>> import torch
    >>> from pennylane_qrnn import QRNN
    >>> from pennylane_qrnn.nn import AngleEncoder
    >>> _ = torch.manual_seed(0)
    >>> encoder, model = AngleEncoder(1, io_bits=1), QRNN(io_bits=1, workspace=2)
    >>> series = torch.sin(torch.linspace(0, 6, 12)).reshape(12, 1, 1)  # (L, N, features)
    >>> targets = (series[1:, :, 0] > series[:-1, :, 0]).long()       # up (1) or down (0)
    >>> log_probs, _ = model(encoder(series[:-1]), targets)
    >>> loss = model.loss(log_probs, targets)
    >>> loss.backward()
    >>> encoder.linear.weight.grad.shape
    torch.Size([1, 1])
    """

    def __init__(
        self,
        in_features: int,
        io_bits: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features, 1)
        self.io_bits = check_int("io_bits", io_bits, 1)
        self.linear = nn.Linear(in_features, io_bits, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return math.pi / 2 * torch.sigmoid(self.linear(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, io_bits={self.io_bits}"
