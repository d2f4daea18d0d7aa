"""What the package's templates share: wire hyperparameters, pytree flattening, and queuing
their decomposition when it holds mid-circuit measurements."""

from __future__ import annotations

import pennylane as qml
from pennylane.operation import Operation
from pennylane.wires import Wires

__all__ = ["MeasuringTemplate"]


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
            for op in ops:
                context.append(op)
            return self
        return super().queue(context)
