"""Accuracy of trained QRNNs on noisy backends, next to the exact number.

    python benchmarks/noise.py [--shots 2000] [--sequences 16]

Two small models are trained with the exact engine in amplified mode under the hardware-honest
protocol (every step measured, nothing postselected on the i/o lanes), so that every shot counts:
Elman XOR (2 i/o + 2 workspace qubits, short sequences) and memorisation (3 i/o + 2 workspace).
Each is then evaluated from shots on:

* IBM: dynamic circuits (mid-circuit measure and reset) on Aer with depolarizing noise of growing
  strength, and on qiskit-ibm-runtime's FakeBrisbane (real calibration data: its coupling map,
  ECR gates, T1/T2, readout errors);
* Braket's local density-matrix simulator with depolarizing channels after every gate
  (measurements deferred onto fresh qubits, as Braket QPUs need).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pennylane_qrnn import QRNN  # noqa: E402
from pennylane_qrnn.devices.noise import (
    depolarizing_aer,
    noiseless,
    run_noisy_deferred,
    shot_accuracy,
)  # noqa: E402
from pennylane_qrnn.evaluation import evaluate  # noqa: E402
from pennylane_qrnn.protocols import MEASURED  # noqa: E402
from pennylane_qrnn.tasks import Batch, ElmanXOR, Memorisation  # noqa: E402


def train(task, io_bits, workspace, steps, lr, seed=0):
    torch.manual_seed(seed)
    model = QRNN(
        io_bits, workspace, stages=1, degree=2, order=2, mode="amplified", dtype=torch.float64
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    data = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = task.batch(16, data)
        # the measured protocol: every step sampled, nothing postselected on the i/o lanes
        mask = MEASURED.postselected(batch.forced, batch.scored)
        output = model(batch.tokens, batch.targets, postselected=mask, generator=data)
        loss = model.loss(output.log_probs, batch.targets, batch.scored)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


MAX_DM_QUBITS = 12


def _braket_dm(probability):
    import pennylane as qml

    def run(program, shots):
        device = qml.device("braket.local.qubit", wires=program.deferred_wires, backend="braket_dm")
        return run_noisy_deferred(program, device, shots, probability)

    return run


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--sequences", type=int, default=16)
    args = parser.parse_args()
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeBrisbane

    cases = {
        "elman-xor (L=3)": (ElmanXOR(length=3), 2, 2, 300, 0.05),
        "memorise (L=4)": (Memorisation(length=4), 3, 2, 300, 0.05),
    }
    print(f"{'task':<18} {'backend':<34} {'noise':>8} {'accuracy':>16} {'exact':>7} {'seconds':>8}")
    for name, (task, io_bits, workspace, steps, lr) in cases.items():
        model = train(task, io_bits, workspace, steps, lr)
        batch = task.batch(args.sequences, torch.Generator().manual_seed(123))
        # the exact engine averaged over 1000 sampled histories of the measured steps per sequence,
        # as the shots average over them
        columns = torch.arange(batch.size).repeat_interleave(1000)
        replicas = Batch(
            batch.tokens[:, columns],
            batch.targets[:, columns],
            batch.scored[:, columns],
            batch.forced[:, columns],
        )
        exact = evaluate(
            model, [replicas], "measured", generator=torch.Generator().manual_seed(0)
        ).accuracy_expected
        rows = [("ibm dynamic, Aer ideal", 0.0, noiseless(AerSimulator(), "dynamic", seed=1))]
        for p in (1e-3, 3e-3, 1e-2, 3e-2):
            rows.append(
                (
                    "ibm dynamic, Aer depolarizing",
                    p,
                    noiseless(depolarizing_aer(p), "dynamic", seed=1),
                )
            )
        rows.append(
            (
                "ibm dynamic, FakeBrisbane",
                float("nan"),
                noiseless(FakeBrisbane(), "dynamic", seed=1),
            )
        )
        qubits = (
            io_bits + workspace + io_bits * task.length
        )  # deferred: a fresh qubit per measurement
        for p in (0.0, 1e-3, 1e-2):
            rows.append(
                (
                    "braket local dm, depolarizing",
                    p,
                    _braket_dm(p) if qubits <= MAX_DM_QUBITS else None,
                )
            )
        for backend, noise, run in rows:
            start = time.perf_counter()
            if run is None:
                print(
                    f"{name:<18} {backend:<34} {noise:>8g}   skipped: {qubits} qubits as a density "
                    f"matrix (max {MAX_DM_QUBITS})"
                )
                continue
            result = shot_accuracy(model, batch, run, args.shots)
            noise_text = "calib." if noise != noise else f"{noise:g}"
            print(
                f"{name:<18} {backend:<34} {noise_text:>8} {100 * result.accuracy:>8.1f} +- "
                f"{100 * result.standard_error:4.1f} "
                f"{100 * exact:>6.1f} {time.perf_counter() - start:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
