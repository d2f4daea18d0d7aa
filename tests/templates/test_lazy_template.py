"""Issue 11 item 3: a ``mode="postselect"`` QuantumNeuron behaves like PennyLane's own templates
under every measurement method: one box in ``qml.draw``, counted inside by
``qml.specs(level="top")``, expanded by the device (its measurements into projectors where the
device defers), with registered decomposition rules, and the same numbers as before."""

import copy
import warnings
from collections import Counter

import numpy as np
import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNNCell, QuantumNeuron, neuron
from pennylane_qrnn.devices import DeviceCapabilityError
from pennylane_qrnn.errors import QRNNValueError
from pennylane_qrnn.templates import neuron_resources
from pennylane_qrnn.templates.base import PostselectZero

DQ = qml.device("default.qubit")
W = np.array([0.3, 0.5, -0.2, 0.4])  # bias, x0, x1, x0*x1
ANGLE = 0.7
#: the QNode settings a user may give, each keeping the neuron one box at the top
METHODS = {
    "default": {},
    "deferred": {"mcm_method": "deferred"},
    "tree-traversal": {"mcm_method": "tree-traversal"},
    "one-shot": {"mcm_method": "one-shot", "shots": 20},
}


def _circuit(weights=W, mode="postselect"):
    qml.RY(ANGLE, wires=0)
    qml.Hadamard(1)
    QuantumNeuron(
        weights,
        control_wires=[0, 1],
        target_wire=2,
        ancilla_wires=[3, 4] if mode == "postselect" else None,
        degree=2,
        order=2,
        mode=mode,
    )
    return qml.probs(wires=[0, 1, 2])


def _closed_form(weights, xp=np):
    """Joint probabilities of (x0, x1, target): each control branch ``x`` gets the unnormalised
    target amplitudes ``(cos**4 eta_x, sin**4 eta_x)`` (order 2), then the state is
    renormalised (the neuron's definition, independent of any circuit)."""
    eta = neuron.eta_table(weights, 2, 2)
    c, s = neuron.neuron_amplitudes(eta, 2)
    branch = xp.stack([xp.cos(xp.asarray(ANGLE) / 2) ** 2, xp.sin(xp.asarray(ANGLE) / 2) ** 2])
    branch = xp.stack([branch[0] / 2, branch[0] / 2, branch[1] / 2, branch[1] / 2])
    joint = xp.stack([branch * c**2, branch * s**2], -1).reshape(-1)
    return joint / joint.sum()


def _counts(resources):
    return dict(resources.gate_types)


class TestOneBox:
    @pytest.mark.parametrize("method", METHODS)
    def test_draw_shows_one_named_box(self, method):
        qnode = qml.QNode(_circuit, DQ, **METHODS[method])
        drawn = qml.draw(qnode)()
        assert drawn.count("QuantumNeuron") == 5  # one box across its 5 wires
        assert "┤↗" not in drawn and "RY(0.70)" in drawn and "CNOT" not in drawn
        top = qml.workflow.construct_tape(qnode, level="top")().operations
        assert [type(op) for op in top] == [qml.RY, qml.Hadamard, QuantumNeuron]

    @pytest.mark.parametrize("method", METHODS)
    def test_specs_top_counts_the_gates_inside(self, method):
        """``qml.specs(level="top")`` sees one operation and counts its decomposition, as for an
        amplified neuron; the counts are those of the device's expanded tape (where the device
        defers, each measurement is a ``Projector`` there)."""
        qnode = qml.QNode(_circuit, DQ, **METHODS[method])
        top = qml.specs(qnode, level="top")().resources
        res = neuron_resources(n_controls=2, degree=2, order=2)
        expected = {
            "RY": res["ry"] + 1,
            "Hadamard": 1,
            "CNOT": res["cnot"],
            "PhaseShift": res["phase_shift"],
            "MidMeasureMP": res["mid_circuit_measurements"],
        }
        assert (
            _counts(top)
            == expected
            == {
                "RY": 17,
                "Hadamard": 1,
                "CNOT": 19,
                "PhaseShift": 9,
                "MidMeasureMP": 3,
            }
        )
        assert top.num_gates == sum(expected.values())
        device = _counts(qml.specs(qnode, level="device")().resources)
        if method in ("default", "deferred"):
            device["MidMeasureMP"] = device.pop("Projector")
        assert device == expected
        op = qml.workflow.construct_tape(qnode, level="top")().operations[-1]
        inside = Counter(o.name for o in op.decomposition())
        outside = Counter({"RY": 1, "Hadamard": 1})  # the gates before the box
        assert inside + outside == Counter(expected)
        assert op.resources().gate_types == dict(inside)

    def test_same_shape_as_amplified(self):
        """Both modes: one box at the top, as many gates counted inside it as the device runs."""
        for mode in ("amplified", "postselect"):
            qnode = qml.QNode(lambda m=mode: _circuit(mode=m), DQ)
            assert qml.draw(qnode)().count("QuantumNeuron") == (3 if mode == "amplified" else 5)
            top = qml.specs(qnode, level="top")().resources.num_gates
            assert top == qml.specs(qnode, level="device")().resources.num_gates
            assert top == (2 + 16 + 19 + 9 + 3 if mode == "postselect" else 2 + 4 + 4)

    def test_cell_is_one_box_without_neuron_boxes(self, rng):
        """A postselecting QRNNCell is one ``QRNNCell`` box under the default method too; its
        decomposition holds its neurons expanded in place (no ``QuantumNeuron`` box inside)."""
        shapes = QRNNCell.shape(1, 2, 1, 2)
        weights = {k: rng.normal(0.4, 0.5, size=s) for k, s in shapes.items()}

        def step():
            QRNNCell(**weights, token=1, io_wires=[0], workspace_wires=[1, 2], ancilla_wires=[3, 4])
            return qml.probs(wires=[0])

        qnode = qml.QNode(step, DQ)
        drawn = qml.draw(qnode)()
        assert drawn.count("QRNNCell") == 5 and "QuantumNeuron" not in drawn
        (cell,) = qml.workflow.construct_tape(qnode, level="top")().operations
        assert not any(isinstance(o, QuantumNeuron) for o in cell.decomposition())
        assert np.allclose(qnode(), qml.QNode(step, DQ, mcm_method="tree-traversal")())


