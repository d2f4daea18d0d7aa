"""The shot path: a QRNN's sequences run as whole circuits on devices that cannot postselect.

Each sequence becomes one :class:`~pennylane_qrnn.devices.program.SequenceProgram`; its
measurements are realised natively, as IBM dynamic circuits, or deferred onto fresh qubits
(:mod:`pennylane_qrnn.devices.execution`), and the shots are filtered: the neurons' ancillas must
read 0 and, under teacher forcing, the i/o outcomes must equal the targets. What survives
estimates each step's distribution. This is what a QPU run of the model is; it has no gradient
(use :class:`pennylane_qrnn.optim.SPSA` to fine-tune on it).

Nothing is invented for a step too few shots reached: a step whose readout fewer than
``min_survivors`` shots reach (default 1) is *not measured*; its log-probabilities are NaN and the
run warns (:class:`~pennylane_qrnn.errors.InsufficientShotsWarning`) or, with
``on_insufficient_shots="raise"``, stops (:class:`~pennylane_qrnn.errors.InsufficientShotsError`),
giving the survivors per step and the shots the exact engine says are needed. A measured step
keeps its frequencies however few shots it rests on; each
:class:`~pennylane_qrnn.devices.execution.ShotEstimate` carries the counts (``survivors``) and
a standard-error bound (``standard_error``) with it.

A batch of sequences goes to the provider as one submission, or a few of ``batch_size``
(:class:`~pennylane_qrnn.devices.batches.BatchSubmitter`), recorded in the run's ledger when
one is given (:class:`~pennylane_qrnn.devices.ledger.SubmissionLedger`), so that an interrupted
run resumes without sending finished submissions again.

Steps that skip their output stage (``skip_output``, the ``qpu`` protocol's unscored steps) are
left out of the circuit's readout: NaN log-probabilities, outcome
:data:`~pennylane_qrnn.engine.outcomes.NOT_MEASURED`, an outcome frequency of 1, never short of
shots; every shot alive after them carries on.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..engine.outcomes import NOT_MEASURED
from ..errors import InsufficientShotsError, InsufficientShotsWarning, QRNNError
from ..layout import CellLayout
from ..results import PostselectionStats
from ..validation import check_choice, check_int
from .batches import BatchSubmitter, SubmissionStats, backend_label
from .execution import METHODS, ShotEstimate, analyse_shots, run_program
from .program import SequenceProgram, check_layout

__all__ = ["ShotRunner", "ShotRun", "INSUFFICIENT_SHOTS_POLICIES"]

INSUFFICIENT_SHOTS_POLICIES = ("warn", "raise")
#: survivors per step for a standard error of at most 0.05 on every probability (0.5 / sqrt(100))
_PRECISE_SURVIVORS = 100


def check_shot_policy(min_survivors, on_insufficient_shots) -> None:
    """Validate the shot path's options (see :class:`ShotRunner`).

    Raises:
        QRNNTypeError: ``min_survivors`` is not an int
        QRNNValueError: ``min_survivors`` below 1, or an unknown ``on_insufficient_shots``
    """
    check_int("min_survivors", min_survivors, 1)
    check_choice("on_insufficient_shots", on_insufficient_shots, INSUFFICIENT_SHOTS_POLICIES)


@dataclass
class ShotRun:
    """What :meth:`ShotRunner.run` estimated from the shots of a batch (time-major).

    Attributes:
        log_probs: ``(L, N, 2**I)`` float64 log-probabilities; NaN for unmeasured steps
        outcomes: ``(L, N)`` the token each step collapsed on (the target where postselected;
            ``NOT_MEASURED`` where the output stage was skipped)
        neuron: ``(L, N)`` the neurons' per-step success fraction (NaN where no shot was left)
        picked: ``(L, N)`` the frequency of the outcome taken (1 where skipped)
        estimates: one :class:`~pennylane_qrnn.devices.execution.ShotEstimate` per sequence,
            with the survivor counts each estimate rests on
        submissions: what was sent, read back from the ledger or fetched
            (:class:`~pennylane_qrnn.devices.batches.SubmissionStats`)
    """

    log_probs: torch.Tensor
    outcomes: torch.Tensor
    neuron: torch.Tensor
    picked: torch.Tensor
    estimates: list[ShotEstimate] = field(default_factory=list)
    submissions: SubmissionStats | None = None


class ShotRunner:
    """Runs a QRNN's sequences with shots on ``device`` by ``method``.

    Args:
        device: a PennyLane device, or for ``method="dynamic"`` a Qiskit backend (a
            pennylane-qiskit device is unwrapped to its backend); or a function of no argument
            that creates it when something must be sent
        layout (CellLayout): the cell's sizes, neuron settings and wires
        method: ``"native"``, ``"dynamic"`` or ``"deferred"`` (``None`` with ``execute``)
        shots: shots per sequence
        seed: simulator seed, where the backend takes one
        min_survivors: the surviving shots a step needs to be estimated (default 1); fewer, and
            its log-probabilities are NaN
        on_insufficient_shots: ``"warn"`` (default: NaN for the unmeasured steps and an
            :class:`~pennylane_qrnn.errors.InsufficientShotsWarning`) or ``"raise"`` (an
            :class:`~pennylane_qrnn.errors.InsufficientShotsError` at the first such sequence)
        execute: a ``execute(program, shots) -> records`` replacing :func:`run_program` on
            ``device`` (e.g. a noisy simulation; ``device`` is then unused)
        ledger: a run folder or :class:`~pennylane_qrnn.devices.ledger.SubmissionLedger`
            recording the submissions (default: none)
        batch_size: sequences per submission (default: all of a :meth:`run` in one)
        progress: a progress bar over submissions (``None``: on a terminal only)
        runtime: IBM: ``"job"`` (default), ``"batch"`` or ``"session"`` (a runtime Batch or
            Session around the submissions of each :meth:`run`)
        guard: checks and charges each submission
            (:class:`~pennylane_qrnn.devices.pricing.SubmissionGuard`)
        backend: the name the ledger keys use (default: the device's)
    """

    def __init__(
        self,
        device,
        layout: CellLayout,
        method,
        shots,
        seed=None,
        min_survivors=1,
        on_insufficient_shots="warn",
        execute=None,
        ledger=None,
        batch_size=None,
        progress=None,
        runtime="job",
        guard=None,
        backend=None,
    ):
        check_layout(layout)
        if execute is None or method is not None:
            check_choice("execution", method, METHODS)
        shots = check_int("shots", shots, 1)
        check_shot_policy(min_survivors, on_insufficient_shots)
        self.layout, self.method, self.shots, self.seed = layout, method, shots, seed
        self.min_survivors, self.on_insufficient_shots = int(min_survivors), on_insufficient_shots
        self._execute = execute
        if backend is None:
            backend = "custom" if device is None or callable(device) else backend_label(device)
        # a BatchSubmitter, or a wrapper with its device and run (executors.parameter_shift)
        self.submitter: Any = BatchSubmitter(
            device,
            backend,
            method,
            shots,
            seed,
            ledger,
            batch_size,
            progress,
            runtime,
            guard,
            execute,
        )

    @property
    def device(self):
        """The device (created now if it was given as a function)."""
        return self.submitter.device

    def program(self, weights, tokens, skip_output=None) -> SequenceProgram:
        return SequenceProgram.build(weights, tokens, self.layout, skip_output)

    def execute(self, program: SequenceProgram) -> np.ndarray:
        """The program's records from :attr:`shots` shots, ``(shots, n_records)`` of 0/1."""
        if self._execute is not None:
            return self._execute(program, self.shots)
        return run_program(program, self.device, self.method, self.shots, seed=self.seed)

    def estimate(
        self, weights, tokens, targets=None, postselected=None, skip_output=None
    ) -> ShotEstimate:
        """One sequence through the shot pipeline: build its program, run it, filter the shots
        (:func:`~pennylane_qrnn.devices.execution.analyse_shots`).

        Args:
            tokens: ``(L,)`` the input tokens; ``targets``: ``(L,)`` or ``None``
            postselected: ``(L,)`` bools, the steps postselected on their targets (default:
                every step when ``targets``); the other steps are measured
            skip_output: ``(L,)`` bools, the steps without output stage (nothing read)
        """
        program = self.program(weights, tokens, skip_output)
        bits = self.execute(program)
        return analyse_shots(program, bits, targets, postselected, self.min_survivors)

    def run(
        self, weights, tokens, targets=None, postselected=None, generator=None, skip_output=None
    ) -> ShotRun:
        """Run ``(L, N)`` ``tokens`` and estimate everything from shots (:class:`ShotRun`): the
        ``N`` sequences go as one submission (or several of ``batch_size``).

        Args:
            targets: ``(L, N)`` or ``None``
            postselected: ``(L, N)`` bool, the steps postselected on their targets (default:
                every step when ``targets``); the other steps are measured
            skip_output: ``(L, N)`` bool or ``None``, the steps that skip their output stage
        """
        length, batch = tokens.shape
        log_probs = torch.empty(length, batch, self.layout.vocabulary_size, dtype=torch.float64)
        outcomes = torch.empty(length, batch, dtype=torch.long)
        neuron = torch.empty(length, batch, dtype=torch.float64)
        picked = torch.empty(length, batch, dtype=torch.float64)
        estimates, short = [], []
        programs = [
            self.program(
                weights,
                tokens[:, item].tolist(),
                None if skip_output is None else skip_output[:, item].tolist(),
            )
            for item in range(batch)
        ]
        records, stats = self.submitter.run(programs)
        for item in range(batch):
            forced = None if postselected is None else postselected[:, item].tolist()
            item_targets = None if targets is None else targets[:, item].tolist()
            skips = None if skip_output is None else skip_output[:, item].tolist()
            estimate = analyse_shots(
                programs[item], records[item], item_targets, forced, self.min_survivors
            )
            estimates.append(estimate)
            if estimate.short.any():
                report = self._shortfall(
                    item, estimate, weights, tokens[:, item], item_targets, forced, generator, skips
                )
                if self.on_insufficient_shots == "raise":
                    raise InsufficientShotsError(report + " Nothing was returned.")
                short.append(report)
            probs = torch.as_tensor(estimate.probs)  # NaN rows stay NaN: not measured
            log_probs[:, item] = probs.clamp_min(torch.finfo(torch.float64).tiny).log()
            with np.errstate(invalid="ignore", divide="ignore"):
                tried = np.where(
                    estimate.alive_before > 0,
                    estimate.neuron_survivors / estimate.alive_before,
                    np.nan,
                )
            neuron[:, item] = torch.as_tensor(tried)
            if item_targets is not None and forced is None:
                chosen = torch.tensor(item_targets)
            else:
                chosen = self._trajectory(estimate, item_targets, forced, generator)
            skipped = torch.as_tensor(estimate.skipped)
            chosen = chosen.masked_fill(skipped, NOT_MEASURED)
            outcomes[:, item] = chosen
            picked[:, item] = probs[torch.arange(length), chosen.clamp_min(0)].masked_fill(
                skipped, 1.0
            )
        if short:
            warnings.warn(
                " ".join(short) + " Their log-probabilities are NaN; pass "
                "on_insufficient_shots='raise' to stop instead.",
                InsufficientShotsWarning,
                stacklevel=3,
            )
        return ShotRun(log_probs, outcomes, neuron, picked, estimates, stats)

    def _shortfall(self, item, estimate, weights, tokens, targets, forced, generator, skips) -> str:
        """The message for a sequence with unmeasured steps: survivors per step, and the shots
        the exact engine's success probabilities say are needed."""
        missing = [step + 1 for step in np.flatnonzero(estimate.short)]
        survivors = ", ".join(str(int(n)) for n in estimate.survivors)
        text = (
            f"Too few shots survived the postselections of sequence {item}: step(s) "
            f"{', '.join(map(str, missing))} of {len(estimate.survivors)} had fewer than "
            f"min_survivors={self.min_survivors} (survivors per step: {survivors} of "
            f"{estimate.shots:,} shots)."
        )
        survival = self._predicted_survival(weights, tokens, targets, forced, generator, skips)
        if survival is None:
            return text + " Run more shots, or mode='amplified'."
        worst = float(survival.min())
        if worst <= 0:
            return (
                text
                + " The exact engine gives this path probability 0: no number of shots reaches it."
            )
        fractions = ", ".join(f"{p:.3g}" for p in survival)
        need = math.ceil(self.min_survivors / worst)
        precise = math.ceil(_PRECISE_SURVIVORS / worst)
        return (
            text
            + f" The exact engine predicts fractions {fractions} of the shots reach each step: "
            f"about {need:,} shots per sequence for {self.min_survivors} expected survivor(s) at "
            f"every step, {precise:,} for a standard error of 0.05 ({_PRECISE_SURVIVORS} "
            "survivors); or use mode='amplified'."
        )

    def _predicted_survival(self, weights, tokens, targets, forced, generator, skips=None):
        """``(L,)`` the fraction of shots whose step-``t`` readout survives (the
        :attr:`~pennylane_qrnn.results.PostselectionStats.reach` of the exact engine's run, along
        the targets where postselected, along one sampled history elsewhere); ``None`` where the
        engine cannot run this model."""
        from .. import engine

        try:
            with torch.no_grad():
                weights = [torch.as_tensor(w).detach().cpu().double() for w in weights]
                operators = engine.build_operators(self.layout, *weights)
                column = torch.as_tensor(tokens).reshape(-1, 1).long()
                target_column = None if targets is None else torch.tensor(targets).reshape(-1, 1)
                collapse = (
                    None
                    if forced is None
                    else torch.tensor(forced, dtype=torch.bool).reshape(-1, 1)
                )
                skip = None if skips is None else torch.tensor(skips, dtype=torch.bool)
                skip = None if skip is None else skip.reshape(-1, 1)
                result = engine.run_sequence(
                    operators, column, target_column, None, generator, collapse, skip
                )
        except (QRNNError, MemoryError, RuntimeError):
            return None
        if targets is None:
            postselected = torch.zeros_like(column, dtype=torch.bool)
        elif collapse is None:
            postselected = torch.ones_like(column, dtype=torch.bool)
        else:
            postselected = collapse
        if skip is not None:
            postselected = postselected & ~skip
        stats = PostselectionStats.from_logs(
            result.log_neuron_success.double(),
            result.log_outcome_probability.double(),
            postselected,
        )
        return stats.reach[:, 0].numpy()

    @staticmethod
    def _trajectory(estimate, targets, forced, generator):
        """One surviving shot's outcomes (every postselection passed, targets where forced):
        the run a QPU would report. If no shot survived the whole sequence, one of the shots that
        survived longest (its later steps are unmeasured: the run warns or raises); forced steps
        report their targets either way, as the engine does."""
        longest = estimate.completed.max()
        candidates = np.flatnonzero(estimate.completed == longest)
        index = int(torch.randint(len(candidates), (1,), generator=generator))
        chosen = torch.as_tensor(estimate.outcomes[candidates[index]])
        if targets is not None:
            mask = (
                torch.ones(len(chosen), dtype=torch.bool)
                if forced is None
                else torch.tensor(forced, dtype=torch.bool)
            )
            chosen = torch.where(mask, torch.tensor(targets), chosen)
        return chosen
