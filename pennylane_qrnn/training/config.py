"""What defines a training run: :class:`TrainConfig`, its checks, and the model it builds.

Choice lists are defined here once (:data:`TRAIN_PROTOCOLS`, :data:`VALIDATION_PROTOCOLS`,
:data:`~pennylane_qrnn.training.losses.LOSSES`, :data:`MODELS`, :data:`OPTIMIZERS`,
:data:`DTYPES`); the command line reads them from :mod:`pennylane_qrnn.training`. A config stores
the canonical names: the former ``"reference"`` (a protocol or a loss) is accepted with a
:class:`FutureWarning` and stored as what it stands for (:data:`DEPRECATED_NAMES`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..devices.capabilities import capabilities
from ..devices.pricing import check_budget_value
from ..errors import QRNNTypeError, QRNNValueError
from ..executors.parameter_shift import GRADIENTS, check_pseudo_count
from ..nn import QRNN
from ..optim import SPSA
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
    "SPSA_PERTURBATION",
    "DTYPES",
    "DEPRECATED_NAMES",
    "GRADIENTS",
    "LR_SCHEDULES",
    "learning_rate",
]

#: the protocols a run trains under (:mod:`pennylane_qrnn.protocols`)
TRAIN_PROTOCOLS = (TEACHER_FORCED.name, MEASURED.name, QPU.name)
#: the protocols a run validates under: all sample the scored steps
VALIDATION_PROTOCOLS = (FORCED_STEPS.name, MEASURED.name, QPU.name)
#: ``spsa`` is gradient-free (:class:`~pennylane_qrnn.optim.SPSA`, two loss evaluations a
#: step): it trains on shot devices too (:mod:`~pennylane_qrnn.training.shot_optim`)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "spsa")
#: SPSA's perturbation ``c`` in training runs (about the shot noise of a loss from ~1000 shots)
SPSA_PERTURBATION = 0.1
#: the models a run trains: the QRNN, or a classical baseline (:mod:`pennylane_qrnn.baselines`)
MODELS = ("qrnn", "lstm", "rnn")
#: the parameters' floating dtypes a run may choose
DTYPES = ("float32", "float64")
#: how the learning rate moves over a run (:func:`learning_rate`): ``constant``; ``cosine``
#: decays it from ``lr`` to ``lr / 100`` along half a cosine over the run's steps;
#: ``warmup-cosine`` first ramps it linearly from ``lr / 100`` over the first 5 % of the steps
LR_SCHEDULES = ("constant", "cosine", "warmup-cosine")
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

    ``shots`` and ``budget`` (USD, a cumulative spending limit) are for a shot device
    (``backend="qiskit.aer"``, ``"braket.local.qubit"``, ...), which trains with
    ``optimizer="spsa"``, or with a gradient optimiser and ``gradient="parameter-shift"``
    (:mod:`~pennylane_qrnn.training.shot_optim`); ``pseudo_count`` says how their loss reads
    a step's counts (:func:`~pennylane_qrnn.executors.parameter_shift.estimated_log_probs`).

    Attributes:
        task: the task's name (:data:`~pennylane_qrnn.tasks.TASKS`)
        model: ``"qrnn"``, ``"lstm"`` or ``"rnn"`` (:data:`MODELS`)
        hidden: a baseline's hidden size (``None``: as many parameters as the QRNN)
        length: the task's sequence length (``None``: the task's default)
        workspace: workspace qubits ``H``
        stages: work stages per cell
        degree: the neurons' degree
        order: the neurons' order
        mode: the neurons' mode, ``"postselect"`` or ``"amplified"``
        protocol: the training protocol (:data:`TRAIN_PROTOCOLS`)
        validation_protocol: the validation protocol (:data:`VALIDATION_PROTOCOLS`)
        loss: the training loss (:data:`~pennylane_qrnn.training.LOSSES`)
        steps: optimiser steps
        batch_size: sequences per step
        lr: learning rate
        optimizer: the optimiser (:data:`OPTIMIZERS`)
        seed: the run's seed (weights, batches, samples)
        clip: gradient-norm clipping
        eval_every: steps between validations
        eval_batches: batches per validation
        checkpoint_every: steps between checkpoints
        target_loss: stop once the validation loss is below this
        backend: a PennyLane device name (``None``: the exact engine)
        torch_device: the torch device of the parameters (``"cpu"``, ``"cuda"``, ...)
        dtype: ``"float32"`` or ``"float64"`` (:data:`DTYPES`)
        task_options: further keyword arguments for the task
        shots: shots per sequence on a shot device
        budget: USD, a cumulative spending limit on a priced device
        gradient: ``"parameter-shift"`` (:data:`GRADIENTS`): a gradient optimiser on a shot
            device, each gradient estimated from shots by the shift rule; ``None``: autograd
        pseudo_count: on a shot device, the pseudo-count ``alpha >= 0`` of the loss's
            estimate ``(n_k + alpha) / (n + V alpha)`` (default 0.5, Krichevsky-Trofimov)
        lr_schedule: how the learning rate moves over the steps (:data:`LR_SCHEDULES`,
            :func:`learning_rate`); gradient optimisers only (SPSA decays its own step size)
        init_bias: the QRNN's workspace neurons' initial bias mean, ``N(init_bias, 0.05)``
            (``None``: the paper's ``pi/4``, the activation's steepest point; a smaller one
            starts the cell nearer the identity)
        init_from: a ``model.pt`` / ``best.pt`` written by an earlier run of the same
            architecture (model, sizes, mode) whose weights this run starts from (warm start,
            fine-tuning, a curriculum over lengths); ``None``: fresh weights from ``seed``

    **Example**

    >>> from pennylane_qrnn.training import TrainConfig
    >>> config = TrainConfig(task="elman-xor", steps=2).resolved()  # the task's defaults filled in
    >>> config.workspace, config.stages, config.degree, config.optimizer, config.lr
    (4, 1, 3, 'adam', 0.05)
    >>> config.validation_protocol
    'forced-steps'
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
    shots: int | None = None
    budget: float | None = None
    gradient: str | None = None
    pseudo_count: float = 0.5
    lr_schedule: str = "constant"
    init_bias: float | None = None
    init_from: str | None = None

    def resolved(self, *, started: bool = False) -> TrainConfig:
        """A copy with the task's defaults filled in, every value checked and every name
        canonical.

        ``started``: the config of a run that has started (read from its files, or resumed):
        its ``init_from`` is then the record of where its weights came from, never read again,
        and need no longer exist. A fresh run's must be a file.

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
        check_choice("lr-schedule", config.lr_schedule, LR_SCHEDULES)
        if config.init_bias is not None:
            config.init_bias = check_float("init-bias", config.init_bias)
            if config.model != "qrnn":
                raise QRNNValueError(
                    f"init-bias is for the QRNN (model 'qrnn'); got model {config.model!r}"
                )
        if config.init_from is not None:
            config.init_from = _check_init_from(config.init_from, exists=not started)
        if config.optimizer == "spsa" and config.lr_schedule != "constant":
            raise QRNNValueError(
                "lr-schedule must be 'constant' with optimizer 'spsa' (SPSA decays its own step "
                f"size); got {config.lr_schedule!r}"
            )
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
        if config.shots is not None:
            check_int("shots", config.shots, minimum=1)
        config.budget = check_budget_value(config.budget)
        if config.backend is None and (config.shots is not None or config.budget is not None):
            raise QRNNValueError(
                "shots and budget are for a shot device (e.g. device 'qiskit.aer' with optimizer "
                f"'spsa'); got shots={config.shots}, budget={config.budget} on the exact engine"
            )
        config.pseudo_count = check_pseudo_count(config.pseudo_count, "pseudo-count")
        if config.gradient is not None:
            check_choice("gradient", config.gradient, GRADIENTS)
            _check_shot_gradient(config)
        return config

    def make_task(self):
        kwargs = dict(self.task_options)
        if self.length is not None:
            kwargs["length"] = self.length
        return get_task(self.task, **kwargs)


