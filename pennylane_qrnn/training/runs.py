"""A run's folder and files: which files a run writes, reading them back without running code
from them, preparing a folder for a run, and the rules a resumed run's config must keep."""

from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path

import torch

from ..checkpoints import check_finite_state, load_file, remove_stale_temporaries
from ..errors import QRNNValueError, UnsafeFileError
from .config import DEPRECATED_NAMES, TrainConfig, build_model
from .hardware import check_torch_device

__all__ = [
    "RUN_FILES",
    "RESULT_FILES",
    "RESUMABLE_FIELDS",
    "load_checkpoint",
    "config_from_file",
    "load_trained_model",
    "load_weights",
    "prepare_folder",
    "resumed_config",
    "json_safe",
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

    Args:
        path (str or Path): the file
        kind (str): ``"checkpoint"`` or ``"model"``

    Returns:
        dict: the file's contents (``config``, ``model`` weights and, for a checkpoint, the
        optimiser's state, the data generator's, ``step``, ``history`` and ``best_val_loss``)

    Raises:
        FileNotFoundError: if ``path`` is not a file
        UnsafeFileError: for anything else (TorchScript, other zips, pickles, empty, truncated or
            foreign files)
        NonFiniteError: if its weights hold NaN or infinity

    **Example**

    A ``model.pt`` as :class:`Trainer` writes it:

    >>> import tempfile
    >>> from dataclasses import asdict
    >>> from pathlib import Path
    >>> from pennylane_qrnn.checkpoints import atomic_save
    >>> from pennylane_qrnn.training import TrainConfig, build_model, load_checkpoint
    >>> config = TrainConfig(task="elman-xor", workspace=2).resolved()
    >>> model = build_model(config, config.make_task())
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "model.pt"
    >>> atomic_save({"config": asdict(config), "model": model.state_dict()}, path)
    >>> saved = load_checkpoint(path, kind="model")
    >>> saved["config"]["task"], sorted(saved["model"])[:2]
    ('elman-xor', ['input_weights', 'output_weights'])
    >>> load_checkpoint(path)  # not a checkpoint.pt: nothing to resume from
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.UnsafeFileError: checkpoint must be a checkpoint.pt ...
    >>> folder.cleanup()
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
    """The resolved :class:`TrainConfig` a file from :func:`load_checkpoint` was written with.

    Files written before a name changed (protocol or loss ``"reference"``) load as the name they
    meant, without a warning: the file is not the user's to change.

    Args:
        saved (dict): what :func:`load_checkpoint` returned
        path (str or Path): the file it came from, for the error message

    Returns:
        TrainConfig: the resolved config

    Raises:
        UnsafeFileError: the config has no task, or fields :class:`TrainConfig` does not know

    **Example**

    >>> from pennylane_qrnn.training import config_from_file
    >>> saved = {"config": {"task": "elman-xor", "protocol": "reference"}}  # an older file
    >>> config = config_from_file(saved, "model.pt")
    >>> config.protocol, config.workspace
    ('teacher-forced', 4)
    """
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(saved["config"]) - known)
    if unknown or "task" not in saved["config"]:
        raise UnsafeFileError(
            f"file {str(path)!r} must hold a `qrnn train` config; "
            + (f"got unknown fields {', '.join(map(repr, unknown))}" if unknown else "got no task")
        )
    values = dict(saved["config"])
    for key, renamed in DEPRECATED_NAMES.items():
        if isinstance(values.get(key), str) and values[key] in renamed:
            values[key] = renamed[values[key]]
    # a run that has started: its init_from is a record, not read again
    return TrainConfig(**values).resolved(started=True)


def load_trained_model(path):
    """The model in a file written by :class:`Trainer` (``model.pt``, ``best.pt`` or
    ``checkpoint.pt``), on the exact engine, with its task and config.

    The model runs on the torch device it was trained on if this machine has it, else on the CPU.

    Args:
        path (str or Path): the file

    Returns:
        tuple: ``(model, task, config)``: the model with the file's weights, its
        :class:`~pennylane_qrnn.tasks.SequenceTask` and its resolved :class:`TrainConfig`

    Raises:
        FileNotFoundError: if ``path`` is not a file
        UnsafeFileError: a file :func:`load_checkpoint` refuses, or weights that do not fit the
            model the file's config describes
        NonFiniteError: if its weights hold NaN or infinity

    **Example**

    >>> import tempfile
    >>> from dataclasses import asdict
    >>> from pathlib import Path
    >>> from pennylane_qrnn.checkpoints import atomic_save
    >>> from pennylane_qrnn.training import TrainConfig, build_model, load_trained_model
    >>> config = TrainConfig(task="elman-xor", workspace=2).resolved()
    >>> trained = build_model(config, config.make_task())
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "model.pt"
    >>> atomic_save({"config": asdict(config), "model": trained.state_dict()}, path)
    >>> model, task, config = load_trained_model(path)
    >>> task.name, model.layout.workspace
    ('elman-xor', 2)
    >>> folder.cleanup()
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
    model = build_model(config, task, warm=False)  # the file's own weights are loaded next
    load_weights(model, saved["model"], path)
    return model, task, config


def load_weights(model, state, path) -> None:
    """Load ``state`` into ``model``; weights that do not fit raise :class:`UnsafeFileError`."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as error:  # missing, unexpected or misshapen weights
        first = str(error).strip().splitlines()
        raise UnsafeFileError(
            f"weights in {str(path)!r} must fit the model its config describes; "
            f"{' '.join(line.strip() for line in first[:3])[:400]}"
        ) from error


def json_safe(value):
    """``value`` with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def prepare_folder(out: Path, resume: bool, overwrite: bool) -> None:
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


def resumed_config(saved: TrainConfig, given: TrainConfig, path) -> TrainConfig:
    """``given`` if it differs from ``saved`` only in :data:`RESUMABLE_FIELDS`; else refuse.

    Both are resolved configs, so names compare canonically (a saved ``"reference"`` protocol
    is ``"teacher-forced"`` by now)."""
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
