"""Real-valued inputs (issue 11 item 4): angles written with RY on the i/o lanes, unwritten with
RY(-2 angle) and postselected on |0...0> (pennylane_qrnn.encoding).

The engine is checked against an independent simulation of the circuit (``default.qubit``, the
cell built by hand from ``qml.RY`` and :class:`QuantumNeuron`, mid-circuit postselection, torch
backprop), forward and gradients; the QRNNCell template's angle path against the engine; angles
in {0, pi/2} against integer tokens."""

import math

import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN, QuantumNeuron
from pennylane_qrnn import QRNNCell as CellTemplate
from pennylane_qrnn.baselines import LSTMBaseline
from pennylane_qrnn.encoding import check_angles, log_unwrite_probability, token_weights
from pennylane_qrnn.engine import CellOperators, build_operators, run_sequence
from pennylane_qrnn.engine.statevector import run_statevector
from pennylane_qrnn.errors import NonFiniteError, QRNNTypeError, QRNNValueError
from pennylane_qrnn.executors import Circuits, Exact
from pennylane_qrnn.layout import neuron_controls
from pennylane_qrnn.nn import AngleEncoder, QRNNCell

F64 = torch.float64

# PennyLane's tree-traversal reads a postselection's probability as a float (its own code)
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


def _model(io, ws, mode="postselect", order=2, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = QRNN(io, ws, stages=1, degree=2, order=order, mode=mode, dtype=F64, **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1, 1)
    return model


def _bit_angles(tokens, io):
    """The angles that write ``tokens``: pi/2 on the lanes of the 1 bits (lane 0 most
    significant)."""
    bits = [(tokens >> (io - 1 - lane)) & 1 for lane in range(io)]
    return torch.stack(bits, dim=-1).to(F64) * (math.pi / 2)


# -- the maths ----------------------------------------------------------------------------


def test_token_weights_are_the_squared_amplitudes():
    angles = torch.tensor([[0.3, 1.1], [-0.7, 2.0]], dtype=F64)
    weights = token_weights(angles)
    for row, (a, b) in enumerate(angles.tolist()):
        amplitudes = [math.cos(a), math.sin(a)]
        low = [math.cos(b), math.sin(b)]
        want = [(amplitudes[x >> 1] * low[x & 1]) ** 2 for x in range(4)]
        torch.testing.assert_close(weights[row], torch.tensor(want, dtype=F64), rtol=0, atol=1e-15)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, dtype=F64))


def test_unwrite_probability_of_orthogonal_and_equal_blocks():
    blocks = torch.eye(2, dtype=F64).unsqueeze(0)
    mixed = log_unwrite_probability(blocks, torch.tensor([[0.25, 0.75]], dtype=F64)).exp()
    # |(0.25, 0.75)|^2 / (0.25 + 0.75)
    torch.testing.assert_close(mixed, torch.tensor([0.625], dtype=F64))
    same = torch.ones(1, 2, 2, dtype=F64)
    scales = torch.tensor([0.0, 0.0], dtype=F64)
    assert float(log_unwrite_probability(same, torch.tensor([[0.5, 0.5]], dtype=F64), scales)) == (
        pytest.approx(0.0, abs=1e-15)
    )


# -- an independent simulation of the circuit --------------------------------------------


