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
    program = SequenceProgram.build(model.weights(), [1, 0, 1], model.layout)
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
    report = resource_report(
        model,
        tokens,
        targets,
        device=backend,
        device_name="ibm_manila",
        measurements="dynamic",
        precision=0.02,
    )
    assert report.qubits == 3 and report.mid_circuit_measurements == 3
    assert 0 < report.step_two_qubit_gates < report.sequence_two_qubit_gates
    # survival predicted by the exact engine: product of the teacher-forced steps before the last
    with torch.no_grad():
        model_log_probs, _ = model(
            torch.tensor(tokens).unsqueeze(1), torch.tensor(targets).unsqueeze(1)
        )
    expected = math.exp(
        float(model_log_probs[:-1, 0].gather(1, torch.tensor(targets[:-1]).unsqueeze(1)).sum())
    )
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
    model = _model()
    program = SequenceProgram.build(model.weights(), [1], model.layout)
    circuit = transpile(
        to_qiskit(program), backend=backend, optimization_level=1, seed_transpiler=0
    )
    assert {i.operation.name for i in circuit.data} <= set(backend.operation_names)


def test_braket_price_and_budget():
    report = resource_report(
        _model(),
        [1, 0],
        None,
        device_name="arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1",
        measurements="deferred",
        precision=0.05,
        sequences=3,
    )
    per_task, per_shot = BRAKET_PRICES["ionq/aria"]
    assert report.price_usd == pytest.approx(3 * (per_task + per_shot * report.shots))
    assert native_basis("arn:...:qpu/ionq/Aria-1") == ["rx", "ry", "rz", "rxx"]
    check_budget(report, report.price_usd + 0.01)
    with pytest.raises(BudgetExceededError, match="exceeds the budget of 1.00 USD"):
        check_budget(report, 1.0)
    custom = resource_report(
        _model(),
        [1, 0],
        None,
        device_name="my-qpu",
        measurements="deferred",
        price_table={"my-qpu": (1.0, 0.5)},
    )
    assert custom.price_usd == pytest.approx(1.0 + 0.5 * custom.shots)


def test_unknown_price_with_budget_refuses():
    report = resource_report(
        _model(), [1], None, device_name="some.device", measurements="deferred"
    )
    assert report.price_usd is None
    with pytest.raises(BudgetExceededError, match="no price is known for 'some.device'"):
        check_budget(report, 10.0)


def test_precision_error():
    with pytest.raises(ValueError, match=r"precision must be in \(0, 0.5\); got 0"):
        resource_report(_model(), [1], precision=0)


# -- the budget: a validated, cumulative spending limit per model, carried by checkpoints --------
from pennylane_qrnn.devices.resources import check_budget_price  # noqa: E402
from pennylane_qrnn.errors import QRNNTypeError, QRNNValueError  # noqa: E402

#: a local shot device priced by the user's table: 0.01 USD a task + 0.001 USD a shot, so one
#: sequence of 40 shots costs 0.05 USD
PRICED = dict(
    backend="default.qubit",
    execution="native",
    shots=40,
    seed=0,
    mode="amplified",
    price_table={"default.qubit": (0.01, 0.001)},
)
RUN = (torch.tensor([1]), torch.tensor([0]))


def _priced(budget, **kwargs):
    torch.manual_seed(3)
    return QRNN(1, 2, stages=1, degree=2, order=1, budget=budget, **{**PRICED, **kwargs})


@pytest.mark.parametrize(
    "budget, error, message",
    [
        (
            float("nan"),
            QRNNValueError,
            "budget must be a finite number of USD >= 0 or None; got nan",
        ),
        (
            float("inf"),
            QRNNValueError,
            "budget must be a finite number of USD >= 0 or None; got inf",
        ),
        (-1.0, QRNNValueError, "budget must be a finite number of USD >= 0 or None; got -1.0"),
        ("5", QRNNTypeError, "budget must be a number of USD or None; got str '5'"),
        (True, QRNNTypeError, "budget must be a number of USD or None; got bool True"),
        ([5], QRNNTypeError, r"budget must be a number of USD or None; got list \[5\]"),
    ],
)
def test_budget_validated_at_construction(budget, error, message):
    with pytest.raises(error, match=message):
        QRNN(1, 2, backend="braket.aws.qubit", shots=10, budget=budget)
    with pytest.raises(error, match=message):
        check_budget_price("dev", 1.0, budget, 1, 10)  # a NaN budget used to let every run through


def test_budget_is_cumulative_and_refuses_before_sending(monkeypatch):
    """0.05 USD a run against 0.12 USD: two runs go, the third is refused before it is sent
    (before: the budget was compared with each run alone, and every run went)."""
    import pennylane_qrnn.devices.batches as batches  # where a run's submissions are sent

    sent = []
    original = batches.submit
    monkeypatch.setattr(batches, "submit", lambda *a, **k: sent.append(1) or original(*a, **k))
    model = _priced(0.12)
    model(*RUN)
    model(*RUN)
    assert model.spending.spent == pytest.approx(0.10) and len(sent) == 2
    with pytest.raises(
        BudgetExceededError,
        match=r"estimated price 0.05 USD exceeds the budget of 0.12 USD "
        r"\(0.10 USD already spent, 0.02 USD remaining",
    ):
        model(*RUN)
    assert len(sent) == 2 and model.spending.spent == pytest.approx(0.10)
    model.budget = 1.0  # raising the limit lets the next run through, and counts it
    model(*RUN)
    assert model.spending.spent == pytest.approx(0.15)
    # a NaN budget is refused when it is set, at the latest when the model runs
    with pytest.raises(QRNNValueError, match="budget must be a finite number"):
        model.budget = float("nan")
        model(*RUN)


