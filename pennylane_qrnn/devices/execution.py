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

A step counts as *measured* when at least ``min_survivors`` shots (default 1) reach its i/o
readout; its estimate is their frequencies, reported with the count it rests on and a standard
error. An unmeasured step has NaN probabilities: nothing is invented for it. A step whose output
stage the program skips (:attr:`SequenceProgram.skipped`) reads nothing by design: NaN
probabilities and outcome :data:`~pennylane_qrnn.engine.outcomes.NOT_MEASURED` too, but it is
not short of shots, and every shot alive carries over.

Before anything runs, :func:`check_capacity` compares the circuit's width with what the device
offers (a backend's qubit count, a local simulator's limit and memory) and refuses what cannot fit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pennylane as qml

from ..engine.outcomes import NOT_MEASURED
from ..errors import ModelSizeError, QRNNTypeError, QRNNValueError
from ..validation import check_choice, check_int
from .capabilities import DeviceCapabilityError, device_name
from .facts import device_facts, qiskit_backend
from .program import Record, SequenceProgram

__all__ = ["run_program", "analyse_shots", "ShotEstimate", "to_qiskit", "check_capacity", "METHODS"]

METHODS = ("native", "dynamic", "deferred")


def run_program(
    program: SequenceProgram, device, method: str, shots: int, seed=None, decorate=None
) -> np.ndarray:
    """Execute ``program`` with ``shots`` and return the records, ``(shots, n_records)`` of 0/1.

    Args:
        device: a PennyLane device (``native``, ``deferred``) or a Qiskit backend (``dynamic``;
            a pennylane-qiskit device is unwrapped to its backend)
        method: ``"native"``, ``"dynamic"`` or ``"deferred"``
        seed: the simulator's seed (``dynamic`` only)
        decorate: ``deferred`` only: a function that rewrites the deferred operation list
            before it runs (e.g. :func:`~pennylane_qrnn.devices.noise.with_depolarizing`)

    Raises:
        QRNNTypeError: ``shots`` is not an int
        QRNNValueError: ``method`` is not one of :data:`METHODS`, ``shots`` below 1, or
            ``decorate`` with another method than ``deferred``
    """
    check_choice("method", method, METHODS)
    shots = check_int("shots", shots, 1)
    if decorate is not None and method != "deferred":
        raise QRNNValueError(f"decorate needs method='deferred'; got method={method!r}")
    if method == "dynamic":
        return _run_dynamic(program, device, shots, seed)
    if method == "native":
        return _run_native(program, device, shots)
    return _run_deferred(program, device, shots, decorate)