def _reference_log_probs(model, angles, targets):
    """``(L, N, 2**I)`` log-probabilities from default.qubit: for each step a QNode of the
    whole prefix, the cell written out by hand (RY write, neurons, RY unwrite, postselect the
    i/o lanes on 0, output neurons), the earlier steps postselected on their targets."""
    layout = model.layout
    io, ws, anc = layout.io_wires, layout.workspace_wires, layout.ancilla_wires
    settings = {"degree": layout.degree, "order": layout.order, "mode": layout.mode}
    input_w, rotation_w, stage_w, output_w = model.weights()

    def neuron(weights, target):
        QuantumNeuron(weights, neuron_controls(target, io, ws), target, anc or None, **settings)

    @qml.qnode(qml.device("default.qubit"), interface="torch", mcm_method="tree-traversal")
    def prefix(step_angles, outcomes):
        for step, angle in enumerate(step_angles):
            for lane, wire in enumerate(io):
                qml.RY(2 * angle[lane], wires=wire)
            for lane, target in enumerate(ws):
                neuron(input_w[lane], target)
            for stage in range(layout.stages):
                for lane, target in enumerate(ws):
                    qml.RY(2 * rotation_w[stage, lane], wires=target)
                for lane, target in enumerate(ws):
                    neuron(stage_w[stage, lane], target)
            for lane, wire in enumerate(io):
                qml.RY(-2 * angle[lane], wires=wire)
            for wire in io:
                qml.measure(wire, reset=True, postselect=0)
            for lane, target in enumerate(io):
                neuron(output_w[lane], target)
            if step < len(outcomes):
                bits = [(outcomes[step] >> (len(io) - 1 - i)) & 1 for i in range(len(io))]
                for wire, bit in zip(io, bits, strict=True):
                    qml.measure(wire, reset=True, postselect=bit)
        return qml.probs(wires=io)

    length, batch = targets.shape
    rows = []
    for item in range(batch):
        outcomes = targets[:, item].tolist()
        rows.append(
            torch.stack(
                [prefix(angles[: step + 1, item], outcomes[:step]) for step in range(length)]
            )
        )
    return torch.stack(rows, dim=1).log()


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
def test_engine_matches_the_circuit_forward_and_gradients(mode):
    model = _model(2, 2, mode=mode)
    angles = torch.tensor(
        [[[0.3, 1.1], [-0.7, 0.4]], [[1.2, 0.2], [0.9, -1.3]]], dtype=F64
    ).requires_grad_(True)
    targets = torch.tensor([[2, 1], [0, 3]])
    log_probs, _ = model(angles, targets)
    reference = _reference_log_probs(model, angles, targets)
    torch.testing.assert_close(log_probs, reference, rtol=0, atol=1e-10)
    inputs = [angles, *model.parameters()]
    loss = model.loss(log_probs, targets)
    grads = torch.autograd.grad(loss, inputs)
    expected = torch.autograd.grad(model.loss(reference, targets), inputs)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    assert float(grads[0].abs().sum()) > 1e-3  # the angles do matter


def test_unwrite_success_matches_the_circuit():
    """Amplified neurons postselect nothing: the probability that the unwrite leaves the i/o
    lanes in |0...0> is read off the circuit's probabilities directly."""
    model = _model(2, 2, mode="amplified")
    layout = model.layout
    io, ws = layout.io_wires, layout.workspace_wires
    angles = torch.tensor([[[0.3, 1.1]]], dtype=F64)
    input_w, rotation_w, stage_w, _ = model.weights()

    @qml.qnode(qml.device("default.qubit"))
    def unwritten():
        for lane, wire in enumerate(io):
            qml.RY(2 * angles[0, 0, lane], wires=wire)
        for lane, target in enumerate(ws):
            QuantumNeuron(
                input_w[lane], neuron_controls(target, io, ws), target, None, 2, 2, "amplified"
            )
        for lane, target in enumerate(ws):
            qml.RY(2 * rotation_w[0, lane], wires=target)
        for lane, target in enumerate(ws):
            QuantumNeuron(
                stage_w[0, lane], neuron_controls(target, io, ws), target, None, 2, 2, "amplified"
            )
        for lane, wire in enumerate(io):
            qml.RY(-2 * angles[0, 0, lane], wires=wire)
        return qml.probs(wires=io)

    output = model(angles, torch.tensor([[1]]))
    success = float(unwritten()[0])
    assert 0.05 < success < 0.95  # a real postselection
    torch.testing.assert_close(
        output.postselection.unwrite[0, 0], torch.tensor(success, dtype=F64), rtol=0, atol=1e-12
    )
    # the unwrite is part of the step's success; amplified neurons always succeed
    assert float(output.postselection.neuron[0, 0]) == 1.0
    torch.testing.assert_close(
        output.postselection.step[0, 0],
        output.postselection.unwrite[0, 0] * output.postselection.teacher_forcing[0, 0],
    )


