"""QRNNCell template: validity, the paper's parameter counts, agreement with the exact engine and
across devices, inputs and gradients."""

import numpy as np
import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNNCell, QuantumNeuron, postselect_token, write_token
from pennylane_qrnn.devices import DeviceCapabilityError, qnode_options
from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence
from pennylane_qrnn.templates import measure_token, neuron_controls, token_bits

from ..conftest import requires_braket, requires_qiskit

DQ = qml.device("default.qubit")


def _weights(rng, io, ws, stages, degree, batch=None, scale=1.0):
    shapes = QRNNCell.shape(io, ws, stages, degree)
    prefix = () if batch is None else (batch,)
    return {k: rng.uniform(-scale, scale, size=prefix + s) for k, s in shapes.items()}


def _cell(weights, token, io, ws, degree, order, mode="postselect", **kwargs):
    io_wires = list(range(io))
    ws_wires = list(range(io, io + ws))
    anc = list(range(io + ws, io + ws + order)) if mode == "postselect" else None
    return QRNNCell(
        **weights,
        token=token,
        io_wires=io_wires,
        workspace_wires=ws_wires,
        ancilla_wires=anc,
        degree=degree,
        order=order,
        mode=mode,
        **kwargs,
    )


@pytest.mark.parametrize(
    "io, ws, stages, degree, expected",
    [
        (3, 5, 2, 3, 1162),
        (3, 5, 1, 3, 837),
        (2, 8, 2, 2, 1212),
        (2, 6, 2, 3, 1292),
        (3, 7, 2, 3, 3134),
    ],
)
def test_parameter_count_matches_paper(io, ws, stages, degree, expected):
    assert QRNNCell.num_weights(io, ws, stages, degree) == expected


def test_shape():
    assert QRNNCell.shape(2, 8, 2, 2) == {
        "input_weights": (8, 46),
        "rotation_weights": (2, 8),
        "stage_weights": (2, 8, 46),
        "output_weights": (2, 46),
    }


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
@pytest.mark.parametrize("batch", [None, 2])
@pytest.mark.parametrize("write", [True, False])
def test_standard_validity(rng, mode, batch, write):
    op = _cell(_weights(rng, 1, 2, 1, 2, batch=batch), 1, 1, 2, 2, 1, mode, write=write)
    qml.ops.functions.assert_valid(op, skip_differentiation=True)


def test_neuron_controls_order():
    assert neuron_controls("w1", ["a", "b"], ["w0", "w1", "w2"]) == ["w0", "w2", "a", "b"]
    assert neuron_controls("b", ["a", "b"], ["w0", "w1"]) == ["w0", "w1", "a"]


def test_decomposition_structure(rng):
    op = _cell(_weights(rng, 2, 2, 1, 2), 2, 2, 2, 2, 1, mode="amplified")
    kinds = [type(o).__name__ for o in op.decomposition()]
    # write X on lane 0 (token 2 = 0b10), input stage (2 neurons), rotations (2), work neurons (2),
    # reset X on lane 0, output (2)
    assert (
        kinds
        == ["PauliX"]
        + ["QuantumNeuron"] * 2
        + ["RY"] * 2
        + ["QuantumNeuron"] * 2
        + ["PauliX"]
        + ["QuantumNeuron"] * 2
    )
    targets = [
        o.hyperparameters["target_wire"][0]
        for o in op.decomposition()
        if isinstance(o, QuantumNeuron)
    ]
    assert targets == [2, 3, 2, 3, 0, 1]


