"""QuantumNeuron: validity, closed forms, superposed inputs, devices, inputs and interfaces."""

import numpy as np
import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QuantumNeuron, neuron
from pennylane_qrnn.devices import DeviceCapabilityError, qnode_options
from pennylane_qrnn.templates import neuron_resources

from ..conftest import requires_braket, requires_qiskit

DQ = qml.device("default.qubit")


def _prepare_basis(x, n):
    # X gates, not qml.BasisState: PennyLane 0.45's tree-traversal fails on a partial BasisState
    for i in range(n):
        if (x >> (n - 1 - i)) & 1:
            qml.X(i)


def _neuron(weights, n, degree, order, mode="postselect"):
    ancillas = list(range(n + 1, n + 1 + order)) if mode == "postselect" else None
    return QuantumNeuron(
        weights, list(range(n)), n, ancilla_wires=ancillas, degree=degree, order=order, mode=mode
    )


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
@pytest.mark.parametrize("batched", [False, True])
def test_standard_validity(rng, mode, batched):
    shape = (3, 4) if batched else (4,)
    op = _neuron(rng.normal(size=shape), 2, 2, 2, mode)
    # parameter-shift is wrong for renormalised (postselected) outputs, and PennyLane cannot
    # shift broadcast parameters: differentiation is checked in TestInterfaces instead
    qml.ops.functions.assert_valid(op, skip_differentiation=batched or mode == "postselect")


class TestClosedForm:
    """Basis inputs: the target's probabilities and the postselection probabilities."""

    @pytest.mark.parametrize(
        "n, degree",
        # every degree 1..3 that adds monomials on up to 4 controls (0 controls: the bias only)
        [(n, d) for n in range(5) for d in range(1, 4) if d <= max(n, 1)],
    )
    @pytest.mark.parametrize("order", [1, 2, 3])
    def test_target_probabilities(self, rng, n, degree, order):
        weights = rng.uniform(-np.pi, np.pi, size=QuantumNeuron.shape(n, degree))
        eta = neuron.eta_table(weights, n, degree)
        expected_f = np.arctan(np.tan(eta) ** (2**order))

        @qml.qnode(DQ, mcm_method="tree-traversal")
        def circuit(x):
            _prepare_basis(x, n)
            _neuron(weights, n, degree, order)
            return qml.probs(wires=n)

        for x in range(2**n):
            probs = circuit(x)
            assert np.allclose(
                probs, [np.cos(expected_f[x]) ** 2, np.sin(expected_f[x]) ** 2], atol=1e-10
            )

    @pytest.mark.parametrize("n, degree", [(1, 1), (2, 2), (3, 2)])
    @pytest.mark.parametrize("order", [1, 2, 3])
    def test_postselection_probability_per_level(self, rng, n, degree, order):
        """Run the decomposition with plain (not postselected) ancilla measurements: the first
        2**j - 1 measurements form the order-j block, all of them succeed with probability
        cos(eta)**(2**(j+1)) + sin(eta)**(2**(j+1))."""
        weights = rng.uniform(-np.pi, np.pi, size=QuantumNeuron.shape(n, degree))
        eta = neuron.eta_table(weights, n, degree)
        op = _neuron(weights, n, degree, order)
        decomposition = op.decomposition()
        assert sum(isinstance(o, qml.ops.MidMeasure) for o in decomposition) == 2**order - 1

        @qml.qnode(DQ, mcm_method="tree-traversal")
        def circuit(x):
            _prepare_basis(x, n)
            measured = []
            for o in decomposition:
                if isinstance(o, qml.ops.MidMeasure):
                    assert o.postselect == 0 and o.reset
                    measured.append(qml.measure(o.wires[0], reset=True))
                else:
                    qml.apply(o)
            return qml.probs(op=measured)

        for x in range(2**n):
            joint = circuit(x).reshape((2,) * (2**order - 1))
            for level in range(1, order + 1):
                first = 2**level - 1
                marginal = joint.sum(axis=tuple(range(first, joint.ndim)))
                expected = np.cos(eta[x]) ** (2 ** (level + 1)) + np.sin(eta[x]) ** (
                    2 ** (level + 1)
                )
                assert marginal.flat[0] == pytest.approx(expected, abs=1e-10)


