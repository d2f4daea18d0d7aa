"""Training a QRNN on a task: the loop behind ``qrnn train``, usable from Python.

Checkpoints hold everything needed to continue bit for bit (model, optimiser, data generator,
step, metrics) and are written atomically (a temporary file renamed over the old one), so an
interrupted run resumes where its last checkpoint left it and reaches the same result as an
uninterrupted run with the same seed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .evaluation import evaluate
from .nn import QRNN
from .tasks import get_task
from .errors import QRNNValueError

__all__ = ["TrainConfig", "Trainer", "atomic_save", "load_checkpoint"]

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

    def resolved(self) -> "TrainConfig":
        """A copy with the task's defaults filled in and every value checked."""
        task = self.make_task()
        defaults = task.defaults
        values = asdict(self)
        for key in ("workspace", "stages", "degree", "order", "steps", "batch_size", "lr", "optimizer", "target_loss", "loss"):
            if values[key] is None:
                values[key] = getattr(defaults, key)
        config = TrainConfig(**values)
        for key in ("workspace", "steps", "batch_size", "eval_every", "eval_batches", "checkpoint_every"):
            value = getattr(config, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise QRNNValueError(f"{key.replace('_', '-')} must be a positive integer; got {value!r}")
        if not isinstance(config.stages, int) or config.stages < 0:
            raise QRNNValueError(f"stages must be a non-negative integer; got {config.stages!r}")
        if not config.lr > 0:
            raise QRNNValueError(f"lr must be positive; got {config.lr!r}")
        if config.optimizer not in OPTIMIZERS:
            raise QRNNValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {config.optimizer!r}")
        if config.loss not in LOSSES:
            raise QRNNValueError(f"loss must be one of {', '.join(LOSSES)}; got {config.loss!r}")
        if config.protocol not in ("reference", "measured"):
            raise QRNNValueError(f"protocol must be 'reference' or 'measured'; got {config.protocol!r}")
        if config.model not in MODELS:
            raise QRNNValueError(f"model must be one of {', '.join(MODELS)}; got {config.model!r}")
        if config.model == "qrnn" and config.hidden is not None:
            raise QRNNValueError(f"hidden is for the classical baselines (model 'lstm' or 'rnn'); got hidden={config.hidden} with model 'qrnn'")
        if config.dtype not in ("float32", "float64"):
            raise QRNNValueError(f"dtype must be 'float32' or 'float64'; got {config.dtype!r}")
        return config

    def make_task(self):
        kwargs = dict(self.task_options)
        if self.length is not None:
            kwargs["length"] = self.length
        return get_task(self.task, **kwargs)


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :class:`Trainer` (plain tensors and dicts only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint must be an existing file; got {str(path)!r}")
    return torch.load(path, map_location="cpu", weights_only=True)


def build_model(config: TrainConfig, task):
    """The QRNN of ``config``, or a classical baseline with (by default) as many parameters."""
    factory = {"device": config.torch_device, "dtype": getattr(torch, config.dtype)}
    if config.model == "qrnn":
        return QRNN(
            task.io_bits, config.workspace, config.stages, config.degree, config.order, config.mode,
            backend=config.backend, **factory,
        )
    from .baselines import make_baseline  # pylint: disable=import-outside-toplevel
    from .templates import QRNNCell  # pylint: disable=import-outside-toplevel

    if config.hidden is not None:
        return make_baseline(config.model, task.io_bits, hidden=config.hidden, **factory)
    target = QRNNCell.num_weights(task.io_bits, config.workspace, config.stages, config.degree)
    return make_baseline(config.model, task.io_bits, match_parameters=target, **factory)


def _optimizer(config, parameters):
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=0.0)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=0.9)
    return torch.optim.RMSprop(parameters, lr=config.lr)


METRIC_FIELDS = [
    "step", "loss", "accuracy", "min_postselection", "steps_per_second",
    "val_loss", "val_accuracy_argmax", "val_accuracy_sampled", "val_min_postselection",
]


