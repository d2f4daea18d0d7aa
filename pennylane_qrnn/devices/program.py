"""A whole QRNN sequence as one circuit of basic gates with recorded measurements.

On hardware nothing can be postselected: every mid-circuit measurement (the neurons' ancillas,
the i/o lanes after each step) is measured and recorded, and the shots are filtered afterwards
(:mod:`pennylane_qrnn.devices.execution`). A :class:`SequenceProgram` is that circuit: a flat list
of gates (``RY``, ``CNOT``, ``X``, ``PhaseShift``) and :class:`Record` steps (measure a wire into
a classical record, then reset it), built from the :class:`~pennylane_qrnn.QRNNCell` template's
own decomposition, so the hardware runs exactly the circuit the tests check.

A step may skip its output stage (the ``qpu`` protocol's unscored steps,
:mod:`pennylane_qrnn.protocols`): its cell has no output neurons (``QRNNCell(output=False)``)
and the step records nothing on the i/o lanes, which are back in ``|0>``; its neurons' ancilla
records, in postselect mode, remain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pennylane as qml
import torch

from ..errors import QRNNTypeError, QRNNValueError
from ..layout import CellLayout
from ..templates import QRNNCell, QuantumNeuron
from ..templates.tokens import token_bits

__all__ = [
    "Record",
    "SequenceProgram",
    "GATES",
    "check_layout",
    "deferred_width",
    "cell_operations",
]

#: the gate set a program uses (everything else is decomposed into it)
GATES = ("RY", "CNOT", "PauliX", "PhaseShift")


def deferred_width(layout: CellLayout, skip_output=None, length: int | None = None) -> int:
    """Qubits of a sequence whose measurements are deferred onto fresh qubits, when the steps
    marked in ``skip_output`` (``(L,)`` bools, or ``None`` with ``length``) skip their output
    stage: each of those saves the i/o readout and the output neurons' ancilla measurements."""
    if skip_output is None:
        return layout.deferred_wires(int(length or 0))
    skipped = [bool(s) for s in skip_output]
    per_neuron = (layout.measurements_per_step - layout.io_bits) // layout.n_neurons
    saved = layout.io_bits * (1 + per_neuron)
    return layout.deferred_wires(len(skipped)) - saved * sum(skipped)


def check_layout(layout) -> CellLayout:
    """``layout`` if it is a :class:`~pennylane_qrnn.layout.CellLayout`, else a
    :class:`~pennylane_qrnn.errors.QRNNTypeError`."""
    if not isinstance(layout, CellLayout):
        raise QRNNTypeError(f"layout must be a CellLayout; got {type(layout).__name__}")
    return layout


@dataclass(frozen=True)
class Record:
    """Measure ``wire`` into record ``index`` and reset it to ``|0>``.

    ``kind`` is ``"ancilla"`` (a neuron's ancilla: the shot survives only if it reads 0) or
    ``"io"`` (lane ``lane`` of the i/o register after step ``step``).
    """

    index: int
    wire: int
    kind: str
    step: int
    lane: int = 0