def test_neuron_success_is_the_weighted_token_success():
    """With the i/o lanes in superposition the neurons' postselections succeed with
    ``sum_x w_x P_x`` (the branches are orthogonal), and the step pays the unwrite on top."""
    model = _model(2, 2)
    angles = torch.tensor([[[0.3, 1.1]]], dtype=F64)
    output = model(angles, torch.tensor([[2]]))
    weights = token_weights(angles)[0, 0]
    operators = model.operators()
    per_token = []
    for token in range(4):
        result = run_sequence(
            operators, torch.tensor([[token]]), skip_output=torch.ones(1, 1, dtype=torch.bool)
        )
        per_token.append(result.neuron_success[0, 0])
    # the neurons before the readout only (skipped output stage): the write and work stages
    skipped = run_sequence(
        operators, weights.reshape(1, 1, 4), skip_output=torch.ones(1, 1, dtype=torch.bool)
    )
    torch.testing.assert_close(
        skipped.neuron_success[0, 0], (weights * torch.stack(per_token)).sum(), rtol=1e-12, atol=0
    )
    assert 0 < float(output.postselection.unwrite[0, 0]) < 1


# -- tokens are the special case ------------------------------------------------------------


@pytest.mark.parametrize("workspace", [2, 6])  # 6: the grouped token write
def test_bit_angles_are_the_tokens(workspace):
    model = _model(2, workspace)
    tokens = torch.randint(0, 4, (5, 3), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 4, (5, 3), generator=torch.Generator().manual_seed(2))
    by_tokens = model(tokens, targets)
    by_angles = model(_bit_angles(tokens, 2), targets)
    torch.testing.assert_close(by_angles.log_probs, by_tokens.log_probs, rtol=0, atol=1e-12)
    torch.testing.assert_close(by_angles.state, by_tokens.state, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        by_angles.postselection.step, by_tokens.postselection.step, rtol=1e-12, atol=0
    )
    torch.testing.assert_close(
        by_angles.postselection.unwrite, torch.ones(5, 3, dtype=F64), rtol=0, atol=1e-12
    )
    # exactly one-hot weights give exactly the token numbers
    operators = model.operators()
    one_hot = torch.nn.functional.one_hot(tokens, 4).to(F64)
    exact = run_sequence(operators, one_hot, targets)
    reference = run_sequence(operators, tokens, targets)
    assert torch.equal(exact.log_probs, reference.log_probs)
    assert torch.equal(exact.state, reference.state)
    assert torch.equal(exact.log_neuron_success, reference.log_neuron_success)
    assert torch.equal(reference.log_unwrite_success, torch.zeros(5, 3, dtype=F64))


def test_backward_pass_gradcheck_with_token_weights():
    model = _model(2, 2)
    operators = model.operators()
    layout = operators.layout
    write = operators.write_stage.detach().requires_grad_(True)
    output = operators.output_stage.detach().requires_grad_(True)
    angles = torch.rand(3, 2, 2, dtype=F64, requires_grad=True)
    state = torch.randn(2, 4, dtype=F64)
    state = (state / state.norm(dim=1, keepdim=True)).requires_grad_(True)
    targets = torch.tensor([[1, 3], [0, 2], [2, 2]])
    skip = torch.tensor([[False, False], [True, False], [False, False]])
    coefficients = torch.randn(3, 2, 4, dtype=F64)

    def function(w, o, a, s):
        ops = CellOperators(w, o, layout, operators.log_write_scale, operators.log_output_scale)
        result = run_sequence(ops, token_weights(a), targets, state=s, skip_output=skip)
        return (result.log_probs.nan_to_num() * coefficients).sum() + result.state.sum()

    assert torch.autograd.gradcheck(function, (write, output, angles, state))


def test_cell_module_takes_angles():
    torch.manual_seed(0)
    cell = QRNNCell(2, 3, dtype=F64)
    sequence = QRNN(2, 3, dtype=F64)
    sequence.load_state_dict(cell.state_dict())
    angles = torch.rand(2, 4, 2, dtype=F64)
    targets = torch.randint(0, 4, (2, 4))
    log_probs, state = cell(angles[0], targets[0])
    second, _ = cell(angles[1], targets[1], state=state)
    whole, _ = sequence(angles, targets)
    torch.testing.assert_close(torch.stack([log_probs, second]), whole, rtol=0, atol=1e-12)


def test_batch_first_angles():
    model = _model(1, 2)
    first = QRNN(1, 2, stages=1, degree=2, order=2, dtype=F64, batch_first=True)
    first.load_state_dict(model.state_dict())
    angles = torch.rand(4, 3, 1, dtype=F64)
    targets = torch.randint(0, 2, (4, 3))
    log_probs, _ = model(angles, targets)
    transposed, _ = first(angles.transpose(0, 1), targets.t())
    torch.testing.assert_close(transposed, log_probs.transpose(0, 1), rtol=0, atol=0)


