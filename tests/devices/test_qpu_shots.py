"""The qpu protocol on the shot path (issue 12 item 2): output stages only at scored steps, left
out of the circuit, nothing postselected; every shot survives, and the scored step's estimate is
the exact engine's distribution within shot noise."""

import warnings
from collections import Counter

import numpy as np
import pennylane as qml
import pytest
import torch
from pennylane.decomposition import resource_rep

from pennylane_qrnn import QRNN, Circuits, Exact, QRNNCell, Shots
from pennylane_qrnn.devices.execution import analyse_shots
from pennylane_qrnn.devices.program import SequenceProgram, deferred_width
from pennylane_qrnn.engine.outcomes import NOT_MEASURED
from pennylane_qrnn.errors import InsufficientShotsWarning, QRNNValueError
from pennylane_qrnn.protocols import QPU

from ..conftest import requires_braket, requires_qiskit

#: a DNA-like batch (4 letters on 2 i/o lanes), scored only at the last step
TOKENS = torch.tensor([[2, 1], [0, 3], [3, 3], [1, 0]])
SCORED = torch.zeros_like(TOKENS, dtype=torch.bool)
SCORED[-1] = True
MASKS = QPU.forward_masks(torch.zeros_like(SCORED), SCORED)
SKIP = MASKS["skip_output"]


def _model(executor, io=2, workspace=1, stages=1, mode="amplified"):
    model = QRNN(
        io, workspace, stages=stages, order=1, mode=mode, dtype=torch.float64, executor=executor
    )
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=generator, dtype=p.dtype) * 2 - 1) * 0.9)
    return model


def _exact(tokens=TOKENS, masks=MASKS, **kwargs):
    output = _model(Exact(), **kwargs)(tokens, None, **masks)
    return output.log_probs.detach().exp().numpy()


def _assert_within_4_sigma(estimated, expected, n):
    # 4 binomial standard errors, plus 4 counts: where a probability is tiny its count is
    # Poisson-like and the normal bound alone is too tight (a count of 5 for an expected 1)
    bound = 4 * np.sqrt(expected * (1 - expected) / n) + 4 / n
    assert np.all(np.abs(estimated - expected) <= bound), (estimated, expected, bound)


def test_program_leaves_skipped_output_stages_and_readouts_out():
    layout = _model(Exact()).layout
    weights = _model(Exact()).weights()
    skip = SKIP[:, 0].tolist()
    full = SequenceProgram.build(weights, TOKENS[:, 0].tolist(), layout)
    qpu = SequenceProgram.build(weights, TOKENS[:, 0].tolist(), layout, skip)
    assert full.skipped == [False] * 4 and qpu.skipped == skip
    assert [len(qpu.io_records(t)) for t in range(4)] == [0, 0, 0, 2]
    assert len(full.records) == 8 and len(qpu.records) == 2
    # each skipped step drops its io_bits output neurons
    per_neuron = Counter(op.name for op in full.gates)
    assert sum(Counter(op.name for op in qpu.gates).values()) < sum(per_neuron.values())
    assert full.deferred_wires == layout.deferred_wires(4) == deferred_width(layout, None, 4)
    assert qpu.deferred_wires == deferred_width(layout, skip) == layout.n_wires + 2
    with pytest.raises(QRNNValueError, match="skip_output must have one entry per token"):
        SequenceProgram.build(weights, [1, 2], layout, [True])


@pytest.mark.parametrize("mode", ["amplified", "postselect"])
def test_cell_without_output_stage_registers_its_resources(rng, mode):
    shapes = QRNNCell.shape(2, 2, 1, 2)
    weights = {k: rng.uniform(-1.2, 1.2, size=s) for k, s in shapes.items()}
    kwargs = dict(token=3, io_wires=[0, 1], workspace_wires=[2, 3], degree=2, order=1, mode=mode)
    anc = [4] if mode == "postselect" else None
    full = QRNNCell(**weights, **kwargs, ancilla_wires=anc)
    cell = QRNNCell(**weights, **kwargs, ancilla_wires=anc, output=False)
    (rule,) = qml.list_decomps(QRNNCell)
    registered = rule.compute_resources(**cell.resource_params).gate_counts
    with qml.queuing.AnnotatedQueue() as queue:
        rule(*cell.data, wires=cell.wires, **cell.hyperparameters)
    actual = Counter(resource_rep(type(o), **o.resource_params) for o in queue.queue)
    assert {k: v for k, v in registered.items() if v} == dict(actual)
    assert len(cell.decomposition()) < len(full.decomposition())
    # the full cell's last operations are the output neurons; without them the i/o reset is last
    assert cell.decomposition()[-1].name == "PauliX"
    with pytest.raises(TypeError, match="output must be a bool; got int"):
        QRNNCell(**weights, **kwargs, ancilla_wires=anc, output=1)


