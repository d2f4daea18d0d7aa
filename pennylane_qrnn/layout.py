"""The static structure of a QRNN cell: sizes, lanes, wires and every neuron's controls.

One :class:`CellLayout` is the single source of these facts for the templates, the exact engine,
the circuit and shot paths, the resource counts and the checkpoint importer. Lanes are numbered
as wires: i/o lanes ``0 .. I-1`` (lane 0 holds a token's most significant bit), workspace lanes
``I .. I+H-1`` and, in ``"postselect"`` mode, ``order`` neuron ancillas ``I+H .. I+H+order-1``
(measured and reset after every neuron, so shared by all of them).

Example::

    >>> layout = CellLayout(io_bits=2, workspace=3)
    >>> layout.io_wires, layout.workspace_wires, layout.ancilla_wires
    ([0, 1], [2, 3, 4], [5, 6])
    >>> layout.controls(0)  # workspace first, then the other i/o lanes
    [2, 3, 4, 1]
    >>> layout.weight_shapes()["input_weights"]
    (3, 11)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from . import neuron
from .validation import check_int

__all__ = ["CellLayout", "neuron_controls", "WEIGHT_NAMES"]

#: the cell's four weight tensors, in the templates' argument order
WEIGHT_NAMES = ("input_weights", "rotation_weights", "stage_weights", "output_weights")


def neuron_controls(target: Any, io_wires: Sequence, workspace_wires: Sequence) -> list:
    """The control wires of the neuron on ``target``: the workspace wires, then the i/o wires,
    skipping the target.

    This is the reference implementation's order, so that its checkpoints map one to one; every
    layer takes it from here.

    Args:
        target (Any): the wire the neuron rotates
        io_wires (Sequence): the cell's i/o wires
        workspace_wires (Sequence): the cell's workspace wires

    Returns:
        list: the control wires, in the order of the neuron's weights

    **Example**

    >>> from pennylane_qrnn.layout import neuron_controls
    >>> neuron_controls(0, io_wires=[0, 1], workspace_wires=[2, 3, 4])
    [2, 3, 4, 1]
    >>> neuron_controls(3, io_wires=["a"], workspace_wires=[2, 3])
    [2, 'a']
    """
    return [w for w in list(workspace_wires) + list(io_wires) if w != target]


@dataclass(frozen=True)
class CellLayout:
    """Sizes and neuron settings of a QRNN cell, and the wires and controls they imply.

    Args:
        io_bits (int): ``I``, bits per token (vocabulary ``2**I``)
        workspace (int): ``H``, workspace qubits
        stages (int): work stages per cell
        degree (int): the neurons' degree
        order (int): the neurons' order
        mode (str): ``"postselect"`` or ``"amplified"``

    Raises:
        QRNNTypeError: a size, degree or order that is not an integer
        QRNNValueError: a size, degree or order out of range, or an unknown ``mode``

    **Example**

    >>> from pennylane_qrnn.layout import CellLayout
    >>> layout = CellLayout(io_bits=1, workspace=2, stages=1)
    >>> layout.io_wires, layout.workspace_wires, layout.ancilla_wires
    ([0], [1, 2], [3, 4])
    >>> layout.controls(1)  # workspace first, then the i/o lanes
    [2, 0]
    >>> layout.n_wires, layout.n_parameters
    (5, 22)
    """

    io_bits: int
    workspace: int
    stages: int = 1
    degree: int = 2
    order: int = 2
    mode: str = "postselect"

    def __post_init__(self) -> None:
        # normalise numpy integers to int, so that layouts compare and hash by value
        object.__setattr__(self, "io_bits", check_int("io_bits", self.io_bits, 1))
        object.__setattr__(self, "workspace", check_int("workspace", self.workspace, 1))
        object.__setattr__(self, "stages", check_int("stages", self.stages, 0))
        object.__setattr__(self, "degree", neuron.check_degree(self.degree))
        object.__setattr__(self, "order", neuron.check_order(self.order))
        neuron.check_mode(self.mode)

    # -- sizes --------------------------------------------------------------------------
    @property
    def vocabulary_size(self) -> int:
        return 2**self.io_bits

    @property
    def n_lanes(self) -> int:
        """i/o and workspace lanes, ``I + H``."""
        return self.io_bits + self.workspace

    @property
    def n_controls(self) -> int:
        """Controls per neuron: every other lane."""
        return self.n_lanes - 1

    @property
    def n_neurons(self) -> int:
        """Neurons per step: input stage, work stages, output stage."""
        return self.workspace * (1 + self.stages) + self.io_bits

    @property
    def n_weights(self) -> int:
        """Angles per neuron."""
        return neuron.num_weights(self.n_controls, self.degree)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the four weight tensors, in :data:`WEIGHT_NAMES` order."""
        n = self.n_weights
        return {
            "input_weights": (self.workspace, n),
            "rotation_weights": (self.stages, self.workspace),
            "stage_weights": (self.stages, self.workspace, n),
            "output_weights": (self.io_bits, n),
        }

    @property
    def n_parameters(self) -> int:
        """Trainable angles in all: ``(H + S H + I) n_weights + S H``."""
        return sum(int(np.prod(shape)) for shape in self.weight_shapes().values())

    # -- wires --------------------------------------------------------------------------
    @property
    def io_wires(self) -> list[int]:
        return list(range(self.io_bits))

    @property
    def workspace_wires(self) -> list[int]:
        return list(range(self.io_bits, self.n_lanes))

    @property
    def n_ancillas(self) -> int:
        """The neurons' ancillas: ``order`` in postselect mode, none in amplified mode."""
        return self.order if self.mode == "postselect" else 0

    @property
    def ancilla_wires(self) -> list[int]:
        return list(range(self.n_lanes, self.n_lanes + self.n_ancillas))

    @property
    def n_wires(self) -> int:
        """Qubits of a circuit that measures and resets its lanes in place: lanes + ancillas."""
        return self.n_lanes + self.n_ancillas

    @property
    def measurements_per_step(self) -> int:
        """Mid-circuit measurements of one step: the i/o readout and, in postselect mode, the
        ``2**order - 1`` ancilla measurements of each neuron's repeat-until-success circuit."""
        per_neuron = 2**self.order - 1 if self.mode == "postselect" else 0
        return self.io_bits + per_neuron * self.n_neurons

    def deferred_wires(self, length: int) -> int:
        """Qubits of a ``length``-step sequence whose measurements are deferred onto fresh
        qubits (one per measurement)."""
        return self.n_wires + self.measurements_per_step * check_int("length", length, 0)

    # -- neurons ------------------------------------------------------------------------
    def controls(self, target: int) -> list[int]:
        """The control lanes of the neuron on lane ``target`` (:func:`neuron_controls`)."""
        return neuron_controls(target, self.io_wires, self.workspace_wires)

    @cached_property
    def _table_permutations(self) -> dict:
        # For each target lane: how to lay an eta table (controls in `controls` order) out on the
        # natural lane axes, with a singleton axis at the target.
        result = {}
        for target in range(self.n_lanes):
            permutation = tuple(int(i) for i in np.argsort(self.controls(target)))
            shape = tuple(1 if lane == target else 2 for lane in range(self.n_lanes))
            result[target] = (permutation, shape)
        return result

    def lay_out(self, table: torch.Tensor, target: int) -> torch.Tensor:
        """Reshape a ``(..., 2**n_controls)`` table to the lane axes, singleton at ``target``."""
        permutation, shape = self._table_permutations[target]
        return table.reshape((2,) * self.n_controls).permute(permutation).reshape(shape)
