"""What a QRNN sequence costs on a device, estimated before anything runs.

:func:`resource_report` builds the sequence's program, transpiles one step and the whole sequence
to the backend's native gates (a Qiskit backend's target; for other QPUs a basis per vendor,
all-to-all), predicts from the exact engine which fraction of shots survives the postselections,
turns a requested precision into shots, and prices the run from a table the user can override.

A :class:`Budget` is a model's cumulative spending limit: every priced run is charged to it, and a
run whose estimate would take the spending past the limit is refused before anything is sent
(:class:`BudgetExceededError`). The amount spent travels with the model's ``state_dict`` (key
``budget_spent_usd``), so a checkpoint resumes with what was already spent.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

import torch

from ..errors import QRNNError, QRNNTypeError, QRNNValueError
from .execution import to_qiskit
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
]

#: Amazon Braket QPU prices in USD, (per task, per shot), from its public pricing page (2025).
#: Pass ``price_table=`` to use current or negotiated prices.
BRAKET_PRICES = {
    "ionq/forte": (0.30, 0.08),
    "ionq/aria": (0.30, 0.03),
    "iqm/garnet": (0.30, 0.00145),
    "rigetti/ankaa": (0.30, 0.0009),
}
#: IBM Quantum pay-as-you-go, USD per second of QPU time (96 USD a minute, 2025).
IBM_PRICE_PER_SECOND = 1.60
#: IBM's default repetition delay between shots, seconds
IBM_REP_DELAY = 250e-6

_VENDOR_BASIS = {
    "ionq": ["rx", "ry", "rz", "rxx"],
    "iqm": ["r", "cz"],
    "rigetti": ["rx", "rz", "cz"],
}
_GENERIC_BASIS = ["rz", "sx", "x", "cx"]


class BudgetExceededError(QRNNError, RuntimeError):
    """A run's estimated price is above the budget the user set."""


def check_budget_value(budget, name: str = "budget") -> float | None:
    """``budget`` as a float, or ``None``; refuse anything but a finite number of USD >= 0."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise QRNNTypeError(
            f"{name} must be a number of USD or None; got {type(budget).__name__} {budget!r}"
        )
    value = float(budget)
    if not math.isfinite(value) or value < 0:
        raise QRNNValueError(f"{name} must be a finite number of USD >= 0 or None; got {budget!r}")
    return value


class Budget:
    """A cumulative spending limit in USD (``limit=None``: no limit, spending is still counted).

    Args:
        limit (float or None): the most this model may spend, all runs together
        spent (float): what was already spent (e.g. restored from a checkpoint)

    Raises:
        QRNNTypeError: ``limit`` or ``spent`` is not a number
        QRNNValueError: it is NaN, infinite or negative
    """

    def __init__(self, limit=None, spent=0.0):
        self.limit = check_budget_value(limit)
        self.spent = check_budget_value(spent, "spent")

    @property
    def remaining(self) -> float | None:
        return None if self.limit is None else max(self.limit - self.spent, 0.0)

    def __repr__(self):
        return f"Budget(limit={self.limit!r}, spent={self.spent!r})"

    def check(self, device: str, price, sequences: int, shots: int) -> None:
        """Refuse (raise :class:`BudgetExceededError`) a run priced ``price`` USD that would take
        the spending past the limit, or an unpriced run under a limit. Charges nothing."""
        if self.limit is None:
            return
        if price is None:
            raise BudgetExceededError(
                f"budget is {self.limit:.2f} USD but no price is known for {device!r}; "
                "pass price_table= to price it, or budget=None for a device that does not bill"
            )
        if self.spent + price > self.limit:
            raise BudgetExceededError(
                f"estimated price {price:,.2f} USD exceeds the budget of {self.limit:,.2f} USD "
                f"({self.spent:,.2f} USD already spent, {self.remaining:,.2f} USD remaining; "
                f"{sequences} sequence(s) x {shots:,} shots on {device}); nothing was run"
            )

    def charge(self, price) -> None:
        """Add a run's price to the spending (``None``, an unpriced run, adds nothing)."""
        if price is not None:
            self.spent += float(price)

    def restore(self, spent) -> None:
        """Take a checkpoint's spending; never lowers what this budget has already counted."""
        self.spent = max(self.spent, check_budget_value(float(spent), "budget_spent_usd"))


