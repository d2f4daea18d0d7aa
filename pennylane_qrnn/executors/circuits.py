"""The circuit executor: the templates run as QNodes on a PennyLane device that postselects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .. import encoding
from ..devices.circuit_path import CircuitRunner, resolve_diff_method
from ..errors import QRNNValueError
from ..results import PostselectionStats, SequenceOutput
from .base import Executor, RunnableModel, postselection_mask
from .device import DeviceSpec

if TYPE_CHECKING:
    from ..layout import CellLayout

__all__ = ["Circuits"]


class Circuits(Executor):
    """Runs each step's :class:`~pennylane_qrnn.QRNNCell` template as a QNode on ``device``;
    the simulator postselects the neurons' ancillas and, under teacher forcing, the i/o lanes.
    Differentiable with the QNode's ``diff_method``.

    Args:
        device: a PennyLane device or the name of an installed one (``default.qubit``,
            ``lightning.qubit``, ...)
        diff_method: the gradient method; ``None`` picks one that is right for the device and
            the neuron mode (:func:`~pennylane_qrnn.devices.circuit_path.resolve_diff_method`)
        device_options: keyword arguments for ``qml.device`` when ``device`` is a name

    Circuits start from ``|0...0>`` (no ``state``), and every step is either postselected on its
    target (teacher forcing) or, without targets, sampled: mixed protocols need :class:`Exact`
    or :class:`Shots`.

    Real-valued inputs (``tokens`` a floating ``(L, N, I)`` tensor of angles,
    :mod:`pennylane_qrnn.encoding`) run as cells that write and unwrite the angles with ``RY``
    and postselect the i/o lanes after the unwrite; differentiable with respect to the angles
    with ``diff_method="backprop"`` (or ``"finite-diff"``), not with shift rules.

    Example::

        >>> import torch
        >>> from pennylane_qrnn import QRNN
        >>> model = QRNN(1, 2, executor=Circuits("default.qubit"), dtype=torch.float64)
        >>> log_probs, _ = model(torch.tensor([[1], [0]]), torch.tensor([[0], [1]]))
        >>> tuple(log_probs.shape)
        (2, 1, 2)
    """

    differentiable = True
    supports_angles = True

    def __init__(
        self, device: Any, diff_method: str | None = None, device_options: dict | None = None
    ) -> None:
        self.device = DeviceSpec(device, device_options)
        self.diff_method = diff_method

    def check_model(self, model: RunnableModel) -> None:
        """Refuse, when the model is built, a ``diff_method`` that would give wrong gradients
        (or none) for its neuron mode on this device; the error names the methods that work."""
        resolve_diff_method(
            self.device.live(model.layout.n_wires), model.layout.mode, self.diff_method
        )

    def runner(self, layout: CellLayout) -> CircuitRunner:
        """The QNode runner for ``layout`` on this executor's device."""
        return CircuitRunner(self.device.live(layout.n_wires), layout, diff_method=self.diff_method)

    def run(
        self,
        model: RunnableModel,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        postselected: torch.Tensor | None,
        state: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> SequenceOutput:
        if state is not None:
            raise QRNNValueError(
                f"state must be None on the circuit path (backend={self.device.name!r}): "
                "circuits start from |0...0>"
            )
        if targets is not None and postselected is not None and not bool(postselected.all()):
            raise QRNNValueError(
                "a protocol that samples some steps and postselects others needs the exact "
                "engine or the shot path; got such a mask with backend="
                f"{self.device.name!r} on the circuit path"
            )
        if tokens.is_floating_point():
            tokens = encoding.check_angles("tokens", tokens, model.layout.io_bits)
            if tokens.dim() != 3:
                raise QRNNValueError(
                    f"tokens must have shape (L, N, I) as angles; got {tuple(tokens.shape)}"
                )
        log_probs, outcomes = self.runner(model.layout).run(
            model.weights(), tokens, targets, generator
        )
        picked = log_probs.detach().gather(2, outcomes.unsqueeze(2)).squeeze(2).exp()
        stats = PostselectionStats.from_probabilities(
            # the simulator postselects (neurons, and the unwrite of angles): not observed
            torch.full_like(picked, float("nan")),
            picked,
            postselection_mask(outcomes, targets, postselected),
        )
        return SequenceOutput(log_probs, None, outcomes, stats, None, self.describe())

    def plan(self) -> dict[str, Any]:
        return {"backend": self.device.name, "path": "circuits"}

    def __repr__(self) -> str:
        method = "" if self.diff_method is None else f", diff_method={self.diff_method!r}"
        return f"Circuits({self.device.name!r}{method})"
