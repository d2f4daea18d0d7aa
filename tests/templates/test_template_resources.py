"""Issue 9 item 6: the templates' resources are registered with PennyLane's decomposition system,
``qml.specs`` sees inside them, and PennyLane's graph decomposition takes them to basic gate sets
with the same numbers."""

import warnings
from collections import Counter

import numpy as np
import pennylane as qml
import pytest
from pennylane.decomposition import resource_rep

from pennylane_qrnn import QRNNCell, QuantumNeuron
from pennylane_qrnn.templates import neuron_resources
from pennylane_qrnn.templates.base import PostselectedRY, basic_gate_counts

DQ = qml.device("default.qubit")


def _cell(rng, io, ws, stages, degree, order, mode, token, write=True):
    shapes = QRNNCell.shape(io, ws, stages, degree)
    weights = {k: rng.uniform(-1.2, 1.2, size=s) for k, s in shapes.items()}
    anc = list(range(io + ws, io + ws + order)) if mode == "postselect" else None
    return QRNNCell(
        **weights,
        token=token,
        io_wires=list(range(io)),
        workspace_wires=list(range(io, io + ws)),
        ancilla_wires=anc,
        degree=degree,
        order=order,
        mode=mode,
        write=write,
    )


def _neuron(rng, n, degree, order, mode):
    anc = list(range(n + 1, n + 1 + order)) if mode == "postselect" else None
    return QuantumNeuron(
        rng.uniform(-1, 1, size=QuantumNeuron.shape(n, degree)),
        list(range(n)),
        n,
        ancilla_wires=anc,
        degree=degree,
        order=order,
        mode=mode,
    )


def _expanded(op):
    """The decomposition down to basic gates, by hand (templates expanded recursively)."""
    out = []
    for inner in op.decomposition():
        out.extend(_expanded(inner) if isinstance(inner, (QuantumNeuron, QRNNCell)) else [inner])
    return out


NEURONS = [
    (0, 1, 1, "postselect"),
    (3, 2, 1, "postselect"),
    (4, 2, 2, "postselect"),
    (5, 3, 3, "postselect"),
    (3, 2, 2, "amplified"),
    (6, 3, 1, "amplified"),
]
CELLS = [
    (1, 2, 1, 2, 1, "postselect", 1, True),
    (2, 2, 1, 2, 2, "postselect", 2, True),
    (2, 3, 2, 2, 1, "amplified", 3, True),
    (1, 3, 0, 3, 2, "postselect", 0, True),
    (3, 2, 1, 3, 2, "amplified", 5, False),
    (2, 2, 1, 2, 1, "postselect", 3, False),
]


def _registered_vs_decomposition(op):
    (rule,) = qml.list_decomps(type(op))
    registered = {
        k: v for k, v in rule.compute_resources(**op.resource_params).gate_counts.items() if v
    }
    with qml.queuing.AnnotatedQueue() as queue:
        rule(*op.data, wires=op.wires, **op.hyperparameters)
    actual = Counter(resource_rep(type(o), **o.resource_params) for o in queue.queue)
    return registered, dict(actual)


@pytest.mark.parametrize("n, degree, order, mode", NEURONS)
def test_neuron_registered_resources_count_its_decomposition(rng, n, degree, order, mode):
    op = _neuron(rng, n, degree, order, mode)
    registered, actual = _registered_vs_decomposition(op)
    assert registered == actual
    names = Counter(o.name for o in _expanded(op))
    assert op.resources().gate_types == dict(names)
    res = neuron_resources(n, degree, order, mode)
    assert (res["ry"], res["cnot"], res["phase_shift"], res["mid_circuit_measurements"]) == (
        names["RY"],
        names["CNOT"],
        names["PhaseShift"],
        names["MidMeasureMP"],
    )


@pytest.mark.parametrize("io, ws, stages, degree, order, mode, token, write", CELLS)
def test_cell_registered_resources_count_its_decomposition(
    rng, io, ws, stages, degree, order, mode, token, write
):
    op = _cell(rng, io, ws, stages, degree, order, mode, token, write)
    registered, actual = _registered_vs_decomposition(op)
    assert registered == actual
    expanded = _expanded(op)
    assert op.resources().gate_types == dict(Counter(o.name for o in expanded))
    assert op.resources().gate_sizes == dict(Counter(len(o.wires) for o in expanded))
    ones = bin(token).count("1")
    assert op.resources().gate_types.get("PauliX", 0) == ones * (2 if write else 1)


