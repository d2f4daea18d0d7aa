"""The shot executor: whole sequences as circuits with shots, postselection by filtering them.

This is what a run on a QPU is (:mod:`pennylane_qrnn.devices.hardware`): estimates that rest on
the shots that survive, and a price; no gradient unless ``gradient="parameter-shift"``, which
estimates one from shifted circuits in the same submission
(:mod:`~pennylane_qrnn.executors.parameter_shift`). A step too few shots reach is NaN, with a
warning or an error (``on_insufficient_shots``); nothing is invented for it.

It runs the ``qpu`` protocol (:mod:`pennylane_qrnn.protocols`): ``skip_output`` leaves a step's
output stage and i/o readout out of the circuit (NaN log-probabilities, outcome
:data:`~pennylane_qrnn.engine.outcomes.NOT_MEASURED`, nothing postselected or paid there).
"""

from __future__ import annotations

from typing import Any

import torch

from ..devices.batches import SubmissionStats, backend_label
from ..devices.capabilities import DeviceCapabilityError, capabilities
from ..devices.execution import METHODS
from ..devices.facts import qiskit_backend
from ..devices.hardware import INSUFFICIENT_SHOTS_POLICIES, ShotRunner
from ..devices.ledger import SubmissionLedger
from ..devices.pricing import BudgetExceededError, SubmissionGuard, can_price
from ..devices.program import deferred_width
from ..devices.resources import Budget, check_budget_value, run_price
from ..devices.submission import RUNTIME_MODES
from ..errors import QRNNValueError
from ..results import PostselectionStats, SequenceOutput
from ..validation import check_choice, check_int
from .base import Executor, RunnableModel, postselection_mask
from .device import DeviceSpec
from .parameter_shift import (
    ShiftedSubmitter,
    check_gradient,
    check_pseudo_count,
    estimate_tensors,
    estimated_log_probs,
    shift_fractions,
)

__all__ = ["Shots", "DEFAULT_SHOTS"]

#: shots per sequence when neither the executor nor the device says
DEFAULT_SHOTS = 1024