def test_angle_encoder_trains_end_to_end():
    torch.manual_seed(0)
    encoder, model = AngleEncoder(3, io_bits=1, dtype=F64), QRNN(1, 2, dtype=F64)
    features = torch.randn(5, 4, 3, dtype=F64)
    angles = encoder(features)
    assert angles.shape == (5, 4, 1)
    assert float(angles.min()) > 0 and float(angles.max()) < math.pi / 2
    targets = torch.randint(0, 2, (5, 4))
    log_probs, _ = model(angles, targets)
    model.loss(log_probs, targets).backward()
    assert float(encoder.linear.weight.grad.abs().sum()) > 0
    assert "in_features=3, io_bits=1" in repr(encoder)


# -- the circuit path ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["postselect", pytest.param("amplified", marks=pytest.mark.slow)])
def test_circuit_path_matches_the_engine(mode):
    engine_model = _model(2, 2, mode=mode, seed=3)
    circuit_model = QRNN(
        2,
        2,
        stages=1,
        degree=2,
        order=2,
        mode=mode,
        dtype=F64,
        executor=Circuits("default.qubit"),
    )
    circuit_model.load_state_dict(engine_model.state_dict())
    angles = torch.tensor(
        [[[0.3, 1.1], [-0.7, 0.4]], [[1.2, 0.2], [0.9, -1.3]], [[0.5, 0.5], [0.1, 1.4]]],
        dtype=F64,
    )
    targets = torch.tensor([[2, 1], [0, 3], [1, 1]])
    results = []
    for model in (engine_model, circuit_model):
        leaf = angles.clone().requires_grad_(True)
        log_probs, _ = model(leaf, targets)
        inputs = [leaf, *model.parameters()]
        results.append((log_probs, torch.autograd.grad(model.loss(log_probs, targets), inputs)))
    (engine_lp, engine_grads), (circuit_lp, circuit_grads) = results
    torch.testing.assert_close(circuit_lp, engine_lp, rtol=0, atol=1e-8)
    for got, want in zip(circuit_grads, engine_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-8)


def test_template_decomposition_with_angles():
    shapes = CellTemplate.shape(io_bits=2, workspace=1, stages=1, degree=1)
    weights = [torch.full(s, 0.2, dtype=F64) for s in shapes.values()]
    cell = CellTemplate(
        *weights,
        token=None,
        angles=torch.tensor([0.3, 0.4], dtype=F64),
        io_wires=[0, 1],
        workspace_wires=[2],
        degree=1,
        order=1,
        mode="amplified",
    )
    assert cell.num_params == 5
    names = [op.name for op in cell.decomposition()]
    assert names[:2] == ["RY", "RY"]  # the write
    assert sum(isinstance(op, qml.ops.MidMeasure) for op in cell.decomposition()) == 2
    assert cell.resource_params["angles"] is True
    rebuilt = CellTemplate._unflatten(*cell._flatten())
    assert torch.equal(rebuilt.data[4], cell.data[4]) and rebuilt.num_params == 5


