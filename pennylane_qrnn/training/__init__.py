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

The package, by concern:

* :mod:`~pennylane_qrnn.training.config`: :class:`TrainConfig` (its checks, its choice lists
  :data:`TRAIN_PROTOCOLS`, :data:`VALIDATION_PROTOCOLS`, :data:`LOSSES`, ...) and the model and
  optimiser it builds;
* :mod:`~pennylane_qrnn.training.losses`: the losses by name (``"nll"``, ``"rvqe"``);
* :mod:`~pennylane_qrnn.training.runs`: a run's folder and files, reading them back, the
  resume rules;
* :mod:`~pennylane_qrnn.training.hardware`: the torch device and the PennyLane device a run may
  use;
* :mod:`~pennylane_qrnn.training.trainer`: :class:`Trainer`, the loop;
* :mod:`~pennylane_qrnn.training.plotting`: the curves.
"""

from ..checkpoints import atomic_save
from .config import (
    DEPRECATED_NAMES,
    DTYPES,
    LR_SCHEDULES,
    MODELS,
    OPTIMIZERS,
    TRAIN_PROTOCOLS,
    VALIDATION_PROTOCOLS,
    TrainConfig,
    build_model,
    canonical_protocol,
    learning_rate,
    make_optimizer,
)
from .hardware import check_torch_device, check_trainable
from .losses import LOSSES, canonical_loss, reference_loss, rvqe_loss, training_loss
from .plotting import plot_curves
from .runs import (
    RESULT_FILES,
    RESUMABLE_FIELDS,
    RUN_FILES,
    config_from_file,
    load_checkpoint,
    load_trained_model,
)
from .trainer import METRIC_FIELDS, Trainer

__all__ = [
    "TrainConfig",
    "Trainer",
    "atomic_save",
    "load_checkpoint",
    "load_trained_model",
    "config_from_file",
    "build_model",
    "make_optimizer",
    "learning_rate",
    "check_torch_device",
    "check_trainable",
    "plot_curves",
    "rvqe_loss",
    "reference_loss",
    "training_loss",
    "canonical_loss",
    "canonical_protocol",
    "RUN_FILES",
    "RESULT_FILES",
    "RESUMABLE_FIELDS",
    "METRIC_FIELDS",
    "TRAIN_PROTOCOLS",
    "VALIDATION_PROTOCOLS",
    "LOSSES",
    "MODELS",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "DTYPES",
    "DEPRECATED_NAMES",
]