class Shots(Executor):
    """Runs each sequence as one circuit with ``shots`` on ``device`` and estimates every step's
    distribution from the shots that pass its postselections.

    Args:
        device: a PennyLane device or the name of an installed one (``qiskit.aer``,
            ``qiskit.remote``, ``braket.local.qubit``, ``braket.aws.qubit``, or a simulator that
            runs mid-circuit measurements shot by shot)
        shots (int or None): shots per sequence (default: the device's, else 1024)
        method (str or None): how mid-circuit measurements are realised: ``"native"``,
            ``"dynamic"`` (Qiskit dynamic circuits) or ``"deferred"`` (a fresh qubit per
            measurement); ``None`` lets the device's capabilities decide
        seed (int or None): the simulator's seed, where it takes one
        budget (float or None): USD, a cumulative spending limit: each run on a priced device
            (Braket QPU ARNs, IBM backends with calibrated durations) is priced before it is
            sent, refused if it would take :attr:`spending` past the limit, and charged when sent
        price_table (dict or None): ``{name or ARN fragment: (USD per task, USD per shot)}``,
            replacing the default table for the budget check
        min_survivors (int): the surviving shots a step needs to be estimated (default 1)
        on_insufficient_shots (str): ``"warn"`` (NaN and an
            :class:`~pennylane_qrnn.errors.InsufficientShotsWarning`) or ``"raise"``
        device_options (dict or None): keyword arguments for ``qml.device`` when ``device`` is
            a name
        ledger (str, Path or None): a run folder: each submission's job/task ids and finished
            records are written there (``submissions.json``), and a run repeated with the same
            weights, tokens and settings reads finished submissions back instead of sending
            them again (an interrupted run resumes without paying twice)
        batch_size (int or None): sequences per submission (default: all the sequences of a
            forward pass in one: one IBM job, one Braket program set or task batch)
        progress (bool or None): a tqdm bar over submissions (``None``: on a terminal only)
        runtime (str): IBM: ``"job"`` (default; each submission a job), ``"batch"`` or
            ``"session"`` (the submissions of a forward pass in a runtime ``Batch`` or
            ``Session``); a pennylane-qiskit device's own ``session=`` is used in job mode
        gradient (str or None): ``"parameter-shift"``: a forward pass with gradients enabled
            (weights that require grad, outside ``torch.no_grad``) also runs, in the same
            submission, each sequence with every weight-dependent ``RY``/``PhaseShift`` angle
            shifted by ``+-pi/2``, and its log-probabilities carry the shift-rule gradient
            (:mod:`~pennylane_qrnn.executors.parameter_shift`; ``1 + 2 G L`` circuits per
            sequence of ``L`` steps with ``G`` such gates per cell). ``None`` (default): no
            gradient, one circuit per sequence
        pseudo_count (float or None): how step probabilities are estimated from counts:
            ``None`` (default) the frequency, floored at the smallest float64 (a token no
            shot read: ``-708.4``); a number ``alpha >= 0``: ``(n_k + alpha) / (n + V alpha)``
            (``0.5``: Krichevsky-Trofimov; ``0``: ``-inf`` for a token no shot read), see
            :func:`~pennylane_qrnn.executors.parameter_shift.estimated_log_probs`

    Example::

        >>> import torch
        >>> from pennylane_qrnn import QRNN
        >>> model = QRNN(1, 1, mode="amplified", executor=Shots("default.qubit", shots=200, seed=1))
        >>> output = model(torch.tensor([[1], [0]]), torch.tensor([[0], [1]]))
        >>> [int(e.shots) for e in output.shot_estimates]
        [200]

    With ``gradient="parameter-shift"`` the log-probabilities carry a gradient estimated from
    shots; the one submission holds ``1 + 2 G L`` circuits per sequence (here ``G = 4``):

        >>> shots = Shots("default.qubit", shots=100, method="deferred", gradient="parameter-shift")
        >>> model = QRNN(1, 1, stages=0, degree=1, order=1, mode="amplified", executor=shots)
        >>> tokens, targets = torch.tensor([[1], [0]]), torch.tensor([[0], [1]])
        >>> model.loss(model(tokens, targets).log_probs, targets).backward()
        >>> shots.last_submissions.sent, model.input_weights.grad is not None
        (1, True)
    """

    supports_mixed_protocols = True
    supports_skip_output = True

    def __init__(
        self,
        device: Any,
        shots: int | None = None,
        method: str | None = None,
        seed: int | None = None,
        budget: float | None = None,
        price_table: dict | None = None,
        min_survivors: int = 1,
        on_insufficient_shots: str = "warn",
        device_options: dict | None = None,
        ledger: SubmissionLedger | str | Any = None,
        batch_size: int | None = None,
        progress: bool | None = None,
        runtime: str = "job",
        gradient: str | None = None,
        pseudo_count: float | None = None,
    ) -> None:
        if shots is not None:
            check_int("shots", shots, 1)
        if method is not None:
            check_choice("execution", method, METHODS)
        check_int("min_survivors", min_survivors, 1)
        check_choice("on_insufficient_shots", on_insufficient_shots, INSUFFICIENT_SHOTS_POLICIES)
        self.device = DeviceSpec(device, device_options)
        self.shots, self.method, self.seed = shots, method, seed
        self.spending = Budget(budget)  # validates: a finite number of USD >= 0, or None
        self.price_table = price_table
        self.min_survivors, self.on_insufficient_shots = int(min_survivors), on_insufficient_shots
        if batch_size is not None:
            check_int("batch_size", batch_size, 1)
        self.batch_size, self.progress = batch_size, progress
        self.runtime = check_choice("runtime", runtime, RUNTIME_MODES)
        self.gradient = check_gradient(gradient)
        self.pseudo_count = check_pseudo_count(pseudo_count)
        # a folder path (read afresh at each run); refused now if it holds no ledger of ours
        self.ledger = None if ledger is None else SubmissionLedger(ledger).folder
        #: what the last run sent, reused and fetched
        self.last_submissions: SubmissionStats | None = None
        if self.plan()["measurements"] == "dynamic" and not self.device.name.startswith("qiskit."):
            raise QRNNValueError(
                "execution='dynamic' needs a Qiskit backend (qiskit.aer, qiskit.remote); "
                f"got backend={self.device.name!r} (use 'native' or 'deferred')"
            )
        self._check_priced()

    def _check_priced(self) -> None:
        """A spending limit on a device without a price is refused now, before any circuit is
        built (the run-time check would refuse it only after transpiling the first run)."""
        if self.spending.limit is None:
            return
        name = self.device.options.get("device_arn") or self.device.name
        backend = None
        if self.plan()["measurements"] == "dynamic":  # as price(): IBM runs priced by QPU time
            if name == "qiskit.remote":
                return  # an IBM device: calibrated durations (the run prices it, or refuses)
            given = self.device.given
            # a device not built yet: the backend it will run on, where one was given
            backend = qiskit_backend(
                self.device.options.get("backend") if isinstance(given, str) else given
            )
        if not can_price(name, backend, self.price_table):
            raise self.spending.unpriced(name)

    @property
    def budget(self) -> float | None:
        """The spending limit in USD (settable), or ``None``."""
        return self.spending.limit

    @budget.setter
    def budget(self, value: float | None) -> None:
        previous, self.spending.limit = self.spending.limit, check_budget_value(value)
        try:
            self._check_priced()
        except BudgetExceededError:
            self.spending.limit = previous
            raise

    def plan(self) -> dict[str, Any]:
        caps = capabilities(self.device.given)
        return {
            "backend": self.device.name,
            "path": "shots",
            "measurements": self.method or caps.measurements,
            "shots": self.shots or self.device.shots or DEFAULT_SHOTS,
        }

    def price(
        self,
        model: RunnableModel,
        tokens: torch.Tensor,
        skip_output: torch.Tensor | None = None,
    ) -> float | None:
        """The price in USD of running ``(L, N)`` ``tokens`` (``None``: no price known), with
        the steps in ``skip_output`` (``(L, N)`` bool) skipping their output stage."""
        plan = self.plan()
        name = self.device.options.get("device_arn") or self.device.name
        live = self.device.given if plan["measurements"] == "dynamic" else None
        return run_price(
            model,
            tokens[:, 0].tolist(),
            name,
            None if isinstance(live, str) else live,
            plan["measurements"],
            plan["shots"],
            tokens.shape[1],
            self.price_table,
            None if skip_output is None else skip_output[:, 0].tolist(),
        )

    def run(
        self,
        model: RunnableModel,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        postselected: torch.Tensor | None,
        state: torch.Tensor | None,
        generator: torch.Generator | None,
        *,
        skip_output: torch.Tensor | None = None,
    ) -> SequenceOutput:
        """:meth:`Executor.run <pennylane_qrnn.executors.Executor.run>`, and ``skip_output``:
        ``(L, N)`` bool, the steps that skip their output stage (left out of the circuits)."""
        if state is not None:
            raise QRNNValueError(
                f"state must be None on the shot path (backend={self.device.name!r}): circuits "
                "start from |0...0>"
            )
        plan = self.plan()
        skip = None if skip_output is None else skip_output.bool().cpu()
        if skip is not None and not bool(skip.any()):
            skip = None
        price = None
        name = self.device.options.get("device_arn") or self.device.name
        if self.spending.limit is not None:
            price = self.price(model, tokens, skip)
        layout = model.layout
        n_wires = layout.n_wires
        if plan["measurements"] == "deferred":
            n_wires = max(
                deferred_width(layout, None if skip is None else skip[:, i], tokens.shape[0])
                for i in range(tokens.shape[1])
            )
        per_sequence = None if price is None else price / tokens.shape[1]
        given = self.device.given
        runner = ShotRunner(
            lambda: self.device.live(n_wires),  # made only when something must be sent
            layout,
            plan["measurements"],
            plan["shots"],
            seed=self.seed,
            min_survivors=self.min_survivors,
            on_insufficient_shots=self.on_insufficient_shots,
            ledger=self.ledger,
            batch_size=self.batch_size,
            progress=self.progress,
            runtime=self.runtime,
            # checked before the first submission, charged at each one
            guard=SubmissionGuard(self.spending, name, per_sequence, plan["shots"]),
            backend=name if isinstance(given, str) else backend_label(given),
        )
        mask = postselection_mask(tokens, targets, postselected)
        weights = model.weights()
        shifted = self.gradient is not None and torch.is_grad_enabled()
        if shifted and any(w.requires_grad for w in weights):
            runner.submitter = ShiftedSubmitter(runner.submitter, weights)
        targets = None if targets is None else targets.cpu()
        forced = None if targets is None or postselected is None else mask.cpu()
        run = runner.run(weights, tokens.cpu(), targets, forced, generator, skip)
        if skip is not None:  # a skipped step reads nothing, so it postselects nothing
            mask = mask.cpu() & ~skip
        stats = PostselectionStats.from_probabilities(run.neuron, run.picked, mask.cpu())
        self.last_submissions = run.submissions
        log_probs = run.log_probs
        if isinstance(runner.submitter, ShiftedSubmitter):
            a, b = shift_fractions(runner.submitter, run.estimates, targets, forced)
            measured = estimate_tensors(run.estimates)[2]
            log_probs = estimated_log_probs(a, b, measured, plan["shots"], self.pseudo_count)
        elif self.pseudo_count is not None:
            a, b, measured, shots = estimate_tensors(run.estimates)
            log_probs = estimated_log_probs(a, b, measured, shots, self.pseudo_count)
        like = model.input_weights  # the model's dtype and device
        return SequenceOutput(
            log_probs.to(dtype=like.dtype, device=like.device),
            None,
            run.outcomes.to(like.device),
            stats,
            run.estimates,
            self.describe(),
        )

    def __repr__(self) -> str:
        parts = [repr(self.device.name)]
        if self.shots is not None:
            parts.append(f"shots={self.shots}")
        if self.method is not None:
            parts.append(f"method={self.method!r}")
        if self.spending.limit is not None:
            parts.append(f"budget={self.spending.limit}")
        if self.gradient is not None:
            parts.append(f"gradient={self.gradient!r}")
        if self.pseudo_count is not None:
            parts.append(f"pseudo_count={self.pseudo_count}")
        return f"Shots({', '.join(parts)})"


def refuse_diff_method(backend: str, diff_method: str | None) -> None:
    """The shot path has no gradient: refuse a ``diff_method`` given with it."""
    if diff_method is not None:
        raise DeviceCapabilityError(
            f"diff_method must be None on the shot path ({backend!r} runs whole sequences with "
            "shots and filters them: the estimates have no autograd gradient); got "
            f"{diff_method!r} (fine-tune with pennylane_qrnn.optim.SPSA or "
            "Shots(..., gradient='parameter-shift'), or train on the exact engine and load the "
            "weights)"
        )
