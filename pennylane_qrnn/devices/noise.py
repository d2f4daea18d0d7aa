"""A trained QRNN on noisy backends: accuracy from shots, next to the exact number.

Noise comes from where a user would get it: an IBM backend's calibration data (qiskit-ibm-runtime's
fake backends run as dynamic circuits), a Qiskit Aer depolarizing model of chosen strength, or
PennyLane noise channels on Braket's local density-matrix simulator (measurements deferred).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pennylane as qml

from ..errors import QRNNValueError
from ..protocols import get_protocol
from .execution import run_program
from .hardware import ShotRunner
from .program import Record, SequenceProgram

__all__ = [
    "ShotAccuracy",
    "shot_accuracy",
    "depolarizing_aer",
    "with_depolarizing",
    "run_noisy_deferred",
]


@dataclass
class ShotAccuracy:
    """Accuracy of the scored steps estimated from shots.

    Attributes:
        accuracy: fraction of (surviving shot, scored step) pairs whose outcome is the target
        per_sequence: that fraction per sequence
        surviving_fraction: mean fraction of shots kept per sequence
        shots: shots per sequence
    """

    accuracy: float
    per_sequence: list
    surviving_fraction: float
    shots: int

    @property
    def standard_error(self) -> float:
        values = np.asarray(self.per_sequence, dtype=float)
        return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def shot_accuracy(model, batch, run, shots, protocol="measured") -> ShotAccuracy:
    """Run every sequence of ``batch`` with ``run(program, shots) -> bits`` and score it.

    Each sequence goes through the shot path's pipeline (:meth:`ShotRunner.estimate`: build
    the program, run it, filter the shots); ``run`` only says how the program is executed.

    Args:
        model: a :class:`~pennylane_qrnn.QRNN` (its ``layout`` and ``weights()``)
        batch: a task batch (``tokens``, ``targets``, ``scored``, ``forced``)
        run: ``run(program, shots) -> (shots, n_records)`` records, e.g. :func:`noiseless`
        shots: shots per sequence
        protocol: a :class:`~pennylane_qrnn.protocols.Protocol` or its name: ``"measured"``
            (default: no i/o postselection, every shot counts) or ``"forced-steps"`` (shots are
            kept only where the forced, unscored steps read their targets); the deprecated
            ``"reference"`` means ``"forced-steps"`` here

    Raises:
        QRNNValueError: an unknown protocol, or one that postselects the scored steps on their
            targets (``"teacher-forced"``: every surviving shot would read as right)
    """
    protocol = get_protocol(protocol, purpose="evaluation")
    if protocol.output != "every":
        raise QRNNValueError(
            "protocol must run the output stage at every step in shot_accuracy; got "
            f"{protocol.name!r}, which skips it at unscored steps (run it with the Shots executor)"
        )
    if not protocol.samples_scored_steps:
        raise QRNNValueError(
            "protocol must measure the scored steps ('measured' or 'forced-steps'); got "
            f"{protocol.name!r}: postselected on their targets, they read as right by construction"
        )
    runner = ShotRunner(None, model.layout, None, shots, execute=run)
    postselected = protocol.mask(batch)
    weights = model.weights()
    per_sequence, survival = [], []
    for item in range(batch.size):
        targets = batch.targets[:, item].tolist()
        scored = batch.scored[:, item].tolist()
        estimate = runner.estimate(
            weights, batch.tokens[:, item].tolist(), targets, postselected[:, item].tolist()
        )
        alive = estimate.alive
        right = [
            (estimate.outcomes[alive, step] == targets[step]).mean()
            for step in range(len(targets))
            if scored[step]
        ]
        per_sequence.append(float(np.mean(right)) if alive.any() else float("nan"))
        survival.append(float(alive.mean()))
    values = np.asarray(per_sequence)
    return ShotAccuracy(float(np.nanmean(values)), per_sequence, float(np.mean(survival)), shots)


def depolarizing_aer(two_qubit: float, one_qubit: float | None = None, readout: float = 0.0):
    """An Aer simulator whose gates depolarize: ``two_qubit`` on ``cx``, ``one_qubit`` (default a
    tenth) on ``rz``/``sx``/``x``, and a symmetric ``readout`` flip; circuits are transpiled to
    that basis with all-to-all connectivity."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    one_qubit = two_qubit / 10 if one_qubit is None else one_qubit
    model = NoiseModel(basis_gates=["rz", "sx", "x", "cx"])
    if two_qubit:
        model.add_all_qubit_quantum_error(depolarizing_error(two_qubit, 2), ["cx"])
    if one_qubit:
        model.add_all_qubit_quantum_error(depolarizing_error(one_qubit, 1), ["rz", "sx", "x"])
    if readout:
        model.add_all_qubit_readout_error(
            ReadoutError([[1 - readout, readout], [readout, 1 - readout]])
        )
    return AerSimulator(noise_model=model, basis_gates=["rz", "sx", "x", "cx", "measure", "reset"])


def with_depolarizing(operations, probability: float) -> list:
    """``operations`` with a depolarizing channel of ``probability`` on every qubit a gate touches,
    after the gate (PennyLane channels, which Braket's density-matrix simulator runs)."""
    out = []
    for op in operations:
        out.append(op)
        if probability and not isinstance(op, Record):
            out.extend(qml.DepolarizingChannel(probability, wires=w) for w in op.wires)
    return out


def run_noisy_deferred(
    program: SequenceProgram, device, shots: int, probability: float
) -> np.ndarray:
    """Run ``program`` with deferred measurements and depolarizing noise on a mixed-state device
    (e.g. ``braket.local.qubit`` with ``backend="braket_dm"``); records ``(shots, n_records)``."""
    return run_program(
        program, device, "deferred", shots, decorate=lambda ops: with_depolarizing(ops, probability)
    )


def noiseless(device, method, seed=None):
    """A ``run(program, shots)`` for :func:`shot_accuracy` on ``device`` by ``method``."""
    return lambda program, shots: run_program(program, device, method, shots, seed=seed)
