"""One submission: a batch of :class:`~pennylane_qrnn.devices.program.SequenceProgram` s sent to
a provider at once, and read back.

What one submission is, per provider:

* **IBM / Qiskit** (``method="dynamic"``): one Sampler job whose PUBs are the batch's circuits
  (``SamplerV2(mode=...).run([c1, c2, ...], shots=...)``), in job mode, or in a runtime
  ``Batch`` or ``Session`` (``runtime="batch"``/``"session"``, or the ``session=`` a
  pennylane-qiskit device was given). On a fake backend or Aer the job is one ``backend.run``
  of all circuits (qiskit's ``BackendSamplerV2``, which qiskit-ibm-runtime's local testing
  mode runs too, and which keeps ``seed=0``; in a ``Batch`` or ``Session`` local mode runs
  it). pennylane-qiskit itself sends one job per tape, so the circuits are built and sent here
  (:func:`~pennylane_qrnn.devices.execution.to_qiskit`).
* **Amazon Braket** (``braket.*``, measurements deferred): where the device takes program sets
  (the local simulators, newer QPUs), one task running a ``ProgramSet`` of the circuits;
  otherwise one ``run_batch`` of parallel tasks (``max_parallel`` of them at a time). The
  circuits are translated by the PennyLane-Braket plugin's own gate translation
  (:func:`~pennylane_qrnn.devices.braket.braket_circuit`) and sent with the Braket SDK, so that
  the task ids are known (and written to the ledger) as soon as the tasks exist.
* **other PennyLane devices** (``native``, ``deferred``): one ``qml.execute`` of all tapes.

:func:`submit` sends and returns a :class:`Submission` (ids now, records on
:meth:`Submission.results`); :func:`retrieve` fetches a cloud submission's records by its ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pennylane as qml

from ..errors import QRNNValueError
from .capabilities import device_name
from .execution import check_capacity, to_qiskit
from .facts import qiskit_backend
from .program import Record

__all__ = ["Submission", "submit", "retrieve", "provider_of", "RUNTIME_MODES"]

#: how IBM jobs are grouped: ``"job"`` (each submission a job), ``"batch"``, ``"session"``
RUNTIME_MODES = ("job", "batch", "session")


@dataclass
class Submission:
    """A batch of programs the provider accepted.

    Attributes:
        provider: ``"qiskit"``, ``"braket"`` or ``"pennylane"``
        backend: the backend's name
        ids: the provider's job or task ids (empty where it gives none)
        local: whether it ran on this machine (its jobs cannot be fetched later)
        kind: ``"job"`` (one IBM job), ``"program_set"`` (one Braket task), ``"tasks"`` (Braket
            parallel tasks) or ``"execute"`` (one PennyLane execution)
        extra: more to record in the ledger (e.g. the IBM session id)
    """

    provider: str
    backend: str
    ids: list
    local: bool
    kind: str
    wait: Callable[[], list] = field(repr=False)
    extra: dict = field(default_factory=dict)

    def results(self) -> list[np.ndarray]:
        """The records of each program, ``(shots, n_records)`` of 0/1 (waits for the provider)."""
        return self.wait()


def provider_of(device, method: str) -> str:
    """``"qiskit"`` (dynamic circuits), ``"braket"`` (a Braket device, deferred) or
    ``"pennylane"``."""
    if method == "dynamic":
        return "qiskit"
    name = device if isinstance(device, str) else device_name(device)
    if method == "deferred" and str(name).startswith("braket."):
        return "braket"
    return "pennylane"


def submit(programs, device, method: str, shots: int, seed=None, runtime=None) -> Submission:
    """Send ``programs`` to ``device`` as one submission (see the module docstring); each is
    checked against the device's width first (:func:`~pennylane_qrnn.devices.execution.
    check_capacity`). ``runtime`` (IBM only): an open ``qiskit_ibm_runtime`` ``Batch`` or
    ``Session`` to run the job in (default: the pennylane-qiskit device's session, if any)."""
    for program in programs:
        check_capacity(program, device, method)
    provider = provider_of(device, method)
    if provider == "qiskit":
        return _submit_qiskit(programs, device, shots, seed, runtime)
    if provider == "braket":
        return _submit_braket(programs, device, shots)
    return _submit_pennylane(programs, device, method, shots)


# -- IBM ----------------------------------------------------------------------------------------
def _bits_from_pub(pub_result) -> np.ndarray:
    # qiskit prints classical bit 0 rightmost
    strings = pub_result.data.rec.get_bitstrings()
    return np.array([[int(b) for b in reversed(s)] for s in strings], dtype=np.uint8)


def is_cloud_backend(backend) -> bool:
    """Whether a Qiskit backend is an IBM cloud backend (not Aer or a fake backend)."""
    return type(backend).__module__.startswith("qiskit_ibm_runtime.ibm_backend")


def open_runtime(device, mode: str):
    """An open ``Batch`` or ``Session`` (``mode`` ``"batch"``/``"session"``) on ``device``'s
    Qiskit backend, or None for ``"job"``; close it when done."""
    if mode == "job":
        return None
    from qiskit_ibm_runtime import Batch, Session

    return (Batch if mode == "batch" else Session)(backend=qiskit_backend(device))


def _submit_qiskit(programs, device, shots, seed, runtime) -> Submission:
    from qiskit import transpile
    from qiskit_ibm_runtime import SamplerV2

    backend = qiskit_backend(device)
    circuits = [  # one by one: the same circuits as a job of one, no process pool
        transpile(to_qiskit(p), backend=backend, optimization_level=1, seed_transpiler=0)
        for p in programs
    ]
    runtime = runtime if runtime is not None else getattr(device, "_session", None)
    local = not is_cloud_backend(backend)
    if local and runtime is None:
        # what qiskit-ibm-runtime's local testing mode runs, minus its dropping seed 0
        from qiskit.primitives import BackendSamplerV2

        options = {} if seed is None else {"seed_simulator": int(seed)}
        sampler = BackendSamplerV2(backend=backend, options=options)
    else:
        sampler = SamplerV2(mode=runtime if runtime is not None else backend)
        if seed is not None:
            sampler.options.simulator.seed_simulator = int(seed)
    job = sampler.run(circuits, shots=shots)
    name = getattr(backend, "name", None) or type(backend).__name__
    extra = {}
    session_id = getattr(runtime, "session_id", None)
    if session_id:
        extra["session_id"] = str(session_id)
    return Submission(
        "qiskit",
        str(name() if callable(name) else name),
        [job.job_id()],
        local,
        "job",
        lambda: [_bits_from_pub(pub) for pub in job.result()],
        extra,
    )


# -- Braket -------------------------------------------------------------------------------------
def _braket_device(device):
    """The Braket SDK device (``LocalSimulator`` / ``AwsDevice``) behind a plugin device."""
    inner = getattr(device, "_device", None)
    if inner is None:
        raise QRNNValueError(
            f"device must be a PennyLane-Braket device (braket.local.qubit, braket.aws.qubit); "
            f"got {type(device).__name__}"
        )
    return inner


def _braket_measurements(result) -> np.ndarray:
    return np.asarray(result.measurements, dtype=np.uint8)


def program_set_limits(braket_device):
    """``(max executables, max total shots)`` of a Braket device's program sets, or None if it
    takes none."""
    from braket.device_schema import DeviceActionType

    action = braket_device.properties.action.get(DeviceActionType.OPENQASM_PROGRAM_SET)
    if action is None:
        return None
    return action.maximumExecutables, getattr(action, "maximumTotalShots", None)


def _submit_braket(programs, device, shots) -> Submission:
    from braket.devices import LocalSimulator

    from .braket import braket_circuit

    inner = _braket_device(device)
    circuits = [braket_circuit(p) for p in programs]
    noise = getattr(device, "_noise_model", None)
    if noise is not None:
        circuits = [noise.apply(c) for c in circuits]
    local = isinstance(inner, LocalSimulator)
    options = {}
    if not local:
        options = {"s3_destination_folder": getattr(device, "_s3_folder", None)}
        timeout = getattr(device, "_poll_timeout_seconds", None)
        if timeout is not None:
            options["poll_timeout_seconds"] = timeout
    name = getattr(inner, "arn", None) or getattr(inner, "name", None) or device_name(device)
    limits = program_set_limits(inner)
    fits = limits is not None and len(circuits) <= limits[0]
    fits = fits and (limits[1] is None or len(circuits) * shots <= limits[1])
    if fits:
        from braket.program_sets import ProgramSet

        task = inner.run(
            ProgramSet(circuits, shots_per_executable=shots), shots=shots * len(circuits), **options
        )
        return Submission(
            "braket",
            str(name),
            [task.id],
            local,
            "program_set",
            lambda: _program_set_bits(task.result()),
        )
    max_parallel = getattr(device, "_max_parallel", None)
    batch = inner.run_batch(circuits, shots=shots, max_parallel=max_parallel, **options)
    tasks = getattr(batch, "tasks", None) or []  # a local batch has none to name
    return Submission(
        "braket",
        str(name),
        [t.id for t in tasks],
        local,
        "tasks",
        lambda: [_braket_measurements(r) for r in _batch_results(batch, local)],
    )


def _batch_results(batch, local):
    if local:
        return batch.results()
    return batch.results(fail_unsuccessful=True, max_retries=3)


def _program_set_bits(result) -> list[np.ndarray]:
    return [_braket_measurements(entry[0]) for entry in result]


# -- other PennyLane devices -------------------------------------------------------------------
def _tape(program, method, shots):
    with qml.queuing.AnnotatedQueue() as queue:
        if method == "native":
            values = []
            for op in program.operations:
                if isinstance(op, Record):
                    values.append(qml.measure(op.wire, reset=True))
                else:
                    qml.apply(op)
            qml.sample(op=values)
        else:
            for op in program.deferred_operations():
                qml.apply(op)
            qml.counts(wires=[program.n_wires + r.index for r in program.records])
    return qml.tape.QuantumScript.from_queue(queue, shots=shots)


def counts_to_bits(counts, n_records: int) -> np.ndarray:
    """``{bitstring: count}`` as ``(shots, n_records)`` rows of 0/1."""
    rows = []
    for bitstring, count in counts.items():
        rows.extend([[int(b) for b in bitstring]] * int(count))
    return np.asarray(rows, dtype=np.uint8).reshape(-1, n_records)


def _submit_pennylane(programs, device, method, shots) -> Submission:
    tapes = [_tape(p, method, shots) for p in programs]
    mcm = "one-shot" if method == "native" else None
    results = qml.execute(tapes, device, diff_method=None, mcm_method=mcm)
    bits = []
    for program, result in zip(programs, results, strict=True):
        n = len(program.records)
        if method == "native":
            bits.append(np.asarray(result, dtype=np.uint8).reshape(shots, n))
        else:
            bits.append(counts_to_bits(result, n))
    return Submission("pennylane", device_name(device), [], True, "execute", lambda: bits)


# -- reading a cloud submission back ---------------------------------------------------------
def retrieve(entry: dict, device) -> list[np.ndarray]:
    """The records of a cloud submission from its ledger ``entry``, fetched by its job/task ids
    through the provider's API (``QiskitRuntimeService.job``, ``AwsQuantumTask``); waits for
    it to finish if it has not.

    Raises:
        QRNNValueError: the entry is local (local jobs cannot be fetched) or has no ids
    """
    if entry.get("local") or not entry.get("ids"):
        raise QRNNValueError(
            "entry must be a cloud submission with job/task ids to retrieve; got a local one"
        )
    if entry["provider"] == "qiskit":
        backend = qiskit_backend(device)
        service = getattr(backend, "service", None)
        if service is None:
            from qiskit_ibm_runtime import QiskitRuntimeService

            service = QiskitRuntimeService()
        (job_id,) = entry["ids"]
        return [_bits_from_pub(pub) for pub in service.job(job_id).result()]
    from braket.aws import AwsQuantumTask

    if entry["kind"] == "program_set":
        (arn,) = entry["ids"]
        return _program_set_bits(AwsQuantumTask(arn).result())
    return [_braket_measurements(AwsQuantumTask(arn).result()) for arn in entry["ids"]]
