"""Where a training run can run: the torch device, and whether a PennyLane device gives
gradients to train on (both refuse before anything is built); and the check that tells a
model whose probabilities are not finite from one whose weights are not."""

from __future__ import annotations

import torch

from ..errors import NonFiniteError, QRNNValueError
from ..protocols import TEACHER_FORCED

__all__ = ["check_torch_device", "check_trainable", "raise_if_nonfinite", "model_device"]


def check_torch_device(name) -> torch.device:
    """The torch device ``name``, refused unless this machine has it.

    Args:
        name (str or torch.device): e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``

    Returns:
        torch.device: the device

    Raises:
        QRNNValueError: for a name torch does not know, or a device not present here

    **Example**

    >>> from pennylane_qrnn.training import check_torch_device
    >>> check_torch_device("cpu")
    device(type='cpu')
    >>> check_torch_device("tpu9")
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: torch-device must be a torch device such as ...
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


def check_trainable(config) -> None:
    """Refuse, before anything is built, a backend that gives no gradients to train on.

    Args:
        config (TrainConfig): a resolved :class:`~pennylane_qrnn.training.TrainConfig`

    Raises:
        QRNNValueError: a classical baseline on a device, or a shot device without
            ``optimizer="spsa"`` (the message names what works)

    **Example**

    >>> from pennylane_qrnn.training import TrainConfig, check_trainable
    >>> check_trainable(TrainConfig(task="elman-xor", backend="default.qubit").resolved())
    >>> check_trainable(TrainConfig(task="elman-xor", backend="braket.local.qubit").resolved())
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.QRNNValueError: device must give gradients to train on; ...
    """
    if config.backend is None:
        return
    if config.model != "qrnn":
        raise QRNNValueError(
            f"device must be 'exact' for a classical baseline (model {config.model!r} runs on "
            f"torch); got {config.backend!r}"
        )
    from ..devices.capabilities import capabilities

    caps = capabilities(config.backend)
    shots_ok = config.optimizer == "spsa" or getattr(config, "gradient", None) == "parameter-shift"
    shots_ok = shots_ok and config.backend != "qiskit.remote"
    if caps.path != "circuits" and shots_ok:
        return  # SPSA or shot parameter-shift (training/shot_optim.py): shots are all they need
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
            "shots; or train on shots with --optimizer spsa (pennylane_qrnn.optim.SPSA) or "
            f"--gradient parameter-shift{extra}"
        )
    if config.protocol != TEACHER_FORCED.name:
        raise QRNNValueError(
            f"protocol must be {TEACHER_FORCED.name!r} to train on device {config.backend!r}; got "
            f"{config.protocol!r}, which samples every step, and only the exact engine and the "
            "shot path can sample"
        )


@torch.no_grad()
def raise_if_nonfinite(model, batch, error) -> None:
    """Raise :class:`NonFiniteError` (from ``error``) if ``model`` gives non-finite
    log-probabilities on ``batch`` although its weights are finite."""
    device = model_device(model)
    log_probs, _ = model(batch.tokens.to(device), batch.targets.to(device))
    if not bool(torch.isfinite(log_probs).any(-1).all()) or bool(torch.isnan(log_probs).any()):
        largest = max(float(p.detach().abs().max()) for p in model.parameters())
        raise NonFiniteError(
            f"the model's probabilities must be finite; got NaN on validation data "
            f"(the largest weight is {largest:.3g})"
        ) from error


def model_device(model) -> torch.device:
    """The torch device ``model``'s parameters live on."""
    return next(model.parameters()).device


def supports_mixed(model) -> bool:
    """Whether ``model`` (or the module a data-parallel wrapper holds) computes ``mixed=True``
    runs: a QRNN whose executor simulates mixed states, or a classical baseline (no executor:
    its readout leaves its state as it was, so there is no mixture to keep)."""
    executor = getattr(getattr(model, "module", model), "executor", None)
    return executor is None or bool(getattr(executor, "supports_mixed_state", False))
