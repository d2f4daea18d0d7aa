r"""Uniformly controlled (multiplexed) RY rotations from CNOTs and RYs.

A multiplexed rotation applies ``RY(phi(x))`` to a target for every basis state ``x`` of its
controls. Writing ``phi`` in the Walsh basis, ``phi(x) = sum_B w_B (-1)**(B.x)``, each term is an
``RY(w_B)`` applied while CNOTs from the controls in ``B`` have flipped the target's frame
(``X RY(a) X = RY(-a)``). A walk through the needed parity sets ``B``, one CNOT per step and back to
the empty set, realises the whole table exactly. For a table of full degree this is the Gray-code
construction of Möttönen et al. (``2**n`` CNOTs and ``2**n`` RYs); a neuron's ``eta`` is a
polynomial of degree ``d`` in the control bits, so only sets with ``|B| <= d`` are needed and the
walk is much shorter (:func:`multiplexed_rotation_cost`).

Built from plain ``RY``/``CNOT`` on purpose: ``qml.SelectPauliRot`` returns wrong values for torch
parameters under ``default.qubit`` backprop in PennyLane 0.45.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pennylane as qml

from ..neuron import walsh_matrix

if TYPE_CHECKING:
    from pennylane.operation import Operator
    from pennylane.typing import TensorLike

__all__ = ["walsh_walk", "multiplexed_ry", "multiplexed_rotation_cost"]


def _popcount(value: int) -> int:
    return bin(value).count("1")


def _walk_length(sequence: Iterable[int]) -> int:
    closed = list(sequence) + [0]
    return sum(_popcount(a ^ b) for a, b in zip([0] + list(sequence), closed, strict=True))


@functools.cache
def walsh_walk(n_controls: int, degree: int) -> tuple[int, ...]:
    """Order in which to visit the parity sets ``B`` (bit masks, control 0 the most significant
    bit) with ``popcount(B) <= degree``, starting at the empty set; the walk returns to it.

    Tries the reflected Gray-code order restricted to the support and a greedy nearest-neighbour
    order, and keeps the one with fewer CNOTs.
    """
    gray = [k ^ (k >> 1) for k in range(2**n_controls)]
    gray_order = [mask for mask in gray if _popcount(mask) <= degree]

    remaining = set(gray_order[1:])
    greedy, current = [0], 0
    while remaining:
        # nearest unvisited set; ties broken by Gray position for determinism
        nearest = min(remaining, key=lambda m: (_popcount(m ^ current), gray.index(m)))
        greedy.append(nearest)
        remaining.remove(nearest)
        current = nearest
    best = min((gray_order, greedy), key=_walk_length)
    return tuple(best)


def multiplexed_rotation_cost(n_controls: int, degree: int | None = None) -> dict[str, int]:
    """Gate counts of :func:`multiplexed_ry` on ``n_controls`` controls for a table of the given
    polynomial degree (``None``: arbitrary table).

    Args:
        n_controls (int): number of controls
        degree (int or None): the table's polynomial degree in the control bits, or ``None``

    Returns:
        dict[str, int]: ``{"cnot": ..., "ry": ...}``

    **Example**

    A full table on 3 controls needs a gate per entry; an affine one (degree 1) needs fewer:

    >>> from pennylane_qrnn.templates import multiplexed_rotation_cost
    >>> multiplexed_rotation_cost(3)
    {'cnot': 8, 'ry': 8}
    >>> multiplexed_rotation_cost(3, degree=1)
    {'cnot': 6, 'ry': 4}
    """
    degree = n_controls if degree is None else min(degree, n_controls)
    walk = walsh_walk(n_controls, degree)
    return {"cnot": _walk_length(walk), "ry": len(walk)}


def multiplexed_ry(
    angles: TensorLike,
    control_wires: Iterable[Any],
    target_wire: Any,
    degree: int | None = None,
    rotation: type = qml.RY,
) -> list[Operator]:
    """Operations applying ``RY(angles[..., x])`` to ``target_wire`` for each control state ``x``.

    Args:
        angles (tensor_like): RY angles, shape ``(..., 2**len(control_wires))``; row ``x`` is the
            control basis state with ``control_wires[0]`` the most significant bit. Leading
            dimensions broadcast.
        control_wires (Sequence): the controls (may be empty)
        target_wire (Any): the target
        degree (int or None): the table's polynomial degree in the control bits, if known; a
            smaller degree gives fewer gates. ``None`` treats the table as arbitrary.
        rotation (type): the ``RY`` class to use (the postselecting neuron passes a subclass that
            refuses gradient transforms; see :class:`~pennylane_qrnn.QuantumNeuron`)

    Returns:
        list[Operation]: ``CNOT`` and ``RY`` gates, exact for any table of at most that degree

    **Example**

    The table ``[0.1, 0.2, 0.3, 0.4]`` is affine in the bits (``0.1 + 0.2 x0 + 0.1 x1``), so
    degree 1 suffices. With control state ``|10>`` the target turns by ``RY(0.3)``:

    >>> import numpy as np
    >>> import pennylane as qml
    >>> from pennylane_qrnn.templates import multiplexed_ry
    >>> angles = np.array([0.1, 0.2, 0.3, 0.4])
    >>> ops = multiplexed_ry(angles, control_wires=[0, 1], target_wire=2, degree=1)
    >>> [op.name for op in ops]
    ['RY', 'CNOT', 'RY', 'CNOT', 'CNOT', 'RY', 'CNOT']
    >>> @qml.qnode(qml.device("default.qubit"))
    ... def circuit(angles):
    ...     qml.X(0)
    ...     multiplexed_ry(angles, control_wires=[0, 1], target_wire=2, degree=1)
    ...     return qml.expval(qml.Z(2))
    >>> round(float(circuit(angles)), 4)  # cos(0.3)
    0.9553
    """
    control_wires = list(control_wires)
    n = len(control_wires)
    degree = n if degree is None else min(degree, n)
    walk = walsh_walk(n, degree)
    sign = walsh_matrix(n)[list(walk)] / 2**n  # rows: the visited parity sets
    sign = qml.math.cast_like(qml.math.convert_like(np.array(sign), angles), angles)
    if qml.math.get_interface(angles) == "torch":
        sign = sign.to(angles.device)
    coefficients = qml.math.tensordot(angles, sign, axes=[[-1], [1]])

    ops: list[Operator] = []
    current = 0
    for step, mask in enumerate(list(walk)):
        ops.extend(_toggle(current ^ mask, control_wires, target_wire))
        ops.append(rotation(coefficients[..., step], wires=target_wire))
        current = mask
    ops.extend(_toggle(current, control_wires, target_wire))
    return ops


def _toggle(difference: int, control_wires: Sequence[Any], target_wire: Any) -> list[Operator]:
    n = len(control_wires)
    return [
        qml.CNOT(wires=[control_wires[i], target_wire])
        for i in range(n)
        if (difference >> (n - 1 - i)) & 1
    ]
