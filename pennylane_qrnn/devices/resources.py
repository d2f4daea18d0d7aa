"""What a QRNN sequence costs on a device, estimated before anything runs.

:func:`resource_report` builds the sequence's program, transpiles one step and the whole sequence
to the backend's native gates (a Qiskit backend's target; for other QPUs a basis per vendor,
all-to-all), predicts from the exact engine which fraction of shots survives the postselections,
turns a requested precision into shots, and prices the run from a table the user can override.

Prices and budgets live in :mod:`~pennylane_qrnn.devices.pricing` (re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from ..errors import QRNNValueError
from ..validation import check_float
from .execution import to_qiskit
from .facts import qiskit_backend
from .pricing import (
    BRAKET_PRICES,
    IBM_PRICE_PER_SECOND,
    IBM_REP_DELAY,
    Budget,
    BudgetExceededError,
    check_budget,
    check_budget_price,
    check_budget_value,
    native_basis,
    price_run,
)
from .program import SequenceProgram

__all__ = [
    "Budget",
    "ResourceReport",
    "resource_report",
    "run_price",
    "check_budget",
    "check_budget_price",
    "BudgetExceededError",
    "BRAKET_PRICES",
    "IBM_PRICE_PER_SECOND",
    "native_basis",
    "IBM_REP_DELAY",
    "check_budget_value",
    "model_program",
]


@dataclass
class ResourceReport:
    """Resources of one sequence on one device (see :func:`resource_report`)."""

    device: str
    measurements: str
    length: int
    qubits: int
    qubits_deferred: int
    step_two_qubit_gates: int
    step_depth: int
    sequence_two_qubit_gates: int
    sequence_depth: int
    mid_circuit_measurements: int
    survival: float
    precision: float
    shots: int
    sequences: int
    price_usd: float | None = None
    qpu_seconds: float | None = None
    notes: list = field(default_factory=list)
    budget_usd: float | None = None
    spent_usd: float | None = None
    remaining_usd: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self):
        deferred = (
            ""
            if self.measurements != "deferred"
            else f", {self.qubits_deferred} with deferred measurements"
        )
        lines = [
            f"resources on {self.device} ({self.measurements} measurements), {self.sequences} "
            f"sequence(s) of length {self.length}:",
            f"  qubits: {self.qubits} (lanes reused){deferred}",
            f"  per step: {self.step_two_qubit_gates} two-qubit gates, depth {self.step_depth} "
            "(native gates)",
            f"  per sequence: {self.sequence_two_qubit_gates} two-qubit gates, depth "
            f"{self.sequence_depth}, {self.mid_circuit_measurements} mid-circuit measurements",
            f"  surviving shots (exact engine): {self.survival:.3g} of all shots",
            f"  shots for a standard error of {self.precision} on every step: {self.shots:,} per "
            "sequence",
        ]
        if self.qpu_seconds is not None:
            lines.append(f"  QPU time: about {self.qpu_seconds:,.1f} s")
        if self.price_usd is not None:
            lines.append(f"  estimated price: {self.price_usd:,.2f} USD")
        if self.budget_usd is not None:
            lines.append(
                f"  budget: {self.budget_usd:,.2f} USD, spent {self.spent_usd:,.2f} USD, "
                f"remaining {self.remaining_usd:,.2f} USD"
            )
        elif self.spent_usd:
            lines.append(f"  spent so far: {self.spent_usd:,.2f} USD (no budget set)")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _transpile_target(device):
    """The Qiskit backend to transpile for: ``device``'s, where it has a target; else ``None``."""
    backend = qiskit_backend(device)
    return backend if hasattr(backend, "target") else None


def _transpiled(program: SequenceProgram, backend, basis, deferred: bool):
    from qiskit import transpile

    circuit = to_qiskit(program, deferred=deferred)
    if backend is not None:
        return transpile(circuit, backend=backend, optimization_level=1, seed_transpiler=0)
    return transpile(
        circuit, basis_gates=basis + ["measure", "reset"], optimization_level=1, seed_transpiler=0
    )


def _two_qubit(circuit) -> int:
    return sum(1 for instruction in circuit.data if instruction.operation.num_qubits == 2)