class TestSuperposedInputs:
    """A random joint state of controls and target, against numpy computed here."""

    @staticmethod
    def _tables(weights, n, degree, order):
        eta = np.asarray(neuron.monomial_matrix(n, degree)) @ weights
        c, s = np.cos(eta) ** (2**order), np.sin(eta) ** (2**order)
        return eta, c, s

    @pytest.mark.parametrize("n, degree, order", [(2, 2, 1), (3, 2, 2), (3, 3, 3)])
    def test_postselect_is_renormalised_branch_map(self, rng, n, degree, order):
        weights = rng.uniform(-np.pi, np.pi, size=QuantumNeuron.shape(n, degree))
        state = rng.normal(size=2 ** (n + 1)) + 1j * rng.normal(size=2 ** (n + 1))
        state /= np.linalg.norm(state)
        _, c, s = self._tables(weights, n, degree, order)
        amps = state.reshape(2**n, 2)
        out = np.stack([c * amps[:, 0] - s * amps[:, 1], s * amps[:, 0] + c * amps[:, 1]], axis=1)
        expected = np.abs(out.reshape(-1)) ** 2
        expected /= expected.sum()

        # deferred measurements here (tree-traversal in PennyLane 0.45 mishandles StatePrep
        # beside many mid-circuit measurements): a second MCM method checked against numpy
        @qml.qnode(DQ, mcm_method="deferred")
        def circuit():
            qml.StatePrep(state, wires=range(n + 1))
            _neuron(weights, n, degree, order)
            return qml.probs(wires=range(n + 1))

        assert np.allclose(circuit(), expected, atol=1e-10)

    @pytest.mark.parametrize("n, degree, order", [(2, 2, 1), (3, 2, 2), (4, 3, 3)])
    def test_amplified_is_branch_rotation(self, rng, n, degree, order):
        weights = rng.uniform(-np.pi, np.pi, size=QuantumNeuron.shape(n, degree))
        state = rng.normal(size=2 ** (n + 1)) + 1j * rng.normal(size=2 ** (n + 1))
        state /= np.linalg.norm(state)
        eta, _, _ = self._tables(weights, n, degree, order)
        f = np.arctan(np.tan(eta) ** (2**order))
        amps = state.reshape(2**n, 2)
        out = np.stack(
            [
                np.cos(f) * amps[:, 0] - np.sin(f) * amps[:, 1],
                np.sin(f) * amps[:, 0] + np.cos(f) * amps[:, 1],
            ],
            axis=1,
        )

        @qml.qnode(DQ)
        def circuit():
            qml.StatePrep(state, wires=range(n + 1))
            _neuron(weights, n, degree, order, mode="amplified")
            return qml.state()

        assert np.allclose(circuit(), out.reshape(-1), atol=1e-10)