class TestAgainstEngine:
    """The template's circuits and the exact engine are independent constructions of the model."""

    @pytest.mark.parametrize(
        "io, ws, stages, degree, order, mode",
        [
            (1, 2, 1, 2, 1, "postselect"),
            (2, 2, 1, 2, 2, "postselect"),
            (2, 3, 2, 2, 1, "amplified"),
            (1, 3, 0, 3, 2, "postselect"),
            (2, 2, 1, 3, 3, "amplified"),
        ],
    )
    def test_sequence_probabilities(self, rng, io, ws, stages, degree, order, mode):
        weights = _weights(rng, io, ws, stages, degree, scale=1.2)
        layout = CellLayout(io, ws, stages, degree, order, mode)
        torch_weights = [
            torch.tensor(weights[k])
            for k in ("input_weights", "rotation_weights", "stage_weights", "output_weights")
        ]
        length = 3
        tokens = torch.tensor(rng.integers(0, 2**io, size=(length, 1)))
        targets = torch.tensor(rng.integers(0, 2**io, size=(length, 1)))
        result = run_sequence(build_operators(layout, *torch_weights), tokens, targets)
        io_wires = list(range(io))
        for step in range(length):

            @qml.qnode(DQ, mcm_method="tree-traversal")
            def circuit():
                # called in this iteration, so no late binding
                for s in range(step + 1):  # noqa: B023
                    token = int(tokens[s, 0])
                    _cell(weights, token, io, ws, degree, order, mode)
                    if s < step:  # noqa: B023
                        postselect_token(int(targets[s, 0]), io_wires)
                return qml.probs(wires=io_wires)

            assert np.allclose(circuit(), result.log_probs[step, 0].exp().numpy(), atol=1e-10)


class TestDevices:
    IO, WS, STAGES, DEGREE, ORDER = 1, 2, 1, 2, 1

    def _circuit(self, weights, mode, token=1):
        def circuit():
            _cell(weights, token, self.IO, self.WS, self.DEGREE, self.ORDER, mode)
            return qml.probs(wires=range(self.IO + self.WS))

        return circuit

    def _run(self, name, weights, mode, shots=None, **kwargs):
        dev = qml.device(name, wires=self.IO + self.WS + self.ORDER, **kwargs)
        options = qnode_options(dev, mode, teacher_forcing=False, shots=shots)
        return qml.QNode(self._circuit(weights, mode), dev, shots=shots, **options)()

    def _reference(self, weights, mode):
        return qml.QNode(self._circuit(weights, mode), DQ, mcm_method="tree-traversal")()

    @pytest.mark.parametrize("mode", ["postselect", "amplified"])
    def test_lightning_exact(self, rng, mode):
        weights = _weights(rng, self.IO, self.WS, self.STAGES, self.DEGREE)
        assert np.allclose(
            self._run("lightning.qubit", weights, mode), self._reference(weights, mode), atol=1e-10
        )

    @requires_qiskit
    def test_qiskit_aer_amplified_within_noise(self, rng):
        weights = _weights(rng, self.IO, self.WS, self.STAGES, self.DEGREE)
        shots = 20000
        expected = self._reference(weights, "amplified")
        measured = self._run("qiskit.aer", weights, "amplified", shots=shots, seed_simulator=3)
        # 5 standard deviations of a multinomial frequency
        assert np.all(
            np.abs(measured - expected) <= 5 * np.sqrt(expected * (1 - expected) / shots) + 1e-3
        )

    @requires_braket
    def test_braket_local_amplified_exact(self, rng):
        weights = _weights(rng, self.IO, self.WS, self.STAGES, self.DEGREE)
        assert np.allclose(
            self._run("braket.local.qubit", weights, "amplified"),
            self._reference(weights, "amplified"),
            atol=1e-10,
        )

    @requires_braket
    def test_braket_teacher_forcing_unsupported(self):
        dev = qml.device("braket.local.qubit", wires=4)
        with pytest.raises(DeviceCapabilityError, match="teacher forcing across steps"):
            qnode_options(dev, "amplified", teacher_forcing=True)


