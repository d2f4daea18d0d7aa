"""Issue 11 item 3: postselecting templates behave like PennyLane's own where PennyLane allows it.

In a QNode a ``mode="postselect"`` QuantumNeuron or QRNNCell is one operation on the tape (one
box in ``qml.draw``) and the device's ``decompose`` transform expands it: with a method that
keeps measurements (``tree-traversal``, ``one-shot``, shots) and, on ``default.qubit``, under
PennyLane's deferred method too (the default for an analytic device). ``defer_measurements``
runs before ``decompose`` and reads only the tape's top-level operations; the template's
measurements (``PostselectZero``) then decompose into projectors. Where a batched state would
meet those projectors (default.qubit cannot postselect one) the template still queues its
decomposition, for ``defer_measurements`` to split the batch (documented here, level by level).
"""

import numpy as np
import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNNCell, QuantumNeuron
from pennylane_qrnn.devices import DeviceCapabilityError

DQ = qml.device("default.qubit")
W = np.array([0.3, 0.5, -0.2, 0.4])


def _neuron(weights=W):
    QuantumNeuron(
        weights, control_wires=[0, 1], target_wire=2, ancilla_wires=[3, 4], degree=2, order=2
    )


def _neuron_circuit(weights=W):
    qml.RY(0.7, wires=0)
    qml.Hadamard(1)
    _neuron(weights)
    return qml.probs(wires=[0, 1, 2])


def _cell_weights(rng, batch=None):
    shapes = QRNNCell.shape(1, 2, 1, 2)
    lead = () if batch is None else (batch,)
    return {k: rng.normal(0.4, 0.5, size=lead + s) for k, s in shapes.items()}


def _cells(weights, tokens=(1, 0), outcomes=(1,)):
    def circuit():
        for step, token in enumerate(tokens):
            QRNNCell(
                **weights, token=token, io_wires=[0], workspace_wires=[1, 2], ancilla_wires=[3, 4]
            )
            if step < len(outcomes):
                qml.measure(0, reset=True, postselect=outcomes[step])
        return qml.probs(wires=[0])

    return circuit


def _eager(func):
    """``func`` with every template replaced by its decomposition (the pre-issue-11 tape)."""

    def circuit(*args):
        with qml.queuing.AnnotatedQueue() as q:
            result = func(*args)
        for op in q.queue:
            if isinstance(op, (QuantumNeuron, QRNNCell)):
                with qml.QueuingManager.stop_recording():
                    inner_ops = op.decomposition()
                for inner in inner_ops:
                    qml.apply(inner)
            elif not isinstance(op, qml.measurements.MeasurementProcess) or isinstance(
                op, qml.ops.MidMeasure
            ):
                qml.apply(op)
        return qml.apply(result)

    return circuit


def _ops(qnode, level):
    return qml.workflow.construct_tape(qnode, level=level)().operations


