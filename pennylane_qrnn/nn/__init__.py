"""``torch.nn`` modules: :class:`QRNN` (sequences) and :class:`QRNNCell` (one step)."""

from ..results import PostselectionStats, SequenceOutput
from .cell import QRNNCell
from .losses import sequence_nll
from .qrnn import QRNN

__all__ = ["QRNN", "QRNNCell", "PostselectionStats", "SequenceOutput", "sequence_nll"]