class TestTokens:
    def test_bits_big_endian(self):
        assert token_bits(6, 3) == [1, 1, 0]
        assert token_bits(1, 2) == [0, 1]

    def test_write_and_measure(self):
        @qml.qnode(DQ, mcm_method="deferred")
        def circuit():
            write_token(5, [0, 1, 2])
            values = measure_token([0, 1, 2])
            return qml.probs(op=values), qml.probs(wires=[0, 1, 2])

        measured, after = circuit()
        assert measured[5] == pytest.approx(1.0)
        assert after[0] == pytest.approx(1.0)  # reset

    def test_postselect_renormalises(self):
        @qml.qnode(DQ, mcm_method="tree-traversal")
        def circuit():
            qml.RY(1.0, wires=0)
            qml.CNOT(wires=[0, 1])
            postselect_token(1, [0])
            return qml.probs(wires=[0, 1])

        assert np.allclose(circuit(), [0, 1, 0, 0])

    @pytest.mark.parametrize(
        "token, error, match",
        [
            (4, ValueError, r"token must be in \[0, 3\] for 2 i/o lanes; got 4"),
            (-1, ValueError, r"token must be in \[0, 3\]"),
            (1.0, TypeError, "token must be an int; got float"),
        ],
    )
    def test_errors(self, token, error, match):
        with pytest.raises(error, match=match):
            token_bits(token, 2)


class TestInputs:
    @pytest.mark.parametrize(
        "change, error, match",
        [
            (
                dict(input_weights=np.zeros((2, 3))),
                ValueError,
                r"input_weights must have shape \(2, 4\) \(or \(batch, \*\(2, 4\)\)\) for I=1, "
                r"H=2, stages=1, degree=2; got \(2, 3\)",
            ),
            (
                dict(rotation_weights=np.zeros(2)),
                ValueError,
                r"rotation_weights must have shape \(stages, H\)",
            ),
            (
                dict(output_weights=np.zeros((2, 4))),
                ValueError,
                r"output_weights must have shape \(1, 4\)",
            ),
            (
                dict(stage_weights=np.zeros((3, 1, 2, 4))),
                ValueError,
                "all weights must share one broadcast dimension; got None for input_weights and 3 "
                "for stage_weights",
            ),
            (dict(io_wires=[]), ValueError, r"io_wires must hold at least one wire; got \[\]"),
            (
                dict(workspace_wires=[]),
                ValueError,
                r"workspace_wires must hold at least one wire; got \[\]",
            ),
            (
                dict(ancilla_wires=[3, 4]),
                ValueError,
                "ancilla_wires must hold order=1 wires for mode='postselect'; got 2",
            ),
            (
                dict(ancilla_wires=[2]),
                ValueError,
                "io_wires, workspace_wires and ancilla_wires must be distinct",
            ),
            (
                dict(mode="amplified"),
                ValueError,
                r"ancilla_wires must be empty for mode='amplified'; got \[3\]",
            ),
            (dict(token=2), ValueError, r"token must be in \[0, 1\] for 1 i/o lanes; got 2"),
        ],
    )
    def test_errors(self, rng, change, error, match):
        args = dict(
            **_weights(rng, 1, 2, 1, 2),
            token=1,
            io_wires=[0],
            workspace_wires=[1, 2],
            ancilla_wires=[3],
            degree=2,
            order=1,
        )
        args.update(change)
        with pytest.raises(error, match=match):
            QRNNCell(**args)


class TestInterfaces:
    def test_gradients_against_hand_written(self, rng):
        """The cell vs the same steps written out with QuantumNeuron and RY by hand."""
        io, ws, degree, order = 1, 2, 2, 1
        weights = {
            k: torch.tensor(v, requires_grad=True)
            for k, v in _weights(rng, io, ws, 1, degree).items()
        }

        def hand_written(w):
            qml.X(0)
            settings = dict(degree=degree, order=order, ancilla_wires=[3])
            QuantumNeuron(w["input_weights"][0], [2, 0], 1, **settings)
            QuantumNeuron(w["input_weights"][1], [1, 0], 2, **settings)
            qml.RY(2 * w["rotation_weights"][0, 0], wires=1)
            qml.RY(2 * w["rotation_weights"][0, 1], wires=2)
            QuantumNeuron(w["stage_weights"][0, 0], [2, 0], 1, **settings)
            QuantumNeuron(w["stage_weights"][0, 1], [1, 0], 2, **settings)
            qml.X(0)
            QuantumNeuron(w["output_weights"][0], [1, 2], 0, **settings)
            return qml.probs(wires=[0, 1, 2])

        def template(w):
            QRNNCell(
                **w,
                token=1,
                io_wires=[0],
                workspace_wires=[1, 2],
                ancilla_wires=[3],
                degree=degree,
                order=order,
            )
            return qml.probs(wires=[0, 1, 2])

        results = []
        for func in (hand_written, template):
            for v in weights.values():
                v.grad = None
            probs = qml.QNode(func, DQ, interface="torch", mcm_method="tree-traversal")(weights)
            (probs * torch.arange(8)).sum().backward()
            results.append((probs.detach(), [v.grad.clone() for v in weights.values()]))
        assert torch.allclose(results[0][0], results[1][0], atol=1e-12)
        for a, b in zip(results[0][1], results[1][1], strict=True):
            assert torch.allclose(a, b, atol=1e-10)

    def test_broadcast(self, rng):
        weights = _weights(rng, 1, 2, 1, 2, batch=3)

        @qml.qnode(DQ)
        def circuit(w):
            _cell(w, 1, 1, 2, 2, 1, mode="amplified")
            return qml.probs(wires=[0, 1, 2])

        batched = circuit(weights)
        for i in range(3):
            assert np.allclose(batched[i], circuit({k: v[i] for k, v in weights.items()}))