class TestDevices:
    """The same neuron on every installed device."""

    N, DEGREE, ORDER = 3, 2, 2

    def _circuit(self, weights, mode):
        def circuit():
            for w in range(self.N):
                qml.Hadamard(w)
            qml.RY(0.7, wires=self.N)
            _neuron(weights, self.N, self.DEGREE, self.ORDER, mode)
            return qml.probs(wires=range(self.N + 1))

        return circuit

    def _reference(self, weights, mode):
        return qml.QNode(self._circuit(weights, mode), DQ, mcm_method="tree-traversal")()

    def _run(self, name, weights, mode, shots=None, **device_kwargs):
        dev = qml.device(name, wires=self.N + 1 + self.ORDER, **device_kwargs)
        options = qnode_options(dev, mode, teacher_forcing=False, shots=shots)
        return qml.QNode(self._circuit(weights, mode), dev, shots=shots, **options)()

    @pytest.mark.parametrize("mode", ["postselect", "amplified"])
    def test_lightning_exact(self, rng, mode):
        weights = rng.uniform(-1, 1, size=QuantumNeuron.shape(self.N, self.DEGREE))
        assert np.allclose(
            self._run("lightning.qubit", weights, mode), self._reference(weights, mode), atol=1e-10
        )

    def test_lightning_shots_within_noise(self, rng):
        weights = rng.uniform(-1, 1, size=QuantumNeuron.shape(self.N, self.DEGREE))
        shots = 20000
        expected = self._reference(weights, "postselect")
        measured = self._run("lightning.qubit", weights, "postselect", shots=shots, seed=7)
        # hw-like postselection keeps about shots * P(success) samples; 5 sigma of that count
        kept = shots * 0.3
        assert np.all(
            np.abs(measured - expected) <= 5 * np.sqrt(expected * (1 - expected) / kept) + 1e-3
        )

    @requires_qiskit
    def test_qiskit_aer_amplified_within_noise(self, rng):
        weights = rng.uniform(-1, 1, size=QuantumNeuron.shape(self.N, self.DEGREE))
        shots = 20000
        expected = self._reference(weights, "amplified")
        measured = self._run("qiskit.aer", weights, "amplified", shots=shots, seed_simulator=11)
        assert np.all(
            np.abs(measured - expected) <= 5 * np.sqrt(expected * (1 - expected) / shots) + 1e-3
        )

    @requires_braket
    def test_braket_local_amplified_exact(self, rng):
        weights = rng.uniform(-1, 1, size=QuantumNeuron.shape(self.N, self.DEGREE))
        measured = self._run("braket.local.qubit", weights, "amplified")
        assert np.allclose(measured, self._reference(weights, "amplified"), atol=1e-10)

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("qiskit.aer", marks=requires_qiskit),
            pytest.param("braket.local.qubit", marks=requires_braket),
        ],
    )
    def test_postselect_unsupported_names_amplified(self, name):
        dev = qml.device(name, wires=6)
        with pytest.raises(DeviceCapabilityError, match=r"cannot postselect.*use mode='amplified'"):
            qnode_options(dev, "postselect", teacher_forcing=False)


class TestInputs:
    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (
                dict(weights=np.zeros(3)),
                ValueError,
                r"weights must have shape \(4,\) \(or \(batch, 4\)\) for 2 controls at degree 2; "
                r"got \(3,\)",
            ),
            (
                dict(weights=np.zeros((2, 2, 4))),
                ValueError,
                r"weights must have shape \(4,\).*got \(2, 2, 4\)",
            ),
            (
                dict(target_wire=[2, 3]),
                ValueError,
                r"target_wire must be a single wire; got \[2, 3\]",
            ),
            (
                dict(ancilla_wires=[3]),
                ValueError,
                "ancilla_wires must hold order=2 wires for mode='postselect'; got 1",
            ),
            (
                dict(mode="amplified"),
                ValueError,
                r"ancilla_wires must be empty for mode='amplified'; got \[3, 4\]",
            ),
            (
                dict(ancilla_wires=[1, 4]),
                ValueError,
                "control_wires, target_wire and ancilla_wires must be distinct",
            ),
            (
                dict(mode="fast"),
                ValueError,
                r"mode must be one of \('postselect', 'amplified'\); got 'fast'",
            ),
            (dict(degree=0), ValueError, "degree must be an int >= 1; got 0"),
            (dict(order=2.0), TypeError, r"order must be an int >= 1; got .* \(float\)"),
        ],
    )
    def test_errors(self, kwargs, error, match):
        args = dict(
            weights=np.zeros(4),
            control_wires=[0, 1],
            target_wire=2,
            ancilla_wires=[3, 4],
            degree=2,
            order=2,
        )
        args.update(kwargs)
        with pytest.raises(error, match=match):
            QuantumNeuron(**args)


