r"""The quantum neuron's mathematics: the one source of truth.

Everything that needs the neuron (the PennyLane templates, the exact torch engine, the torch
modules and the reference-checkpoint importer) calls these functions, so the model is defined
once. Conventions, after Bausch (NeurIPS 2020) and Cao, Guerreschi & Aspuru-Guzik (2017):

* A neuron with ``n`` control lanes and degree ``d`` has one angle per monomial: the bias first,
  then every subset of the controls of size 1, 2, ..., ``d``, each size's subsets in
  lexicographic order of their positions (:func:`monomials`).
* On a control basis state ``x`` (control 0 is the most significant bit, as in PennyLane) the
  neuron's pre-activation is ``eta(x) = sum_A theta_A prod_{i in A} x_i`` (:func:`eta_table`).
* Angles follow the paper: ``R(a)|0> = cos a |0> + sin a |1>``, which is PennyLane's
  ``qml.RY(2 * a)``.
* The repeat-until-success circuit of order ``k`` maps the target, branch by branch, by the
  unnormalised real matrix ``[[C, -S], [S, C]]`` with ``C = cos(eta)**(2**k)`` and
  ``S = sin(eta)**(2**k)`` (:func:`neuron_amplitudes`); renormalised this is a rotation by
  ``f(eta) = arctan(tan(eta)**(2**k))`` (:func:`activation`), and on a basis input all its
  ancilla postselections succeed with probability ``C**2 + S**2`` (:func:`success_probability`).
* ``C`` and ``S`` fall like ``2**(-2**k / 2)`` near ``eta = pi/4``: in float32 they underflow from
  order 5 or so, and products of them over a cell long before. The functions here therefore work
  with ratios that stay in ``[0, 1]``: :func:`activation` compares ``cos`` and ``sin`` to the larger
  of the two before taking powers, and :func:`scaled_amplitudes` divides both by a reference
  (the engine passes the largest ``max(|cos|, |sin|)`` of a neuron's table) whose power is kept as a
  logarithm (:func:`log_success_probability` is the logarithm of the success probability).

The functions accept numpy arrays, torch tensors (differentiably) and anything else
``pennylane.math`` dispatches on; angle tables carry any leading batch dimensions. Torch tensors
take torch's own functions directly (the same operations ``pennylane.math`` would call, so the
same numbers), which keeps the engine's forward pass free of numpy and dispatch for
``torch.compile``.
"""

from __future__ import annotations

import functools
import itertools
from math import comb
from typing import TYPE_CHECKING, Any

import numpy as np
import pennylane as qml
import torch

from .errors import QRNNValueError
from .validation import check_choice, check_int

if TYPE_CHECKING:
    from pennylane.typing import TensorLike

__all__ = [
    "monomials",
    "num_weights",
    "monomial_matrix",
    "monomial_tensor",
    "eta_table",
    "activation",
    "activation_rotation",
    "neuron_amplitudes",
    "scaled_amplitudes",
    "success_probability",
    "log_success_probability",
    "walsh_matrix",
    "check_order",
    "check_degree",
    "check_mode",
    "MODES",
]


#: the neuron modes: repeat-until-success with postselected ancillas, or the ancilla-free
#: amplified rotation (see :class:`~pennylane_qrnn.QuantumNeuron`)
MODES = ("postselect", "amplified")


def check_mode(mode: Any) -> str:
    """Validate a neuron mode (one of :data:`MODES`).

    Args:
        mode (str): ``"postselect"`` or ``"amplified"``

    Returns:
        str: ``mode``

    Raises:
        QRNNValueError: ``mode`` is not one of :data:`MODES`

    **Example**

    >>> from pennylane_qrnn.neuron import check_mode
    >>> check_mode("amplified")
    'amplified'
    >>> check_mode("x")
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: mode must be one of ('postselect', 'amplified'); got 'x'
    """
    return check_choice("mode", mode, MODES)


