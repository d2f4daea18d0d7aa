"""Hardware-style gradients through the torch layers: parameter-shift (analytic and from shots)
on the circuit path against the exact engine, and PennyLane issue 6078 (TorchLayer with
``diff_method="parameter-shift"``) reproduced with :class:`~pennylane_qrnn.QuantumNeuron`.

Parameter shift differentiates a circuit by re-running it at shifted angles, which is only valid
for outputs linear in the state. Two things break that linearity:

* broadcasting: PennyLane cannot shift a parameter that is itself broadcast (#4462), which is
  what 6078 hits when ``TorchLayer`` broadcasts a batch of trainable inputs; the circuit path
  never broadcasts, it runs one QNode per sequence and step;
* postselection: a postselected output is renormalised, a ratio of two linear functions. With a
  shift-rule gradient the circuit path therefore measures the i/o lanes instead of postselecting
  them and reads joint outcome probabilities (linear in the state); the ratio is taken in torch.
"""

import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN, QuantumNeuron
from pennylane_qrnn.templates import QRNNCell, measure_token

CONFIG = dict(io_bits=1, workspace=2, stages=1, degree=2, order=2, mode="amplified")


def _randomise(model, seed=5, scale=0.8):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=generator, dtype=p.dtype) * 2 - 1) * scale)
    return model


def _gradient(model, tokens, targets):
    """The loss's gradient w.r.t. all parameters, flattened in ``parameters()`` order."""
    model.zero_grad()
    log_probs, _ = model(tokens, targets)
    model.loss(log_probs, targets).backward()
    return torch.cat(
        [(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in model.parameters()]
    )


def _pair(**circuit_kwargs):
    exact = _randomise(QRNN(**CONFIG, dtype=torch.float64))
    circuit = QRNN(**CONFIG, dtype=torch.float64, **circuit_kwargs)
    circuit.load_state_dict(exact.state_dict())
    return exact, circuit


# One step per sequence (batch of 2): no postselection, the setting where shift rules are exact.
SINGLE_STEP = (torch.tensor([[0, 1]]), torch.tensor([[1, 0]]))


class TestParameterShiftOnTheCircuitPath:
    @pytest.mark.parametrize("backend", ["default.qubit", "lightning.qubit"])
    def test_matches_the_exact_engine(self, backend):
        exact, circuit = _pair(backend=backend, diff_method="parameter-shift")
        tokens, targets = SINGLE_STEP
        expected = _gradient(exact, tokens, targets)
        assert expected.abs().max() > 0.1  # not a trivially flat point
        assert torch.allclose(_gradient(circuit, tokens, targets), expected, atol=1e-6)

    @pytest.mark.parametrize("backend", ["default.qubit", "lightning.qubit"])
    def test_teacher_forced_sequences_match_the_exact_engine(self, backend):
        """Several teacher-forced steps: postselected (renormalised) i/o lanes would break the
        shift rule, so the circuit path reads joint probabilities of measured outcomes; the
        gradient equals the exact engine's."""
        tokens, targets = (
            torch.tensor([[0, 1], [1, 1], [0, 0]]),
            torch.tensor([[1, 0], [0, 1], [1, 1]]),
        )
        exact, shifted = _pair(backend=backend, diff_method="parameter-shift")
        expected = _gradient(exact, tokens, targets)
        assert expected.abs().max() > 0.1
        assert torch.allclose(shifted(tokens, targets)[0], exact(tokens, targets)[0], atol=1e-10)
        assert torch.allclose(_gradient(shifted, tokens, targets), expected, atol=1e-6)

    def test_joint_outcome_probabilities_give_exact_sequence_gradients(self):
        """What a QPU run does instead: measure every step's i/o lanes (no postselection) and
        read the probability of the whole target sequence, ``P(y_1..y_L)``, linear in the state.
        ``-log P`` is the sum of the per-step NLLs, and its shift-rule gradient is exact."""
        exact = _randomise(QRNN(**CONFIG, dtype=torch.float64))
        inputs, outcomes = [0, 1, 0], [1, 0, 1]
        weights = exact.weights()

        @qml.qnode(qml.device("default.qubit"), interface="torch", diff_method="parameter-shift")
        def joint(*weights):
            measured = []
            for token in inputs:
                QRNNCell(
                    *weights,
                    token=token,
                    io_wires=[0],
                    workspace_wires=[1, 2],
                    degree=2,
                    order=2,
                    mode="amplified",
                )
                measured += measure_token([0])
            return qml.probs(op=measured)

        index = int("".join(map(str, outcomes)), 2)
        nll = -torch.log(joint(*weights).reshape(-1)[index])
        shifted = torch.cat([g.flatten() for g in torch.autograd.grad(nll, weights)])

        tokens, targets = torch.tensor([inputs]).t(), torch.tensor([outcomes]).t()
        log_probs, _ = exact(tokens, targets)
        total = exact.loss(log_probs, targets, reduction="sum")
        assert float(nll.detach()) == pytest.approx(float(total.detach()), abs=1e-10)
        expected = torch.cat([g.flatten() for g in torch.autograd.grad(total, weights)])
        assert torch.allclose(shifted, expected, atol=1e-6)

    def test_shots_agree_within_their_standard_error(self):
        """Device-level shots (deprecated in PennyLane 0.45 in favour of QNode shots, still
        honoured). A shot-based shift-rule gradient is unbiased (up to O(1/shots) from the
        log), so the mean of four seeds must lie within 5 standard errors of the exact gradient.
        The standard error is pooled over the 22 parameters, ``sqrt(sum_j var_j / 4)`` (the
        expected norm of the mean's error): four samples give unreliable per-parameter
        variances, their sum over parameters is stable. Seen: error / standard error 0.7-1.9
        over seed sets, relative error 3-8%; the bound (~2.8) is well below the gradient's
        norm (~12.6), so a biased gradient (e.g. the teacher-forcing defect) would fail it."""
        exact = _randomise(QRNN(**CONFIG, dtype=torch.float64))
        tokens, targets = SINGLE_STEP
        expected = _gradient(exact, tokens, targets)
        samples = []
        for seed in range(1, 5):
            # the device is built (and checked) with the model
            with pytest.warns(
                qml.exceptions.PennyLaneDeprecationWarning,
                match="Setting shots on device is deprecated",
            ):
                circuit = QRNN(
                    **CONFIG,
                    dtype=torch.float64,
                    backend="default.qubit",
                    diff_method="parameter-shift",
                    backend_options={"shots": 20000, "seed": seed},
                )
            circuit.load_state_dict(exact.state_dict())
            samples.append(_gradient(circuit, tokens, targets))
            assert circuit.executor.device.given.shots.total_shots == 20000  # the device that ran
        samples = torch.stack(samples)
        assert not torch.equal(samples[0], samples[1])  # really sampled
        error = (samples.mean(dim=0) - expected).norm()
        standard_error = (samples.var(dim=0).sum() / len(samples)).sqrt()
        assert error <= 5 * standard_error
        assert 5 * standard_error < 0.25 * expected.norm()  # the bound is informative


def _neuron_layer(diff_method):
    """The 6078 setting: an embedding of the (batched) inputs, then a trainable template."""
    n_weights = QuantumNeuron.shape(2, 2)[0]

    @qml.qnode(qml.device("default.qubit", wires=3), interface="torch", diff_method=diff_method)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=[0, 1])
        QuantumNeuron(
            weights, control_wires=[0, 1], target_wire=2, degree=2, order=2, mode="amplified"
        )
        return [qml.expval(qml.Z(w)) for w in range(3)]

    torch.manual_seed(1)  # TorchLayer draws its initial weights from torch's generator
    return qml.qnn.TorchLayer(circuit, {"weights": (n_weights,)}).double()