class TestSameNumbers:
    """Results and gradients: the closed form, on every device and method that worked before."""

    @pytest.mark.parametrize(
        "device, kwargs",
        [
            (("default.qubit",), {}),
            (("default.qubit",), {"mcm_method": "deferred"}),
            (("default.qubit", 5), {"mcm_method": "tree-traversal"}),
            (("lightning.qubit", 5), {"mcm_method": "tree-traversal"}),
        ],
    )
    @pytest.mark.parametrize("batched", [False, True])
    def test_probabilities(self, device, kwargs, batched):
        weights = np.stack([W, -W, 0.5 * W]) if batched else W
        got = qml.QNode(_circuit, qml.device(*device), **kwargs)(weights)
        rows = weights if batched else [weights]
        expected = np.stack([_closed_form(w) for w in rows])
        assert np.allclose(np.reshape(got, expected.shape), expected, atol=1e-12)

    @pytest.mark.parametrize("kwargs", [{}, {"mcm_method": "tree-traversal"}])
    def test_backprop_gradient(self, kwargs):
        def gradient(func):
            w = torch.tensor(W, requires_grad=True)
            (func(w) * torch.arange(8, dtype=torch.float64)).sum().backward()
            return w.grad

        qnode = qml.QNode(_circuit, DQ, interface="torch", **kwargs)
        exact = gradient(lambda w: _closed_form(w, xp=torch))
        assert torch.allclose(gradient(qnode), exact, atol=1e-12)

    def test_shift_rule_still_refused(self):
        """Parameter-shift expands the box before differentiating: the guard still refuses."""
        qnode = qml.QNode(_circuit, DQ, interface="torch", diff_method="parameter-shift")
        w = torch.tensor(W, requires_grad=True)
        with pytest.raises(QRNNValueError, match="diff_method must be 'backprop'"):
            qnode(w).sum().backward()

    def test_deferred_with_shots(self):
        """``mcm_method="deferred"`` with shots (a device error before): projectors, with
        PennyLane's binomial count of the shots that pass."""
        qnode = qml.QNode(
            _circuit, qml.device("default.qubit", seed=5), mcm_method="deferred", shots=4000
        )
        top = qml.workflow.construct_tape(qnode, level="top")().operations
        assert isinstance(top[-1], QuantumNeuron)
        assert np.allclose(qnode(), _closed_form(W), atol=0.03)

    def test_lightning_deferred_with_shots_refused(self):
        with pytest.raises(DeviceCapabilityError, match="mcm_method must be 'tree-traversal'"):
            qml.QNode(
                _circuit, qml.device("lightning.qubit", wires=5), mcm_method="deferred", shots=50
            )()


class TestGraphDecomposition:
    @pytest.fixture
    def graph(self):
        qml.decomposition.enable_graph()
        try:
            yield
        finally:
            qml.decomposition.disable_graph()

    def test_rules_registered(self):
        (neuron_rule,) = qml.list_decomps(QuantumNeuron)
        counts = neuron_rule.compute_resources(n_controls=2, degree=2, order=2, mode="postselect")
        assert counts.gate_counts[qml.resource_rep(PostselectZero)] == 3
        rules = qml.list_decomps(PostselectZero)
        assert [dict(r.compute_resources().gate_counts) for r in rules] == [
            {qml.resource_rep(qml.ops.MidMeasure): 1},
            {qml.resource_rep(qml.Projector): 1},
        ]

    @pytest.mark.parametrize("kwargs", [{}, {"mcm_method": "tree-traversal"}])
    def test_device_plans_with_the_rules(self, graph, kwargs):
        """With graph decomposition on, the device's ``decompose`` plans the box from the
        registered rules (to measurements, or to projectors where it defers), without warnings,
        and the numbers stay."""
        qnode = qml.QNode(_circuit, DQ, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            probs = qnode()
            device = qml.workflow.construct_tape(qnode, level="device")()
        assert np.allclose(probs, _closed_form(W), atol=1e-12)
        kept = qml.Projector if not kwargs else qml.ops.MidMeasure
        assert sum(isinstance(o, kept) for o in device.operations) == 3


class TestPostselectZero:
    def test_is_a_measurement_decomposing_into_a_projector(self):
        op = PostselectZero(3)
        assert isinstance(op, qml.ops.MidMeasure) and op.name == "MidMeasureMP"
        assert (op.postselect, op.reset) == (0, True)
        (proj,) = op.decomposition()
        assert isinstance(proj, qml.Projector) and proj.wires.tolist() == [3]
        assert op.meas_uid != PostselectZero(3).meas_uid

    def test_copies_keep_type_and_id(self):
        op = PostselectZero(3)
        moved = qml.map_wires(op, {3: 7})
        assert type(moved) is PostselectZero and moved.wires.tolist() == [7]
        assert moved.meas_uid == op.meas_uid
        assert type(copy.copy(op)) is PostselectZero and copy.copy(op).meas_uid == op.meas_uid

    @pytest.mark.parametrize("kwargs", [{"reset": False}, {"postselect": 1}])
    def test_refuses_other_settings(self, kwargs):
        with pytest.raises(QRNNValueError, match="must have reset=True and postselect=0"):
            PostselectZero(0, **kwargs)