def check_degree(degree: Any) -> int:
    """Validate a neuron degree: an int >= 1.

    A degree above a neuron's number of controls is allowed and means every monomial
    (:func:`num_weights` takes ``min(degree, n_controls)``).

    Args:
        degree (int): the highest number of controls in one monomial of the pre-activation

    Returns:
        int: ``degree`` as a Python ``int``

    Raises:
        QRNNTypeError: ``degree`` is not an integer
        QRNNValueError: ``degree`` is below 1

    **Example**

    >>> from pennylane_qrnn.neuron import check_degree
    >>> check_degree(2)
    2
    >>> check_degree(0)
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: degree must be an int >= 1; got 0
    """
    return check_int("degree", degree, 1)


def check_order(order: Any) -> int:
    """Validate a neuron order (the nesting depth of the repeat-until-success circuit): an
    int >= 1.

    Args:
        order (int): the neuron's order ``k``; its activation is ``arctan(tan(eta)**(2**k))``

    Returns:
        int: ``order`` as a Python ``int``

    Raises:
        QRNNTypeError: ``order`` is not an integer
        QRNNValueError: ``order`` is below 1

    **Example**

    >>> from pennylane_qrnn.neuron import check_order
    >>> check_order(2)
    2
    >>> check_order(1.5)
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNTypeError: order must be an int >= 1; got 1.5 (float)
    """
    return check_int("order", order, 1)


@functools.cache
def monomials(n_controls: int, degree: int) -> tuple[tuple[int, ...], ...]:
    """The monomials of a neuron, in weight order: ``()`` (the bias), then every subset of
    ``range(n_controls)`` of size 1, ..., ``degree`` (sizes ascending, each lexicographic).

    Args:
        n_controls (int): number of control lanes (at least 0)
        degree (int): the neuron's degree (at least 1)

    Returns:
        tuple[tuple[int, ...], ...]: the monomials, each a tuple of control positions

    **Example**

    >>> from pennylane_qrnn.neuron import monomials
    >>> monomials(3, 2)
    ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2))
    """
    n_controls, degree = _check_controls(n_controls), check_degree(degree)
    top = min(degree, n_controls)
    return tuple(
        subset for k in range(top + 1) for subset in itertools.combinations(range(n_controls), k)
    )


def _check_controls(n_controls: Any) -> int:
    return check_int("n_controls", n_controls, 0)


def num_weights(n_controls: int, degree: int) -> int:
    """Number of angles of a neuron: ``sum_{k=0..degree} C(n_controls, k)``.

    Args:
        n_controls (int): number of control lanes (at least 0)
        degree (int): the neuron's degree (at least 1)

    Returns:
        int: the length of the neuron's weight vector, ``len(monomials(n_controls, degree))``

    **Example**

    >>> from pennylane_qrnn.neuron import num_weights
    >>> num_weights(3, 2)
    7
    >>> num_weights(3, 5)  # a degree above the controls means every monomial
    8
    """
    n_controls, degree = _check_controls(n_controls), check_degree(degree)
    return sum(comb(n_controls, k) for k in range(min(degree, n_controls) + 1))


@functools.cache
def monomial_matrix(n_controls: int, degree: int) -> np.ndarray:
    """The 0/1 matrix ``M`` with ``M[x, j] = prod_{i in A_j} x_i``: ``eta = M @ theta``.

    Row ``x`` is the control basis state read as an integer with control 0 the most
    significant bit. Shape ``(2**n_controls, num_weights(n_controls, degree))``; read-only.

    Args:
        n_controls (int): number of control lanes
        degree (int): the neuron's degree

    Returns:
        numpy.ndarray: the read-only float64 matrix (cached: the same object on every call)

    **Example**

    >>> from pennylane_qrnn.neuron import monomial_matrix
    >>> monomial_matrix(2, 2)  # columns: bias, x0, x1, x0*x1
    array([[1., 0., 0., 0.],
           [1., 0., 1., 0.],
           [1., 1., 0., 0.],
           [1., 1., 1., 1.]])
    """
    states = np.arange(2**n_controls)
    bits = (states[:, None] >> (n_controls - 1 - np.arange(n_controls))[None, :]) & 1
    columns = [np.prod(bits[:, list(subset)], axis=1) for subset in monomials(n_controls, degree)]
    matrix = np.stack(columns, axis=1).astype(np.float64)
    matrix.setflags(write=False)
    return matrix


