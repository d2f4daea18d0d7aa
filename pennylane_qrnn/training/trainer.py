"""The training loop: :class:`Trainer` runs a :class:`~pennylane_qrnn.training.TrainConfig` and
keeps its run (see :mod:`pennylane_qrnn.training`)."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..checkpoints import atomic_save, atomic_write_text, check_finite_state
from ..errors import NonFiniteError, QRNNValueError, UnsafeFileError
from ..evaluation import evaluate
from ..protocols import get_protocol
from .config import TrainConfig, build_model, learning_rate, make_optimizer
from .distributed import Ranks
from .hardware import check_trainable, model_device, raise_if_nonfinite, supports_mixed
from .losses import training_loss
from .plotting import plot_curves
from .runs import (
    config_from_file,
    json_safe,
    load_checkpoint,
    load_weights,
    prepare_folder,
    resumed_config,
)

__all__ = ["Trainer", "METRIC_FIELDS"]


METRIC_FIELDS = [
    "step",
    "loss",
    "accuracy",
    "min_postselection",
    "steps_per_second",
    "val_loss",
    "val_accuracy_argmax",
    "val_accuracy_sampled",
    "val_min_postselection",
]


class Trainer:
    """Trains a :class:`~pennylane_qrnn.QRNN` on a task and writes its results to ``out``.

    Files in ``out``: ``config.json``, ``checkpoint.pt`` (latest), ``model.pt`` (final weights
    and config), ``best.pt`` (the weights with the lowest validation loss so far),
    ``metrics.csv``, ``summary.json`` and ``curves.png``.

    Each training step runs under :attr:`protocol` (``config.protocol``, a
    :class:`~pennylane_qrnn.protocols.Protocol`); validation evaluates under
    :attr:`validation_protocol` (``config.validation_protocol``), which samples the scored steps.

    Args:
        config (TrainConfig or None): the run's configuration; with ``resume``, ``None`` takes the
            saved one, and a given one may differ from it only in
            :data:`~pennylane_qrnn.training.RESUMABLE_FIELDS`
        out: the run's folder
        resume (bool): continue from ``out/checkpoint.pt``
        overwrite (bool): let a fresh run replace the run already in ``out`` (default: refuse)
        ranks (Ranks or None): this process's place in a data-parallel run
            (:mod:`~pennylane_qrnn.training.distributed`); ``None`` takes the initialised
            ``torch.distributed`` process group's, if any. ``config.batch_size`` is the global
            batch; rank 0 alone validates and writes the files, and the run's numbers are those
            of one process training on the global batch (to float rounding)

    Raises:
        QRNNValueError: ``out`` not a writable folder; a fresh run into a folder that holds a run;
            a resumed run with a conflicting config; a backend that cannot train (no gradients);
            a global batch that does not split evenly over the ranks
        FileNotFoundError, UnsafeFileError, NonFiniteError: a missing or unreadable checkpoint on
            resume (:func:`~pennylane_qrnn.training.load_checkpoint`)
    """

    def __new__(cls, config: TrainConfig | None = None, out=None, resume: bool = False, **_):
        # optimizer="spsa" trains without gradients: Trainer(...) is then an SPSATrainer
        if cls is Trainer:
            from .shot_optim import trainer_class

            cls = trainer_class(config, out, resume)
        return super().__new__(cls)

    def __init__(
        self,
        config: TrainConfig | None,
        out,
        resume: bool = False,
        overwrite: bool = False,
        ranks: Ranks | None = None,
    ):
        self.out = Path(out)
        self.checkpoint_path = self.out / "checkpoint.pt"
        self.ranks = Ranks.current() if ranks is None else ranks
        self._on_main(lambda: prepare_folder(self.out, resume, overwrite))
        saved = None
        if resume:
            if not self.checkpoint_path.is_file():
                raise FileNotFoundError(
                    f"--resume needs a checkpoint at {str(self.checkpoint_path)!r}; none found"
                )
            saved = load_checkpoint(self.checkpoint_path)
            saved_config = config_from_file(saved, self.checkpoint_path)
            config = (
                saved_config
                if config is None
                else resumed_config(
                    saved_config, config.resolved(started=True), self.checkpoint_path
                )
            )
            if config.steps < int(saved["step"]):
                raise QRNNValueError(
                    f"steps must be at least the {int(saved['step'])} steps the run in "
                    f"{str(self.out)!r} has done; got {config.steps}"
                )
        elif config is None:
            raise QRNNValueError("config must be a TrainConfig for a fresh run; got None")
        self.config = config.resolved(started=saved is not None)
        check_trainable(self.config)
        if self.ranks is not None:
            self.ranks.check_batch(self.config.batch_size)
        self.task = self.config.make_task()
        torch.manual_seed(self.config.seed)
        # a resumed run's weights come from its checkpoint, not from init_from
        self.model = build_model(self.config, self.task, warm=saved is None)
        self.optimizer = make_optimizer(self.config, self.model.parameters())
        self.protocol = get_protocol(self.config.protocol, purpose="training")
        self.validation_protocol = get_protocol(self.config.validation_protocol)
        self.data_generator = torch.Generator().manual_seed(self.config.seed)
        self.step = 0
        self.history: list[dict] = []
        self.best_val_loss = math.inf
        self.converged = False
        self.saved_step = None  # the step of the last checkpoint written or read
        if saved is not None:
            self._restore(saved)
        # DDP averages the gradients over the ranks (and starts every rank from rank 0's weights)
        self._trained = self.model if self.ranks is None else self.ranks.wrap(self.model)

    def _on_main(self, work):
        """``work()`` here, or on rank 0 of a data-parallel run with its result (or error) sent
        to every rank: files are written once, and no rank waits for one that stopped."""
        return work() if self.ranks is None else self.ranks.from_main(work)

    def _restore(self, saved) -> None:
        path = self.checkpoint_path
        load_weights(self.model, saved["model"], path)
        try:
            self.optimizer.load_state_dict(saved["optimizer"])
            self.data_generator.set_state(saved["data_generator"])
            history = json.loads(saved["history"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
            reason = (
                str(error).strip().splitlines()[0][:300]
                if str(error).strip()
                else type(error).__name__
            )
            raise UnsafeFileError(
                f"checkpoint {str(path)!r} must hold the optimiser, generator and history of its "
                f"own run; {reason}"
            ) from error
        if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
            raise UnsafeFileError(
                f"checkpoint {str(path)!r} must hold its history as a list of rows"
            )
        for state in saved["optimizer"].get("state", {}).values():
            check_finite_state(
                state if isinstance(state, dict) else {},
                f"checkpoint {str(path)!r} (optimiser state)",
            )
        self.step = int(saved["step"])
        self.history = history
        self.best_val_loss = float(saved["best_val_loss"])
        self.converged = bool(saved.get("converged", False))
        self.saved_step = self.step

    # -- one step ---------------------------------------------------------------------------
    def train_step(self, batch=None) -> dict:
        """One optimisation step (on ``batch``, by default the next one the data generator
        draws). Raises :class:`NonFiniteError` (and leaves the parameters as they were if the loss
        or a gradient is not finite) when the loss, a gradient or, after the update, a parameter
        is NaN or infinite."""
        if batch is None:
            batch = self.task.batch(self.config.batch_size, self.data_generator, split="train")
        global_scored = batch.scored.sum()
        generator = self.data_generator
        if self.ranks is not None:  # every rank drew the global batch: keep this rank's rows
            batch = self.ranks.shard(batch)
            generator = self.ranks.sampling_generator(self.config.seed, self.step)
        device = model_device(self.model)
        tokens, targets, scored = (
            t.to(device) for t in (batch.tokens, batch.targets, batch.scored)
        )
        if self.protocol.postselect == "every":
            # teacher-forced (the paper's training): every step postselected on its target. No
            # mask and no generator: nothing is sampled, so the data generator is not consumed
            output = self._trained(tokens, targets)
        else:
            # measured / qpu (hardware-honest): the unpostselected steps are sampled with the
            # data generator (one stream per rank in a data-parallel run); qpu runs the output
            # stage at scored steps only (mixed states where a scored step follows a measured one)
            forced, scored_steps = batch.forced.to(device), batch.scored.to(device)
            masks = self.protocol.training_masks(forced, scored_steps, supports_mixed(self.model))
            output = self._trained(tokens, targets, generator=generator, **masks)
        log_probs = output.log_probs
        loss = training_loss(self.config.loss, self.model, log_probs, targets, scored)
        correct = ((log_probs.argmax(-1) == targets) & scored).sum()
        min_postselection = float(output.postselection.min_step.min())
        if self.ranks is None:
            reported, accuracy = loss.item(), (correct / scored.sum().clamp_min(1)).item()
        else:
            loss = self.ranks.share_of_loss(loss, scored.sum(), global_scored.to(device))
            reported, correct, min_postselection = self.ranks.global_metrics(
                loss, correct, min_postselection
            )
            accuracy = correct / max(int(global_scored), 1)
        if not math.isfinite(reported):  # the same on every rank: all stop together
            raise NonFiniteError(f"the training loss must be finite; got {reported}")
        self.optimizer.zero_grad()
        loss.backward()
        bad = [
            name
            for name, p in self.model.named_parameters()
            if p.grad is not None and not bool(torch.isfinite(p.grad).all())
        ]
        if bad:
            raise NonFiniteError(
                f"the gradients must be finite; got NaN or infinity in {', '.join(bad)}"
            )
        if self.config.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.optimizer.step()
        bad = [
            name for name, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())
        ]
        if bad:
            raise NonFiniteError(
                f"the parameters must stay finite; the update made {', '.join(bad)} NaN or infinite"
            )
        return {"loss": reported, "accuracy": accuracy, "min_postselection": min_postselection}

    def _validation_model(self):
        # Validation samples and collapses scored steps, which the circuit path cannot do; the exact
        # engine computes the same function of the same weights (cross-checked in the tests), so a
        # model on a circuit device is validated on an engine twin holding its weights.
        if getattr(self.model, "backend", None) is None:  # the engine, or a classical baseline
            return self.model
        twin = build_model(replace(self.config, backend=None), self.task, warm=False)
        twin.load_state_dict(self.model.state_dict())
        return twin

    def validate(self) -> dict:
        """The validation metrics (computed on rank 0 of a data-parallel run, sent to all)."""
        return self._on_main(self._validate)

    def _validate(self) -> dict:
        # a fixed validation set: the same generator seed at every evaluation
        generator = torch.Generator().manual_seed(self.config.seed + 1_000_003)
        batches = [
            self.task.batch(self.config.batch_size, generator, split="validate")
            for _ in range(self.config.eval_batches)
        ]
        model = self._validation_model()
        try:
            result = evaluate(model, batches, self.validation_protocol, generator=generator)
        except RuntimeError as error:  # e.g. sampling from NaN probabilities
            raise_if_nonfinite(model, batches[0], error)
            raise
        return {
            "val_loss": result.loss,
            "val_accuracy_argmax": result.accuracy_argmax,
            "val_accuracy_sampled": result.accuracy_sampled,
            "val_min_postselection": result.min_step_probability,
        }

    # -- the loop ---------------------------------------------------------------------------
    def run(self, progress: bool = True, stop_after: int | None = None) -> dict:
        """Train to ``config.steps`` (or stop early at ``target_loss`` on validation).

        A run resumed after it converged (or reached its steps) trains no further: it writes its
        final files. ``stop_after`` ends the process-independent loop after that many steps of
        this call, as an interruption would (tests use it).

        Raises:
            NonFiniteError: when a loss, gradient or parameter becomes NaN or infinite; nothing
                is saved after the last good checkpoint, which the message names
        """
        self._on_main(self._write_config)
        bar = None
        if progress and (self.ranks is None or self.ranks.is_main):
            from tqdm import tqdm

            bar = tqdm(
                total=self.config.steps,
                initial=self.step,
                desc=f"train {self.task.name}",
                unit="step",
                dynamic_ncols=True,
                mininterval=0.5,
            )
        started, done_here = time.perf_counter(), 0
        try:
            while self.step < self.config.steps and not self.converged:
                if stop_after is not None and done_here >= stop_after:
                    break
                if self.config.lr_schedule != "constant":
                    for group in self.optimizer.param_groups:
                        group["lr"] = learning_rate(self.config, self.step)
                try:
                    metrics = self.train_step()
                except NonFiniteError as error:
                    raise NonFiniteError(self._stopped_message(error, self.step + 1)) from error
                self.step += 1
                done_here += 1
                metrics["step"] = self.step
                metrics["steps_per_second"] = done_here / (time.perf_counter() - started)
                if self.step % self.config.eval_every == 0 or self.step == self.config.steps:
                    try:
                        metrics.update(self.validate())
                    except NonFiniteError as error:
                        raise NonFiniteError(self._stopped_message(error, self.step)) from error
                    if metrics["val_loss"] < self.best_val_loss:
                        # the best model so far by validation loss, as the reference implementation
                        # keeps it
                        self.best_val_loss = metrics["val_loss"]
                        self._on_main(self._save_best)
                    target = self.config.target_loss
                    self.converged = target is not None and metrics["val_loss"] < target
                self.history.append(metrics)
                if bar is not None:
                    bar.update(1)
                    postfix = {
                        "loss": f"{metrics['loss']:.4f}",
                        "acc": f"{metrics['accuracy']:.3f}",
                        "min_p": f"{metrics['min_postselection']:.2e}",
                        "steps/s": f"{metrics['steps_per_second']:.1f}",
                    }
                    if "val_loss" in metrics:
                        postfix["val"] = f"{metrics['val_loss']:.4f}"
                    bar.set_postfix(postfix, refresh=False)
                if self.step % self.config.checkpoint_every == 0 or self.converged:
                    self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
        self.save_checkpoint()
        self.write_metrics()
        if self.step >= self.config.steps or self.converged:
            return self.finish(self.converged)
        return {"step": self.step, "finished": False}

    def _stopped_message(self, error, step) -> str:
        kept = (
            f"{str(self.checkpoint_path)!r} (step {self.saved_step}) is the last good checkpoint"
            if self.saved_step is not None
            else "no checkpoint was written"
        )
        return (
            f"training stopped at step {step}: {error}; {kept}, nothing non-finite was saved. "
            f"Lower the learning rate (now {self.config.lr:g}) or use dtype float64"
        )

    def _write_config(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "config.json", json.dumps(asdict(self.config), indent=2))

    def _save_best(self) -> None:
        best = {"config": asdict(self.config), "model": self.model.state_dict(), "step": self.step}
        atomic_save(best, self.out / "best.pt")

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` (atomically; on rank 0 only in a data-parallel run)."""
        self._on_main(self._write_checkpoint)
        self.saved_step = self.step

    def _write_checkpoint(self) -> None:
        atomic_save(
            {
                "config": asdict(self.config),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "data_generator": self.data_generator.get_state(),
                "step": self.step,
                "history": json.dumps(self.history),
                "best_val_loss": self.best_val_loss,
                "converged": self.converged,
            },
            self.checkpoint_path,
        )

    def write_metrics(self) -> None:
        """Write ``metrics.csv`` (on rank 0 only in a data-parallel run)."""
        self._on_main(self._write_metrics)

    def _write_metrics(self) -> None:
        stream = io.StringIO(newline="")
        writer = csv.DictWriter(stream, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: row.get(k, "") for k in METRIC_FIELDS})
        atomic_write_text(self.out / "metrics.csv", stream.getvalue())

    def finish(self, converged: bool) -> dict:
        """Validate, write the final files and return the summary (on rank 0 in a data-parallel
        run; every rank returns it)."""
        return self._on_main(lambda: self._finish(converged))

    def _finish(self, converged: bool) -> dict:
        final = self._validate()
        atomic_save(
            {"config": asdict(self.config), "model": self.model.state_dict()}, self.out / "model.pt"
        )
        summary = {
            "task": self.task.name,
            "model": self.config.model,
            "steps": self.step,
            "converged": converged,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            **final,
            "best_val_loss": self.best_val_loss,
            "finished": True,
        }
        atomic_write_text(
            self.out / "summary.json", json.dumps(json_safe(summary), indent=2, allow_nan=False)
        )
        plot_curves(self.history, self.out / "curves.png", title=f"QRNN on {self.task.name}")
        return summary