def test_spent_amount_travels_with_the_checkpoint():
    model = _priced(0.12)
    model(*RUN)
    model(*RUN)
    state = model.state_dict()
    assert float(state["budget_spent_usd"]) == pytest.approx(0.10)
    resumed = _priced(0.12)
    resumed.load_state_dict(state)
    assert resumed.spending.spent == pytest.approx(0.10)
    with pytest.raises(BudgetExceededError, match="0.10 USD already spent"):
        resumed(*RUN)  # a resumed run cannot spend the budget a second time
    # loading never lowers what was counted
    resumed.load_state_dict(_priced(0.12).state_dict())
    assert resumed.spending.spent == pytest.approx(0.10)


def test_models_without_budget_and_old_checkpoints_unaffected():
    plain = _model()
    names = {name for name, _ in plain.named_parameters()}
    assert set(plain.state_dict()) == names  # no extra key without a budget
    old = {
        name: value.clone() for name, value in plain.state_dict().items()
    }  # a checkpoint from before
    budgeted = _priced(1.0)
    budgeted.load_state_dict(old)  # strict: the missing key is fine
    assert budgeted.spending.spent == 0.0 and "budget_spent_usd" in budgeted.state_dict()
    spent = _priced(1.0)
    spent(*RUN)
    plain.load_state_dict(spent.state_dict())  # a budget checkpoint into a model without budget
    assert plain.spending.spent == pytest.approx(0.05)
    torch.testing.assert_close(plain.input_weights, spent.input_weights)


def test_report_shows_budget_spent_and_remaining():
    model = _priced(0.12)
    model(*RUN)
    report = resource_report(
        model,
        [1, 0],
        None,
        device_name="default.qubit",
        measurements="native",
        price_table={"default.qubit": (0.01, 0.001)},
    )
    assert (report.budget_usd, report.spent_usd) == (0.12, pytest.approx(0.05))
    assert report.remaining_usd == pytest.approx(0.07)
    text = str(report)
    assert "budget: 0.12 USD, spent 0.05 USD, remaining 0.07 USD" in text
    assert "would exceed the remaining budget" in text  # 0.01 + 0.001 x shots for 0.05 precision
    from pennylane_qrnn.devices.resources import Budget

    assert Budget(2.0, 0.5).remaining == 1.5 and Budget().remaining is None


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
def test_program_counts_equal_the_cells_registered_resources(mode):
    """Issue 9 item 6: the shot path's program is the cells' decompositions, token written once per
    step by the cell; its gate counts equal the resources the template registers with PennyLane."""
    from pennylane_qrnn.templates import QRNNCell

    model = _model(mode)
    tokens = [1, 0, 1]
    program = SequenceProgram.build(model.weights(), tokens, model.layout)
    counts = program.counts()
    expected = {}
    for token in tokens:
        cell = QRNNCell(
            *[w.detach().numpy() for w in model.weights()],
            token=token,
            io_wires=[0],
            workspace_wires=[1, 2],
            ancilla_wires=[3] if mode == "postselect" else None,
            degree=2,
            order=1,
            mode=mode,
        )
        for name, n in cell.resources().gate_types.items():
            expected[name] = expected.get(name, 0) + n
    assert expected.pop("MidMeasureMP", 0) == counts["ancilla_measurements"]
    assert expected["PauliX"] == 2 * sum(tokens)  # written and reset, once each
    assert {name: counts[name] for name in expected} == expected


@requires_qiskit
def test_unpriced_device_with_budget_refused_before_anything_is_built():
    """A spending limit on a simulator that bills nothing is refused at construction (and by the
    setter), not after the first run's circuits are transpiled."""
    import pennylane as qml
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from pennylane_qrnn.devices.pricing import BudgetExceededError, can_price, has_durations
    from pennylane_qrnn.executors import Shots

    with pytest.raises(BudgetExceededError, match="no price is known for 'qiskit.aer'"):
        Shots("qiskit.aer", shots=10, budget=5.0)
    with pytest.raises(BudgetExceededError, match="no price is known for 'qiskit.aer'"):
        QRNN(1, 2, backend="qiskit.aer", shots=10, budget=5.0)
    executor = Shots("qiskit.aer", shots=10)
    with pytest.raises(BudgetExceededError, match="no price is known"):
        executor.budget = 3.0
    assert executor.budget is None  # the refused limit is not kept
    # what is priced: a price-table entry, an IBM backend with calibrated durations
    assert Shots("default.qubit", shots=10, budget=1.0, price_table={"default.qubit": (0, 0)})
    fake = FakeManilaV2()
    assert has_durations(fake) and not has_durations(AerSimulator())
    assert can_price("qiskit.aer", fake) and not can_price("qiskit.aer", AerSimulator())
    assert can_price("arn:aws:braket:us-east-1::device/qpu/ionq/forte-1")
    priced = Shots(qml.device("qiskit.aer", wires=5, backend=fake), shots=10, budget=1.0)
    assert priced.budget == 1.0
    named = Shots("qiskit.aer", shots=10, budget=1.0, device_options={"backend": fake})
    assert named.budget == 1.0