def _check_init_from(path: Any, exists: bool = True) -> str:
    """``init_from`` as an absolute path (the record names the file wherever the run is read
    from), to an existing file where ``exists``."""
    if not isinstance(path, (str, os.PathLike)):
        raise QRNNTypeError(f"init-from must be a path to a model file; got {type(path).__name__}")
    resolved = Path(path).expanduser().resolve()
    if exists and not resolved.is_file():
        raise QRNNValueError(
            f"init-from must be a model file written by `qrnn train` (model.pt, best.pt); "
            f"got {str(path)!r}, which is not a file"
        )
    return str(resolved)


def warm_start(model: torch.nn.Module, config: TrainConfig) -> None:
    """Copy the weights of ``config.init_from`` into ``model`` (built from ``config``), refusing
    a file of another architecture: the model type, and for the QRNN its layout (sizes, degree,
    order, mode), must match, and every parameter's shape. The file is read as every model file
    is (:func:`~pennylane_qrnn.training.runs.load_trained_model`: weights only, no code run);
    buffers (a shot model's spending) are not copied."""
    from .runs import load_trained_model

    source, _, source_config = load_trained_model(config.init_from)
    where = f"init-from {config.init_from!r}"
    if source_config.model != config.model:
        raise QRNNValueError(
            f"{where} must hold a {config.model!r} model; got a {source_config.model!r} model"
        )
    layout, source_layout = getattr(model, "layout", None), getattr(source, "layout", None)
    if layout != source_layout:
        raise QRNNValueError(
            f"{where} must hold a model with this run's layout {layout}; got {source_layout}"
        )
    own, theirs = dict(model.named_parameters()), dict(source.named_parameters())
    shapes = {k: tuple(v.shape) for k, v in own.items()}
    source_shapes = {k: tuple(v.shape) for k, v in theirs.items()}
    if shapes != source_shapes:
        raise QRNNValueError(
            f"{where} must hold parameters of the shapes {shapes}; got {source_shapes}"
        )
    with torch.no_grad():
        for name, parameter in own.items():
            parameter.copy_(theirs[name].to(parameter))