@pytest.mark.parametrize("io, ws, stages, degree, order, mode, token, write", CELLS[:4])
def test_specs_sees_inside(rng, io, ws, stages, degree, order, mode, token, write):
    """``qml.specs`` of a QNode holding the cell counts the gates of the expanded decomposition:
    through ``resources()`` for an amplified cell (on the tape as one operation), directly for a
    postselecting one (which queues its decomposition)."""
    op = _cell(rng, io, ws, stages, degree, order, mode, token, write)

    @qml.qnode(DQ, mcm_method="tree-traversal")
    def circuit():
        qml.apply(op)
        return qml.probs(wires=range(io))

    expected = dict(Counter(o.name for o in _expanded(op)))
    top = qml.specs(circuit, level="top")().resources
    assert top.gate_types == expected
    assert top.num_gates == len(_expanded(op))
    device = qml.specs(circuit, level="device")().resources
    assert device.gate_types == expected
    assert top.depth == device.depth


def test_specs_of_a_neuron_template(rng):
    op = _neuron(rng, 4, 2, 1, "amplified")

    @qml.qnode(DQ)
    def circuit():
        qml.apply(op)
        return qml.probs(wires=4)

    specs = qml.specs(circuit)().resources
    assert specs.gate_types == {"RY": 16, "CNOT": 16}
    assert specs.gate_types == qml.specs(circuit, level="device")().resources.gate_types


def test_basic_gate_counts_expands_nested_templates():
    rep = resource_rep(QuantumNeuron, n_controls=3, degree=2, order=2, mode="amplified")
    assert basic_gate_counts({rep: 2, resource_rep(qml.RY): 1}) == {"RY": 2 * 8 + 1, "CNOT": 2 * 8}
    assert basic_gate_counts(
        {resource_rep(PostselectedRY): 3, resource_rep(qml.ops.MidMeasure): 1}
    ) == {"RY": 3, "MidMeasureMP": 1}


@pytest.fixture
def graph():
    qml.decomposition.enable_graph()
    try:
        yield
    finally:
        qml.decomposition.disable_graph()


@pytest.mark.parametrize("mode", ["amplified", "postselect"])
@pytest.mark.parametrize(
    "gate_set", [{"RY", "CNOT", "PauliX", "PhaseShift"}, {"RX", "RZ", "CZ", "GlobalPhase"}]
)
def test_graph_decomposition_to_basic_gates(rng, graph, mode, gate_set):
    """PennyLane's graph decomposition (planned from the registered resources) reaches each gate
    set, and the circuit gives the same probabilities."""
    with qml.QueuingManager.stop_recording():
        op = _cell(rng, 2, 2, 1, 2, 1, mode, 2)
    tape = qml.tape.QuantumScript([op], [qml.probs(wires=range(4))])
    allowed = set(gate_set) | ({"MidMeasureMP"} if mode == "postselect" else set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "unable to find a decomposition" is only a warning
        [decomposed], _ = qml.decompose(tape, gate_set=allowed)
    assert {o.name for o in decomposed.operations} <= allowed
    qml.decomposition.disable_graph()
    probs = qml.execute([decomposed], DQ, mcm_method="tree-traversal")[0]
    assert np.allclose(probs, qml.execute([tape], DQ, mcm_method="tree-traversal")[0], atol=1e-10)
    if (
        mode == "amplified"
    ):  # and the template's own matrix, from |0000> (the cell writes the token)
        assert np.allclose(
            probs, np.abs(qml.matrix(op, wire_order=range(4))[:, 0]) ** 2, atol=1e-10
        )


def test_graph_keeps_the_gradient_guard_where_ry_is_allowed(rng, graph):
    """Where ``RY`` is in the gate set the postselecting rotations stay ``PostselectedRY``, which
    refuses gradient transforms (they are wrong under postselection)."""
    with qml.QueuingManager.stop_recording():
        op = _neuron(rng, 2, 2, 1, "postselect")
    tape = qml.tape.QuantumScript([op], [qml.probs(wires=2)])
    [decomposed], _ = qml.decompose(tape, gate_set={"RY", "CNOT", "PhaseShift", "MidMeasureMP"})
    assert any(isinstance(o, PostselectedRY) for o in decomposed.operations)
    assert not any(type(o) is qml.RY for o in decomposed.operations)


def test_resource_estimation_sees_inside(rng):
    """``qml.estimator.estimate`` (which maps rotations to T gates) finds the cell's CNOTs and X
    gates, as registered."""
    op = _cell(rng, 1, 2, 1, 2, 2, "amplified", 1)
    registered = op.resources().gate_types

    def circuit():
        qml.apply(op)

    counts = qml.estimator.estimate(circuit)().gate_counts
    assert counts["CNOT"] == registered["CNOT"] and counts["X"] == registered["PauliX"] == 2