class TestDuplicateWires:
    """Issue 8 item 11: ``write_token(3, wires=[0, 0])`` queued two cancelling X gates."""

    @pytest.mark.parametrize(
        "function, args",
        [
            ("write_token", (3,)),
            ("postselect_token", (1,)),
            ("measure_token", ()),
        ],
    )
    def test_refused(self, function, args):
        import pennylane_qrnn.templates as templates

        with qml.queuing.AnnotatedQueue() as queue:
            with pytest.raises(ValueError, match=r"io_wires must be distinct; got \[0, 0\]"):
                getattr(templates, function)(*args, [0, 0])
        assert len(queue.queue) == 0

    def test_distinct_still_work(self):
        from pennylane_qrnn.templates import write_token

        assert [op.wires.tolist() for op in write_token(3, [0, 1])] == [[0], [1]]


class TestCellGradientsRefused:
    def test_postselect_cell_parameter_shift_refused(self, rng):
        weights = {
            k: torch.tensor(v, requires_grad=True) for k, v in _weights(rng, 1, 1, 1, 1).items()
        }

        @qml.qnode(
            qml.device("default.qubit"),
            interface="torch",
            diff_method="parameter-shift",
            mcm_method="tree-traversal",
        )
        def circuit():
            QRNNCell(
                **weights,
                token=0,
                io_wires=[0],
                workspace_wires=[1],
                ancilla_wires=[2],
                degree=1,
                order=1,
            )
            return qml.probs(wires=0)

        with pytest.raises(ValueError, match="diff_method must be 'backprop'"):
            torch.autograd.grad(circuit()[1], list(weights.values()))


