"""``torch.nn`` modules: :class:`QRNN` (sequences), :class:`QRNNCell` (one step) and
:class:`AngleEncoder` (real-valued data to the angles a QRNN takes as inputs)."""

from ..results import PostselectionStats, SequenceOutput
from .cell import QRNNCell
from .encoder import AngleEncoder
from .losses import sequence_nll
from .qrnn import QRNN

__all__ = [
    "QRNN",
    "QRNNCell",
    "AngleEncoder",
    "PostselectionStats",
    "SequenceOutput",
    "sequence_nll",
]
