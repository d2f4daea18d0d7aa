r"""Real-valued inputs: the angle encoding of the i/o lanes, in one place for the engine, the
templates and the torch modules.

A token is a bit pattern written by ``X`` gates. A real-valued input is instead one angle per
i/o lane, written by :math:`R(a) = \exp(i a Y)` (``qml.RY(2 a)``, the paper's convention
:math:`R(a)|0\rangle = \cos a|0\rangle + \sin a|1\rangle`):

* **write**: ``RY(2 a_l)`` on i/o lane ``l`` puts the lanes in
  :math:`|\phi\rangle = \sum_x a_x |x\rangle` with :math:`a_x = \prod_l c_l(x_l)`,
  :math:`c_l(0) = \cos a_l`, :math:`c_l(1) = \sin a_l` (lane 0 the most significant bit, as for
  tokens);
* the input and work stages, controlled by the i/o lanes, map :math:`|x\rangle|\psi\rangle` to
  :math:`|x\rangle W[x]\psi`, so the register holds :math:`\sum_x a_x |x\rangle W[x]\psi`;
* **unwrite**: ``RY(-2 a_l)`` on each lane, then the i/o lanes are postselected on
  :math:`|0\ldots0\rangle` (:math:`\langle 0|R(-a)|x_l\rangle = c(x_l)`): the workspace is left in
  :math:`\sum_x a_x^2 W[x]\psi`, unnormalised.

So a real input acts on the workspace as the **convex combination** of the token blocks ``W[x]``
with the weights :math:`w_x = a_x^2` (:func:`token_weights`; they sum to 1). At angles in
``{0, pi/2}`` the weights are one-hot and this is exactly the token write (the unwrite then
always succeeds). Otherwise the unwrite's postselection succeeds with probability

.. math:: P_\text{unwrite} = \frac{|\sum_x w_x W[x]\psi|^2}{\sum_x w_x |W[x]\psi|^2},

where the denominator is the probability that the neurons' own postselections succeed with the
i/o lanes in superposition (:func:`log_unwrite_probability`). A QPU pays it at every step, like
the other postselections (:class:`~pennylane_qrnn.results.PostselectionStats`). The derivation is
checked against a ``default.qubit`` simulation of the circuit with postselection
(``tests/test_real_inputs.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import QRNNTypeError, QRNNValueError

__all__ = ["token_weights", "write_rotations", "log_unwrite_probability", "check_angles"]


def write_rotations(angles: Any) -> Any:
    """The ``qml.RY`` parameters that write ``angles`` onto the i/o lanes (the unwrite is their
    negative): ``2 * angles``, in any array framework.

    Args:
        angles (tensor_like): ``(..., I)`` one angle per i/o lane

    Returns:
        tensor_like: ``(..., I)`` the ``RY`` parameters

    **Example**

    >>> import math
    >>> from pennylane_qrnn.encoding import write_rotations
    >>> write_rotations(math.pi / 4)  # RY(pi/2) makes cos(pi/4)|0> + sin(pi/4)|1>
    1.5707963267948966
    """
    return 2 * angles


def token_weights(angles: torch.Tensor) -> torch.Tensor:
    """The weight ``a_x**2`` of each token's write block for real-valued ``angles``.

    Args:
        angles (torch.Tensor): ``(..., I)`` one angle per i/o lane, lane 0 the most significant
            bit

    Returns:
        torch.Tensor: ``(..., 2**I)`` nonnegative weights summing to 1 (differentiable)

    **Example**

    >>> import math, torch
    >>> from pennylane_qrnn.encoding import token_weights
    >>> token_weights(torch.tensor([math.pi / 2, 0.0])).round(decimals=6).tolist()  # 0b10 = 2
    [0.0, 0.0, 1.0, 0.0]
    >>> token_weights(torch.tensor([math.pi / 4])).round(decimals=6).tolist()  # even
    [0.5, 0.5]
    """
    weights = angles.new_ones(angles.shape[:-1] + (1,))
    for lane in range(angles.shape[-1]):
        angle = angles[..., lane : lane + 1]
        lane_weights = torch.cat([torch.cos(angle) ** 2, torch.sin(angle) ** 2], dim=-1)
        # token = (earlier bits) * 2 + this bit: earlier lanes are the more significant
        weights = (weights.unsqueeze(-1) * lane_weights.unsqueeze(-2)).flatten(-2)
    return weights


def log_unwrite_probability(
    blocks: torch.Tensor, weights: torch.Tensor, log_scales: torch.Tensor | None = None
) -> torch.Tensor:
    """The log of the probability that the unwrite's postselection succeeds (module docstring).

    Args:
        blocks (torch.Tensor): ``(N, 2**I, 2**H)`` the workspace state each token's block makes,
            ``W[x] psi``, possibly divided by a constant per token
        weights (torch.Tensor): ``(N, 2**I)`` the token weights (:func:`token_weights`)
        log_scales (torch.Tensor or None): ``(2**I,)`` the log of each token's constant
            (``W[x] psi = exp(log_scales[x]) * blocks[:, x]``); ``None`` means 0

    Returns:
        torch.Tensor: ``(N,)`` ``log P_unwrite`` (0 for one-hot weights; not differentiable)

    **Example**

    Two orthogonal blocks with equal weights: the combination keeps half the norm.

    >>> import torch
    >>> from pennylane_qrnn.encoding import log_unwrite_probability
    >>> blocks = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> log_unwrite_probability(blocks, torch.tensor([[0.5, 0.5]])).exp()
    tensor([0.5000])
    """
    with torch.no_grad():
        if log_scales is None:
            log_scales = blocks.new_zeros(blocks.shape[1])
        shift = log_scales.amax()
        relative = log_scales - shift  # every factor at most 1: nothing overflows
        combined = torch.einsum("nx,x,nxw->nw", weights, relative.exp(), blocks)
        numerator = 2 * torch.linalg.vector_norm(combined, dim=-1).log()
        norms = torch.linalg.vector_norm(blocks, dim=-1)
        denominator = torch.logsumexp(weights.log() + 2 * (relative + norms.log()), dim=-1)
        return numerator - denominator


def check_angles(name: str, angles: Any, io_bits: int, leading: str = "(L, N, I)") -> torch.Tensor:
    """``angles`` as a floating tensor whose last axis has ``io_bits`` entries, all finite.

    Args:
        name (str): the argument's name, for the messages
        angles (Any): the angles (a floating tensor or array)
        io_bits (int): ``I``, the number of i/o lanes
        leading (str): the shape the caller expects, for the messages

    Returns:
        torch.Tensor: ``angles`` as a tensor

    Raises:
        QRNNTypeError: not a floating tensor
        QRNNValueError: the last axis is not ``io_bits`` long, or a value is NaN or infinite

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.encoding import check_angles
    >>> check_angles("angles", torch.zeros(3, 2, 1), io_bits=1).shape
    torch.Size([3, 2, 1])
    >>> check_angles("angles", torch.zeros(3, 2, 2), io_bits=1)
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: angles must have shape (L, N, I) with I=1; got (3, 2, 2)
    """
    if not isinstance(angles, torch.Tensor):
        angles = torch.as_tensor(angles)
    if not angles.dtype.is_floating_point:
        raise QRNNTypeError(f"{name} must be a floating tensor {leading}; got dtype {angles.dtype}")
    if angles.dim() == 0 or angles.shape[-1] != io_bits:
        raise QRNNValueError(
            f"{name} must have shape {leading} with I={io_bits}; got {tuple(angles.shape)}"
        )
    bad = int((~torch.isfinite(angles.detach())).sum())
    if bad:
        raise QRNNValueError(
            f"{name} must be finite; got {bad} NaN or infinite value(s) of {angles.numel()}"
        )
    return angles
