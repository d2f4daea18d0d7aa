"""Prices and budgets of runs on QPUs: a price table, a native gate basis per vendor, and a
cumulative spending limit.

A :class:`Budget` is a model's cumulative spending limit: every priced run is charged to it, and a
run whose estimate would take the spending past the limit is refused before anything is sent
(:class:`BudgetExceededError`). The amount spent travels with the model's ``state_dict`` (key
``budget_spent_usd``), so a checkpoint resumes with what was already spent.
"""

from __future__ import annotations

import math
import numbers

from ..errors import QRNNError, QRNNTypeError, QRNNValueError

__all__ = [
    "Budget",
    "BudgetExceededError",
    "SubmissionGuard",
    "BRAKET_PRICES",
    "IBM_PRICE_PER_SECOND",
    "IBM_REP_DELAY",
    "check_budget",
    "check_budget_price",
    "check_budget_value",
    "can_price",
    "native_basis",
    "price_run",
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
        #: submissions charged to this budget (in this process; priced or not)
        self.submissions = 0

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
            raise self.unpriced(device)
        if self.spent + price > self.limit:
            raise BudgetExceededError(
                f"estimated price {price:,.2f} USD exceeds the budget of {self.limit:,.2f} USD "
                f"({self.spent:,.2f} USD already spent, {self.remaining:,.2f} USD remaining; "
                f"{sequences} sequence(s) x {shots:,} shots on {device}); nothing was run"
            )

    def unpriced(self, device: str) -> BudgetExceededError:
        """The error for a run under this limit on a device without a price."""
        return BudgetExceededError(
            f"budget is {self.limit:.2f} USD but no price is known for {device!r}; "
            "pass price_table= to price it, or budget=None for a device that does not bill"
        )

    def charge(self, price, submissions: int = 1) -> None:
        """Add a submission's price to the spending (``None``, an unpriced run, adds nothing)
        and count it."""
        self.submissions += int(submissions)
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


def price_run(
    name: str, sequences: int, shots: int, circuit=None, backend=None, price_table=None
) -> tuple[float | None, float | None, str | None]:
    """``(price_usd, qpu_seconds, note)`` of ``sequences`` sequences of ``shots`` shots each on
    the device called ``name``: from the price table (a Braket ARN fragment), else from the QPU
    time of ``circuit`` transpiled for an IBM ``backend`` with calibrated durations; ``None``
    where nothing is known."""
    lowered = name.lower()
    table = BRAKET_PRICES if price_table is None else price_table
    for fragment, (per_task, per_shot) in table.items():
        if fragment in lowered:
            return sequences * (per_task + per_shot * shots), None, None
    if backend is not None:
        # an IBM backend (or its fake stand-in, with the same calibrated durations): QPU time
        try:
            duration = circuit.estimate_duration(backend.target, unit="s")
        except Exception:  # simulators have no durations
            duration = None
        if duration is not None:
            seconds = sequences * shots * (duration + IBM_REP_DELAY)
            note = f"IBM pay-as-you-go at {IBM_PRICE_PER_SECOND} USD per QPU second"
            return seconds * IBM_PRICE_PER_SECOND, seconds, note
    return None, None, None


def has_durations(backend) -> bool:
    """Whether a Qiskit ``backend`` has calibrated gate durations (an IBM device or its fake
    stand-in; simulators have none), the QPU time :func:`price_run` prices IBM runs with."""
    target = getattr(backend, "target", None)
    if target is None:
        return False
    for name in target.operation_names:
        for properties in (target[name] or {}).values():
            if properties is not None and getattr(properties, "duration", None):
                return True
    return False


def can_price(name: str, backend=None, price_table=None) -> bool:
    """Whether :func:`price_run` will find a price for the device called ``name`` (run through
    the Qiskit ``backend``, if any), known before anything is built or transpiled: a price-table
    entry, or an IBM backend with calibrated durations."""
    lowered = name.lower()
    table = BRAKET_PRICES if price_table is None else price_table
    if any(fragment in lowered for fragment in table):
        return True
    return backend is not None and has_durations(backend)


def check_budget(report, budget) -> None:
    """Refuse (raise) when the price of ``report`` (a
    :class:`~pennylane_qrnn.devices.resources.ResourceReport`) is above ``budget`` USD (a number
    or a :class:`Budget`, whose spending counts), or unknown with a budget."""
    check_budget_price(report.device, report.price_usd, budget, report.sequences, report.shots)


def check_budget_price(device: str, price, budget, sequences: int, shots: int) -> None:
    """Refuse (raise :class:`BudgetExceededError`) a run priced ``price`` USD above ``budget``
    (USD, validated: a finite number >= 0, or ``None``; or a :class:`Budget`)."""
    budget = budget if isinstance(budget, Budget) else Budget(budget)
    budget.check(device, price, sequences, shots)


class SubmissionGuard:
    """A :class:`Budget` applied submission by submission
    (:class:`~pennylane_qrnn.devices.batches.BatchSubmitter`): :meth:`check` refuses, before the
    first submission is sent, a run whose sequences still to send would take the spending past
    the limit; :meth:`charge` counts each submission and its price when it is sent. Submissions
    read back from a run's ledger are neither checked nor charged.

    Args:
        budget (Budget): the spending limit and what was spent
        device (str): the device's name or ARN, for messages
        price_per_sequence (float or None): USD per sequence (``None``: unknown; refused under a
            limit, counted without a price otherwise)
        shots (int): shots per sequence, for messages

    **Example**

    >>> guard = SubmissionGuard(Budget(1.0), "iqm/garnet", price_per_sequence=0.45, shots=100)
    >>> guard.check(2)                 # 0.90 USD: within the limit
    >>> guard.charge(1); guard.charge(1)
    >>> guard.budget.submissions, round(guard.budget.spent, 2)
    (2, 0.9)
    >>> try:
    ...     guard.charge(1)             # 0.45 more would pass the limit: refused, not charged
    ... except BudgetExceededError as error:
    ...     print(str(error)[:55])
    estimated price 0.45 USD exceeds the budget of 1.00 USD
    """

    def __init__(self, budget: Budget, device: str, price_per_sequence, shots: int) -> None:
        self.budget, self.device, self.shots = budget, str(device), int(shots)
        self.price_per_sequence = price_per_sequence

    def price(self, sequences: int):
        """The price of ``sequences`` sequences in USD, or None if unknown."""
        if self.price_per_sequence is None:
            return None
        return self.price_per_sequence * sequences

    def check(self, sequences: int) -> None:
        """Refuse (:class:`BudgetExceededError`) sending ``sequences`` more sequences if that
        would pass the limit (nothing to send: nothing to refuse)."""
        if sequences:
            self.budget.check(self.device, self.price(sequences), sequences, self.shots)

    def charge(self, sequences: int) -> None:
        """Charge one submission of ``sequences`` sequences (checked again first: the limit may
        have been lowered since)."""
        self.check(sequences)
        self.budget.charge(self.price(sequences))
