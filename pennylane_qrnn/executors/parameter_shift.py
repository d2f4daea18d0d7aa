"""Gradients from shots: the parameter-shift rule on a sequence's gate angles.

A shot run (:class:`~pennylane_qrnn.executors.Shots`) estimates each step's distribution from
the shots that survive its filters: ``p[t, k] = A[t, k] / B[t]``, where ``B[t]`` is the fraction
of shots alive at step ``t``'s readout (every earlier postselection passed, the step's ancillas
read 0) and ``A[t, k]`` the fraction of those that read token ``k``. Both are probabilities of
events on the circuit's measurement records, which are linear functionals of the state, so each
depends on one gate's angle ``theta`` as ``a + b cos(theta) + c sin(theta)`` when that gate is an
``RY`` or a ``PhaseShift`` (generator eigenvalues one apart) and everything else is fixed. Hence
the two-term shift rule is exact for every such gate occurrence:

.. math:: \\partial_\\theta A = \\tfrac12 \\left[A(\\theta + \\pi/2) - A(\\theta - \\pi/2)\\right]

(and the same for ``B``), whether the records are read mid-circuit, postselected on (ancillas,
teacher forcing) or left free. It holds in both neuron modes: a postselect-mode neuron is gates
and ancilla records too, without classical feed-forward.

:func:`shift_plan` finds the gate occurrences whose angle depends on the weights (rebuilding the
sequence's cells with the torch weights, so the angles carry autograd's graph back to them, and
checking them against the submitted program gate by gate); :class:`ShiftedSubmitter` adds two
shifted copies of each program per such occurrence to the *same* submission (one IBM job or
Braket program set, one ledger entry, priced and counted by the budget guard like any other);
:func:`shift_fractions` turns the records into ``A`` and ``B`` with their shift-rule
derivatives, attached to the angles by :class:`ShiftRule`, so that ``loss.backward()`` chains
them with the classical Jacobian of the angles. :func:`estimated_log_probs` forms the
log-probabilities, optionally with a pseudo-count (see there).

Cost: a sequence of ``L`` steps whose cell has ``G`` weight-dependent rotations runs as
``1 + 2 G L`` circuits (amplified, one i/o qubit, one workspace qubit: ``G = 7``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pennylane as qml
import torch

from ..devices.execution import analyse_shots
from ..devices.program import Record, SequenceProgram, cell_operations
from ..errors import QRNNError, QRNNTypeError, QRNNValueError
from ..validation import check_choice, check_float

__all__ = [
    "GRADIENTS",
    "SHIFT",
    "SHIFTED_GATES",
    "ShiftRule",
    "ShiftedSubmitter",
    "check_gradient",
    "check_pseudo_count",
    "estimate_tensors",
    "estimated_log_probs",
    "shift_fractions",
    "shift_plan",
]

#: the gradients a shot executor can estimate
GRADIENTS = ("parameter-shift",)
#: the shift of the two-term rule (exact for ``RY`` and ``PhaseShift``)
SHIFT = math.pi / 2
#: the gates whose angles are shifted
SHIFTED_GATES = ("RY", "PhaseShift")


def check_gradient(gradient: Any) -> str | None:
    """``None`` or ``"parameter-shift"`` (:data:`GRADIENTS`), else an error.

    **Example**

    >>> check_gradient("parameter-shift")
    'parameter-shift'
    >>> check_gradient("adjoint")
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: gradient must be one of ...; got 'adjoint'
    """
    return None if gradient is None else check_choice("gradient", gradient, GRADIENTS)


def check_pseudo_count(value: Any, name: str = "pseudo_count") -> float | None:
    """``None``, or a finite number ``>= 0`` as a float, else an error ("pseudo_count must be
    ...; got ...", under ``name``).

    **Example**

    >>> check_pseudo_count(1)
    1.0
    >>> check_pseudo_count(-1)
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: pseudo_count must be a finite number >= 0; got -1.0
    """
    if value is None:
        return None
    value = check_float(name, value)
    if value < 0:
        raise QRNNValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return value


def _value(angle: Any) -> float:
    return float(angle.detach()) if isinstance(angle, torch.Tensor) else float(np.asarray(angle))


def shift_plan(
    weights: Sequence[Any], program: SequenceProgram
) -> tuple[list[int], list[torch.Tensor]]:
    """The operations of ``program`` to shift and their angles as functions of ``weights``.

    Args:
        weights: the cell's four weight tensors (a QRNN's ``weights()``, with their graph)
        program (SequenceProgram): the sequence's program, built from the same weights

    Returns:
        tuple: the indices in ``program.operations`` of the ``RY``/``PhaseShift`` gates whose
        angle depends on the weights, and those angles (float64 scalars carrying the graph)

    Raises:
        QRNNError: the rebuilt cells disagree with the program (a gate, its wires or its angle)

    **Example** (one i/o qubit, one workspace qubit, no work stage: four rotations per step)

    >>> from pennylane_qrnn import QRNN
    >>> model = QRNN(1, 1, stages=0, degree=1, order=1, mode="amplified")
    >>> program = SequenceProgram.build(model.weights(), [1, 0], model.layout)
    >>> indices, angles = shift_plan(model.weights(), program)
    >>> len(indices), 1 + 2 * len(indices)  # shifted gates; circuits for this sequence
    (8, 17)
    """
    weights = [torch.as_tensor(w).double() for w in weights]
    indices, angles = [], []
    gates = [i for i, op in enumerate(program.operations) if not isinstance(op, Record)]
    rebuilt = [
        op
        for step, token in enumerate(program.tokens)
        for op in cell_operations(weights, token, program.layout, not program.skipped[step])
        if not isinstance(op, qml.ops.MidMeasure)
    ]
    if len(rebuilt) != len(gates):
        raise QRNNError(f"the program must have {len(rebuilt)} gates; got {len(gates)}")
    for index, op in zip(gates, rebuilt, strict=True):
        given = program.operations[index]
        same = given.name == op.name and list(given.wires) == list(op.wires)
        if same and op.data:
            same = abs(_value(given.data[0]) - _value(op.data[0])) <= 1e-9
        if not same:
            raise QRNNError(f"program gate {index} must be {op}; got {given}")
        angle = op.data[0] if op.data else None
        if op.name in SHIFTED_GATES and isinstance(angle, torch.Tensor) and angle.requires_grad:
            indices.append(index)
            angles.append(angle.reshape(()))
    return indices, angles


def _shifted(program: SequenceProgram, index: int, sign: int) -> SequenceProgram:
    operations = list(program.operations)
    op = operations[index]
    operations[index] = type(op)(float(np.asarray(op.data[0])) + sign * SHIFT, wires=op.wires)
    return SequenceProgram(
        operations,
        program.records,
        program.layout,
        program.length,
        list(program.tokens),
        list(program.skipped),
    )


class ShiftedSubmitter:
    """A :class:`~pennylane_qrnn.devices.batches.BatchSubmitter` in front of which each run's
    programs get their shifted copies (two per :func:`shift_plan` index), all sent in the same
    submission(s): the ledger, the budget guard and the progress bar see them like any others.

    Args:
        inner: the submitter (``run(programs) -> (records, stats)``)
        weights: the weights the programs are built from (with their graph)

    After :meth:`run`, :attr:`programs` holds the (unshifted) programs, :attr:`plans` each
    one's ``(indices, angles)``, :attr:`shifted` each one's records of its shifted copies,
    ``[(plus, minus), ...]`` in the order of its indices, and :attr:`circuits` the number of
    circuits sent or read back.
    """

    def __init__(self, inner: Any, weights: Sequence[torch.Tensor]) -> None:
        self.inner, self.weights = inner, weights
        self.plans: list = []
        self.shifted: list = []
        self.programs: list = []
        self.circuits = 0

    @property
    def device(self) -> Any:
        return self.inner.device

    def run(self, programs: Iterable[SequenceProgram]) -> tuple[list[Any], Any]:
        programs = list(programs)
        self.plans = [shift_plan(self.weights, p) for p in programs]
        extra = [
            _shifted(p, index, sign)
            for p, (indices, _) in zip(programs, self.plans, strict=True)
            for index in indices
            for sign in (1, -1)
        ]
        self.circuits = len(programs) + len(extra)
        records, stats = self.inner.run(programs + extra)
        rest = iter(records[len(programs) :])
        self.shifted = [[(next(rest), next(rest)) for _ in indices] for indices, _ in self.plans]
        self.programs = programs
        return records[: len(programs)], stats


def _fractions(estimate: Any) -> np.ndarray:
    """``A`` (``(L, V)``, flattened) and ``B`` (``(L,)``) of one estimate, as fractions of its
    shots, concatenated."""
    survivors = estimate.neuron_survivors.astype(np.float64)
    counts = np.rint(np.nan_to_num(estimate.probs) * survivors[:, None])
    return np.concatenate([counts.ravel(), survivors]) / estimate.shots


class ShiftRule(torch.autograd.Function):
    """``values`` (fractions from the unshifted circuit) as a function of ``angles`` whose
    Jacobian is ``derivative`` (``(K, M)``: the shift-rule estimates); the values themselves
    pass through unchanged.

    **Example**

    >>> angles = torch.tensor([0.3, 0.4], dtype=torch.float64, requires_grad=True)
    >>> derivative = torch.tensor([[0.1], [0.2]], dtype=torch.float64)
    >>> values = ShiftRule.apply(angles, torch.tensor([0.5], dtype=torch.float64), derivative)
    >>> values.sum().backward()
    >>> angles.grad.tolist()
    [0.1, 0.2]
    """

    @staticmethod
    def forward(
        angles: torch.Tensor, values: torch.Tensor, derivative: torch.Tensor
    ) -> torch.Tensor:
        return values.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[2])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (derivative,) = ctx.saved_tensors
        return derivative @ grad, None, None


def shift_fractions(
    submitter: ShiftedSubmitter,
    estimates: Sequence[Any],
    targets: torch.Tensor | None = None,
    forced: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` ``(L, N, V)`` and ``B`` ``(L, N)``, the fractions of each sequence's shots behind
    its step estimates, differentiable with respect to the weights by the shift rule.

    Args:
        submitter (ShiftedSubmitter): after the run
        estimates: the unshifted runs' :class:`~pennylane_qrnn.devices.execution.ShotEstimate` s
        targets: ``(L, N)`` or ``None``; forced: ``(L, N)`` bool or ``None`` (as the run)
    """
    a_all, b_all = [], []
    for item, estimate in enumerate(estimates):
        program = submitter.programs[item]  # the shifted copies record the same events
        length, vocabulary = program.length, 2**program.io_bits
        item_targets = None if targets is None else targets[:, item].tolist()
        item_forced = None if forced is None else forced[:, item].tolist()
        _, angles = submitter.plans[item]
        values = torch.as_tensor(_fractions(estimate))
        rows = []
        for plus, minus in submitter.shifted[item]:
            pair = [
                _fractions(analyse_shots(program, bits, item_targets, item_forced))
                for bits in (plus, minus)
            ]
            rows.append(0.5 * (pair[0] - pair[1]))
        if angles:
            derivative = torch.as_tensor(np.stack(rows))
            values = ShiftRule.apply(torch.stack(angles), values, derivative)
        split = length * vocabulary
        a_all.append(values[:split].reshape(length, vocabulary))
        b_all.append(values[split:])
    return torch.stack(a_all, 1), torch.stack(b_all, 1)