def _check_shot_gradient(config) -> None:
    """Refuse ``gradient="parameter-shift"`` but with a gradient optimiser on a shot device."""
    path = None if config.backend is None else capabilities(config.backend).path
    if path != "shots":
        raise QRNNValueError(
            f"device must be a shot device (qiskit.aer, braket.local.qubit, ...) for gradient "
            f"{config.gradient!r}; got {config.backend or 'exact'!r}, which gives the exact "
            "gradient by autograd (leave --gradient out)"
        )
    if config.optimizer == "spsa":
        raise QRNNValueError(
            f"optimizer must be a gradient optimiser ({', '.join(OPTIMIZERS[:-1])}) for gradient "
            f"{config.gradient!r}; got 'spsa', which needs no gradient (leave --gradient out)"
        )


def canonical_protocol(name, field_name: str = "protocol") -> str:
    """The canonical name of a training (``field_name="protocol"``, :data:`TRAIN_PROTOCOLS`) or
    validation (``"validation_protocol"``, :data:`VALIDATION_PROTOCOLS`) protocol; ``name`` may be
    a :class:`~pennylane_qrnn.protocols.Protocol`, or the deprecated ``"reference"`` (resolved by
    :func:`~pennylane_qrnn.protocols.get_protocol`, which warns).

    Args:
        name (str or Protocol): the protocol or its name
        field_name (str): ``"protocol"`` or ``"validation_protocol"``, the field it is for

    Returns:
        str: the protocol's name

    Raises:
        QRNNValueError: a protocol the field does not take

    **Example**

    >>> from pennylane_qrnn.training import canonical_protocol
    >>> canonical_protocol("measured")
    'measured'
    >>> canonical_protocol("forced-steps")  # validation only
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: protocol must be one of ...; got 'forced-steps'
    """
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