def resource_report(
    model,
    tokens,
    targets=None,
    device=None,
    device_name=None,
    measurements=None,
    precision=0.05,
    sequences=1,
    price_table=None,
) -> ResourceReport:
    """Estimate what running ``model`` on one token sequence costs, before running it.

    Args:
        model: a :class:`~pennylane_qrnn.QRNN`
        tokens: ``(L,)`` the sequence's input tokens; ``targets``: ``(L,)`` for teacher forcing
        device: a Qiskit backend / pennylane-qiskit device (transpiled to its target), or ``None``
        device_name: the device's name or Braket ARN (for the native basis and the price)
        measurements: ``"dynamic"``, ``"native"`` or ``"deferred"`` (default: the model's plan)
        precision: the standard error wanted on every step's probabilities
        sequences: how many such sequences (tasks) the run holds
        price_table: ``{name fragment: (per task, per shot)}`` replacing :data:`BRAKET_PRICES`
    """
    if not 0 < check_float("precision", precision) < 0.5:
        raise QRNNValueError(f"precision must be in (0, 0.5); got {precision!r}")
    tokens = [int(t) for t in torch.as_tensor(tokens).reshape(-1).tolist()]
    plan = model.execution_plan()
    measurements = measurements or plan.get("measurements", "native")
    name = device_name or plan.get("backend") or "unknown"
    program = model_program(model, tokens)
    first = model_program(model, tokens[:1])
    backend = _transpile_target(device)
    basis = native_basis(name)
    deferred = measurements == "deferred"
    step = _transpiled(first, backend, basis, deferred)
    whole = _transpiled(program, backend, basis, deferred)

    with torch.no_grad():
        tokens_tensor = torch.tensor(tokens).unsqueeze(1)
        engine_model = model.__class__(
            model.io_bits,
            model.workspace,
            model.stages,
            model.degree,
            model.order,
            model.mode,
            dtype=torch.float64,
        )
        engine_model.load_state_dict(
            {name: value.detach().double().cpu() for name, value in model.named_parameters()}
        )
        targets_tensor = None if targets is None else torch.as_tensor(targets).reshape(-1, 1)
        stats = engine_model(
            tokens_tensor, targets_tensor, generator=torch.Generator().manual_seed(0)
        ).postselection
    # shots alive when the last step's outcome is read: every earlier step, and the last
    # step's neurons
    survival = float(stats.reach[-1, 0])
    needed = 0.25 / precision**2
    shots = int(math.ceil(needed / max(survival, 1e-300))) if survival > 0 else 0
    notes = []
    if survival < 1e-6:
        notes.append(
            "fewer than one shot in a million survives the postselections: impractical on "
            "hardware; consider mode='amplified' and the measured protocol"
        )
    report = ResourceReport(
        device=name,
        measurements=measurements,
        length=len(tokens),
        qubits=program.n_wires,
        qubits_deferred=program.deferred_wires,
        step_two_qubit_gates=_two_qubit(step),
        step_depth=step.depth(),
        sequence_two_qubit_gates=_two_qubit(whole),
        sequence_depth=whole.depth(),
        mid_circuit_measurements=0 if deferred else len(program.records),
        survival=survival,
        precision=precision,
        shots=shots,
        sequences=int(sequences),
        notes=notes,
    )
    _price(report, name, whole, backend, price_table)
    budget = getattr(model, "spending", None)
    if budget is not None:
        report.budget_usd, report.spent_usd, report.remaining_usd = (
            budget.limit,
            budget.spent,
            budget.remaining,
        )
        if (
            budget.limit is not None
            and report.price_usd is not None
            and budget.spent + report.price_usd > budget.limit
        ):
            report.notes.append(
                f"this run ({report.price_usd:,.2f} USD) would exceed the remaining budget "
                f"({budget.remaining:,.2f} USD): the model would refuse it"
            )
    return report


def run_price(
    model,
    tokens,
    name: str,
    device=None,
    measurements="deferred",
    shots=1024,
    sequences=1,
    price_table=None,
    skip_output=None,
) -> float | None:
    """The price in USD of running ``sequences`` sequences like ``tokens`` with ``shots`` each on
    the device called ``name`` (a Braket ARN in the table, or a Qiskit backend with calibrated
    durations); ``None`` where no price is known. ``skip_output``: ``(L,)`` bools, the steps
    without output stage (:meth:`SequenceProgram.build`)."""
    report = ResourceReport(
        device=name,
        measurements=measurements,
        length=len(tokens),
        qubits=0,
        qubits_deferred=0,
        step_two_qubit_gates=0,
        step_depth=0,
        sequence_two_qubit_gates=0,
        sequence_depth=0,
        mid_circuit_measurements=0,
        survival=1.0,
        precision=0.0,
        shots=int(shots),
        sequences=int(sequences),
    )
    backend = _transpile_target(device)
    circuit = None
    if backend is not None:
        program = model_program(model, tokens, skip_output)
        circuit = _transpiled(program, backend, [], measurements == "deferred")
    _price(report, name, circuit, backend, price_table)
    return report.price_usd


def model_program(model, tokens, skip_output=None) -> SequenceProgram:
    """The :class:`SequenceProgram` of ``model`` (its weights and layout) on ``tokens``."""
    return SequenceProgram.build(model.weights(), tokens, model.layout, skip_output)


def _price(report: ResourceReport, name, circuit, backend, price_table) -> None:
    price, seconds, note = price_run(
        name, report.sequences, report.shots, circuit, backend, price_table
    )
    report.price_usd, report.qpu_seconds = price, seconds
    if note:
        report.notes.append(note)