def test_analyse_shots_marks_skipped_steps():
    model = _model(Exact(), io=1, stages=0, mode="postselect")
    program = SequenceProgram.build(model.weights(), [1, 0, 1], model.layout, [True, True, False])
    assert [r.kind for r in program.records] == ["ancilla", "ancilla", "ancilla", "ancilla", "io"]
    bits = np.array([[0, 0, 0, 0, 1], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]])
    estimate = analyse_shots(program, bits, targets=[0, 0, 0], forced=[True, True, False])
    assert np.isnan(estimate.probs[:2]).all() and estimate.probs[2].tolist() == [0.5, 0.5]
    assert (estimate.outcomes[:, :2] == NOT_MEASURED).all()
    assert estimate.survivors.tolist() == [3, 2, 2]  # ancillas filtered; targets not applied
    assert estimate.measured.tolist() == [False, False, True] and not estimate.short.any()


BACKENDS = [
    pytest.param(
        dict(device="default.qubit", method="native", device_options={"seed": 7}, shots=400),
        id="native",
    ),
    pytest.param(
        dict(device="braket.local.qubit", method="deferred"), id="braket", marks=requires_braket
    ),
    pytest.param(
        dict(device="qiskit.aer", method="dynamic", seed=3), id="aer", marks=requires_qiskit
    ),
]


@pytest.mark.parametrize("options", BACKENDS)
def test_scored_step_matches_the_exact_engine_and_every_shot_survives(options):
    options = dict(options)
    shots = options.pop("shots", 1000)
    model = _model(Shots(shots=shots, **options))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsufficientShotsWarning)
        output = model(TOKENS, None, **MASKS)
    estimated = output.log_probs.exp().numpy()
    assert np.isnan(estimated[SKIP.numpy()]).all() and np.isfinite(estimated[-1]).all()
    assert (output.outcomes[SKIP] == NOT_MEASURED).all()
    assert ((output.outcomes[-1] >= 0) & (output.outcomes[-1] < 4)).all()
    _assert_within_4_sigma(estimated[-1], _exact()[-1], shots)
    stats = output.postselection
    assert torch.equal(stats.log_total, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(stats.step, torch.ones(4, 2, dtype=torch.float64))
    for estimate in output.shot_estimates:
        assert estimate.surviving_fraction == 1.0
        assert estimate.survivors.tolist() == [shots] * 4
        assert estimate.measured.tolist() == [False, False, False, True]


def test_targets_do_not_postselect_skipped_steps():
    """With targets given (unscored steps could be teacher-forced), the qpu masks still
    postselect nothing: the targets' values at skipped steps do not filter any shot."""
    model = _model(Shots("default.qubit", shots=100, method="native"))
    targets = torch.tensor([[1, 2], [0, 0], [3, 1], [2, 2]])
    output = model(TOKENS, targets, **MASKS)
    assert all(e.surviving_fraction == 1.0 for e in output.shot_estimates)
    assert (output.outcomes[SKIP] == NOT_MEASURED).all()


def test_postselect_mode_filters_the_ancillas():
    tokens, scored = torch.tensor([[1], [0], [1]]), torch.tensor([[False], [False], [True]])
    masks = QPU.forward_masks(torch.zeros_like(scored), scored)
    shots = 500
    model = _model(
        Shots("default.qubit", shots=shots, method="native", device_options={"seed": 2}),
        io=1,
        workspace=2,
        stages=0,
        mode="postselect",
    )
    output = model(tokens, None, **masks)
    (estimate,) = output.shot_estimates
    survivors = estimate.survivors
    assert shots > survivors[0] > survivors[1] > survivors[2] > 50
    assert torch.isnan(output.log_probs[:2]).all() and (output.outcomes[:2] == -1).all()
    expected = _exact(tokens, masks, io=1, workspace=2, stages=0, mode="postselect")
    _assert_within_4_sigma(output.log_probs[-1, 0].exp().numpy(), expected[-1, 0], survivors[2])
    assert float(output.postselection.log_total) < 0  # only the neurons' postselection is paid


def test_circuits_still_refuse_skipped_output_stages():
    model = _model(Circuits("default.qubit"))
    with pytest.raises(QRNNValueError, match="skip_output"):
        model(TOKENS, None, **MASKS)


def test_price_uses_the_program_that_runs(monkeypatch):
    from pennylane_qrnn.devices import resources

    seen = []
    original = resources.model_program

    def spy(model, tokens, skip_output=None):
        seen.append(skip_output)
        return original(model, tokens, skip_output)

    monkeypatch.setattr(resources, "model_program", spy)
    monkeypatch.setattr(resources, "_transpile_target", lambda device: object())
    monkeypatch.setattr(resources, "_transpiled", lambda *args: None)
    executor = Shots("default.qubit", shots=10, method="native")
    executor.price(_model(executor), TOKENS, SKIP)
    assert seen == [SKIP[:, 0].tolist()]
