"""Argument checks shared by every layer: one message format, the right exception class.

A value of the wrong *type* raises :class:`~pennylane_qrnn.errors.QRNNTypeError` (a
``TypeError``); a value of the right type outside its range raises
:class:`~pennylane_qrnn.errors.QRNNValueError` (a ``ValueError``). Every message reads
``NAME must be WHAT; got VALUE``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import QRNNTypeError, QRNNValueError

__all__ = ["check_int", "check_choice", "check_float", "is_int"]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound optional).

    Raises:
        QRNNTypeError: ``value`` is not an integer (a bool, a float, a string, ...)
        QRNNValueError: it lies outside the bounds
    """
    if minimum is not None and maximum is not None:
        what = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        what = f"an int >= {minimum}"
    elif maximum is not None:
        what = f"an int <= {maximum}"
    else:
        what = "an int"
    if not is_int(value):
        raise QRNNTypeError(f"{name} must be {what}; got {value!r} ({type(value).__name__})")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise QRNNValueError(f"{name} must be {what}; got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable) -> Any:
    """``value`` if it is one of ``choices``, else a :class:`QRNNValueError` listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise QRNNValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def check_float(
    name: str, value: Any, minimum: float | None = None, allow_none: bool = False
) -> float | None:
    """``value`` as a finite ``float`` (at least ``minimum`` if given), or ``None`` if allowed."""
    if value is None and allow_none:
        return None
    what = "a finite number" + (f" >= {minimum}" if minimum is not None else "")
    if allow_none:
        what += " or None"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise QRNNTypeError(f"{name} must be {what}; got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise QRNNValueError(f"{name} must be {what}; got {value!r}")
    return value
