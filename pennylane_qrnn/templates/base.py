"""What the package's templates share: wire hyperparameters, pytree flattening, queuing
their decomposition when it holds mid-circuit measurements, and the rotation that guards
postselected circuits against gradient transforms."""

from __future__ import annotations

import contextlib
import contextvars
import inspect

import pennylane as qml
from pennylane.operation import Operation
from pennylane.wires import Wires

from ..errors import NonFiniteError, QRNNValueError

__all__ = ["MeasuringTemplate", "PostselectedRY", "check_finite_weights", "renormalisation_handled"]

def check_finite_weights(name, weights) -> None:
    """Refuse NaN or infinite angles (a circuit would run and return NaN, or garbage, silently).
    Traced weights (under jit) are not inspected."""
    if qml.math.is_abstract(weights):
        return
    finite = qml.math.isfinite(weights)
    if not bool(qml.math.all(finite)):
        bad = int(qml.math.sum(qml.math.logical_not(finite)))
        raise NonFiniteError(f"{name} must be finite; got {bad} NaN or infinite value(s)")


_HANDLED = contextvars.ContextVar("pennylane_qrnn_renormalisation_handled", default=False)


@contextlib.contextmanager
def renormalisation_handled():
    """Within this context, :class:`PostselectedRY` gates are built unguarded: for callers that
    make gradient transforms right themselves (the circuit path's finite differences read the
    probabilities of every wire, so PennyLane's light-cone pruning keeps every angle)."""
    token = _HANDLED.set(True)
    try:
        yield
    finally:
        _HANDLED.reset(token)


POSTSELECT_GRADIENT_MESSAGE = (
    "diff_method must be 'backprop' (default.qubit) to differentiate a QuantumNeuron or QRNNCell "
    "with mode='postselect' in a QNode; got a gradient transform (parameter-shift, finite-diff, "
    "spsa, hadamard, or 'best' on a device without backprop). Postselection renormalises the "
    "state, so the outputs are not linear in it and shift rules are wrong, and PennyLane's "
    "gradient transforms give zero for angles whose only effect on the measured wires is through "
    "a postselection (finite-diff is off by 2**order). Use diff_method='backprop' on "
    "default.qubit, mode='amplified' (exact with parameter-shift), or pennylane_qrnn.QRNN on the "
    "circuit path, whose 'finite-diff' accounts for both"
)


class PostselectedRY(qml.RY):
    """``qml.RY`` inside a postselected neuron: the same gate (its name is ``"RY"``, so every
    device and the hardware path run it as one), but it refuses PennyLane's gradient
    transforms with a clear error instead of letting them return wrong numbers.

    Parameter-shift, finite-diff, SPSA and Hadamard gradients ask each trainable operation for
    its ``grad_method``; this gate raises there. Backpropagation never asks. Gates built inside
    :func:`renormalisation_handled` carry ``handled=True`` and behave like ``qml.RY``.
    """

    def __init__(self, phi, wires, handled=None, id=None):
        super().__init__(phi, wires=wires, id=id)
        self._hyperparameters = {"handled": bool(_HANDLED.get() if handled is None else handled)}

    @property
    def name(self):
        return "RY"

    @property
    def grad_method(self):
        if self.hyperparameters.get("handled"):
            return "A"
        raise QRNNValueError(POSTSELECT_GRADIENT_MESSAGE)


class MeasuringTemplate(Operation):
    """Base of :class:`QuantumNeuron` and :class:`QRNNCell`.

    Subclasses name the hyperparameters that hold wires in ``_wire_keys``. In
    ``mode="postselect"`` the template queues its decomposition instead of itself: PennyLane
    handles mid-circuit measurements before it decomposes templates, so the measurements must be
    on the tape itself.
    """

    grad_method = None
    _wire_keys: tuple = ()

    @classmethod
    def _unflatten(cls, data, metadata):
        return cls(*data, **dict(metadata[1]))

    def map_wires(self, wire_map):
        new_op = super().map_wires(wire_map)
        for key in self._wire_keys:
            new_op._hyperparameters[key] = Wires([wire_map.get(w, w) for w in self._hyperparameters[key]])
        return new_op

    def queue(self, context=qml.QueuingManager):
        if self.hyperparameters["mode"] == "postselect":
            with qml.QueuingManager.stop_recording():
                ops = self.decomposition()
            _check_qnode_postselects(self, ops)
            for op in ops:
                context.append(op)
            return self
        return super().queue(context)


def _recording_qnode():
    """The QNode whose tape is being recorded, if the template is queued by one (PennyLane
    calls the quantum function from ``QNode.construct``, a few frames up)."""
    frame = inspect.currentframe()
    for _ in range(12):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, qml.QNode):
            return owner
        frame = frame.f_back
    return None


def _check_qnode_postselects(template, ops) -> None:
    """Refuse, with what works, a QNode whose mid-circuit measurement method cannot postselect
    this template's measurements: PennyLane's default for an analytic device defers them, which
    needs one fresh wire per measurement (a device with fixed wires fails with "wires not found
    on the device") and which Lightning refuses for postselection."""
    qnode = _recording_qnode()
    if qnode is None:
        return
    from ..devices.capabilities import DeviceCapabilityError  # pylint: disable=import-outside-toplevel

    device = qnode.device
    mcm_method = qnode.execute_kwargs.get("mcm_method")
    shots = [getattr(getattr(owner, "shots", None), "total_shots", None) for owner in (qnode, device)]
    if mcm_method not in (None, "deferred") or any(shots):
        return
    name = getattr(device, "short_name", None) or getattr(device, "name", "")
    n_mcm = sum(isinstance(op, qml.ops.MidMeasure) for op in ops)
    fix = ("use mcm_method='tree-traversal' in the QNode (qml.qnode(dev, mcm_method="
           "'tree-traversal')), or mode='amplified' (no mid-circuit measurements)")
    kind = type(template).__name__
    if name.startswith("lightning."):
        raise DeviceCapabilityError(
            f"mcm_method must be 'tree-traversal' for a {kind} with mode='postselect' on {name}; "
            f"got {mcm_method!r}: {name} defers mid-circuit measurements by default and refuses "
            f"postselection there; {fix}"
        )
    wires = getattr(device, "wires", None)
    if name == "default.qubit" and wires is not None:
        needed = len(template.wires) + n_mcm  # a lower bound: other measurements need more
        if len(wires) < needed:
            raise DeviceCapabilityError(
                f"device wires must number at least {needed} for a {kind} with mode='postselect' "
                f"under mcm_method={mcm_method!r} (its {n_mcm} mid-circuit measurements are "
                f"deferred, each onto a fresh wire); got {len(wires)} ({wires.tolist()}); {fix}, "
                "or a device without fixed wires (qml.device('default.qubit'))"
            )
