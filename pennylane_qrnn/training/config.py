"""What defines a training run: :class:`TrainConfig`, its checks, and the model it builds.

Choice lists are defined here once (:data:`TRAIN_PROTOCOLS`, :data:`VALIDATION_PROTOCOLS`,
:data:`~pennylane_qrnn.training.losses.LOSSES`, :data:`MODELS`, :data:`OPTIMIZERS`,
:data:`DTYPES`); the command line reads them from :mod:`pennylane_qrnn.training`. A config stores
the canonical names: the former ``"reference"`` (a protocol or a loss) is accepted with a
:class:`FutureWarning` and stored as what it stands for (:data:`DEPRECATED_NAMES`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from ..errors import QRNNValueError
from ..nn import QRNN
from ..protocols import FORCED_STEPS, MEASURED, QPU, TEACHER_FORCED, Protocol, get_protocol
from ..tasks import get_task
from ..validation import check_choice, check_float, check_int
from .hardware import check_torch_device
from .losses import DEPRECATED_LOSSES, canonical_loss

__all__ = [
    "TrainConfig",
    "build_model",
    "make_optimizer",
    "canonical_protocol",
    "TRAIN_PROTOCOLS",
    "VALIDATION_PROTOCOLS",
    "MODELS",
    "OPTIMIZERS",
    "DTYPES",
    "DEPRECATED_NAMES",
]

#: the protocols a run trains under (:mod:`pennylane_qrnn.protocols`)
TRAIN_PROTOCOLS = (TEACHER_FORCED.name, MEASURED.name, QPU.name)
#: the protocols a run validates under: all sample the scored steps
VALIDATION_PROTOCOLS = (FORCED_STEPS.name, MEASURED.name, QPU.name)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
MODELS = ("qrnn", "lstm", "rnn")
DTYPES = ("float32", "float64")
#: former names still accepted (with a FutureWarning), by field, and the name each stands for now
DEPRECATED_NAMES = {
    "protocol": {"reference": TEACHER_FORCED.name},
    "validation_protocol": {"reference": FORCED_STEPS.name},
    "loss": dict(DEPRECATED_LOSSES),
}

#: the fields that take the task's default when ``None``
_TASK_DEFAULTS = (
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
)
_POSITIVE_INTS = (
    "workspace",
    "steps",
    "batch_size",
    "eval_every",
    "eval_batches",
    "checkpoint_every",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` fields take the task's defaults.

    ``protocol`` (:data:`TRAIN_PROTOCOLS`) says which steps a training step postselects on their
    targets: ``"teacher-forced"`` (every step, the paper's training), ``"measured"`` (none;
    every step sampled) or ``"qpu"`` (none; the output stage runs only at scored steps, so a task
    scored at its last step trains on the exact loss of the run a QPU makes: the exact
    executor only). ``validation_protocol`` (:data:`VALIDATION_PROTOCOLS`) is the protocol
    validation evaluates under; ``None`` takes ``"forced-steps"`` for a teacher-forced run and
    the training protocol otherwise.
    """

    task: str
    model: str = "qrnn"
    hidden: int | None = None
    length: int | None = None
    workspace: int | None = None
    stages: int | None = None
    degree: int | None = None
    order: int | None = None
    mode: str = "postselect"
    protocol: str = TEACHER_FORCED.name
    validation_protocol: str | None = None
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
        """A copy with the task's defaults filled in, every value checked and every name
        canonical.

        Raises:
            QRNNTypeError: a value of the wrong type (an int field given a float, ...)
            QRNNValueError: a value out of range, or not one of its field's choices
        """
        task = self.make_task()
        defaults = task.defaults
        # a Protocol given as such is stored by its name (asdict would take it apart)
        values = asdict(
            replace(
                self,
                protocol=_name_of(self.protocol),
                validation_protocol=_name_of(self.validation_protocol),
            )
        )
        for key in _TASK_DEFAULTS:
            if values[key] is None:
                values[key] = getattr(defaults, key)
        config = TrainConfig(**values)
        for key in _POSITIVE_INTS:
            check_int(key.replace("_", "-"), getattr(config, key), minimum=1)
        check_int("stages", config.stages, minimum=0)
        _check_positive("lr", config.lr)
        check_int("seed", config.seed, minimum=0)
        check_choice("optimizer", config.optimizer, OPTIMIZERS)
        # a task's default in the loss's former name is not the user's to change: no warning
        config.loss = canonical_loss(config.loss, warn=self.loss is not None)
        config.protocol = canonical_protocol(config.protocol)
        if config.validation_protocol is None:
            # the training protocol itself where it samples the scored steps
            config.validation_protocol = (
                FORCED_STEPS.name if config.protocol == TEACHER_FORCED.name else config.protocol
            )
        config.validation_protocol = canonical_protocol(
            config.validation_protocol, "validation_protocol"
        )
        check_choice("model", config.model, MODELS)
        if config.model == "qrnn" and config.hidden is not None:
            raise QRNNValueError(
                "hidden is for the classical baselines (model 'lstm' or 'rnn'); got "
                f"hidden={config.hidden} with model 'qrnn'"
            )
        check_choice("dtype", config.dtype, DTYPES)
        check_torch_device(config.torch_device)
        return config

    def make_task(self):
        kwargs = dict(self.task_options)
        if self.length is not None:
            kwargs["length"] = self.length
        return get_task(self.task, **kwargs)


def canonical_protocol(name, field_name: str = "protocol") -> str:
    """The canonical name of a training (``field_name="protocol"``, :data:`TRAIN_PROTOCOLS`) or
    validation (``"validation_protocol"``, :data:`VALIDATION_PROTOCOLS`) protocol; ``name`` may be
    a :class:`~pennylane_qrnn.protocols.Protocol`, or the deprecated ``"reference"`` (resolved by
    :func:`~pennylane_qrnn.protocols.get_protocol`, which warns)."""
    training = field_name == "protocol"
    if isinstance(name, Protocol) or name == "reference":
        name = get_protocol(name, purpose="training" if training else "evaluation").name
    choices = TRAIN_PROTOCOLS if training else VALIDATION_PROTOCOLS
    return check_choice(field_name.replace("_", "-"), name, choices)


def _name_of(protocol):
    return protocol.name if isinstance(protocol, Protocol) else protocol


def _check_positive(name, value) -> None:
    """Refuse anything but a finite number > 0 (a TypeError for a non-number)."""
    value = check_float(name, value)
    if value <= 0:
        raise QRNNValueError(f"{name} must be a finite number > 0; got {value!r}")


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
    from ..baselines import make_baseline
    from ..templates import QRNNCell

    if config.hidden is not None:
        return make_baseline(config.model, task.io_bits, hidden=config.hidden, **factory)
    target = QRNNCell.num_weights(task.io_bits, config.workspace, config.stages, config.degree)
    return make_baseline(config.model, task.io_bits, match_parameters=target, **factory)


def make_optimizer(config: TrainConfig, parameters):
    """The torch optimiser ``config.optimizer`` with ``config.lr``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=0.0)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=0.9)
    return torch.optim.RMSprop(parameters, lr=config.lr)