def estimated_log_probs(
    a: torch.Tensor,
    b: torch.Tensor,
    measured: torch.Tensor,
    shots: int,
    pseudo_count: float | None = None,
) -> torch.Tensor:
    """Log-probabilities from the fractions ``a`` ``(L, N, V)`` (reading each token) and ``b``
    ``(L, N)`` (alive at the readout) of ``shots`` shots; differentiable where they are.

    With ``pseudo_count=None``, the frequency ``n_k / n`` floored at the smallest float64 (the
    shot path's historical estimate: a token no shot read gets ``log(2.2e-308) = -708.4``).
    With ``pseudo_count=alpha >= 0``, the additive (Lidstone) estimate
    ``(n_k + alpha) / (n + V alpha)``: ``alpha = 0.5`` is the Krichevsky-Trofimov (Jeffreys)
    estimator; a token no shot read then gets ``log(alpha / (n + V alpha))``, and with
    ``alpha = 0`` ``-inf``. Its bias pulls each probability toward ``1/V`` by
    ``alpha (1 - V p) / (n + V alpha)``, which vanishes as the survivors ``n`` grow. Steps not
    ``measured`` (fewer survivors than required, or skipped) are NaN, outside the graph.

    **Example** (100 shots, 50 alive at the readout, none of them read token 0)

    >>> a = torch.tensor([[[0.0, 0.5]]], dtype=torch.float64)
    >>> b, measured = torch.tensor([[0.5]], dtype=torch.float64), torch.tensor([[True]])
    >>> [round(x, 2) for x in estimated_log_probs(a, b, measured, 100)[0, 0].tolist()]
    [-708.4, 0.0]
    >>> [round(x, 4) for x in estimated_log_probs(a, b, measured, 100, 0.5)[0, 0].tolist()]
    [-4.625, -0.0099]
    """
    vocabulary = a.shape[-1]
    safe_b = torch.where(measured, b, torch.ones_like(b)).unsqueeze(-1)
    if pseudo_count is None:
        tiny = torch.finfo(torch.float64).tiny
        probs = a / safe_b
        log_probs = torch.where(probs > tiny, probs, torch.full_like(probs, tiny)).log()
    else:
        alpha = float(pseudo_count) / shots
        numerator = a + alpha
        positive = numerator > 0
        safe = torch.where(positive, numerator, torch.ones_like(numerator))
        log_probs = safe.log() - (safe_b + vocabulary * alpha).log()
        log_probs = torch.where(positive, log_probs, torch.full_like(log_probs, -math.inf))
    nan = torch.full_like(log_probs, math.nan)
    return torch.where(measured.unsqueeze(-1), log_probs, nan)


