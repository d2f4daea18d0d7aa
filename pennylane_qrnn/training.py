"""Training a QRNN on a task: the loop behind ``qrnn train``, usable from Python.

Checkpoints hold everything needed to continue bit for bit (model, optimiser, data generator,
step, metrics, whether the run has converged) and are written atomically (a temporary file renamed
over the old one), so an interrupted run resumes where its last checkpoint left it and reaches the
same result as an uninterrupted run with the same seed. A run that converged resumes straight to
its final files.

Runs are never lost: a fresh :class:`Trainer` refuses a folder that already holds a run (unless
told to ``overwrite`` it), a resumed one refuses a configuration that conflicts with the saved one
(only the number of steps and the bookkeeping intervals may change), and a NaN or infinite loss,
gradient or parameter stops the run with :class:`~pennylane_qrnn.errors.NonFiniteError` before
anything non-finite is saved. Every file is read back through
:func:`pennylane_qrnn.checkpoints.load_file`, which runs no code from it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from .checkpoints import (
    atomic_save,
    atomic_write_text,
    check_finite_state,
    load_file,
    remove_stale_temporaries,
)
from .errors import NonFiniteError, QRNNValueError, UnsafeFileError
from .evaluation import evaluate
from .nn import QRNN
from .tasks import get_task

__all__ = [
    "TrainConfig",
    "Trainer",
    "atomic_save",
    "load_checkpoint",
    "load_trained_model",
    "RUN_FILES",
    "RESULT_FILES",
    "RESUMABLE_FIELDS",
]

RUN_FILES = (
    "checkpoint.pt",
    "model.pt",
    "best.pt",
    "config.json",
    "metrics.csv",
    "summary.json",
    "curves.png",
)
"""The files a run writes in its folder."""

RESULT_FILES = ("checkpoint.pt", "model.pt", "best.pt", "metrics.csv", "summary.json", "curves.png")
"""The files that make a folder hold a run that a fresh run must not replace (``config.json``
alone is written before the first step and holds nothing that is lost)."""

RESUMABLE_FIELDS = ("steps", "eval_every", "eval_batches", "checkpoint_every", "torch_device")
"""The :class:`TrainConfig` fields a resumed run may change; every other field must match."""

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
MODELS = ("qrnn", "lstm", "rnn")
LOSSES = ("nll", "reference")


def reference_loss(log_probs, targets, mask):
    """The reference implementation's training loss: cross entropy with the step *probabilities*
    used as logits, minus its minimum ``log(V - 1 + e) - 1``, averaged over scored steps. Bounded
    gradients, unlike the NLL; kept to reproduce its training (its reported numbers are NLL-free
    accuracies)."""
    probs = log_probs.exp()
    vocabulary = probs.shape[-1]
    ce = torch.logsumexp(probs, dim=-1) - probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    ce = ce - (math.log(vocabulary - 1 + math.e) - 1)
    weight = mask.to(ce.dtype)
    return (ce * weight).sum() / weight.sum().clamp_min(1)


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` fields take the task's defaults."""

    task: str
    model: str = "qrnn"
    hidden: int | None = None
    length: int | None = None
    workspace: int | None = None
    stages: int | None = None
    degree: int | None = None
    order: int | None = None
    mode: str = "postselect"
    protocol: str = "reference"
    loss: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    seed: int = 0
    clip: float = 0.5
    eval_every: int = 25
    eval_batches: int = 4
    checkpoint_every: int = 25
    target_loss: float | None = None
    backend: str | None = None
    torch_device: str = "cpu"
    dtype: str = "float32"
    task_options: dict = field(default_factory=dict)

    def resolved(self) -> TrainConfig:
        """A copy with the task's defaults filled in and every value checked."""
        task = self.make_task()
        defaults = task.defaults
        values = asdict(self)
        for key in (
            "workspace",
            "stages",
            "degree",
            "order",
            "steps",
            "batch_size",
            "lr",
            "optimizer",
            "target_loss",
            "loss",
        ):
            if values[key] is None:
                values[key] = getattr(defaults, key)
        config = TrainConfig(**values)
        for key in (
            "workspace",
            "steps",
            "batch_size",
            "eval_every",
            "eval_batches",
            "checkpoint_every",
        ):
            value = getattr(config, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise QRNNValueError(
                    f"{key.replace('_', '-')} must be a positive integer; got {value!r}"
                )
        if not isinstance(config.stages, int) or config.stages < 0:
            raise QRNNValueError(f"stages must be a non-negative integer; got {config.stages!r}")
        if (
            isinstance(config.lr, bool)
            or not isinstance(config.lr, (int, float))
            or not (0 < config.lr < math.inf)
        ):
            raise QRNNValueError(f"lr must be a positive finite number; got {config.lr!r}")
        if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
            raise QRNNValueError(f"seed must be a non-negative integer; got {config.seed!r}")
        if config.optimizer not in OPTIMIZERS:
            raise QRNNValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {config.optimizer!r}"
            )
        if config.loss not in LOSSES:
            raise QRNNValueError(f"loss must be one of {', '.join(LOSSES)}; got {config.loss!r}")
        if config.protocol not in ("reference", "measured"):
            raise QRNNValueError(
                f"protocol must be 'reference' or 'measured'; got {config.protocol!r}"
            )
        if config.model not in MODELS:
            raise QRNNValueError(f"model must be one of {', '.join(MODELS)}; got {config.model!r}")
        if config.model == "qrnn" and config.hidden is not None:
            raise QRNNValueError(
                "hidden is for the classical baselines (model 'lstm' or 'rnn'); got "
                f"hidden={config.hidden} with model 'qrnn'"
            )
        if config.dtype not in ("float32", "float64"):
            raise QRNNValueError(f"dtype must be 'float32' or 'float64'; got {config.dtype!r}")
        check_torch_device(config.torch_device)
        return config

    def make_task(self):
        kwargs = dict(self.task_options)
        if self.length is not None:
            kwargs["length"] = self.length
        return get_task(self.task, **kwargs)


