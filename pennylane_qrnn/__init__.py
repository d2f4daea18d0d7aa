"""pennylane-qrnn: recurrent quantum neural networks (Bausch, NeurIPS 2020) for PennyLane."""

from ._version import __version__
from .executors import Circuits, Exact, Shots
from .nn import QRNN, PostselectionStats, SequenceOutput, sequence_nll
from .protocols import Protocol, get_protocol
from .templates import (
    QRNNCell,
    QuantumNeuron,
    measure_token,
    postselect_token,
    write_token,
)

__all__ = [
    "__version__",
    "QuantumNeuron",
    "QRNNCell",
    "write_token",
    "postselect_token",
    "measure_token",
    "QRNN",
    "PostselectionStats",
    "SequenceOutput",
    "sequence_nll",
    "Exact",
    "Circuits",
    "Shots",
    "Protocol",
    "get_protocol",
]