def eta_table(weights: TensorLike, n_controls: int, degree: int) -> TensorLike:
    """Pre-activation ``eta(x)`` for every control basis state ``x``.

    Args:
        weights (tensor_like): shape ``(..., num_weights(n_controls, degree))``
        n_controls (int): number of control lanes
        degree (int): the neuron's degree

    Returns:
        tensor_like: shape ``(..., 2**n_controls)``, same interface and dtype as ``weights``

    Raises:
        QRNNValueError: the last dimension of ``weights`` is not the number of monomials

    **Example**

    Two controls at degree 2: ``eta(x) = theta_0 + theta_1 x_0 + theta_2 x_1 + theta_3 x_0 x_1``.

    >>> import numpy as np
    >>> from pennylane_qrnn.neuron import eta_table
    >>> eta_table(np.array([0.1, 0.2, 0.3, 0.4]), n_controls=2, degree=2)
    array([0.1, 0.4, 0.3, 1. ])
    """
    n_weights = num_weights(n_controls, degree)
    torch_weights = isinstance(weights, torch.Tensor)
    shape = tuple(weights.shape if torch_weights else qml.math.shape(weights))
    if not shape or shape[-1] != n_weights:
        raise QRNNValueError(
            f"weights must have shape (..., {n_weights}) for {n_controls} controls at degree "
            f"{degree}; got {shape}"
        )
    if torch_weights:
        table = monomial_tensor(n_controls, degree, weights.dtype, weights.device)
        return torch.tensordot(weights, table, dims=([-1], [1]))
    matrix = np.array(monomial_matrix(n_controls, degree))
    matrix = qml.math.cast_like(qml.math.convert_like(matrix, weights), weights)
    return qml.math.tensordot(weights, matrix, axes=[[-1], [1]])


_MONOMIAL_TENSORS: dict[tuple[int, int, torch.dtype, torch.device], torch.Tensor] = {}


