"""The multiplexed RY against its defining block-diagonal matrix."""

import numpy as np
import pennylane as qml
import pytest

from pennylane_qrnn import neuron
from pennylane_qrnn.templates import multiplexed_rotation_cost, multiplexed_ry


def _matrix(ops, wires):
    return qml.matrix(qml.prod(*reversed(ops)), wire_order=wires)


def _expected(angles, n):
    blocks = [qml.matrix(qml.RY(a, wires=0)) for a in angles]
    out = np.zeros((2 ** (n + 1), 2 ** (n + 1)))
    for x, block in enumerate(blocks):
        out[2 * x : 2 * x + 2, 2 * x : 2 * x + 2] = block.real
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_arbitrary_table(rng, n):
    angles = rng.uniform(-np.pi, np.pi, size=2**n)
    ops = multiplexed_ry(angles, control_wires=list(range(n)), target_wire=n)
    assert np.allclose(_matrix(ops, list(range(n + 1))), _expected(angles, n))
    assert sum(isinstance(o, qml.CNOT) for o in ops) == (2**n if n else 0)


@pytest.mark.parametrize("n, d", [(3, 1), (4, 2), (5, 2), (5, 3)])
def test_low_degree_table_fewer_cnots(rng, n, d):
    weights = rng.normal(size=neuron.num_weights(n, d))
    angles = neuron.monomial_matrix(n, d) @ weights
    ops = multiplexed_ry(angles, control_wires=list(range(n)), target_wire=n, degree=d)
    assert np.allclose(_matrix(ops, list(range(n + 1))), _expected(angles, n))
    cost = multiplexed_rotation_cost(n, d)
    assert sum(isinstance(o, qml.CNOT) for o in ops) == cost["cnot"] < 2**n
    assert sum(isinstance(o, qml.RY) for o in ops) == cost["ry"]


def test_cost_of_neuron_sized_tables():
    # the MNIST cell's neurons: 9 controls at degree 2
    assert multiplexed_rotation_cost(9, 2) == {"cnot": 74, "ry": 46}
    assert multiplexed_rotation_cost(9, None) == {"cnot": 512, "ry": 512}