def build_model(config: TrainConfig, task, *, warm: bool = True):
    """The QRNN of ``config``, or a classical baseline with (by default) as many parameters.

    Args:
        config (TrainConfig): a resolved config (:meth:`TrainConfig.resolved`)
        task (SequenceTask): its task (:meth:`TrainConfig.make_task`), for the vocabulary
        warm (bool): start from ``config.init_from``'s weights where it names a file (a fresh
            run); ``False`` for a model whose weights are loaded next (a resumed or saved run)

    Returns:
        torch.nn.Module: a :class:`~pennylane_qrnn.QRNN`, or a
        :class:`~pennylane_qrnn.baselines.ClassicalSequenceModel`

    **Example**

    >>> from pennylane_qrnn.training import TrainConfig, build_model
    >>> config = TrainConfig(task="elman-xor").resolved()
    >>> build_model(config, config.make_task()).layout
    CellLayout(io_bits=2, workspace=4, stages=1, degree=3, order=2, mode='postselect')
    """
    factory = {"device": config.torch_device, "dtype": getattr(torch, config.dtype)}
    if config.model == "qrnn":
        shot_options = {
            key: getattr(config, key)
            for key in ("shots", "budget")
            if config.backend is not None and getattr(config, key) is not None
        }
        if config.backend is not None and capabilities(config.backend).path == "shots":
            shot_options["seed"] = config.seed  # the simulator's too: a resumed run replays

        model = QRNN(
            task.io_bits,
            config.workspace,
            config.stages,
            config.degree,
            config.order,
            config.mode,
            backend=config.backend,
            **shot_options,
            **factory,
        )
        if config.init_bias is not None:
            with torch.no_grad():  # the workspace neurons' biases; the readout keeps pi/4
                for weights in (model.input_weights, model.stage_weights):
                    weights[..., 0].normal_(config.init_bias, 0.05)
        if warm and config.init_from is not None:
            warm_start(model, config)
        return model
    from ..baselines import make_baseline
    from ..templates import QRNNCell

    if config.hidden is not None:
        baseline = make_baseline(config.model, task.io_bits, hidden=config.hidden, **factory)
    else:
        target = QRNNCell.num_weights(task.io_bits, config.workspace, config.stages, config.degree)
        baseline = make_baseline(config.model, task.io_bits, match_parameters=target, **factory)
    if warm and config.init_from is not None:
        warm_start(baseline, config)
    return baseline


def make_optimizer(config: TrainConfig, parameters):
    """The torch optimiser ``config.optimizer`` with ``config.lr``.

    Args:
        config (TrainConfig): a resolved config
        parameters (Iterable): the parameters to optimise

    Returns:
        torch.optim.Optimizer: Adam, AdamW, SGD (momentum 0.9), RMSprop or
        :class:`~pennylane_qrnn.optim.SPSA`

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.training import TrainConfig, make_optimizer
    >>> config = TrainConfig(task="elman-xor", optimizer="sgd", lr=0.1).resolved()
    >>> optimizer = make_optimizer(config, [torch.nn.Parameter(torch.zeros(2))])
    >>> type(optimizer).__name__, optimizer.param_groups[0]["lr"]
    ('SGD', 0.1)
    """
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=0.0)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=0.9)
    if config.optimizer == "spsa":
        generator = torch.Generator().manual_seed(config.seed)  # saved with the run's checkpoints
        return SPSA(parameters, lr=config.lr, perturbation=SPSA_PERTURBATION, generator=generator)
    return torch.optim.RMSprop(parameters, lr=config.lr)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of a run of ``config.steps``
    steps under ``config.lr_schedule`` (:data:`LR_SCHEDULES`): a function of the step alone, so a
    resumed run continues the same curve (stretched, if it was resumed with more steps).

    Args:
        config (TrainConfig): a resolved config
        step (int): the number of steps done before this one

    Returns:
        float: the learning rate

    **Example**

    >>> from pennylane_qrnn.training import TrainConfig, learning_rate
    >>> config = TrainConfig(task="elman-xor", lr=0.1, steps=100, lr_schedule="cosine").resolved()
    >>> [round(learning_rate(config, k), 4) for k in (0, 50, 99)]
    [0.1, 0.0497, 0.001]
    """
    if config.lr_schedule == "constant":
        return config.lr
    floor = config.lr / 100
    warmup = max(1, round(0.05 * config.steps)) if config.lr_schedule == "warmup-cosine" else 0
    if step < warmup:
        return floor + (config.lr - floor) * step / warmup
    span = max(1, config.steps - 1 - warmup)
    progress = min(1.0, (step - warmup) / span)
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
