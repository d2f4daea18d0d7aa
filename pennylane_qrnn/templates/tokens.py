"""Writing tokens onto the i/o lanes and reading them back, as a QRNN sequence needs between cells.

A token of ``I`` bits is the integer its bit-word spells, with ``io_wires[0]`` the most
significant bit (the reference implementation's convention).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pennylane as qml

from ..errors import QRNNTypeError, QRNNValueError

if TYPE_CHECKING:
    from pennylane.measurements import MeasurementValue
    from pennylane.operation import Operator

__all__ = ["token_bits", "write_token", "postselect_token", "measure_token"]


def _io_wires(io_wires: Iterable[Any]) -> list[Any]:
    """The i/o lanes as a list; refuses a lane named twice (its gates would cancel or clash)."""
    wires = list(io_wires)
    if len(set(wires)) != len(wires):
        raise QRNNValueError(f"io_wires must be distinct; got {wires}")
    return wires


def token_bits(token: int | np.integer, n_bits: int) -> list[int]:
    """The bits of ``token`` on ``n_bits`` lanes, most significant first."""
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
    """
    io_wires = _io_wires(io_wires)
    return [
        qml.X(w) for w, bit in zip(io_wires, token_bits(token, len(io_wires)), strict=True) if bit
    ]


def postselect_token(token: int | np.integer, io_wires: Iterable[Any]) -> list[MeasurementValue]:
    """Queue mid-circuit measurements of the i/o lanes postselected on ``token``, each followed by
    a reset to ``|0>``: teacher forcing, the quantum way. Returns the measurement values."""
    io_wires = _io_wires(io_wires)
    bits = token_bits(token, len(io_wires))
    return [
        qml.measure(w, reset=True, postselect=bit) for w, bit in zip(io_wires, bits, strict=True)
    ]


def measure_token(io_wires: Iterable[Any]) -> list[MeasurementValue]:
    """Queue mid-circuit measurements of the i/o lanes with reset, as in free-running inference.

    Returns the measurement values, most significant lane first; the sampled token is
    ``sum(m * 2**(I-1-i))``.
    """
    return [qml.measure(w, reset=True) for w in _io_wires(io_wires)]