class TestTokenWrittenOnce:
    """Issue 9 item 6: the cell writes its token itself; the old two-call pattern
    (``write_token(t, io); QRNNCell(token=t)``) would write it twice (``X X`` cancels), so it is
    refused where the queue shows it, and ``write=False`` resets only the token that was written."""

    IO, WS = 2, 2

    def _probs(self, body, mode="amplified"):
        wires = list(range(self.IO + self.WS))
        return qml.QNode(
            lambda: (body(), qml.probs(wires=wires))[1], DQ, mcm_method="tree-traversal"
        )()

    def _weights(self, rng):
        return _weights(rng, self.IO, self.WS, 1, 2, scale=1.2)

    @pytest.mark.parametrize("mode", ["postselect", "amplified"])
    def test_cell_writes_the_token(self, rng, mode):
        """Passing the token once gives what writing it by hand and resetting it by hand gives."""
        weights = self._weights(rng)
        order = 1
        cell = _cell(weights, 2, self.IO, self.WS, 2, order, mode)
        by_hand = cell.decomposition()[1:]  # everything after the write of token 2 = 0b10
        assert isinstance(cell.decomposition()[0], qml.PauliX) and cell.decomposition()[
            0
        ].wires.tolist() == [0]
        once = self._probs(lambda: _cell(weights, 2, self.IO, self.WS, 2, order, mode))

        def hand_written():
            qml.X(0)
            for op in by_hand:
                qml.apply(op)

        assert np.allclose(once, self._probs(hand_written), atol=1e-12)
        # the token matters: lane 0 written, not lane 1
        assert not np.allclose(
            once, self._probs(lambda: _cell(weights, 1, self.IO, self.WS, 2, order, mode))
        )

    @pytest.mark.parametrize("mode", ["postselect", "amplified"])
    @pytest.mark.parametrize("recorder", ["qnode", "tape"])
    def test_old_two_call_pattern_refused(self, rng, mode, recorder):
        weights = self._weights(rng)

        def old():
            write_token(3, [0, 1])
            _cell(weights, 3, self.IO, self.WS, 2, 1, mode)

        with pytest.raises(
            ValueError,
            match=r"io_wires must be in \|0> when a QRNNCell writes its token \(write=True\); got "
            r"X gates on \[0, 1\] just before it.*Drop the write_token call, or pass write=False",
        ):
            if recorder == "qnode":
                self._probs(old)
            else:
                with qml.queuing.AnnotatedQueue():
                    old()

    def test_mismatched_write_refused(self, rng):
        """``write_token(1)`` then a cell on token 2: lane 1 still holds an X."""
        weights = self._weights(rng)
        with pytest.raises(ValueError, match=r"got X gates on \[1\]"):
            with qml.queuing.AnnotatedQueue():
                write_token(1, [0, 1])
                qml.RY(0.3, wires=2)  # an unrelated gate in between does not hide it
                _cell(weights, 2, self.IO, self.WS, 2, 1, "amplified")

    def test_after_a_measured_step_accepted(self, rng):
        weights = self._weights(rng)
        with qml.queuing.AnnotatedQueue() as queue:
            _cell(weights, 3, self.IO, self.WS, 2, 1, "amplified")
            postselect_token(1, [0, 1])
            _cell(weights, 2, self.IO, self.WS, 2, 1, "amplified")
        assert sum(isinstance(o, QRNNCell) for o in queue.queue) == 2

    @pytest.mark.parametrize("mode", ["postselect", "amplified"])
    def test_write_false_with_the_old_pattern(self, rng, mode):
        weights = self._weights(rng)

        def old():
            write_token(3, [0, 1])
            _cell(weights, 3, self.IO, self.WS, 2, 1, mode, write=False)

        new = self._probs(lambda: _cell(weights, 3, self.IO, self.WS, 2, 1, mode))
        assert np.allclose(self._probs(old), new, atol=1e-12)
        op = _cell(weights, 3, self.IO, self.WS, 2, 1, mode, write=False)
        assert sum(isinstance(o, qml.PauliX) for o in op.decomposition()) == 2  # the reset only

    @pytest.mark.parametrize(
        "written, token, lanes",
        [(1, 2, r"\[0, 1\]"), (3, 1, r"\[0\]"), (None, 2, r"\[0\]")],
    )
    def test_write_false_with_another_token_refused(self, rng, written, token, lanes):
        weights = self._weights(rng)
        with pytest.raises(
            ValueError,
            match=r"token must be the one written on the i/o lanes for a QRNNCell with "
            rf"write=False; got token={token} .* lanes {lanes} hold the other bit",
        ):
            with qml.queuing.AnnotatedQueue():
                if written is not None:
                    write_token(written, [0, 1])
                _cell(weights, token, self.IO, self.WS, 2, 1, "amplified", write=False)

    def test_write_false_token_zero_unwritten_accepted(self, rng):
        weights = self._weights(rng)
        with qml.queuing.AnnotatedQueue() as queue:
            _cell(weights, 0, self.IO, self.WS, 2, 1, "amplified", write=False)
        assert len(queue.queue) == 1

    def test_write_must_be_bool(self, rng):
        with pytest.raises(TypeError, match="write must be a bool; got int"):
            _cell(self._weights(rng), 0, self.IO, self.WS, 2, 1, "amplified", write=1)