def _run_native(program, device, shots):
    check_capacity(program, device, "native")

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
    check_capacity(program, device, "deferred")
    device_wires = getattr(device, "wires", None)
    if device_wires is not None and len(device_wires) < program.deferred_wires:
        raise QRNNValueError(
            f"device must have at least {program.deferred_wires} wires for this sequence with "
            f"deferred measurements ({program.n_wires} lanes + {len(program.records)} "
            f"measurements); got {len(device_wires)}"
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


#: bytes per amplitude of a complex128 state (what these simulators hold)
_AMPLITUDE_BYTES = 16


def available_memory() -> int:
    """Bytes of memory available to a new allocation on this machine (``MemAvailable``)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 2**63


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.3g} GiB"


def _device_limits(device, method):
    """``(name, max_qubits or None, local, density_matrix)`` of the device that will run."""
    if method == "dynamic":
        backend = qiskit_backend(device)
        name = getattr(backend, "name", None) or type(backend).__name__
        if callable(name):  # BackendV1
            name = name()
        module = type(backend).__module__
        local = "qiskit_aer" in module or "fake_provider" in module
        method_option = getattr(getattr(backend, "options", None), "method", None)
        return (
            str(name),
            getattr(backend, "num_qubits", None),
            local,
            method_option == "density_matrix",
        )
    name = device_name(device) if not isinstance(device, str) else device
    facts = device_facts(name)
    simulator = getattr(device, "_device", None)  # the Braket plugin's LocalSimulator / AwsDevice
    max_qubits, density = None, facts.density_matrix
    if name == "braket.local.qubit" and simulator is not None:
        density = getattr(simulator, "name", "") == "DensityMatrixSimulator"
        try:
            max_qubits = int(simulator.properties.paradigm.qubitCount)
        except (AttributeError, TypeError, ValueError):
            max_qubits = None
    return name, max_qubits, facts.local, density


def check_capacity(
    program: SequenceProgram, device, method: str, memory: int | None = None
) -> None:
    """Refuse, before anything is sent or allocated, a program wider than ``device`` can run.

    The width is :attr:`SequenceProgram.n_wires` (lanes measured and reset in place: ``native``,
    ``dynamic``) or :attr:`SequenceProgram.deferred_wires` (a fresh qubit per measurement:
    ``deferred``, which grows with the sequence length). It is checked against the backend's qubit
    count (a Qiskit backend's ``num_qubits``, a Braket simulator's ``qubitCount``) and, for a
    simulator on this machine, the memory of one state (16 bytes per amplitude, ``2**n``
    amplitudes, ``4**n`` for a density matrix) against ``memory`` (default: what is available).

    Raises:
        DeviceCapabilityError: the backend has fewer qubits than the program needs
        ModelSizeError: the simulator's state would not fit in memory
    """
    width = program.deferred_wires if method == "deferred" else program.n_wires
    what = (
        f"{width} qubits ({program.n_wires} lanes + {len(program.records)} deferred measurements)"
        if method == "deferred"
        else f"{width} qubits (measured lanes reset and reused)"
    )
    name, max_qubits, local, density = _device_limits(device, method)
    hint = (
        "use execution='dynamic' on a Qiskit backend (lanes reused), shorter sequences, or a "
        "smaller model"
        if method == "deferred"
        else "use a backend with more qubits, shorter sequences, or a smaller model"
    )
    needed = memory_text = None
    if local:
        memory = available_memory() if memory is None else int(memory)
        needed = _AMPLITUDE_BYTES * 2.0 ** (2 * width if density else width)
        fits = max(int(math.log2(max(memory, 1) / _AMPLITUDE_BYTES)) // (2 if density else 1), 0)
        kind = "density matrix" if density else "state vector"
        memory_text = (
            f"simulating it takes a {kind} of {_gib(needed)}, and {_gib(memory)} of memory is "
            f"available (room for {fits} qubits)"
        )
    if max_qubits is not None and width > max_qubits:
        raise DeviceCapabilityError(
            f"this {program.length}-step sequence needs {what}; {name} takes at most {max_qubits}"
            + (f"; {memory_text}" if needed is not None and needed > memory else "")
            + f". Nothing was run; {hint}"
        )
    if needed is not None and needed > memory:
        raise ModelSizeError(
            f"this {program.length}-step sequence needs {what} on {name}; {memory_text}. Nothing "
            f"was run; {hint}"
        )


def to_qiskit(program: SequenceProgram, deferred: bool = False):
    """The program as a Qiskit ``QuantumCircuit`` with one classical bit per record (measure then
    reset, i.e. a dynamic circuit), or with fresh qubits and final measurements if ``deferred``."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    n_qubits = program.deferred_wires if deferred else program.n_wires
    circuit = QuantumCircuit(
        QuantumRegister(n_qubits, "q"), ClassicalRegister(len(program.records), "rec")
    )
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
            raise QRNNTypeError(
                f"operation must be one of RY, CNOT, PauliX, PhaseShift; got {op.name}"
            )
    if deferred:
        for record in program.records:
            circuit.measure(program.n_wires + record.index, record.index)
    return circuit


def _run_dynamic(program, device, shots, seed):
    from qiskit import transpile
    from qiskit_ibm_runtime import SamplerV2

    check_capacity(program, device, "dynamic")
    backend = qiskit_backend(device)
    circuit = transpile(
        to_qiskit(program), backend=backend, optimization_level=1, seed_transpiler=0
    )
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
        probs: ``(L, 2**I)`` each step's i/o distribution among its :attr:`survivors`; NaN for a
            step that was not measured (fewer than ``min_survivors`` survivors)
        alive_before: ``(L,)`` shots alive at the start of each step
        neuron_survivors: ``(L,)`` of those, the shots whose step-``t`` ancillas all read 0 (the
            shots each step's estimate rests on)
        outcomes: ``(shots, L)`` each shot's i/o token per step
        surviving_fraction: shots alive after the last step, over all shots (teacher forcing and
            neurons together)
        shots: shots taken
        alive: ``(shots,)`` bool, the shots alive after the last step
        min_survivors: the survivors a step needs to count as measured
        completed: ``(shots,)`` how many steps each shot passed every postselection of
        skipped: ``(L,)`` bool, the steps whose output stage was skipped (nothing read there)
    """

    probs: np.ndarray
    alive_before: np.ndarray
    neuron_survivors: np.ndarray
    outcomes: np.ndarray
    surviving_fraction: float
    shots: int
    alive: np.ndarray
    min_survivors: int = 1
    completed: np.ndarray | None = None
    skipped: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.skipped is None:
            self.skipped = np.zeros(len(self.neuron_survivors), dtype=bool)

    @property
    def survivors(self) -> np.ndarray:
        """``(L,)`` the shots each step's distribution is estimated from."""
        return self.neuron_survivors

    @property
    def measured(self) -> np.ndarray:
        """``(L,)`` bool, the steps read with at least ``min_survivors`` survivors (the others
        are NaN)."""
        return (self.neuron_survivors >= self.min_survivors) & ~self.skipped

    @property
    def short(self) -> np.ndarray:
        """``(L,)`` bool, the steps read but with fewer than ``min_survivors`` survivors (a
        skipped step is not short: nothing was to be read)."""
        return (self.neuron_survivors < self.min_survivors) & ~self.skipped

    @property
    def standard_error(self) -> np.ndarray:
        """``(L,)`` an upper bound on each step's per-token standard error, ``0.5 / sqrt(n)`` for
        ``n`` survivors (the binomial maximum: it does not vanish for a one-hot estimate from a
        single shot); NaN where not measured."""
        n = self.neuron_survivors.astype(float)
        with np.errstate(divide="ignore"):
            return np.where(self.measured, 0.5 / np.sqrt(n), np.nan)


def analyse_shots(
    program: SequenceProgram, bits: np.ndarray, targets=None, forced=None, min_survivors: int = 1
) -> ShotEstimate:
    """Filter shots step by step (see the module docstring).

    Args:
        targets: ``(L,)`` tokens to postselect the i/o outcomes on (teacher forcing), or ``None``
        forced: ``(L,)`` bools, the steps to postselect (default: every step when ``targets``);
            a step the program skips (:attr:`SequenceProgram.skipped`) postselects nothing
        min_survivors: the surviving shots a step needs to be estimated; below, its
            probabilities are NaN
    """

    min_survivors = check_int("min_survivors", min_survivors, 1)
    shots = bits.shape[0]
    length, vocabulary = program.length, 2**program.io_bits
    alive = np.ones(shots, dtype=bool)
    probs = np.full((length, vocabulary), np.nan)
    alive_before = np.zeros(length, dtype=np.int64)
    neuron_survivors = np.zeros(length, dtype=np.int64)
    outcomes = np.zeros((shots, length), dtype=np.int64)
    completed = np.zeros(shots, dtype=np.int64)
    skipped = np.asarray(program.skipped, dtype=bool)
    for step in range(length):
        alive_before[step] = alive.sum()
        for record in program.ancilla_records(step):
            alive &= bits[:, record.index] == 0
        neuron_survivors[step] = alive.sum()
        if skipped[step]:
            outcomes[:, step] = NOT_MEASURED
            completed += alive
            continue
        token = np.zeros(shots, dtype=np.int64)
        for record in program.io_records(step):
            token = 2 * token + bits[:, record.index]
        outcomes[:, step] = token
        if neuron_survivors[step] >= min_survivors:
            probs[step] = np.bincount(token[alive], minlength=vocabulary) / neuron_survivors[step]
        if targets is not None and (forced is None or forced[step]):
            alive &= token == int(targets[step])
        completed += alive
    return ShotEstimate(
        probs,
        alive_before,
        neuron_survivors,
        outcomes,
        float(alive.mean()),
        shots,
        alive,
        int(min_survivors),
        completed,
        skipped,
    )
