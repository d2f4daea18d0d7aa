"""PennyLane templates of the QRNN: the quantum neuron, the QRNN cell, and the token pieces."""

from .multiplexed_rotation import multiplexed_rotation_cost, multiplexed_ry
from .qrnn_cell import QRNNCell, neuron_controls
from .quantum_neuron import MODES, QuantumNeuron, neuron_resources
from .tokens import (
    measure_token,
    postselect_token,
    token_bits,
    unwrite_angles,
    write_angles,
    write_token,
)

__all__ = [
    "QuantumNeuron",
    "QRNNCell",
    "MODES",
    "neuron_controls",
    "neuron_resources",
    "multiplexed_ry",
    "multiplexed_rotation_cost",
    "token_bits",
    "write_token",
    "postselect_token",
    "measure_token",
    "write_angles",
    "unwrite_angles",
]