def native_basis(name: str) -> list[str]:
    """The gate basis used to count a non-IBM device's native gates (by vendor in its name/ARN)."""
    lowered = (name or "").lower()
    for vendor, basis in _VENDOR_BASIS.items():
        if vendor in lowered:
            return basis
    return _GENERIC_BASIS


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


def _qiskit_backend(device):
    if device is None:
        return None
    backend = getattr(device, "backend", None)
    candidate = backend if backend is not None else device
    return candidate if hasattr(candidate, "target") else None


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
    if not 0 < precision < 0.5:
        raise QRNNValueError(f"precision must be in (0, 0.5); got {precision!r}")
    tokens = [int(t) for t in torch.as_tensor(tokens).reshape(-1).tolist()]
    plan = model.execution_plan()
    measurements = measurements or plan.get("measurements", "native")
    name = device_name or plan.get("backend") or "unknown"
    program = model_program(model, tokens)
    first = model_program(model, tokens[:1])
    backend = _qiskit_backend(device)
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
        engine_model(tokens_tensor, targets_tensor, generator=torch.Generator().manual_seed(0))
        stats = engine_model.postselection
        # shots alive when the last step's outcome is read: every earlier step, and the last
        # step's neurons
        log_alive = float(stats.step[:-1].log().sum() + stats.neuron[-1].log().sum())
    survival = math.exp(log_alive)
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
) -> float | None:
    """The price in USD of running ``sequences`` sequences like ``tokens`` with ``shots`` each on
    the device called ``name`` (a Braket ARN in the table, or a Qiskit backend with calibrated
    durations); ``None`` where no price is known."""
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
    backend = _qiskit_backend(device)
    circuit = None
    if backend is not None:
        circuit = _transpiled(model_program(model, tokens), backend, [], measurements == "deferred")
    _price(report, name, circuit, backend, price_table)
    return report.price_usd


def model_program(model, tokens) -> SequenceProgram:
    return SequenceProgram.build(
        model.weights(),
        tokens,
        model.io_bits,
        model.workspace,
        model.degree,
        model.order,
        model.mode,
    )


def _price(report, name, circuit, backend, price_table):
    lowered = name.lower()
    table = BRAKET_PRICES if price_table is None else price_table
    for fragment, (per_task, per_shot) in table.items():
        if fragment in lowered:
            report.price_usd = report.sequences * (per_task + per_shot * report.shots)
            return
    if backend is not None:
        # an IBM backend (or its fake stand-in, with the same calibrated durations): QPU time
        try:
            duration = circuit.estimate_duration(backend.target, unit="s")
        except Exception:  # simulators have no durations
            duration = None
        if duration is not None:
            report.qpu_seconds = report.sequences * report.shots * (duration + IBM_REP_DELAY)
            report.price_usd = report.qpu_seconds * IBM_PRICE_PER_SECOND
            report.notes.append(f"IBM pay-as-you-go at {IBM_PRICE_PER_SECOND} USD per QPU second")


def check_budget(report: ResourceReport, budget) -> None:
    """Refuse (raise) when the report's price is above ``budget`` USD (a number or a
    :class:`Budget`, whose spending counts), or unknown with a budget."""
    check_budget_price(report.device, report.price_usd, budget, report.sequences, report.shots)


def check_budget_price(device: str, price, budget, sequences: int, shots: int) -> None:
    """Refuse (raise :class:`BudgetExceededError`) a run priced ``price`` USD above ``budget``
    (USD, validated: a finite number >= 0, or ``None``; or a :class:`Budget`)."""
    budget = budget if isinstance(budget, Budget) else Budget(budget)
    budget.check(device, price, sequences, shots)
