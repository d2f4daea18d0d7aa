"""Training on shot devices: with SPSA (``qrnn train --optimizer spsa``, on any backend), or with
a gradient optimiser whose gradients are estimated from shots by the parameter-shift rule
(``qrnn train --gradient parameter-shift``, :class:`ShotGradientTrainer`).

Each step of :class:`SPSATrainer` evaluates the loss of the step's batch twice, at
:math:`\\theta \\pm c_k \\Delta` (:class:`~pennylane_qrnn.optim.SPSA`), with no ``backward``. On a
shot device each evaluation is one submission of the whole batch (one IBM job, one Braket
program set or task batch; :mod:`pennylane_qrnn.devices.batches`), written to the run folder's
ledger (``submissions.json``); the model's budget (``budget=``, USD) checks each submission
before it is sent and counts it. The SPSA generator is saved with each checkpoint, so a resumed
run replays the steps after its last checkpoint with the same perturbations: their submissions
are read back from the ledger instead of being sent and paid again.

Each step of :class:`ShotGradientTrainer` is one forward pass whose submission holds the batch's
circuits and their shifted copies (:mod:`pennylane_qrnn.executors.parameter_shift`: ``1 + 2 G L``
circuits per sequence, one submission per step, all priced and counted by the budget), then
``loss.backward()`` and the optimiser's step. The weights and optimiser state are checkpointed as
for any run; a resumed run replays the steps after its last checkpoint with the same weights and
batches, so their submissions have the same keys and are read back from the ledger.

On shots, the loss reads each step's counts with the pseudo-count ``config.pseudo_count``
(default 0.5: ``(n_k + 0.5) / (n + V / 2)``, the Krichevsky-Trofimov estimate; ``0``: the plain
frequency, and a scored target no shot read makes the loss infinite and stops the run). Both
SPSA and parameter-shift runs use it (:func:`~pennylane_qrnn.executors.parameter_shift.
estimated_log_probs` says the bias).

Validation runs on an exact-engine twin of the model (as for every device,
:class:`~pennylane_qrnn.training.Trainer`), so it spends no shots.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..checkpoints import atomic_save
from ..errors import NonFiniteError, QRNNValueError, UnsafeFileError
from .losses import training_loss
from .trainer import Trainer

__all__ = ["SPSATrainer", "ShotGradientTrainer", "make_trainer", "trainer_class"]


def _prepare_shots(trainer, out, gradient=None) -> None:
    """Point a shot model's executor at the run: its ledger in ``out``, the config's
    pseudo-count and (for :class:`ShotGradientTrainer`) the gradient."""
    executor = getattr(trainer.model, "executor", None)
    if hasattr(executor, "ledger"):  # a shot executor: its submissions go to the run folder
        executor.ledger = Path(out)
        executor.pseudo_count = trainer.config.pseudo_count
        executor.gradient = gradient


class SPSATrainer(Trainer):
    """A :class:`~pennylane_qrnn.training.Trainer` whose steps are SPSA steps (its config has
    ``optimizer="spsa"``): two loss evaluations of the batch, no gradient. The only way to train
    on a shot device (``backend="qiskit.aer"``, ``"braket.local.qubit"``, ...).

    Args: as :class:`~pennylane_qrnn.training.Trainer` (one process only: ``ranks`` must be
    ``None``). A shot model records its submissions in ``out`` (``submissions.json``).

    Raises:
        QRNNValueError: ``config.optimizer`` is not ``"spsa"``, or a data-parallel run

    **Example** (a few steps on the exact engine; ``backend="qiskit.aer", shots=...`` runs them
    on shots)

    >>> import tempfile
    >>> from pennylane_qrnn.training import TrainConfig
    >>> config = TrainConfig(task="elman-xor", length=3, workspace=1, stages=1, degree=1,
    ...                      order=1, steps=2, batch_size=2, eval_every=2, eval_batches=1,
    ...                      optimizer="spsa")
    >>> trainer = SPSATrainer(config, tempfile.mkdtemp())
    >>> summary = trainer.run(progress=False)
    >>> trainer.optimizer.step_count, summary["steps"]
    (2, 2)
    """

    def __init__(self, config, out, resume=False, overwrite=False, ranks=None):
        if ranks is not None:
            raise QRNNValueError("optimizer 'spsa' trains in one process; got a data-parallel run")
        super().__init__(config, out, resume=resume, overwrite=overwrite, ranks=None)
        if self.config.optimizer != "spsa":
            raise QRNNValueError(
                f"optimizer must be 'spsa' for an SPSATrainer; got {self.config.optimizer!r}"
            )
        self.ranks = None
        self._trained = self.model
        _prepare_shots(self, out)

    def _restore(self, saved) -> None:
        super()._restore(saved)
        state = saved.get("spsa_generator")
        if not isinstance(state, torch.Tensor):
            raise UnsafeFileError(
                f"checkpoint {str(self.checkpoint_path)!r} must hold the SPSA generator of its run"
            )
        self.optimizer.generator.set_state(state)

    def _write_checkpoint(self) -> None:
        super()._write_checkpoint()
        saved = torch.load(self.checkpoint_path, weights_only=True)
        saved["spsa_generator"] = self.optimizer.generator.get_state()
        atomic_save(saved, self.checkpoint_path)

    def train_step(self, batch=None) -> dict:
        """One SPSA step on ``batch`` (by default the next one the data generator draws).
        ``loss`` is the mean of the perturbed losses; ``accuracy`` and ``min_postselection``
        are taken over the perturbed evaluations too (no extra, unpaid evaluation).

        Raises:
            NonFiniteError: a loss is NaN or infinite (e.g. a step no shot reached), or the
                update made a parameter non-finite; the parameters are left as they were
        """
        if batch is None:
            batch = self.task.batch(self.config.batch_size, self.data_generator, split="train")
        device = next(self.model.parameters()).device
        tokens, targets, scored = (
            t.to(device) for t in (batch.tokens, batch.targets, batch.scored)
        )
        masks = {}
        if self.protocol.postselect != "every":
            self.protocol.check_loss(batch.forced, batch.scored)
            masks = self.protocol.forward_masks(batch.forced.to(device), scored)
            masks["generator"] = self.data_generator
        seen = {"correct": 0.0, "evaluations": 0, "min_postselection": math.inf}

        def closure():
            output = self.model(tokens, targets, **masks)
            loss = training_loss(self.config.loss, self.model, output.log_probs, targets, scored)
            value = float(loss)
            if not math.isfinite(value):
                raise NonFiniteError(
                    f"the training loss must be finite; got {value} (on shots: a scored step "
                    "too few shots reached; use more shots or mode='amplified')"
                )
            correct = ((output.log_probs.argmax(-1) == targets) & scored).sum()
            seen["correct"] += float(correct / scored.sum().clamp_min(1))
            seen["evaluations"] += 1
            step = float(output.postselection.min_step.min())
            seen["min_postselection"] = min(seen["min_postselection"], step)
            return loss

        reported = self.optimizer.step(closure)
        bad = [n for n, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise NonFiniteError(
                f"the parameters must stay finite; the update made {', '.join(bad)} NaN or infinite"
            )
        return {
            "loss": reported,
            "accuracy": seen["correct"] / max(seen["evaluations"], 1),
            "min_postselection": seen["min_postselection"],
        }


class ShotGradientTrainer(Trainer):
    """A :class:`~pennylane_qrnn.training.Trainer` on a shot device whose gradients come from
    shots by the parameter-shift rule (its config has ``gradient="parameter-shift"`` and a
    gradient optimiser): each step is one submission of the batch's circuits and their shifted
    copies, then ``backward`` and the optimiser's step (see the module docstring).

    Args: as :class:`~pennylane_qrnn.training.Trainer` (one process only: ``ranks`` must be
    ``None``). The model records its submissions in ``out`` (``submissions.json``).

    Raises:
        QRNNValueError: ``config.gradient`` is not ``"parameter-shift"``, or a data-parallel run

    **Example** (``qrnn train --gradient parameter-shift`` runs one; tests/test_shot_gradients.py
    trains on Aer and Braket's local simulator)

    >>> from pennylane_qrnn.training import TrainConfig
    >>> config = TrainConfig(task="elman-xor", backend="qiskit.aer", shots=1000,
    ...                      gradient="parameter-shift")
    >>> trainer_class(config, "runs/x").__name__
    'ShotGradientTrainer'
    >>> TrainConfig(task="elman-xor", gradient="parameter-shift").resolved()
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: device must be a shot device ...; got 'exact', ...
    """

    def __init__(self, config, out, resume=False, overwrite=False, ranks=None):
        if ranks is not None:
            raise QRNNValueError(
                "gradient 'parameter-shift' trains in one process; got a data-parallel run"
            )
        super().__init__(config, out, resume=resume, overwrite=overwrite, ranks=None)
        if self.config.gradient != "parameter-shift":
            raise QRNNValueError(
                "gradient must be 'parameter-shift' for a ShotGradientTrainer; got "
                f"{self.config.gradient!r}"
            )
        self.ranks = None
        self._trained = self.model
        _prepare_shots(self, out, "parameter-shift")

    def train_step(self, batch=None) -> dict:
        """:meth:`Trainer.train_step <pennylane_qrnn.training.Trainer.train_step>` on shots:
        one submission (the batch and its shifted circuits), ``backward``, the optimiser's step.

        Raises:
            NonFiniteError: a NaN or infinite loss or gradient (a scored step too few shots
                reached, or with ``pseudo_count=0`` a target no shot read); the parameters are
                left as they were
        """
        try:
            return super().train_step(batch)
        except NonFiniteError as error:
            raise NonFiniteError(
                f"{error} (on shots: a step fewer than min_survivors shots reached is NaN, and "
                f"with pseudo_count {self.config.pseudo_count:g} a target no shot read is "
                "log 0; use more shots, --pseudo-count > 0 or mode='amplified')"
            ) from error


def _saved_config(config, out, resume):
    """``config``, or with ``resume`` and no ``config`` the checkpoint's."""
    if config is None and resume:
        from .runs import config_from_file, load_checkpoint

        path = Path(out) / "checkpoint.pt"
        if path.is_file():
            return config_from_file(load_checkpoint(path), path)
    return config


def uses_spsa(config, out, resume: bool = False) -> bool:
    """Whether a run of ``config`` in ``out`` trains with SPSA (``optimizer="spsa"``; with
    ``resume`` and no ``config``, as the checkpoint's config says)."""
    return getattr(_saved_config(config, out, resume), "optimizer", None) == "spsa"


def trainer_class(config, out, resume: bool = False) -> type:
    """The trainer class a run of ``config`` in ``out`` takes: :class:`SPSATrainer` for
    ``optimizer="spsa"``, :class:`ShotGradientTrainer` for ``gradient="parameter-shift"``, else
    :class:`~pennylane_qrnn.training.Trainer` (with ``resume`` and no ``config``, as the
    checkpoint's config says).

    **Example**

    >>> from pennylane_qrnn.training import TrainConfig
    >>> trainer_class(TrainConfig(task="elman-xor", optimizer="spsa"), "runs/x").__name__
    'SPSATrainer'
    >>> trainer_class(TrainConfig(task="elman-xor"), "runs/x").__name__
    'Trainer'
    """
    saved = _saved_config(config, out, resume)
    if getattr(saved, "optimizer", None) == "spsa":
        return SPSATrainer
    if getattr(saved, "gradient", None) == "parameter-shift":
        return ShotGradientTrainer
    return Trainer


def make_trainer(config, out, resume: bool = False, overwrite: bool = False, ranks=None):
    """The trainer for ``config`` (:func:`trainer_class`: an :class:`SPSATrainer`, a
    :class:`ShotGradientTrainer` or a :class:`~pennylane_qrnn.training.Trainer`; same
    arguments). With ``resume`` and no ``config``, the checkpoint's config decides.
    (``Trainer(...)`` itself gives the same.)"""
    cls = trainer_class(config, out, resume)
    return cls(config, out, resume=resume, overwrite=overwrite, ranks=ranks)