@dataclass
class SequenceProgram:
    """One sequence as one circuit (see the module docstring).

    Attributes:
        operations: gates (PennyLane operators on wires ``0 .. n_wires-1``) and :class:`Record` s
        records: every :class:`Record`, in order
        layout: the cell's :class:`~pennylane_qrnn.layout.CellLayout` (sizes and wires)
        length: the number of steps
        tokens: the input token of each step
        skipped: for each step, whether its output stage is skipped (nothing read on the i/o)
    """

    operations: list
    records: list
    layout: CellLayout
    length: int
    tokens: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.skipped:
            self.skipped = [False] * self.length

    @classmethod
    def build(cls, weights, tokens, layout: CellLayout, skip_output=None) -> SequenceProgram:
        """The program of one sequence: for each step, the cell on ``tokens[t]`` (which writes
        the token itself), then a record of the i/o lanes (then reset them).

        Args:
            weights: the cell's four weight tensors (a :class:`~pennylane_qrnn.QRNN`'s
                ``weights()``)
            tokens: the input token of each step
            layout (CellLayout): the cell's sizes, neuron settings and wires
            skip_output: ``(L,)`` bools, the steps without output stage and i/o record (default:
                none)
        """
        check_layout(layout)
        weights = [np.asarray(torch.as_tensor(w).detach().cpu().double()) for w in weights]
        operations, records = [], []
        tokens = [int(t) for t in tokens]
        skipped = [False] * len(tokens) if skip_output is None else [bool(s) for s in skip_output]
        if len(skipped) != len(tokens):
            raise QRNNValueError(
                f"skip_output must have one entry per token ({len(tokens)}); got {len(skipped)}"
            )
        with qml.QueuingManager.stop_recording():
            for step, token in enumerate(tokens):
                token_bits(token, layout.io_bits)
                for op in cell_operations(weights, token, layout, output=not skipped[step]):
                    if isinstance(op, qml.ops.MidMeasure):
                        record = Record(len(records), int(op.wires[0]), "ancilla", step)
                        records.append(record)
                        operations.append(record)
                    else:
                        operations.append(op)
                for lane, wire in enumerate([] if skipped[step] else layout.io_wires):
                    record = Record(len(records), wire, "io", step, lane)
                    records.append(record)
                    operations.append(record)
        return cls(operations, records, layout, len(tokens), tokens, skipped)

    # -- views --------------------------------------------------------------------------
    @property
    def n_wires(self) -> int:
        """Qubits the circuit uses when measured lanes are reset and reused."""
        return self.layout.n_wires

    @property
    def io_bits(self) -> int:
        return self.layout.io_bits

    @property
    def gates(self) -> list:
        return [op for op in self.operations if not isinstance(op, Record)]

    def io_records(self, step) -> list[Record]:
        return [r for r in self.records if r.kind == "io" and r.step == step]

    def ancilla_records(self, step) -> list[Record]:
        return [r for r in self.records if r.kind == "ancilla" and r.step == step]

    @property
    def deferred_wires(self) -> int:
        """Qubits needed when every measurement gets a fresh qubit (no mid-circuit measurement)."""
        return self.n_wires + len(self.records)

    def deferred_operations(self) -> list:
        """The program without mid-circuit measurements: record ``k`` is copied onto the fresh
        wire ``n_wires + k`` by a CNOT, and the measured lane is reset by a CNOT back from it
        (both lanes hold the same basis state after the copy)."""
        out = []
        for op in self.operations:
            if isinstance(op, Record):
                fresh = self.n_wires + op.index
                out.append(qml.CNOT(wires=[op.wire, fresh]))
                out.append(qml.CNOT(wires=[fresh, op.wire]))
            else:
                out.append(op)
        return out

    def counts(self) -> dict:
        """Gate counts of the program (before any transpilation)."""
        counts = {name: 0 for name in GATES}
        for op in self.gates:
            counts[op.name] = counts.get(op.name, 0) + 1
        counts["measurements"] = len(self.records)
        counts["ancilla_measurements"] = sum(r.kind == "ancilla" for r in self.records)
        return counts


def cell_operations(weights, token: int, layout: CellLayout, output: bool = True) -> list:
    """One step's cell on ``token`` as the program's gates (amplified neurons decomposed) and
    mid-circuit measurements, in circuit order. The weights are used as given: torch tensors
    keep their graph (what :mod:`pennylane_qrnn.executors.parameter_shift` differentiates).

    Args:
        weights: the cell's four weight tensors
        token (int): the step's input token
        layout (CellLayout): the cell's sizes, neuron settings and wires
        output (bool): whether the step runs its output stage

    Returns:
        list: the operations

    **Example**

    >>> from pennylane_qrnn import QRNN
    >>> from pennylane_qrnn.devices.program import cell_operations
    >>> model = QRNN(1, 1, stages=0, degree=1, order=1, mode="amplified")
    >>> sorted({op.name for op in cell_operations(model.weights(), 1, model.layout)})
    ['CNOT', 'PauliX', 'RY']
    """
    with qml.QueuingManager.stop_recording():
        cell = QRNNCell.from_layout(layout, *weights, token=token, output=output)
        return list(_flatten(cell.decomposition()))


def _flatten(ops):
    """Decompose templates (amplified neurons) down to the program's gate set."""
    for op in ops:
        if isinstance(op, QuantumNeuron):
            yield from _flatten(op.decomposition())
        elif isinstance(op, qml.ops.MidMeasure) or op.name in GATES:
            yield op
        else:
            raise QRNNTypeError(f"operation must decompose into {GATES}; got {op.name}")