class TestOneBox:
    def test_neuron_is_one_operation_at_top_and_expands_on_the_device(self):
        qnode = qml.QNode(_neuron_circuit, DQ, mcm_method="tree-traversal")
        top = _ops(qnode, "top")
        assert [type(op) for op in top] == [qml.RY, qml.Hadamard, QuantumNeuron]
        device = _ops(qnode, "device")
        assert not any(isinstance(op, QuantumNeuron) for op in device)
        assert sum(isinstance(op, qml.ops.MidMeasure) for op in device) == 3
        drawn = qml.draw(qnode, level="top")()
        assert drawn.count("QuantumNeuron") == 5 and "┤↗" not in drawn  # one box on 5 wires
        assert "QuantumNeuron" not in qml.draw(qnode, level="device")()

    def test_cell_is_one_operation(self, rng):
        weights = _cell_weights(rng)
        qnode = qml.QNode(_cells(weights), DQ, mcm_method="tree-traversal")
        top = _ops(qnode, "top")
        assert [type(op).__name__ for op in top] == ["QRNNCell", "MidMeasure", "QRNNCell"]
        assert not any(isinstance(op, QRNNCell) for op in _ops(qnode, "device"))

    def test_specs_top_counts_inside_the_box(self):
        """The tape holds one operation; ``qml.specs(level="top")`` still counts the gates inside
        it, through ``resources()`` (issue 9 item 6), as for an amplified template."""
        qnode = qml.QNode(_neuron_circuit, DQ, mcm_method="tree-traversal")
        top = qml.specs(qnode, level="top")().resources
        device = qml.specs(qnode, level="device")().resources
        assert top.gate_types == {"RY": 17, "Hadamard": 1, "CNOT": 19, "PhaseShift": 9} | {
            "MidMeasureMP": 3
        }
        assert top.gate_types == device.gate_types

    @pytest.mark.parametrize("shots", [None, 50])
    def test_torch_layer_forward(self, shots):
        @qml.qnode(DQ, mcm_method="tree-traversal" if shots is None else "one-shot", shots=shots)
        def circuit(inputs, weights):
            qml.RY(inputs[0], wires=0)
            _neuron(weights)
            return qml.probs(wires=2)

        layer = qml.qnn.TorchLayer(circuit, {"weights": 4})
        out = layer(torch.tensor([0.3], dtype=torch.float64))
        assert out.shape == (2,) and torch.isclose(out.sum(), torch.tensor(1.0, dtype=out.dtype))

    def test_deferred_qnode_is_one_box_expanded_into_projectors(self):
        """PennyLane 0.45's ``defer_measurements`` (before ``decompose`` on default.qubit) only
        defers top-level measurements; the box's measurements become projectors on the device,
        with no fresh wire."""
        qnode = qml.QNode(_neuron_circuit, DQ)
        top = _ops(qnode, "top")
        assert [type(op) for op in top] == [qml.RY, qml.Hadamard, QuantumNeuron]
        device = qml.workflow.construct_tape(qnode, level="device")()
        assert not any(isinstance(op, (QuantumNeuron, qml.ops.MidMeasure)) for op in device)
        assert sum(isinstance(op, qml.Projector) for op in device.operations) == 3
        assert sorted(device.wires.tolist()) == [0, 1, 2, 3, 4]
        assert qml.draw(qnode)().count("QuantumNeuron") == 5

    def test_batched_deferred_qnode_still_queues_the_decomposition(self):
        """The documented limit: a batched state cannot be postselected by default.qubit, and
        only ``defer_measurements`` splits the batch, for the measurements it sees."""
        qnode = qml.QNode(_neuron_circuit, DQ)
        weights = np.stack([W, -W])
        top = qml.workflow.construct_tape(qnode, level="top")(weights).operations
        assert not any(isinstance(op, QuantumNeuron) for op in top)
        assert sum(isinstance(op, qml.ops.MidMeasure) for op in top) == 3
        assert "QuantumNeuron" not in qml.draw(qnode, level="top")(weights)

    def test_outside_a_qnode_queues_the_decomposition(self):
        with qml.queuing.AnnotatedQueue() as q:
            _neuron()
        assert sum(isinstance(op, qml.ops.MidMeasure) for op in q.queue) == 3


class TestSameNumbers:
    """The lazy tape gives exactly what the eagerly expanded one gives."""

    @pytest.mark.parametrize("device", ["default.qubit", "lightning.qubit"])
    @pytest.mark.parametrize("batched", [False, True])
    def test_neuron(self, device, batched):
        dev = qml.device(device, wires=5)
        weights = np.stack([W, -W, 0.5 * W]) if batched else W
        lazy = qml.QNode(_neuron_circuit, dev, mcm_method="tree-traversal")
        eager = qml.QNode(_eager(_neuron_circuit), dev, mcm_method="tree-traversal")
        assert isinstance(_ops(lazy, "top")[-1], QuantumNeuron)
        assert not any(isinstance(op, QuantumNeuron) for op in _ops(eager, "top"))
        assert np.allclose(lazy(weights), eager(weights), atol=1e-12)
        if batched:  # broadcast on Lightning too: row by row
            for i, row in enumerate(weights):
                assert np.allclose(lazy(weights)[i], lazy(row), atol=1e-12)

    @pytest.mark.parametrize("device", ["default.qubit", "lightning.qubit"])
    @pytest.mark.parametrize("batch", [None, 2])
    def test_two_step_cell(self, rng, device, batch):
        weights = _cell_weights(rng, batch)
        dev = qml.device(device, wires=5)
        lazy = qml.QNode(_cells(weights), dev, mcm_method="tree-traversal")()
        eager_qnode = qml.QNode(_eager(_cells(weights)), dev, mcm_method="tree-traversal")
        assert not any(isinstance(op, QRNNCell) for op in _ops(eager_qnode, "top"))
        eager = eager_qnode()
        assert np.allclose(lazy, eager, atol=1e-12)
        if batch:
            row = {k: v[1] for k, v in weights.items()}
            assert np.allclose(lazy[1], qml.QNode(_cells(row), DQ, mcm_method="tree-traversal")())

    def test_deferred_default_unchanged(self):
        reference = qml.QNode(_neuron_circuit, DQ, mcm_method="tree-traversal")()
        assert np.allclose(qml.QNode(_neuron_circuit, DQ)(), reference, atol=1e-12)

    def test_one_shot_same_samples(self):
        """With shots the expansion happens before ``dynamic_one_shot``: the same seeded
        samples as the eager tape."""
        dev = qml.device("default.qubit", seed=3)
        lazy = qml.QNode(_neuron_circuit, dev, shots=300)
        assert isinstance(_ops(lazy, "top")[-1], QuantumNeuron)
        eager = qml.QNode(_eager(_neuron_circuit), qml.device("default.qubit", seed=3), shots=300)
        assert not any(isinstance(op, QuantumNeuron) for op in _ops(eager, "top"))
        assert np.allclose(lazy(), eager())

    def test_backprop_gradient(self):
        def grad(func):
            w = torch.tensor(W, requires_grad=True)
            qnode = qml.QNode(func, DQ, interface="torch", mcm_method="tree-traversal")
            (qnode(w) * torch.arange(8)).sum().backward()
            return w.grad

        assert torch.allclose(grad(_neuron_circuit), grad(_eager(_neuron_circuit)), atol=1e-12)


