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
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..errors import InsufficientShotsError, InsufficientShotsWarning, QRNNError, QRNNValueError
from .execution import METHODS, analyse_shots, run_program
from .program import SequenceProgram

__all__ = ["ShotRunner", "INSUFFICIENT_SHOTS_POLICIES"]

INSUFFICIENT_SHOTS_POLICIES = ("warn", "raise")
#: survivors per step for a standard error of at most 0.05 on every probability (0.5 / sqrt(100))
_PRECISE_SURVIVORS = 100


def check_shot_policy(min_survivors, on_insufficient_shots) -> None:
    """Validate the shot path's options (see :class:`ShotRunner`)."""
    if (
        isinstance(min_survivors, bool)
        or not isinstance(min_survivors, (int, np.integer))
        or min_survivors < 1
    ):
        raise QRNNValueError(f"min_survivors must be an int >= 1; got {min_survivors!r}")
    if on_insufficient_shots not in INSUFFICIENT_SHOTS_POLICIES:
        raise QRNNValueError(
            f"on_insufficient_shots must be one of {INSUFFICIENT_SHOTS_POLICIES}; got "
            f"{on_insufficient_shots!r}"
        )


class ShotRunner:
    """Runs a QRNN's sequences with shots on ``device`` by ``method``.

    Args:
        device: a PennyLane device, or for ``method="dynamic"`` a Qiskit backend (a
            pennylane-qiskit device is unwrapped to its backend)
        method: ``"native"``, ``"dynamic"`` or ``"deferred"``
        shots: shots per sequence
        seed: simulator seed, where the backend takes one
        min_survivors: the surviving shots a step needs to be estimated (default 1); fewer, and
            its log-probabilities are NaN
        on_insufficient_shots: ``"warn"`` (default: NaN for the unmeasured steps and an
            :class:`~pennylane_qrnn.errors.InsufficientShotsWarning`) or ``"raise"`` (an
            :class:`~pennylane_qrnn.errors.InsufficientShotsError` at the first such sequence)
    """

    def __init__(
        self,
        device,
        io_bits,
        workspace,
        degree,
        order,
        mode,
        method,
        shots,
        seed=None,
        min_survivors=1,
        on_insufficient_shots="warn",
    ):
        if method not in METHODS:
            raise QRNNValueError(f"execution must be one of {METHODS}; got {method!r}")
        if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
            raise QRNNValueError(
                f"shots must be a positive int for a shot-based backend; got {shots!r}"
            )
        check_shot_policy(min_survivors, on_insufficient_shots)
        self.device, self.method, self.shots, self.seed = device, method, int(shots), seed
        self.settings = (io_bits, workspace, degree, order, mode)
        self.min_survivors, self.on_insufficient_shots = int(min_survivors), on_insufficient_shots
        self.last_estimates = []

    def program(self, weights, tokens) -> SequenceProgram:
        io_bits, workspace, degree, order, mode = self.settings
        return SequenceProgram.build(weights, tokens, io_bits, workspace, degree, order, mode)

    def run(self, weights, tokens, targets=None, collapse=None, generator=None):
        """Estimated log-probabilities ``(L, N, 2**I)`` (NaN for unmeasured steps), outcomes
        ``(L, N)``, the neurons' per-step success fraction (NaN where no shot was left to try)
        and the frequency of the outcome taken, all from shots. The
        :class:`~pennylane_qrnn.devices.execution.ShotEstimate` of each sequence, with its
        survivor counts, is in :attr:`last_estimates`."""
        length, batch = tokens.shape
        vocabulary = 2 ** self.settings[0]
        log_probs = torch.empty(length, batch, vocabulary, dtype=torch.float64)
        outcomes = torch.empty(length, batch, dtype=torch.long)
        neuron = torch.empty(length, batch, dtype=torch.float64)
        picked = torch.empty(length, batch, dtype=torch.float64)
        self.last_estimates = []
        short = []
        for item in range(batch):
            program = self.program(weights, tokens[:, item].tolist())
            bits = run_program(program, self.device, self.method, self.shots, seed=self.seed)
            forced = None if collapse is None else collapse[:, item].tolist()
            item_targets = None if targets is None else targets[:, item].tolist()
            estimate = analyse_shots(program, bits, item_targets, forced, self.min_survivors)
            self.last_estimates.append(estimate)
            if not estimate.measured.all():
                report = self._shortfall(
                    item, estimate, weights, tokens[:, item], item_targets, forced, generator
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
            outcomes[:, item] = chosen
            picked[:, item] = probs[torch.arange(length), chosen]
        if short:
            warnings.warn(
                " ".join(short) + " Their log-probabilities are NaN; pass "
                "on_insufficient_shots='raise' to stop instead.",
                InsufficientShotsWarning,
                stacklevel=3,
            )
        return log_probs, outcomes, neuron, picked

    def _shortfall(self, item, estimate, weights, tokens, targets, forced, generator) -> str:
        """The message for a sequence with unmeasured steps: survivors per step, and the shots
        the exact engine's success probabilities say are needed."""
        missing = [step + 1 for step in np.flatnonzero(~estimate.measured)]
        survivors = ", ".join(str(int(n)) for n in estimate.survivors)
        text = (
            f"Too few shots survived the postselections of sequence {item}: step(s) "
            f"{', '.join(map(str, missing))} of {len(estimate.survivors)} had fewer than "
            f"min_survivors={self.min_survivors} (survivors per step: {survivors} of "
            f"{estimate.shots:,} shots)."
        )
        survival = self._predicted_survival(weights, tokens, targets, forced, generator)
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

    def _predicted_survival(self, weights, tokens, targets, forced, generator):
        """``(L,)`` the fraction of shots whose step-``t`` readout survives, from the exact engine
        (along the targets where teacher-forced, along one sampled history elsewhere); ``None``
        where the engine cannot run this model."""
        from .. import engine

        io_bits, workspace, degree, order, mode = self.settings
        try:
            with torch.no_grad():
                weights = [torch.as_tensor(w).detach().cpu().double() for w in weights]
                layout = engine.CellLayout(
                    io_bits, workspace, int(weights[1].shape[0]), degree, order, mode
                )
                operators = engine.build_operators(layout, *weights)
                column = torch.as_tensor(tokens).reshape(-1, 1).long()
                target_column = None if targets is None else torch.tensor(targets).reshape(-1, 1)
                collapse = (
                    None
                    if forced is None
                    else torch.tensor(forced, dtype=torch.bool).reshape(-1, 1)
                )
                result = engine.run_sequence(
                    operators, column, target_column, generator=generator, collapse=collapse
                )
        except (QRNNError, MemoryError, RuntimeError):
            return None
        neuron = result.neuron_success[:, 0].double()
        paid = result.outcome_probability[:, 0].double()
        if targets is None:
            paid = torch.ones_like(paid)
        elif forced is not None:
            paid = torch.where(collapse[:, 0], paid, torch.ones_like(paid))
        before = torch.cat(
            [torch.ones(1, dtype=torch.float64), torch.cumprod(neuron * paid, 0)[:-1]]
        )
        return (before * neuron).numpy()

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