def check_torch_device(name) -> torch.device:
    """The torch device ``name``, refused unless this machine has it.

    Raises:
        QRNNValueError: for a name torch does not know, or a device not present here
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise QRNNValueError(
            f"torch-device must be a torch device such as 'cpu' or 'cuda'; got {name!r}"
        ) from error
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise QRNNValueError(
                f"torch-device {name!r} needs a CUDA GPU, and torch here has none "
                "(torch.cuda.is_available() is False); use 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise QRNNValueError(
                f"torch-device must be one of cuda:0..cuda:{torch.cuda.device_count() - 1} here; "
                f"got {name!r}"
            )
        return device
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as error:
        raise QRNNValueError(
            f"torch-device must be a device torch can use here (cpu, cuda); got {name!r}"
        ) from error
    return device


_FILE_KEYS = {
    "model": {"config": dict, "model": dict},
    "checkpoint": {
        "config": dict,
        "model": dict,
        "optimizer": dict,
        "data_generator": torch.Tensor,
        "step": int,
        "history": str,
        "best_val_loss": float,
    },
}
_WRITTEN_BY = {
    "model": "a model file written by `qrnn train` (model.pt, best.pt or checkpoint.pt)",
    "checkpoint": "a checkpoint.pt written by `qrnn train`",
}


def load_checkpoint(path, kind: str = "checkpoint") -> dict:
    """Read a file written by :class:`Trainer` without running code from it.

    ``kind`` ``"checkpoint"`` (``checkpoint.pt``: everything to resume) or ``"model"``
    (``model.pt``, ``best.pt``, or a checkpoint: a config and weights). The file must be a
    ``torch.save`` zip archive (read with ``weights_only=True``) holding the keys of its kind
    with the right types, and finite weights.

    Raises:
        FileNotFoundError: if ``path`` is not a file
        UnsafeFileError: for anything else (TorchScript, other zips, pickles, empty, truncated or
            foreign files)
        NonFiniteError: if its weights hold NaN or infinity
    """
    expected = _WRITTEN_BY[kind]
    saved = load_file(path, expected, what=kind)
    if not isinstance(saved, dict):
        raise UnsafeFileError(
            f"{kind} must be {expected}; {str(path)!r} holds a {type(saved).__name__}"
        )
    for key, kind_of in _FILE_KEYS[kind].items():
        value = saved.get(key)
        ok = isinstance(value, kind_of) and not isinstance(value, bool)
        if kind_of is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise UnsafeFileError(
                f"{kind} must be {expected}; {str(path)!r} has no {key!r} of type "
                f"{kind_of.__name__}"
            )
    if not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in saved["model"].items()
    ):
        raise UnsafeFileError(
            f"{kind} must be {expected}; the weights in {str(path)!r} are not a dict of tensors"
        )
    check_finite_state(saved["model"], f"{kind} {str(path)!r}")
    return saved


def config_from_file(saved: dict, path) -> TrainConfig:
    """The resolved :class:`TrainConfig` a file from :func:`load_checkpoint` was written with."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(saved["config"]) - known)
    if unknown or "task" not in saved["config"]:
        raise UnsafeFileError(
            f"file {str(path)!r} must hold a `qrnn train` config; "
            + (f"got unknown fields {', '.join(map(repr, unknown))}" if unknown else "got no task")
        )
    return TrainConfig(**saved["config"]).resolved()