class TestRefusals:
    """Errors on the template path name what works instead of PennyLane's raw ones."""

    def test_two_step_cell_without_mcm_method(self, rng):
        """Deferred, a batched 2-step cell is queued expanded and needs a 36-qubit state
        (PennyLane: a 1 TiB ``MemoryError``): refused with what works. Unbatched, the cells are
        boxes whose measurements become projectors: 6 qubits (one for the top-level
        measurement), the numbers of tree-traversal."""
        batched = _cell_weights(rng, batch=2)
        with pytest.raises(
            DeviceCapabilityError,
            match=r"mcm_method must be 'tree-traversal' \(or shots\) .* got None: deferring its "
            r"31 mid-circuit measurements .* 36-qubit state .*mcm_method='tree-traversal'",
        ):
            qml.QNode(_cells(batched), DQ)()
        weights = {k: v[0] for k, v in batched.items()}
        deferred = qml.QNode(_cells(weights), DQ)
        assert [type(op).__name__ for op in _ops(deferred, "top")] == [
            "QRNNCell",
            "MidMeasure",
            "QRNNCell",
        ]
        assert len(qml.workflow.construct_tape(deferred, level="device")().wires) == 6
        reference = qml.QNode(_cells(weights), DQ, mcm_method="tree-traversal")()
        assert np.allclose(deferred(), reference, atol=1e-12)

    def test_fixed_wires_count_earlier_measurements(self):
        """A measurement before the neuron takes a fresh wire (PennyLane: ``WireError``); the
        neuron's own take one each only when it is queued expanded (batched)."""

        def circuit(weights=W):
            qml.measure(0, reset=True)
            _neuron(weights)
            return qml.probs(wires=2)

        with pytest.raises(
            DeviceCapabilityError,
            match=r"at least 6 .*the 1 mid-circuit measurement\(s\) before it.* got 5 ",
        ):
            qml.QNode(circuit, qml.device("default.qubit", wires=5))()
        with pytest.raises(
            DeviceCapabilityError,
            match=r"at least 9 .*its 3 mid-circuit measurements and 1 before it.* got 8 ",
        ):
            qml.QNode(circuit, qml.device("default.qubit", wires=8))(np.stack([W, -W]))
        reference = qml.QNode(circuit, DQ, mcm_method="tree-traversal")()
        assert np.allclose(qml.QNode(circuit, qml.device("default.qubit", wires=6))(), reference)

    def test_lightning_deferred_refused(self):
        """Lightning's ``defer_measurements(allow_postselect=False)`` would say "Postselection is
        not allowed on the device with deferred measurements"."""
        with pytest.raises(DeviceCapabilityError, match="mcm_method must be 'tree-traversal'"):
            qml.QNode(_neuron_circuit, qml.device("lightning.qubit", wires=5))()

    def test_refusals_reach_draw(self):
        """``qml.draw`` and ``qml.specs`` build the tape through ``construct_batch``; the QNode's
        settings are read there too."""
        qnode = qml.QNode(_neuron_circuit, qml.device("lightning.qubit", wires=5))
        with pytest.raises(DeviceCapabilityError, match="on lightning.qubit"):
            qml.draw(qnode)()