# -- what is refused -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: QRNN(2, 3)(torch.zeros(2, 2)),
            QRNNTypeError,
            r"tokens must be an integer tensor; got dtype torch.float32 of shape \(2, 2\) "
            r"\(real-valued inputs: a floating tensor \(L, N, I\) of angles, I=2\)",
        ),
        (
            lambda: QRNN(2, 3)(torch.zeros(2, 1, 3)),
            QRNNValueError,
            r"tokens must have shape \(L, N, I\) with I=2; got \(2, 1, 3\)",
        ),
        (
            lambda: QRNN(2, 3, batch_first=True)(torch.zeros(2, 1, 3)),
            QRNNValueError,
            r"tokens must have shape \(N, L, I\) with I=2; got \(2, 1, 3\)",
        ),
        (
            lambda: QRNN(1, 2)(torch.full((2, 1, 1), math.nan)),
            QRNNValueError,
            r"tokens must be finite; got 2 NaN or infinite value\(s\) of 2",
        ),
        (
            lambda: QRNN(1, 2)(torch.zeros(2, 1, 1), torch.zeros(3, 1, dtype=torch.long)),
            QRNNValueError,
            r"targets must have the shape of tokens \(2, 1\); got \(3, 1\)",
        ),
        (
            lambda: QRNN(1, 2)(torch.zeros(2, 1, 1), torch.zeros(2, 1)),
            QRNNTypeError,
            r"targets must be an integer tensor; got dtype torch.float32",
        ),
        (
            lambda: QRNN(1, 2)(torch.zeros(2, 1, 1), mixed=True),
            QRNNValueError,
            r"mixed=True needs integer tokens; got real-valued inputs",
        ),
        (
            lambda: QRNN(1, 2, executor=Exact("statevector"))(torch.zeros(2, 1, 1)),
            QRNNTypeError,
            r"tokens must be integer tokens for Exact\(method='statevector'\); got angles",
        ),
        (
            lambda: QRNNCell(2, 3)(torch.zeros(2, 3)),
            QRNNValueError,
            r"token must have shape \(N, I\) with I=2; got \(2, 3\)",
        ),
        (
            lambda: QRNNCell(2, 3)(torch.zeros(2)),
            QRNNTypeError,
            r"token must be an integer tensor; got dtype torch.float32 of shape \(2,\)",
        ),
        (
            lambda: QRNN(1, 2).sample(torch.zeros(2, 1, 1), 2),
            QRNNTypeError,
            r"prefix must be an integer tensor; got dtype torch.float32",
        ),
        (
            lambda: LSTMBaseline(1, 4)(torch.zeros(2, 1, 1)),
            QRNNTypeError,
            r"tokens must be an integer tensor; got dtype torch.float32$",
        ),
        (
            lambda: check_angles("angles", torch.zeros(2, 1, dtype=torch.long), 1),
            QRNNTypeError,
            r"angles must be a floating tensor \(L, N, I\); got dtype torch.int64",
        ),
    ],
)
def test_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_engine_refuses_bad_token_weights():
    model = _model(1, 2)
    operators = build_operators(model.layout, *model.weights())
    with pytest.raises(
        QRNNValueError, match=r"must have shape \(L, N, 2\) for io_bits=1; got \(2, 1, 3\)"
    ):
        run_sequence(operators, torch.zeros(2, 1, 3, dtype=F64))
    with pytest.raises(QRNNValueError, match=r"token weights must be >= 0 .*got a minimum of -1.0"):
        run_sequence(operators, torch.tensor([[[2.0, -1.0]]], dtype=F64))
    with pytest.raises(NonFiniteError, match=r"tokens must be finite"):
        run_sequence(operators, torch.tensor([[[math.inf, 0.0]]], dtype=F64))
    with pytest.raises(
        QRNNTypeError, match=r"tokens must be an integer tensor \(L, N\) on the statevector engine"
    ):
        run_statevector(model.layout, model.weights(), torch.zeros(2, 1, 2, dtype=F64))


def test_template_refuses_bad_angles():
    shapes = CellTemplate.shape(io_bits=2, workspace=1, stages=1, degree=1)
    weights = [torch.full(s, 0.2, dtype=F64) for s in shapes.values()]
    settings = {
        "io_wires": [0, 1],
        "workspace_wires": [2],
        "degree": 1,
        "order": 1,
        "mode": "amplified",
    }
    with pytest.raises(QRNNValueError, match=r"token must be None when angles are given; got 1"):
        CellTemplate(*weights, token=1, angles=torch.zeros(2), **settings)
    with pytest.raises(
        QRNNValueError,
        match=r"angles must have shape \(2,\) \(or \(batch, 2\)\) for I=2; got \(3,\)",
    ):
        CellTemplate(*weights, token=None, angles=torch.zeros(3), **settings)
    with pytest.raises(
        QRNNValueError, match=r"write must be True when angles are given; got False"
    ):
        CellTemplate(*weights, token=None, angles=torch.zeros(2), write=False, **settings)


def test_shift_rules_refuse_angles():
    model = QRNN(
        1,
        2,
        mode="amplified",
        dtype=F64,
        executor=Circuits("default.qubit", diff_method="parameter-shift"),
    )
    with pytest.raises(
        QRNNValueError,
        match=r"diff_method must be 'backprop' or 'finite-diff' for real-valued inputs",
    ):
        model(torch.zeros(1, 1, 1, dtype=F64), torch.zeros(1, 1, dtype=torch.long))
