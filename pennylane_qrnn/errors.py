"""The errors pennylane-qrnn raises on purpose.

Every deliberate refusal (a bad argument, a device that cannot run a construct, a file that is not
what it claims, a run over budget, a model too large to allocate) is a :class:`QRNNError`, so the
``qrnn`` command line can report it in one line while a genuine bug still shows its traceback.
The value and type variants also derive from the built-in ``ValueError`` and ``TypeError``, so
code that catches those keeps working.
"""

from __future__ import annotations

__all__ = [
    "QRNNError",
    "QRNNValueError",
    "QRNNTypeError",
    "DeviceCapabilityError",
    "ModelSizeError",
    "UnsafeFileError",
    "NonFiniteError",
    "InsufficientShotsError",
    "InsufficientShotsWarning",
    "DataNotFoundError",
]


class QRNNError(Exception):
    """Base class of the errors this package raises deliberately."""


class QRNNValueError(QRNNError, ValueError):
    """An argument has the right type but a value outside what is allowed."""


class QRNNTypeError(QRNNError, TypeError):
    """An argument has the wrong type."""


class DeviceCapabilityError(QRNNValueError):
    """A device cannot run a construct the model needs (the message names what works)."""


class ModelSizeError(QRNNValueError):
    """The chosen execution path would need more memory than allowed; raised before allocating."""


class UnsafeFileError(QRNNValueError):
    """A file handed to the program is refused: its format could run code when loaded, or it is
    not the kind of file expected (corrupt, truncated, foreign)."""


class NonFiniteError(QRNNValueError):
    """Parameters, a loss or gradients are NaN or infinite."""


class InsufficientShotsError(QRNNError, RuntimeError):
    """Too few shots survived a shot run's postselections to estimate some step (raised instead
    of :class:`InsufficientShotsWarning` with ``on_insufficient_shots="raise"``)."""


class InsufficientShotsWarning(UserWarning):
    """Too few shots survived a shot run's postselections to estimate some step: those steps are
    NaN; the message gives the survivors per step and the shots needed."""


class DataNotFoundError(QRNNError, FileNotFoundError):
    """A dataset's files are not where the task was told to look (or it was told nowhere); the
    message names the files expected, the folder searched and where to get them."""