class TestAttributes:
    def test_shape(self):
        assert QuantumNeuron.shape(9, 2) == (46,)
        assert QuantumNeuron.shape(7, 3) == (64,)

    def test_resources_match_decomposition(self, rng):
        op = _neuron(rng.normal(size=QuantumNeuron.shape(4, 2)), 4, 2, 2)
        from collections import Counter

        counts = Counter(
            "MidMeasure" if isinstance(o, qml.ops.MidMeasure) else o.name
            for o in op.decomposition()
        )
        res = neuron_resources(4, 2, 2)
        assert counts["CNOT"] == res["cnot"]
        assert counts["RY"] == res["ry"]
        assert counts["PhaseShift"] == res["phase_shift"]
        assert counts["MidMeasure"] == res["mid_circuit_measurements"] == 3
        # qml.specs reads the same count through resources() (a qml.resource.Resources)
        gates = op.resources().gate_types
        assert gates == {
            "RY": res["ry"],
            "CNOT": res["cnot"],
            "PhaseShift": res["phase_shift"],
            "MidMeasureMP": res["mid_circuit_measurements"],
        }

    def test_postselect_queues_its_decomposition(self, rng):
        with qml.queuing.AnnotatedQueue() as q:
            _neuron(rng.normal(size=4), 2, 2, 1)
        assert any(isinstance(o, qml.ops.MidMeasure) for o in q.queue)
        with qml.queuing.AnnotatedQueue() as q:
            _neuron(rng.normal(size=4), 2, 2, 1, mode="amplified")
        assert [type(o) for o in q.queue] == [QuantumNeuron]


class TestInterfaces:
    """Template vs a hand-written circuit from PennyLane's own gates: values and torch gradients."""

    def test_postselect_order1_against_hand_written(self):
        weights = torch.tensor([0.4, 0.3, -0.6], dtype=torch.float64, requires_grad=True)

        def hand_written(w):
            qml.Hadamard(0)
            qml.Hadamard(1)
            for sign in (1, -1):
                if sign == -1:
                    qml.CRY(np.pi, wires=[3, 2])
                qml.RY(sign * 2 * w[0], wires=3)
                qml.CRY(sign * 2 * w[1], wires=[0, 3])
                qml.CRY(sign * 2 * w[2], wires=[1, 3])
            qml.measure(3, reset=True, postselect=0)
            return qml.probs(wires=[0, 1, 2])

        def template(w):
            qml.Hadamard(0)
            qml.Hadamard(1)
            QuantumNeuron(w, [0, 1], 2, ancilla_wires=[3], degree=1, order=1)
            return qml.probs(wires=[0, 1, 2])

        results = []
        for func in (hand_written, template):
            w = weights.detach().clone().requires_grad_(True)
            probs = qml.QNode(func, DQ, interface="torch", mcm_method="tree-traversal")(w)
            (probs * torch.arange(8)).sum().backward()
            results.append((probs.detach(), w.grad))
        assert torch.allclose(results[0][0], results[1][0], atol=1e-12)
        assert torch.allclose(results[0][1], results[1][1], atol=1e-10)

    @pytest.mark.parametrize("diff_method", ["backprop", "parameter-shift"])
    def test_amplified_against_hand_written(self, diff_method):
        weights = torch.tensor([0.4, 0.9, -0.3, 0.2], dtype=torch.float64)
        order = 2

        def hand_written(w):
            qml.Hadamard(0)
            qml.Hadamard(1)
            eta = torch.stack([w[0], w[0] + w[2], w[0] + w[1], w[0] + w[1] + w[2] + w[3]])
            f = torch.atan2(torch.sin(eta) ** 4, torch.cos(eta) ** 4)
            for x in range(4):
                qml.ctrl(qml.RY(2 * f[x], wires=2), control=[0, 1], control_values=[x >> 1, x & 1])
            return qml.expval(qml.Z(2) @ qml.Z(0))

        def template(w):
            qml.Hadamard(0)
            qml.Hadamard(1)
            QuantumNeuron(w, [0, 1], 2, degree=2, order=order, mode="amplified")
            return qml.expval(qml.Z(2) @ qml.Z(0))

        results = []
        for func in (hand_written, template):
            w = weights.clone().requires_grad_(True)
            value = qml.QNode(func, DQ, interface="torch", diff_method=diff_method)(w)
            value.backward()
            results.append((value.detach(), w.grad))
        assert torch.allclose(results[0][0], results[1][0], atol=1e-12)
        assert torch.allclose(results[0][1], results[1][1], atol=1e-8)

    def test_broadcast_weights(self, rng):
        weights = rng.normal(size=(3, 4))

        @qml.qnode(DQ, mcm_method="tree-traversal")
        def circuit(w):
            qml.Hadamard(0)
            qml.Hadamard(1)
            _neuron(w, 2, 2, 1, mode="amplified")
            return qml.probs(wires=[0, 1, 2])

        batched = circuit(weights)
        for i in range(3):
            assert np.allclose(batched[i], circuit(weights[i]))


