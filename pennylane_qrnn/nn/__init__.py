"""``torch.nn`` modules: :class:`QRNN` (sequences) and :class:`QRNNCell` (one step)."""

from .qrnn import QRNN, PostselectionStats, QRNNCell, sequence_nll

__all__ = ["QRNN", "QRNNCell", "PostselectionStats", "sequence_nll"]