def build_model(config: TrainConfig, task):
    """The QRNN of ``config``, or a classical baseline with (by default) as many parameters."""
    factory = {"device": config.torch_device, "dtype": getattr(torch, config.dtype)}
    if config.model == "qrnn":
        return QRNN(
            task.io_bits,
            config.workspace,
            config.stages,
            config.degree,
            config.order,
            config.mode,
            backend=config.backend,
            **factory,
        )
    from .baselines import make_baseline
    from .templates import QRNNCell

    if config.hidden is not None:
        return make_baseline(config.model, task.io_bits, hidden=config.hidden, **factory)
    target = QRNNCell.num_weights(task.io_bits, config.workspace, config.stages, config.degree)
    return make_baseline(config.model, task.io_bits, match_parameters=target, **factory)


def load_trained_model(path):
    """The model in a file written by :class:`Trainer` (``model.pt``, ``best.pt`` or
    ``checkpoint.pt``), on the exact engine, with its task and config.

    The model runs on the torch device it was trained on if this machine has it, else on the CPU.

    Returns:
        ``(model, task, config)``

    Raises:
        FileNotFoundError, UnsafeFileError, NonFiniteError: see :func:`load_checkpoint`; also
        UnsafeFileError if the weights do not fit the model the file's config describes
    """
    saved = load_checkpoint(path, kind="model")
    config = dict(saved["config"])
    try:
        check_torch_device(config.get("torch_device", "cpu"))
    except QRNNValueError:
        config["torch_device"] = "cpu"
    config = config_from_file({"config": config}, path)
    task = config.make_task()
    config.backend = None
    model = build_model(config, task)
    _load_weights(model, saved["model"], path)
    return model, task, config


def _load_weights(model, state, path) -> None:
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as error:  # missing, unexpected or misshapen weights
        first = str(error).strip().splitlines()
        raise UnsafeFileError(
            f"weights in {str(path)!r} must fit the model its config describes; "
            f"{' '.join(line.strip() for line in first[:3])[:400]}"
        ) from error