def estimate_tensors(
    estimates: Sequence[Any],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``A``, ``B`` (as :func:`shift_fractions`, without graph), ``measured`` ``(L, N)`` and the
    shots of the estimates of a run.

    **Example**

    >>> import torch
    >>> from pennylane_qrnn import QRNN, Shots
    >>> model = QRNN(1, 1, mode="amplified", executor=Shots("default.qubit", shots=50))
    >>> output = model(torch.tensor([[1], [0]]), torch.tensor([[0], [1]]))
    >>> a, b, measured, shots = estimate_tensors(output.shot_estimates)
    >>> tuple(a.shape), shots, bool(torch.allclose(a.sum(-1), b))
    ((2, 1, 2), 50, True)
    """
    if not estimates:
        raise QRNNTypeError("estimates must hold one ShotEstimate per sequence; got none")
    a, b, measured = [], [], []
    for estimate in estimates:
        values = torch.as_tensor(_fractions(estimate))
        length = len(estimate.neuron_survivors)
        split = values.numel() - length
        a.append(values[:split].reshape(length, -1))
        b.append(values[split:])
        measured.append(torch.as_tensor(estimate.measured))
    return (
        torch.stack(a, 1),
        torch.stack(b, 1),
        torch.stack(measured, 1),
        int(estimates[0].shots),
    )
