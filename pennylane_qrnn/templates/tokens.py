"""Writing tokens onto the i/o lanes and reading them back, as a QRNN sequence needs between cells.

A token of ``I`` bits is the integer its bit-word spells, with ``io_wires[0]`` the most
significant bit (the reference implementation's convention). Real-valued inputs are one angle
per i/o lane instead (:func:`write_angles`, :func:`unwrite_angles`; the maths in
:mod:`pennylane_qrnn.encoding`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pennylane as qml

from ..encoding import write_rotations
from ..errors import QRNNTypeError, QRNNValueError
from .base import PostselectZero

if TYPE_CHECKING:
    from pennylane.measurements import MeasurementValue
    from pennylane.operation import Operator

__all__ = [
    "token_bits",
    "write_token",
    "postselect_token",
    "measure_token",
    "write_angles",
    "unwrite_angles",
]


def _io_wires(io_wires: Iterable[Any]) -> list[Any]:
    """The i/o lanes as a list; refuses a lane named twice (its gates would cancel or clash)."""
    wires = list(io_wires)
    if len(set(wires)) != len(wires):
        raise QRNNValueError(f"io_wires must be distinct; got {wires}")
    return wires


def token_bits(token: int | np.integer, n_bits: int) -> list[int]:
    """The bits of ``token`` on ``n_bits`` lanes, most significant first.

    Args:
        token (int): the token, in ``[0, 2**n_bits)``
        n_bits (int): the number of i/o lanes

    Returns:
        list[int]: ``n_bits`` zeros and ones

    Raises:
        QRNNTypeError: ``token`` is not an integer
        QRNNValueError: ``token`` does not fit on ``n_bits`` lanes

    **Example**

    >>> from pennylane_qrnn.templates import token_bits
    >>> token_bits(5, 3)
    [1, 0, 1]
    >>> token_bits(4, 2)
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: token must be in [0, 3] for 2 i/o lanes; got 4
    """
    if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
        raise QRNNTypeError(f"token must be an int; got {type(token).__name__}")
    if not 0 <= token < 2**n_bits:
        raise QRNNValueError(
            f"token must be in [0, {2**n_bits - 1}] for {n_bits} i/o lanes; got {token}"
        )
    return [(int(token) >> (n_bits - 1 - i)) & 1 for i in range(n_bits)]


def write_token(token: int | np.integer, io_wires: Iterable[Any]) -> list[Operator]:
    """Queue ``X`` gates writing ``token`` onto i/o lanes that are in ``|0...0>``.

    The same gates applied again reset the lanes, as long as they were used only as controls.

    Args:
        token (int): the token, in ``[0, 2**len(io_wires))``
        io_wires (Iterable): the i/o lanes, most significant bit first, each once

    Returns:
        list[Operator]: the ``X`` gates queued (one per 1 bit)

    Raises:
        QRNNValueError: a lane named twice, or a token that does not fit

    **Example**

    >>> from pennylane_qrnn import write_token
    >>> write_token(5, io_wires=[0, 1, 2])
    [X(0), X(2)]
    """
    io_wires = _io_wires(io_wires)
    return [
        qml.X(w) for w, bit in zip(io_wires, token_bits(token, len(io_wires)), strict=True) if bit
    ]


def postselect_token(token: int | np.integer, io_wires: Iterable[Any]) -> list[MeasurementValue]:
    """Queue mid-circuit measurements of the i/o lanes postselected on ``token``, each followed by
    a reset to ``|0>``: teacher forcing, the quantum way.

    Args:
        token (int): the token to postselect on, in ``[0, 2**len(io_wires))``
        io_wires (Iterable): the i/o lanes, most significant bit first, each once

    Returns:
        list[MeasurementValue]: the measurement values, most significant lane first

    Raises:
        QRNNValueError: a lane named twice, or a token that does not fit

    **Example**

    Postselecting on the token just written keeps the whole state and leaves the lanes reset:

    >>> import pennylane as qml
    >>> from pennylane_qrnn import postselect_token, write_token
    >>> @qml.qnode(qml.device("default.qubit"))
    ... def circuit():
    ...     write_token(2, io_wires=[0, 1])
    ...     postselect_token(2, io_wires=[0, 1])
    ...     return qml.probs(wires=[0, 1])
    >>> circuit()
    array([1., 0., 0., 0.])
    """
    io_wires = _io_wires(io_wires)
    bits = token_bits(token, len(io_wires))
    return [
        qml.measure(w, reset=True, postselect=bit) for w, bit in zip(io_wires, bits, strict=True)
    ]


def measure_token(io_wires: Iterable[Any]) -> list[MeasurementValue]:
    """Queue mid-circuit measurements of the i/o lanes with reset, as in free-running inference.

    Args:
        io_wires (Iterable): the i/o lanes, most significant bit first, each once

    Returns:
        list[MeasurementValue]: the measurement values, most significant lane first; the sampled
        token is ``sum(m * 2**(I-1-i))``

    Raises:
        QRNNValueError: a lane named twice

    **Example**

    >>> import pennylane as qml
    >>> from pennylane_qrnn import measure_token, write_token
    >>> @qml.qnode(qml.device("default.qubit"), shots=3)
    ... def circuit():
    ...     write_token(2, io_wires=[0, 1])
    ...     high, low = measure_token(io_wires=[0, 1])
    ...     return qml.sample(2 * high + low)
    >>> circuit().tolist()
    [2, 2, 2]
    """
    return [qml.measure(w, reset=True) for w in _io_wires(io_wires)]


def write_angles(angles: Any, io_wires: Iterable[Any]) -> list[Operator]:
    """Queue ``qml.RY(2 angle)`` on each i/o lane (in ``|0>``): real-valued inputs, lane ``l`` in
    ``cos(angle_l)|0> + sin(angle_l)|1>`` (:mod:`pennylane_qrnn.encoding`).

    Args:
        angles (tensor_like): ``(I,)`` (or ``(batch, I)``) one angle per lane
        io_wires (Iterable): the i/o lanes, most significant bit first, each once

    Returns:
        list[Operator]: the ``RY`` gates queued

    **Example**

    >>> from pennylane_qrnn.templates import write_angles
    >>> ops = write_angles([0.25, 0.5], io_wires=[0, 1])
    >>> [(op.name, float(op.data[0]), op.wires.tolist()) for op in ops]
    [('RY', 0.5, [0]), ('RY', 1.0, [1])]
    """
    io_wires = _io_wires(io_wires)
    rotations = write_rotations(qml.math.asarray(angles))
    return [qml.RY(rotations[..., lane], wires=w) for lane, w in enumerate(io_wires)]


def unwrite_angles(angles: Any, io_wires: Iterable[Any]) -> list[Operator]:
    """Queue the unwrite of :func:`write_angles`: ``qml.RY(-2 angle)`` on each i/o lane, then a
    mid-circuit measurement of each lane postselected on 0. Between the two the lanes may only
    have been controls; the workspace is then left in ``sum_x a_x**2 W[x] psi``
    (:mod:`pennylane_qrnn.encoding`).

    Args:
        angles (tensor_like): the angles written, ``(I,)`` (or ``(batch, I)``)
        io_wires (Iterable): the i/o lanes, most significant bit first, each once

    Returns:
        list[Operator]: the ``RY`` gates and the postselecting measurements queued

    **Example**

    Written and unwritten at once, the lanes are back in ``|0>`` and the postselection always
    succeeds:

    >>> import pennylane as qml
    >>> from pennylane_qrnn.templates import unwrite_angles, write_angles
    >>> @qml.qnode(qml.device("default.qubit"), mcm_method="tree-traversal")
    ... def circuit():
    ...     write_angles([0.3, 1.2], io_wires=[0, 1])
    ...     unwrite_angles([0.3, 1.2], io_wires=[0, 1])
    ...     return qml.probs(wires=[0, 1])
    >>> circuit().round(6).tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    io_wires = _io_wires(io_wires)
    rotations = write_rotations(qml.math.asarray(angles))
    ops: list[Operator] = [
        qml.RY(-rotations[..., lane], wires=w) for lane, w in enumerate(io_wires)
    ]
    return ops + [PostselectZero(w) for w in io_wires]
