"""Training with SPSA (``qrnn train --optimizer spsa``), on any backend and in particular on shot
devices, whose estimates carry no gradient.

Each step of :class:`SPSATrainer` evaluates the loss of the step's batch twice, at
:math:`\\theta \\pm c_k \\Delta` (:class:`~pennylane_qrnn.optim.SPSA`), with no ``backward``. On a
shot device each evaluation is one submission of the whole batch (one IBM job, one Braket
program set or task batch; :mod:`pennylane_qrnn.devices.batches`), written to the run folder's
ledger (``submissions.json``); the model's budget (``budget=``, USD) checks each submission
before it is sent and counts it. The SPSA generator is saved with each checkpoint, so a resumed
run replays the steps after its last checkpoint with the same perturbations: their submissions
are read back from the ledger instead of being sent and paid again.

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

__all__ = ["SPSATrainer", "make_trainer"]


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
        executor = getattr(self.model, "executor", None)
        if hasattr(executor, "ledger"):  # a shot executor: its submissions go to the run folder
            executor.ledger = Path(out)

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


def uses_spsa(config, out, resume: bool = False) -> bool:
    """Whether a run of ``config`` in ``out`` trains with SPSA (``optimizer="spsa"``; with
    ``resume`` and no ``config``, as the checkpoint's config says)."""
    optimizer = None if config is None else getattr(config, "optimizer", None)
    if config is None and resume:
        from .runs import config_from_file, load_checkpoint

        path = Path(out) / "checkpoint.pt"
        if path.is_file():
            optimizer = config_from_file(load_checkpoint(path), path).optimizer
    return optimizer == "spsa"


def make_trainer(config, out, resume: bool = False, overwrite: bool = False, ranks=None):
    """The trainer for ``config``: an :class:`SPSATrainer` for ``optimizer="spsa"``, else a
    :class:`~pennylane_qrnn.training.Trainer` (same arguments). With ``resume`` and no
    ``config``, the checkpoint's config decides. (``Trainer(...)`` itself gives the same.)"""
    if uses_spsa(config, out, resume):
        return SPSATrainer(config, out, resume=resume, overwrite=overwrite, ranks=ranks)
    return Trainer(config, out, resume=resume, overwrite=overwrite, ranks=ranks)