def monomial_tensor(
    n_controls: int, degree: int, dtype: torch.dtype, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """:func:`monomial_matrix` as a torch tensor of ``dtype`` on ``device``, made once and kept
    (a plain dictionary lookup afterwards, which ``torch.compile`` traces without a break; the
    engine makes it before compiled code first needs it).

    Args:
        n_controls (int): number of control lanes
        degree (int): the neuron's degree
        dtype (torch.dtype): the tensor's dtype
        device (torch.device or str): the tensor's device

    Returns:
        torch.Tensor: the matrix (the same object on every call with the same arguments)

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.neuron import monomial_tensor
    >>> monomial_tensor(2, 1, torch.float32)  # columns: bias, x0, x1
    tensor([[1., 0., 0.],
            [1., 0., 1.],
            [1., 1., 0.],
            [1., 1., 1.]])
    """
    key = (n_controls, degree, dtype, torch.device(device))
    table = _MONOMIAL_TENSORS.get(key)
    if table is None:
        matrix = monomial_matrix(n_controls, degree)
        table = torch.tensor(matrix.tolist(), dtype=dtype, device=key[3])
        _MONOMIAL_TENSORS[key] = table
    return table


def neuron_amplitudes(eta: TensorLike, order: int) -> tuple[TensorLike, TensorLike]:
    """Unnormalised amplitudes ``(cos(eta)**(2**order), sin(eta)**(2**order))`` of the target
    after a successful order-``order`` repeat-until-success circuit from ``|0>``.

    These underflow at high order (``0.7**64`` is ``1e-10``; ``0.7**256`` is 0 in float32);
    use :func:`scaled_amplitudes` to compute with them and :func:`log_success_probability` for
    their size.

    Args:
        eta (tensor_like): pre-activations, any shape
        order (int): the neuron's order

    Returns:
        tuple: ``(C, S)``, each shaped like ``eta``

    **Example**

    >>> import numpy as np
    >>> from pennylane_qrnn.neuron import neuron_amplitudes
    >>> c, s = neuron_amplitudes(np.pi / 3, order=1)  # cos**2, sin**2
    >>> print(round(float(c), 4), round(float(s), 4))
    0.25 0.75
    """
    power = 2 ** check_order(order)
    xp = _math(eta)
    return xp.cos(eta) ** power, xp.sin(eta) ** power


def _math(x: TensorLike) -> Any:
    """The namespace whose ``cos``, ``sin``, ``abs``, ``maximum``, ``sqrt`` and ``arctan2`` act on
    ``x``: torch itself for a torch tensor (what ``pennylane.math`` would call, without its
    dispatch), ``pennylane.math`` otherwise."""
    return torch if isinstance(x, torch.Tensor) else qml.math


def _magnitudes(eta: TensorLike) -> tuple[TensorLike, TensorLike, TensorLike]:
    """``|cos eta|``, ``|sin eta|`` and the larger of the two (at least ``1/sqrt(2)``)."""
    xp = _math(eta)
    cos, sin = xp.abs(xp.cos(eta)), xp.abs(xp.sin(eta))
    return cos, sin, xp.maximum(cos, sin)


def scaled_amplitudes(
    eta: TensorLike, order: int, reference: TensorLike
) -> tuple[TensorLike, TensorLike]:
    """:func:`neuron_amplitudes` divided by ``reference**(2**order)``, without forming either.

    Computed as ``(|cos eta| / reference)**(2**order)`` (the power is even), so with ``reference``
    at least ``max(|cos eta|, |sin eta|)`` both lie in ``[0, 1]`` and nothing overflows; an entry
    underflows only where it is below float precision relative to ``reference**(2**order)``.
    Differentiable in ``eta`` (``reference`` is usually held constant: it only scales the map).

    Args:
        eta (tensor_like): pre-activations, any shape
        order (int): the neuron's order
        reference (tensor_like): positive, broadcastable against ``eta``

    Returns:
        tuple: ``(C / reference**p, S / reference**p)`` with ``p = 2**order``

    **Example**

    >>> import numpy as np
    >>> from pennylane_qrnn.neuron import scaled_amplitudes
    >>> eta = np.pi / 3
    >>> c, s = scaled_amplitudes(eta, order=1, reference=np.sin(eta))
    >>> print(round(float(c), 4), round(float(s), 4))  # 0.25 / 0.75 and 0.75 / 0.75
    0.3333 1.0
    """
    power = 2 ** check_order(order)
    cos, sin, _ = _magnitudes(eta)
    return (cos / reference) ** power, (sin / reference) ** power


def activation(eta: TensorLike, order: int) -> TensorLike:
    """The neuron's activation ``f(eta) = arctan(tan(eta)**(2**order))``, in ``[0, pi/2]``.

    Computed as ``atan2((|sin|/m)**p, (|cos|/m)**p)`` with ``m = max(|cos|, |sin|)``: one argument
    is 1, so it is exact where ``tan`` overflows (``eta = pi/2``) and where ``cos**p`` and
    ``sin**p`` both underflow (high order), and so is its gradient.

    Args:
        eta (tensor_like): pre-activations, any shape
        order (int): the neuron's order

    Returns:
        tensor_like: ``f(eta)``, shaped like ``eta``

    **Example**

    The activation sharpens towards a step at ``pi/4`` as the order grows:

    >>> import torch
    >>> from pennylane_qrnn.neuron import activation
    >>> eta = torch.tensor([0.5, 0.7, 0.9])
    >>> [round(v, 3) for v in activation(eta, order=1).tolist()]
    [0.29, 0.617, 1.009]
    >>> [round(v, 3) for v in activation(eta, order=3).tolist()]
    [0.008, 0.248, 1.415]
    """
    cos, sin, top = _magnitudes(eta)
    power = 2 ** check_order(order)
    return _math(eta).arctan2((sin / top) ** power, (cos / top) ** power)


def activation_rotation(eta: TensorLike, order: int) -> tuple[TensorLike, TensorLike]:
    """``(cos f(eta), sin f(eta))`` of the :func:`activation`, each to relative precision.

    ``cos(activation(eta))`` is not: at high order ``f`` is within float spacing of ``pi/2``
    wherever ``|tan eta| > 1``, and the cosine of a rounded ``pi/2`` is ``1e-8`` in float32 whatever
    the true value. Here ``cos f = C' / sqrt(C'**2 + S'**2)`` with the ratios of
    :func:`activation` (one of them 1, so the root lies in ``[1, sqrt 2]``).

    Args:
        eta (tensor_like): pre-activations, any shape
        order (int): the neuron's order

    Returns:
        tuple: ``(cos f(eta), sin f(eta))``, each shaped like ``eta``

    **Example**

    >>> import numpy as np
    >>> from pennylane_qrnn.neuron import activation_rotation
    >>> c, s = activation_rotation(np.pi / 3, order=1)  # f = arctan(3)
    >>> print(round(float(c), 4), round(float(s), 4))
    0.3162 0.9487
    """
    cos, sin, top = _magnitudes(eta)
    power = 2 ** check_order(order)
    cos_p, sin_p = (cos / top) ** power, (sin / top) ** power
    norm = _math(eta).sqrt(cos_p**2 + sin_p**2)
    return cos_p / norm, sin_p / norm


def success_probability(eta: TensorLike, order: int) -> TensorLike:
    """Probability that all ancilla postselections of one neuron succeed on a basis input:
    ``cos(eta)**(2**(order+1)) + sin(eta)**(2**(order+1))``.

    At high order this underflows to 0 in float32 where the true value is below the smallest
    float; :func:`log_success_probability` does not.

    Args:
        eta (tensor_like): pre-activations, any shape
        order (int): the neuron's order

    Returns:
        tensor_like: probabilities in ``(0, 1]``, shaped like ``eta``

    **Example**

    >>> import numpy as np
    >>> from pennylane_qrnn.neuron import success_probability
    >>> round(float(success_probability(np.pi / 3, order=1)), 4)  # 0.25**2 + 0.75**2
    0.625
    """
    cos_p, sin_p = neuron_amplitudes(eta, order)
    return cos_p**2 + sin_p**2


def log_success_probability(eta: TensorLike, order: int) -> TensorLike:
    """``log`` of :func:`success_probability`, finite at every order:
    ``2p log m + log((|cos|/m)**2p + (|sin|/m)**2p)`` with ``m = max(|cos|, |sin|)``,
    ``p = 2**order`` (the second term lies in ``[0, log 2]``).

    Args:
        eta (tensor_like): pre-activations, any shape
        order (int): the neuron's order

    Returns:
        tensor_like: log-probabilities, shaped like ``eta``

    **Example**

    At order 10 the probability is far below float32's smallest number; its logarithm is not:

    >>> import math
    >>> import torch
    >>> from pennylane_qrnn.neuron import log_success_probability, success_probability
    >>> eta = torch.tensor(math.pi / 4)
    >>> success_probability(eta, order=10)
    tensor(0.)
    >>> round(float(log_success_probability(eta, order=10)), 1)
    -709.1
    """
    cos, sin, top = _magnitudes(eta)
    power = 2 * 2 ** check_order(order)
    xp = _math(eta)
    return power * xp.log(top) + xp.log((cos / top) ** power + (sin / top) ** power)


@functools.cache
def walsh_matrix(n_controls: int) -> np.ndarray:
    """The ``2**n x 2**n`` Walsh (Sylvester-Hadamard) sign matrix
    ``W[B, x] = (-1)**popcount(B & x)``.

    A table ``phi(x)`` equals ``sum_B w_B (-1)**(B.x)`` with ``w = W @ phi / 2**n``; a degree-d
    polynomial in the bits has ``w_B = 0`` for ``popcount(B) > d``.

    Args:
        n_controls (int): ``n``, the number of bits

    Returns:
        numpy.ndarray: the read-only float64 matrix (cached: the same object on every call)

    **Example**

    >>> from pennylane_qrnn.neuron import walsh_matrix
    >>> walsh_matrix(2)
    array([[ 1.,  1.,  1.,  1.],
           [ 1., -1.,  1., -1.],
           [ 1.,  1., -1., -1.],
           [ 1., -1., -1.,  1.]])
    """
    states = np.arange(2**n_controls)
    parity = np.zeros((states.size, states.size), dtype=np.int64)
    overlap = states[:, None] & states[None, :]
    for bit in range(n_controls):
        parity ^= (overlap >> bit) & 1
    matrix = (1 - 2 * parity).astype(np.float64)
    matrix.setflags(write=False)
    return matrix