def _layer_gradients(layer, inputs, per_row=False):
    inputs = inputs.detach().clone().requires_grad_(inputs.requires_grad)
    outputs = torch.stack([layer(row) for row in inputs]) if per_row else layer(inputs)
    outputs.pow(2).sum().backward()
    return outputs.detach(), layer.weights.grad, inputs.grad


class TestTorchLayerIssue6078:
    """``qml.qnn.TorchLayer`` + ``diff_method="parameter-shift"`` in PennyLane 0.45."""

    INPUTS = torch.tensor([[0.1, 2.0], [1.3, 0.4], [2.5, 2.9], [0.7, 1.1]], dtype=torch.float64)

    def test_batched_constant_inputs_work(self):
        """Only the weights trainable: the broadcast parameters (the inputs) are not shifted,
        and the batched layer's gradients equal backprop's."""
        shifted = _layer_gradients(_neuron_layer("parameter-shift"), self.INPUTS)
        reference = _layer_gradients(_neuron_layer("backprop"), self.INPUTS)
        assert shifted[2] is None and reference[2] is None
        assert torch.allclose(shifted[0], reference[0], atol=1e-10)
        assert torch.allclose(shifted[1], reference[1], atol=1e-10)

    def test_batched_trainable_inputs_fail(self):
        """The 6078 failure: inputs that carry a gradient (a classical layer before the quantum
        one) are broadcast parameters that the shift rule would have to shift. The forward
        pass runs; ``backward`` raises."""
        layer = _neuron_layer("parameter-shift")
        inputs = self.INPUTS.clone().requires_grad_(True)
        outputs = layer(inputs)
        assert outputs.shape == (4, 3)
        with pytest.raises(
            NotImplementedError,
            match="Computing the gradient of broadcasted tapes with respect to the broadcasted "
            "parameters using the parameter-shift rule gradient transform is currently not "
            "supported",
        ):
            outputs.pow(2).sum().backward()

    def test_per_row_workaround(self):
        """One circuit per input row, as the QRNN circuit path does: nothing is broadcast, and
        parameter-shift gradients (weights and inputs) equal backprop's on the batched layer."""
        inputs = self.INPUTS.clone().requires_grad_(True)
        shifted = _layer_gradients(_neuron_layer("parameter-shift"), inputs, per_row=True)
        reference = _layer_gradients(_neuron_layer("backprop"), inputs)
        for got, want in zip(shifted, reference, strict=True):
            assert torch.allclose(got, want, atol=1e-10)


