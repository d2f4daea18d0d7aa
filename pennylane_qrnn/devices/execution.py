"""Running a :class:`~pennylane_qrnn.devices.program.SequenceProgram` with shots, and reading the
shots the way hardware must: filter on the recorded measurements.

Three ways to realise the mid-circuit measurements, chosen per device
(:func:`pennylane_qrnn.devices.capabilities.capabilities`) and overridable:

* ``"native"``: PennyLane mid-circuit measurements with reset (``mcm_method="one-shot"``) on
  devices that simulate them shot by shot (``default.qubit``, ``lightning.*``);
* ``"dynamic"``: a Qiskit circuit with real ``measure`` and ``reset`` instructions, run with a
  Qiskit backend's sampler (IBM dynamic circuits; Aer; IBM fake backends with their noise). This
  sidesteps ``qiskit.remote`` refusing PennyLane mid-circuit measurements;
* ``"deferred"``: no mid-circuit measurement at all; each measurement is copied onto a fresh
  qubit, so the qubit count grows with the number of measurements (reported by
  :attr:`SequenceProgram.deferred_wires`). Works on any device that returns counts.

:func:`analyse_shots` then keeps, step by step, the shots whose neuron ancillas read 0 (the
neurons' repeat-until-success postselection) and, under teacher forcing, whose i/o outcomes equal
the targets; the surviving shots' i/o outcomes estimate each step's distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pennylane as qml

from .program import Record, SequenceProgram
from ..errors import QRNNTypeError, QRNNValueError

__all__ = ["run_program", "analyse_shots", "ShotEstimate", "to_qiskit", "METHODS"]

METHODS = ("native", "dynamic", "deferred")


def run_program(program: SequenceProgram, device, method: str, shots: int, seed=None) -> np.ndarray:
    """Execute ``program`` with ``shots`` and return the records, ``(shots, n_records)`` of 0/1.

    Args:
        device: a PennyLane device (``native``, ``deferred``) or a Qiskit backend (``dynamic``;
            a pennylane-qiskit device is unwrapped to its backend)
        method: ``"native"``, ``"dynamic"`` or ``"deferred"``
    """
    if method not in METHODS:
        raise QRNNValueError(f"method must be one of {METHODS}; got {method!r}")
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise QRNNValueError(f"shots must be a positive int; got {shots!r}")
    if method == "dynamic":
        return _run_dynamic(program, device, int(shots), seed)
    if method == "native":
        return _run_native(program, device, int(shots))
    return _run_deferred(program, device, int(shots))


def _run_native(program, device, shots):
    def circuit():
        values = []
        for op in program.operations:
            if isinstance(op, Record):
                values.append(qml.measure(op.wire, reset=True))
            else:
                qml.apply(op)
        return qml.sample(op=values)

    samples = qml.QNode(circuit, device, mcm_method="one-shot", shots=shots)()
    return np.asarray(samples, dtype=np.uint8).reshape(shots, len(program.records))


def _run_deferred(program, device, shots, decorate=None):
    """Deferred execution; ``decorate`` may rewrite the operation list (e.g. add noise)."""
    device_wires = getattr(device, "wires", None)
    if device_wires is not None and len(device_wires) < program.deferred_wires:
        raise QRNNValueError(
            f"device must have at least {program.deferred_wires} wires for this sequence with deferred "
            f"measurements ({program.n_wires} lanes + {len(program.records)} measurements); got {len(device_wires)}"
        )
    record_wires = [program.n_wires + r.index for r in program.records]

    def circuit():
        operations = program.deferred_operations()
        for op in decorate(operations) if decorate else operations:
            qml.apply(op)
        return qml.counts(wires=record_wires)

    counts = qml.QNode(circuit, device, shots=shots)()
    rows = []
    for bitstring, count in counts.items():
        rows.extend([[int(b) for b in bitstring]] * int(count))
    return np.asarray(rows, dtype=np.uint8).reshape(-1, len(record_wires))


def to_qiskit(program: SequenceProgram, deferred: bool = False):
    """The program as a Qiskit ``QuantumCircuit`` with one classical bit per record (measure then
    reset, i.e. a dynamic circuit), or with fresh qubits and final measurements if ``deferred``."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister  # pylint: disable=import-outside-toplevel

    n_qubits = program.deferred_wires if deferred else program.n_wires
    circuit = QuantumCircuit(QuantumRegister(n_qubits, "q"), ClassicalRegister(len(program.records), "rec"))
    operations = program.deferred_operations() if deferred else program.operations
    for op in operations:
        if isinstance(op, Record):
            circuit.measure(op.wire, op.index)
            circuit.reset(op.wire)
            continue
        wires = [int(w) for w in op.wires]
        if op.name == "RY":
            circuit.ry(float(op.data[0]), wires[0])
        elif op.name == "CNOT":
            circuit.cx(wires[0], wires[1])
        elif op.name == "PauliX":
            circuit.x(wires[0])
        elif op.name == "PhaseShift":
            circuit.p(float(op.data[0]), wires[0])
        else:  # pragma: no cover - SequenceProgram only emits the four gates
            raise QRNNTypeError(f"operation must be one of RY, CNOT, PauliX, PhaseShift; got {op.name}")
    if deferred:
        for record in program.records:
            circuit.measure(program.n_wires + record.index, record.index)
    return circuit