class TestPostselectGradientsInUserQNodes:
    """Issue 8 item 12: a postselected neuron in a user's QNode gave three different gradients
    (backprop right; parameter-shift and finite-diff wrong, finite-diff by exactly 2**order) with
    no warning. Backprop stays; every gradient transform is now refused with what works."""

    WEIGHTS = (0.3, 0.5, -0.2)

    def _circuit(self, device, diff_method, order):
        @qml.qnode(device, interface="torch", diff_method=diff_method, mcm_method="tree-traversal")
        def circuit(w):
            qml.RY(0.7, wires=0)
            qml.RY(1.1, wires=1)
            QuantumNeuron(
                w,
                control_wires=[0, 1],
                target_wire=2,
                ancilla_wires=list(range(3, 3 + order)),
                degree=1,
                order=order,
            )
            return qml.probs(wires=2)

        return circuit

    @staticmethod
    def _closed_form(w, order):
        """P(target = 1) on the product state RY(0.7) x RY(1.1): the renormalised mixture of the
        four control branches, each rotated by [[C, -S], [S, C]] (C = cos**(2**k) eta, ...)."""
        p0, p1 = np.sin(0.35) ** 2, np.sin(0.55) ** 2
        num = den = 0
        for x0, q0 in ((0, 1 - p0), (1, p0)):
            for x1, q1 in ((0, 1 - p1), (1, p1)):
                eta = w[0] + w[1] * x0 + w[2] * x1
                c, s = torch.cos(eta) ** (2**order), torch.sin(eta) ** (2**order)
                num, den = num + q0 * q1 * s**2, den + q0 * q1 * (c**2 + s**2)
        return num / den

    @pytest.mark.parametrize("order", [1, 2])
    def test_backprop_is_right(self, order):
        w = torch.tensor(self.WEIGHTS, dtype=torch.float64, requires_grad=True)
        got = torch.autograd.grad(self._circuit(DQ, "backprop", order)(w)[1], w)[0]
        want = torch.autograd.grad(self._closed_form(w, order), w)[0]
        assert torch.allclose(got, want, atol=1e-12)

    @pytest.mark.parametrize(
        "device, method",
        [
            (device, method)
            for device in ("default.qubit", "lightning.qubit")
            for method in ("parameter-shift", "finite-diff", "spsa", "best")
            if (device, method) != ("default.qubit", "best")
        ],  # best is backprop there (tested above)
    )
    def test_gradient_transforms_refused(self, device, method):
        w = torch.tensor(self.WEIGHTS, dtype=torch.float64, requires_grad=True)
        probs = self._circuit(qml.device(device), method, 2)(w)
        with torch.no_grad():
            assert float(probs[1]) == pytest.approx(
                float(self._closed_form(w, 2)), abs=1e-12
            )  # forward fine
        with pytest.raises(
            ValueError, match="diff_method must be 'backprop' .* to differentiate a QuantumNeuron"
        ):
            torch.autograd.grad(probs[1], w)

    def test_amplified_parameter_shift_still_works(self):
        w = torch.tensor(self.WEIGHTS, dtype=torch.float64, requires_grad=True)

        def grad(method):
            @qml.qnode(DQ, interface="torch", diff_method=method)
            def circuit(w):
                qml.RY(0.7, wires=0)
                qml.RY(1.1, wires=1)
                QuantumNeuron(
                    w, control_wires=[0, 1], target_wire=2, degree=1, order=2, mode="amplified"
                )
                return qml.probs(wires=2)

            return torch.autograd.grad(circuit(w)[1], w)[0]

        assert torch.allclose(grad("parameter-shift"), grad("backprop"), atol=1e-10)

    def test_rotations_stay_plain_ry_for_devices(self, rng):
        ops = _neuron(rng.normal(size=3), 2, 1, 2).decomposition()
        rotations = [op for op in ops if isinstance(op, qml.RY)]
        assert rotations and all(op.name == "RY" for op in rotations)