# -- issue 8, items 1 and 2: the method PennyLane would really use, and postselected finite-diff --

TEACHER_FORCED = (torch.tensor([[0], [1], [1]]), torch.tensor([[1], [1], [0]]))


def _two_log_probs_gradient(model):
    log_probs, _ = model(*TEACHER_FORCED)
    objective = log_probs[0, 0, 1] + log_probs[2, 0, 0]
    return torch.cat(
        [g.flatten() for g in torch.autograd.grad(objective, list(model.parameters()))]
    )


def _engine_and_circuit(order, mode="postselect", **kwargs):
    torch.manual_seed(0)
    exact = QRNN(1, 2, 1, 2, order, mode=mode, dtype=torch.float64)
    circuit = QRNN(1, 2, 1, 2, order, mode=mode, dtype=torch.float64, **kwargs)
    circuit.load_state_dict(exact.state_dict())
    return exact, circuit


class TestDefaultMethodOnLightning:
    """Item 1: PennyLane resolves "best" to parameter-shift on lightning.qubit, which is wrong for
    postselected circuits (relative error 0.48 at order 1, 0.62 at order 2 before the fix). The
    circuit path now chooses: the joint-probability shift rule for amplified neurons, central
    finite differences over every wire for postselected ones."""

    @pytest.mark.slow  # 10-40 s; the fast pin is test_matrix's lightning.qubit-None-postselect rows
    @pytest.mark.parametrize("order", [1, 2])
    def test_postselect_matches_engine_and_backprop(self, order):
        exact, lightning = _engine_and_circuit(order, backend="lightning.qubit")
        expected = _two_log_probs_gradient(exact)
        _, backprop = _engine_and_circuit(order, backend="default.qubit", diff_method="backprop")
        assert torch.allclose(_two_log_probs_gradient(backprop), expected, atol=1e-12)
        got = _two_log_probs_gradient(lightning)
        assert (
            (got - expected).norm() / expected.norm()
        ) < 1e-7  # seen: 3e-9 (order 1), 1e-9 (order 2)

    def test_amplified_is_exact(self):
        exact, lightning = _engine_and_circuit(2, mode="amplified", backend="lightning.qubit")
        assert torch.allclose(
            _two_log_probs_gradient(lightning), _two_log_probs_gradient(exact), atol=1e-10
        )

    @pytest.mark.parametrize(
        "mode, method", [("postselect", "finite-diff"), ("amplified", "parameter-shift")]
    )
    def test_resolution(self, mode, method):
        from pennylane_qrnn.devices.circuit_path import resolve_diff_method

        assert resolve_diff_method(qml.device("lightning.qubit"), mode) == method
        assert resolve_diff_method(qml.device("default.qubit"), mode) == "backprop"

    def test_backprop_on_lightning_refused_with_choices(self):
        # refused when the model is built, before anything runs
        with pytest.raises(
            ValueError, match="diff_method must be one of 'finite-diff' .* got 'backprop'"
        ):
            _engine_and_circuit(1, backend="lightning.qubit", diff_method="backprop")


class TestPostselectedFiniteDifferences:
    """Item 2: with only the i/o lanes measured, PennyLane's gradient transforms drop every angle
    with no path to a measured wire in the circuit graph. An output neuron's last rotations act on
    the ancilla, which is then only postselected: their effect (through the renormalisation) was
    dropped, and the output weights' gradients came out exactly 2**order too small. The circuit
    path now measures every wire under finite differences."""

    @pytest.mark.parametrize("backend", ["default.qubit", "lightning.qubit"])
    @pytest.mark.parametrize("order", [1, 2])
    def test_output_neurons(self, backend, order):
        exact = QRNN(1, 1, 1, 1, order, dtype=torch.float64)
        circuit = QRNN(
            1, 1, 1, 1, order, dtype=torch.float64, backend=backend, diff_method="finite-diff"
        )
        circuit.load_state_dict(exact.state_dict())
        tokens, targets = torch.tensor([[1]]), torch.tensor([[0]])
        (want,) = torch.autograd.grad(exact(tokens, targets)[0][0, 0, 1], exact.output_weights)
        (got,) = torch.autograd.grad(circuit(tokens, targets)[0][0, 0, 1], circuit.output_weights)
        assert want.abs().max() > 1e-2
        assert torch.allclose(got, want, atol=1e-8 * max(1.0, float(want.abs().max())))
        assert not torch.allclose(got * 2**order, want, atol=1e-3)  # the old defect's signature