def _qiskit_backend(device):
    backend = getattr(device, "backend", None)
    return device if backend is None else backend


def _run_dynamic(program, device, shots, seed):
    from qiskit import transpile  # pylint: disable=import-outside-toplevel
    from qiskit_ibm_runtime import SamplerV2  # pylint: disable=import-outside-toplevel

    backend = _qiskit_backend(device)
    circuit = transpile(to_qiskit(program), backend=backend, optimization_level=1, seed_transpiler=0)
    sampler = SamplerV2(mode=backend)
    if seed is not None:
        sampler.options.simulator.seed_simulator = int(seed)
    result = sampler.run([circuit], shots=shots).result()
    bitstrings = result[0].data.rec.get_bitstrings()
    # qiskit prints classical bit 0 rightmost
    return np.array([[int(b) for b in reversed(s)] for s in bitstrings], dtype=np.uint8)


@dataclass
class ShotEstimate:
    """What the shots say about one sequence.

    Attributes:
        probs: ``(L, 2**I)`` each step's i/o distribution among the shots still alive before it
            (NaN where none is)
        alive_before: ``(L,)`` shots alive at the start of each step
        neuron_survivors: ``(L,)`` of those, the shots whose step-``t`` ancillas all read 0
        outcomes: ``(shots, L)`` each shot's i/o token per step
        surviving_fraction: shots alive after the last step, over all shots (teacher forcing and
            neurons together)
        shots: shots taken
        alive: ``(shots,)`` bool, the shots alive after the last step
    """

    probs: np.ndarray
    alive_before: np.ndarray
    neuron_survivors: np.ndarray
    outcomes: np.ndarray
    surviving_fraction: float
    shots: int
    alive: np.ndarray


def analyse_shots(program: SequenceProgram, bits: np.ndarray, targets=None, forced=None) -> ShotEstimate:
    """Filter shots step by step (see the module docstring).

    Args:
        targets: ``(L,)`` tokens to postselect the i/o outcomes on (teacher forcing), or ``None``
        forced: ``(L,)`` bools, the steps to postselect (default: every step when ``targets``)
    """
    shots = bits.shape[0]
    length, vocabulary = program.length, 2**program.io_bits
    alive = np.ones(shots, dtype=bool)
    probs = np.full((length, vocabulary), np.nan)
    alive_before = np.zeros(length, dtype=np.int64)
    neuron_survivors = np.zeros(length, dtype=np.int64)
    outcomes = np.zeros((shots, length), dtype=np.int64)
    for step in range(length):
        alive_before[step] = alive.sum()
        for record in program.ancilla_records(step):
            alive &= bits[:, record.index] == 0
        neuron_survivors[step] = alive.sum()
        token = np.zeros(shots, dtype=np.int64)
        for record in program.io_records(step):
            token = 2 * token + bits[:, record.index]
        outcomes[:, step] = token
        if alive.any():
            probs[step] = np.bincount(token[alive], minlength=vocabulary) / alive.sum()
        if targets is not None and (forced is None or forced[step]):
            alive &= token == int(targets[step])
    return ShotEstimate(probs, alive_before, neuron_survivors, outcomes, float(alive.mean()), shots, alive)