def _optimizer(config, parameters):
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=0.0)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=0.9)
    return torch.optim.RMSprop(parameters, lr=config.lr)


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

    Args:
        config (TrainConfig or None): the run's configuration; with ``resume``, ``None`` takes the
            saved one, and a given one may differ from it only in :data:`RESUMABLE_FIELDS`
        out: the run's folder
        resume (bool): continue from ``out/checkpoint.pt``
        overwrite (bool): let a fresh run replace the run already in ``out`` (default: refuse)

    Raises:
        QRNNValueError: ``out`` not a writable folder; a fresh run into a folder that holds a run;
            a resumed run with a conflicting config; a backend that cannot train (no gradients)
        FileNotFoundError, UnsafeFileError, NonFiniteError: a missing or unreadable checkpoint on
            resume (:func:`load_checkpoint`)
    """

    def __init__(
        self, config: TrainConfig | None, out, resume: bool = False, overwrite: bool = False
    ):
        self.out = Path(out)
        self.checkpoint_path = self.out / "checkpoint.pt"
        _prepare_folder(self.out, resume, overwrite)
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
                else _resumed_config(saved_config, config.resolved(), self.checkpoint_path)
            )
            if config.steps < int(saved["step"]):
                raise QRNNValueError(
                    f"steps must be at least the {int(saved['step'])} steps the run in "
                    f"{str(self.out)!r} has done; got {config.steps}"
                )
        elif config is None:
            raise QRNNValueError("config must be a TrainConfig for a fresh run; got None")
        self.config = config.resolved()
        _check_trainable(self.config)
        self.task = self.config.make_task()
        torch.manual_seed(self.config.seed)
        self.model = build_model(self.config, self.task)
        self.optimizer = _optimizer(self.config, self.model.parameters())
        self.data_generator = torch.Generator().manual_seed(self.config.seed)
        self.step = 0
        self.history: list[dict] = []
        self.best_val_loss = math.inf
        self.converged = False
        self.saved_step = None  # the step of the last checkpoint written or read
        if saved is not None:
            self._restore(saved)

    def _restore(self, saved) -> None:
        path = self.checkpoint_path
        _load_weights(self.model, saved["model"], path)
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
    def train_step(self) -> dict:
        """One optimisation step. Raises :class:`NonFiniteError` (and leaves the parameters as
        they were if the loss or a gradient is not finite) when the loss, a gradient or, after
        the update, a parameter is NaN or infinite."""
        batch = self.task.batch(self.config.batch_size, self.data_generator, split="train")
        device = self.model.input_weights.device
        tokens, targets, scored = (
            t.to(device) for t in (batch.tokens, batch.targets, batch.scored)
        )
        if self.config.protocol == "reference":
            # the paper's training: every step postselected on its target
            log_probs, _ = self.model(tokens, targets)
        else:
            # hardware-honest: every step measured; the loss still scores the targets
            collapse = torch.zeros_like(scored)
            log_probs, _ = self.model(
                tokens, targets, collapse=collapse, generator=self.data_generator
            )
        if self.config.loss == "reference":
            loss = reference_loss(log_probs, targets, scored)
        else:
            loss = self.model.loss(log_probs, targets, scored)
        if not bool(torch.isfinite(loss)):
            raise NonFiniteError(f"the training loss must be finite; got {loss.item()}")
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
        accuracy = ((log_probs.argmax(-1) == targets) & scored).sum() / scored.sum().clamp_min(1)
        return {
            "loss": loss.item(),
            "accuracy": accuracy.item(),
            "min_postselection": float(self.model.postselection.min_step.min()),
        }

    def _validation_model(self):
        # Validation samples and collapses scored steps, which the circuit path cannot do; the exact
        # engine computes the same function of the same weights (cross-checked in the tests), so a
        # model on a circuit device is validated on an engine twin holding its weights.
        if getattr(self.model, "backend", None) is None:  # the engine, or a classical baseline
            return self.model
        twin = build_model(replace(self.config, backend=None), self.task)
        twin.load_state_dict(self.model.state_dict())
        return twin

    def validate(self) -> dict:
        # a fixed validation set: the same generator seed at every evaluation
        generator = torch.Generator().manual_seed(self.config.seed + 1_000_003)
        batches = [
            self.task.batch(self.config.batch_size, generator, split="validate")
            for _ in range(self.config.eval_batches)
        ]
        model = self._validation_model()
        try:
            result = evaluate(model, batches, self.config.protocol, generator=generator)
        except RuntimeError as error:  # e.g. sampling from NaN probabilities
            _raise_if_nonfinite(model, batches[0], error)
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
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "config.json", json.dumps(asdict(self.config), indent=2))
        bar = None
        if progress:
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
                        # the best model so far by validation loss, as the reference keeps it
                        self.best_val_loss = metrics["val_loss"]
                        atomic_save(
                            {
                                "config": asdict(self.config),
                                "model": self.model.state_dict(),
                                "step": self.step,
                            },
                            self.out / "best.pt",
                        )
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

    def save_checkpoint(self) -> None:
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
        self.saved_step = self.step

    def write_metrics(self) -> None:
        stream = io.StringIO(newline="")
        writer = csv.DictWriter(stream, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: row.get(k, "") for k in METRIC_FIELDS})
        atomic_write_text(self.out / "metrics.csv", stream.getvalue())

    def finish(self, converged: bool) -> dict:
        final = self.validate()
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
            self.out / "summary.json", json.dumps(_json_safe(summary), indent=2, allow_nan=False)
        )
        plot_curves(self.history, self.out / "curves.png", title=f"QRNN on {self.task.name}")
        return summary


@torch.no_grad()
def _raise_if_nonfinite(model, batch, error) -> None:
    """Raise :class:`NonFiniteError` (from ``error``) if ``model`` gives non-finite
    log-probabilities on ``batch`` although its weights are finite."""
    device = model.input_weights.device
    log_probs, _ = model(batch.tokens.to(device), batch.targets.to(device))
    if not bool(torch.isfinite(log_probs).any(-1).all()) or bool(torch.isnan(log_probs).any()):
        largest = max(float(p.detach().abs().max()) for p in model.parameters())
        raise NonFiniteError(
            f"the model's probabilities must be finite; got NaN on validation data "
            f"(the largest weight is {largest:.3g})"
        ) from error


def _json_safe(value):
    """``value`` with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _prepare_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Check that ``out`` can hold this run, create it, and delete what killed writes left there."""
    if out.exists() and not out.is_dir():
        raise QRNNValueError(f"out must be a folder; got {str(out)!r}, which is a file")
    if not resume and not overwrite and out.is_dir():
        present = [name for name in RESULT_FILES if (out / name).exists()]
        if present:
            raise QRNNValueError(
                f"out must be a new or empty folder for a fresh run; {str(out)!r} already holds a "
                f"run ({', '.join(present)}): resume it (resume=True, `qrnn train --resume`) or "
                "write the new run elsewhere"
            )
    if resume and not out.is_dir():
        return  # nothing to resume: the caller reports the missing checkpoint
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise QRNNValueError(
            f"out must be a folder this user can write; could not write in {str(out)!r}: "
            f"{error.strerror or error}"
        ) from error
    remove_stale_temporaries(out, RUN_FILES)
    legacy = out / ".metrics.csv.tmp"  # the fixed name older versions used
    if legacy.is_file():
        legacy.unlink()


def _resumed_config(saved: TrainConfig, given: TrainConfig, path) -> TrainConfig:
    """``given`` if it differs from ``saved`` only in :data:`RESUMABLE_FIELDS`; else refuse."""
    for f in fields(TrainConfig):
        if f.name in RESUMABLE_FIELDS:
            continue
        old, new = getattr(saved, f.name), getattr(given, f.name)
        if old != new:
            raise QRNNValueError(
                f"{f.name.replace('_', '-')} must match the run being resumed ({old!r} in "
                f"{str(path)!r}); got {new!r}. A resumed run keeps its configuration (only "
                f"{', '.join(n.replace('_', '-') for n in RESUMABLE_FIELDS)} may change); start a "
                "new run to change it"
            )
    return given


def _check_trainable(config: TrainConfig) -> None:
    """Refuse, before anything is built, a backend that gives no gradients to train on."""
    if config.backend is None:
        return
    if config.model != "qrnn":
        raise QRNNValueError(
            f"device must be 'exact' for a classical baseline (model {config.model!r} runs on "
            f"torch); got {config.backend!r}"
        )
    from .devices.capabilities import capabilities

    caps = capabilities(config.backend)
    if caps.path != "circuits":
        extra = ""
        if config.backend == "qiskit.remote":
            extra = (
                " (qiskit.remote also needs an IBM backend: from Python, "
                "qml.device('qiskit.remote', wires=N, "
                "backend=QiskitRuntimeService().least_busy()); see docs/devices.md)"
            )
        raise QRNNValueError(
            f"device must give gradients to train on; {config.backend!r} runs the model on shots "
            "(it cannot postselect mid-circuit measurements), which gives none. Train on 'exact' "
            "or a device that postselects (default.qubit, lightning.qubit), then evaluate on "
            f"shots; or train from Python with pennylane_qrnn.optim.SPSA{extra}"
        )
    if config.protocol == "measured":
        raise QRNNValueError(
            f"protocol must be 'reference' to train on device {config.backend!r}; got 'measured', "
            "which samples every step, and only the exact engine and the shot path can sample"
        )


def plot_curves(history, path, title=""):
    """Loss, accuracy and minimum postselection probability against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    val = [h for h in history if "val_loss" in h]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].semilogy(steps, [max(h["loss"], 1e-12) for h in history], label="train", alpha=0.7)
    axes[0].semilogy(
        [h["step"] for h in val], [max(h["val_loss"], 1e-12) for h in val], "o-", label="validation"
    )
    axes[0].set(xlabel="step", ylabel="NLL per scored step", title="loss")
    axes[0].legend()
    axes[1].plot(steps, [h["accuracy"] for h in history], label="train (argmax)", alpha=0.7)
    axes[1].plot(
        [h["step"] for h in val],
        [h["val_accuracy_sampled"] for h in val],
        "o-",
        label="validation (sampled)",
    )
    axes[1].set(
        xlabel="step", ylabel="accuracy", title="accuracy on scored steps", ylim=(-0.02, 1.02)
    )
    axes[1].legend()
    axes[2].semilogy(steps, [max(h["min_postselection"], 1e-300) for h in history])
    axes[2].set(xlabel="step", ylabel="probability", title="min step postselection probability")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
