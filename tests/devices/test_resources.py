"""Resource reports: transpiled counts against the backend's own gates, survival against the
exact engine, shots from precision, prices, budgets."""

import math

import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.devices.program import SequenceProgram
from pennylane_qrnn.devices.resources import (
    BRAKET_PRICES,
    BudgetExceededError,
    check_budget,
    native_basis,
    resource_report,
)

from ..conftest import requires_qiskit


def _model(mode="amplified"):
    torch.manual_seed(3)
    return QRNN(1, 2, stages=1, degree=2, order=1, mode=mode)


def test_program_counts_and_deferred_wires():
    model = _model("postselect")
    program = SequenceProgram.build(model.weights(), [1, 0, 1], 1, 2, 2, 1, "postselect")
    counts = program.counts()
    # per step: 5 neurons, each one ancilla measurement (order 1), plus the i/o lane
    assert counts["ancilla_measurements"] == 3 * 5 and counts["measurements"] == 3 * 6
    assert program.n_wires == 4 and program.deferred_wires == 4 + 18
    assert counts["CNOT"] > 0 and set(counts) >= {"RY", "CNOT", "PauliX", "PhaseShift"}


@requires_qiskit
def test_report_on_a_fake_ibm_backend():
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    backend = FakeManilaV2()
    model = _model()
    tokens, targets = [1, 0, 1], [0, 1, 1]
    report = resource_report(model, tokens, targets, device=backend, device_name="ibm_manila", measurements="dynamic", precision=0.02)
    assert report.qubits == 3 and report.mid_circuit_measurements == 3
    assert 0 < report.step_two_qubit_gates < report.sequence_two_qubit_gates
    # survival predicted by the exact engine: product of the teacher-forced steps before the last
    with torch.no_grad():
        model_log_probs, _ = model(torch.tensor(tokens).unsqueeze(1), torch.tensor(targets).unsqueeze(1))
    expected = math.exp(float(model_log_probs[:-1, 0].gather(1, torch.tensor(targets[:-1]).unsqueeze(1)).sum()))
    assert report.survival == pytest.approx(expected, rel=1e-4)
    assert report.shots == math.ceil(0.25 / 0.02**2 / report.survival)
    assert report.qpu_seconds > 0 and report.price_usd == pytest.approx(report.qpu_seconds * 1.60)
    assert "shots for a standard error of 0.02" in str(report)


@requires_qiskit
def test_transpiled_gates_are_native():
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from pennylane_qrnn.devices.execution import to_qiskit

    backend = FakeManilaV2()
    program = SequenceProgram.build(_model().weights(), [1], 1, 2, 2, 1, "amplified")
    circuit = transpile(to_qiskit(program), backend=backend, optimization_level=1, seed_transpiler=0)
    assert {i.operation.name for i in circuit.data} <= set(backend.operation_names)


def test_braket_price_and_budget():
    report = resource_report(_model(), [1, 0], None, device_name="arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1",
                             measurements="deferred", precision=0.05, sequences=3)
    per_task, per_shot = BRAKET_PRICES["ionq/aria"]
    assert report.price_usd == pytest.approx(3 * (per_task + per_shot * report.shots))
    assert native_basis("arn:...:qpu/ionq/Aria-1") == ["rx", "ry", "rz", "rxx"]
    check_budget(report, report.price_usd + 0.01)
    with pytest.raises(BudgetExceededError, match="exceeds the budget of 1.00 USD"):
        check_budget(report, 1.0)
    custom = resource_report(_model(), [1, 0], None, device_name="my-qpu", measurements="deferred",
                             price_table={"my-qpu": (1.0, 0.5)})
    assert custom.price_usd == pytest.approx(1.0 + 0.5 * custom.shots)


def test_unknown_price_with_budget_refuses():
    report = resource_report(_model(), [1], None, device_name="some.device", measurements="deferred")
    assert report.price_usd is None
    with pytest.raises(BudgetExceededError, match="no price is known for 'some.device'"):
        check_budget(report, 10.0)


def test_precision_error():
    with pytest.raises(ValueError, match=r"precision must be in \(0, 0.5\); got 0"):
        resource_report(_model(), [1], precision=0)