class Trainer:
    """Trains a :class:`~pennylane_qrnn.QRNN` on a task and writes its results to ``out``.

    Files in ``out``: ``config.json``, ``checkpoint.pt`` (latest), ``model.pt`` (final weights
    and config), ``best.pt`` (the weights with the lowest validation loss so far),
    ``metrics.csv``, ``summary.json`` and ``curves.png``.
    """

    def __init__(self, config: TrainConfig, out, resume: bool = False):
        self.out = Path(out)
        self.checkpoint_path = self.out / "checkpoint.pt"
        if resume:
            if not self.checkpoint_path.is_file():
                raise FileNotFoundError(
                    f"--resume needs a checkpoint at {str(self.checkpoint_path)!r}; none found"
                )
            saved = load_checkpoint(self.checkpoint_path)
            config = TrainConfig(**saved["config"])
        self.config = config.resolved()
        self.task = self.config.make_task()
        torch.manual_seed(self.config.seed)
        self.model = build_model(self.config, self.task)
        self.optimizer = _optimizer(self.config, self.model.parameters())
        self.data_generator = torch.Generator().manual_seed(self.config.seed)
        self.step = 0
        self.history: list[dict] = []
        self.best_val_loss = math.inf
        if resume:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.data_generator.set_state(saved["data_generator"])
            self.step = int(saved["step"])
            self.history = json.loads(saved["history"])
            self.best_val_loss = float(saved["best_val_loss"])

    # -- one step ---------------------------------------------------------------------------
    def train_step(self) -> dict:
        batch = self.task.batch(self.config.batch_size, self.data_generator, split="train")
        device = self.model.input_weights.device
        tokens, targets, scored = (t.to(device) for t in (batch.tokens, batch.targets, batch.scored))
        if self.config.protocol == "reference":
            # the paper's training: every step postselected on its target
            log_probs, _ = self.model(tokens, targets)
        else:
            # hardware-honest: every step measured; the loss still scores the targets
            collapse = torch.zeros_like(scored)
            log_probs, _ = self.model(tokens, targets, collapse=collapse, generator=self.data_generator)
        if self.config.loss == "reference":
            loss = reference_loss(log_probs, targets, scored)
        else:
            loss = self.model.loss(log_probs, targets, scored)
        self.optimizer.zero_grad()
        loss.backward()
        if self.config.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.optimizer.step()
        accuracy = ((log_probs.argmax(-1) == targets) & scored).sum() / scored.sum().clamp_min(1)
        return {
            "loss": loss.item(),
            "accuracy": accuracy.item(),
            "min_postselection": float(self.model.postselection.min_step.min()),
        }

    def validate(self) -> dict:
        # a fixed validation set: the same generator seed at every evaluation
        generator = torch.Generator().manual_seed(self.config.seed + 1_000_003)
        batches = [self.task.batch(self.config.batch_size, generator, split="validate") for _ in range(self.config.eval_batches)]
        result = evaluate(self.model, batches, self.config.protocol, generator=generator)
        return {
            "val_loss": result.loss,
            "val_accuracy_argmax": result.accuracy_argmax,
            "val_accuracy_sampled": result.accuracy_sampled,
            "val_min_postselection": result.min_step_probability,
        }

    # -- the loop ---------------------------------------------------------------------------
    def run(self, progress: bool = True, stop_after: int | None = None) -> dict:
        """Train to ``config.steps`` (or stop early at ``target_loss`` on validation).

        ``stop_after`` ends the process-independent loop after that many steps of this call,
        as an interruption would (tests use it).
        """
        self.out.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(self.out / "config.json", json.dumps(asdict(self.config), indent=2))
        bar = None
        if progress:
            from tqdm import tqdm  # pylint: disable=import-outside-toplevel

            bar = tqdm(total=self.config.steps, initial=self.step, desc=f"train {self.task.name}",
                       unit="step", dynamic_ncols=True, mininterval=0.5)
        started, done_here, converged = time.perf_counter(), 0, False
        while self.step < self.config.steps and not converged:
            if stop_after is not None and done_here >= stop_after:
                break
            metrics = self.train_step()
            self.step += 1
            done_here += 1
            metrics["step"] = self.step
            metrics["steps_per_second"] = done_here / (time.perf_counter() - started)
            if self.step % self.config.eval_every == 0 or self.step == self.config.steps:
                metrics.update(self.validate())
                if metrics["val_loss"] < self.best_val_loss:
                    # the best model so far by validation loss, as the reference keeps it
                    self.best_val_loss = metrics["val_loss"]
                    atomic_save({"config": asdict(self.config), "model": self.model.state_dict(), "step": self.step},
                                self.out / "best.pt")
                target = self.config.target_loss
                converged = target is not None and metrics["val_loss"] < target
            self.history.append(metrics)
            if bar is not None:
                bar.update(1)
                postfix = {"loss": f"{metrics['loss']:.4f}", "acc": f"{metrics['accuracy']:.3f}",
                           "min_p": f"{metrics['min_postselection']:.2e}", "steps/s": f"{metrics['steps_per_second']:.1f}"}
                if "val_loss" in metrics:
                    postfix["val"] = f"{metrics['val_loss']:.4f}"
                bar.set_postfix(postfix, refresh=False)
            if self.step % self.config.checkpoint_every == 0 or converged:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        self.save_checkpoint()
        self.write_metrics()
        if self.step >= self.config.steps or converged:
            return self.finish(converged)
        return {"step": self.step, "finished": False}

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
            },
            self.checkpoint_path,
        )

    def write_metrics(self) -> None:
        with open(self.out / ".metrics.csv.tmp", "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=METRIC_FIELDS)
            writer.writeheader()
            for row in self.history:
                writer.writerow({k: row.get(k, "") for k in METRIC_FIELDS})
        os.replace(self.out / ".metrics.csv.tmp", self.out / "metrics.csv")

    def finish(self, converged: bool) -> dict:
        final = self.validate()
        atomic_save({"config": asdict(self.config), "model": self.model.state_dict()}, self.out / "model.pt")
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
        _atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2))
        plot_curves(self.history, self.out / "curves.png", title=f"QRNN on {self.task.name}")
        return summary


def plot_curves(history, path, title=""):
    """Loss, accuracy and minimum postselection probability against the step, as a PNG."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    steps = [h["step"] for h in history]
    val = [h for h in history if "val_loss" in h]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].semilogy(steps, [max(h["loss"], 1e-12) for h in history], label="train", alpha=0.7)
    axes[0].semilogy([h["step"] for h in val], [max(h["val_loss"], 1e-12) for h in val], "o-", label="validation")
    axes[0].set(xlabel="step", ylabel="NLL per scored step", title="loss")
    axes[0].legend()
    axes[1].plot(steps, [h["accuracy"] for h in history], label="train (argmax)", alpha=0.7)
    axes[1].plot([h["step"] for h in val], [h["val_accuracy_sampled"] for h in val], "o-", label="validation (sampled)")
    axes[1].set(xlabel="step", ylabel="accuracy", title="accuracy on scored steps", ylim=(-0.02, 1.02))
    axes[1].legend()
    axes[2].semilogy(steps, [max(h["min_postselection"], 1e-300) for h in history])
    axes[2].set(xlabel="step", ylabel="probability", title="min step postselection probability")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