class TestQNodeMeasurementMethod:
    """Issue 8 item 11: PennyLane's default mcm method defers measurements onto fresh wires."""

    W = np.array([0.3, 0.5, -0.2, 0.4])

    def _run(self, device, weights=W, **kwargs):
        @qml.qnode(device, **kwargs)
        def circuit():
            QuantumNeuron(
                weights,
                control_wires=[0, 1],
                target_wire=2,
                ancilla_wires=[3, 4],
                degree=2,
                order=2,
            )
            return qml.probs(wires=2)

        return circuit()

    def test_fixed_wires_default_method_refused_with_what_works(self):
        """A batched neuron under the deferred method is queued expanded (default.qubit cannot
        postselect a batched state; ``defer_measurements`` splits the batch), so its 3
        measurements each need a fresh wire. Unbatched it needs none (test_what_works)."""
        with pytest.raises(
            DeviceCapabilityError,
            match=r"device wires must number at least 8 .* got 5 .*"
            r"mcm_method='tree-traversal'.*a device without fixed wires",
        ):
            self._run(qml.device("default.qubit", wires=5), np.stack([self.W, -self.W]))

    def test_lightning_default_method_refused(self):
        with pytest.raises(
            DeviceCapabilityError,
            match="mcm_method must be 'tree-traversal' .* on lightning.qubit; got None",
        ):
            self._run(qml.device("lightning.qubit", wires=5))

    @pytest.mark.parametrize(
        "device, kwargs",
        [
            (qml.device("default.qubit", wires=5), {"mcm_method": "tree-traversal"}),
            (qml.device("lightning.qubit", wires=5), {"mcm_method": "tree-traversal"}),
            (qml.device("default.qubit", wires=8), {}),
            (qml.device("default.qubit", wires=5), {}),  # one box; projectors, no fresh wires
            (qml.device("default.qubit"), {}),
        ],
    )
    def test_what_works(self, device, kwargs):
        reference = self._run(DQ, mcm_method="tree-traversal")
        assert np.allclose(self._run(device, **kwargs), reference, atol=1e-12)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_refused(bad):
    """A NaN or infinite angle is refused when the template is built, for numpy and torch."""
    from pennylane_qrnn.errors import NonFiniteError

    for weights in (np.array([0.3, bad, 0.1]), torch.tensor([0.3, bad, 0.1], requires_grad=True)):
        with pytest.raises(NonFiniteError, match=r"weights must be finite; got 1 NaN or infinite"):
            QuantumNeuron(
                weights, control_wires=[0, 1], target_wire=2, ancilla_wires=[3], degree=1, order=1
            )


def test_non_finite_cell_weights_refused():
    from pennylane_qrnn import QRNNCell
    from pennylane_qrnn.errors import NonFiniteError

    shapes = QRNNCell.shape(1, 2, 1, 1)
    weights = {name: np.full(shape, 0.2) for name, shape in shapes.items()}
    weights["output_weights"][0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="output_weights must be finite"):
        QRNNCell(
            *weights.values(),
            token=0,
            io_wires=[0],
            workspace_wires=[1, 2],
            degree=1,
            order=1,
            mode="amplified",
        )
