"""The neuron's maths against brute force and the closed forms of QRNN.md."""

import itertools
from math import comb

import numpy as np
import pytest
import torch

from pennylane_qrnn import neuron


def test_monomials_order():
    assert neuron.monomials(3, 2) == ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2))
    assert neuron.monomials(2, 5) == ((), (0,), (1,), (0, 1))


@pytest.mark.parametrize("n, d", [(0, 1), (3, 1), (4, 2), (9, 2), (7, 3)])
def test_num_weights(n, d):
    assert neuron.num_weights(n, d) == sum(comb(n, k) for k in range(min(n, d) + 1))
    assert neuron.num_weights(n, d) == len(neuron.monomials(n, d))


@pytest.mark.parametrize("n, d", [(1, 1), (3, 2), (4, 3)])
def test_eta_table_brute_force(rng, n, d):
    weights = rng.normal(size=neuron.num_weights(n, d))
    table = neuron.eta_table(weights, n, d)
    for x in range(2**n):
        bits = [(x >> (n - 1 - i)) & 1 for i in range(n)]
        expected = sum(
            w * np.prod([bits[i] for i in subset]) for w, subset in zip(weights, neuron.monomials(n, d))
        )
        assert table[x] == pytest.approx(expected)


def test_eta_table_batched_torch():
    weights = torch.randn(5, neuron.num_weights(3, 2), dtype=torch.float64, requires_grad=True)
    table = neuron.eta_table(weights, 3, 2)
    assert table.shape == (5, 8)
    table.sum().backward()
    # d(sum_x eta(x)) / d theta_A = number of x containing A = 2**(n - |A|)
    expected = [2 ** (3 - len(a)) for a in neuron.monomials(3, 2)]
    assert torch.allclose(weights.grad[0], torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_activation_closed_form(order):
    eta = np.linspace(-3, 3, 41)
    f = neuron.activation(eta, order)
    assert np.allclose(f, np.arctan(np.tan(eta) ** (2**order)), atol=1e-12)
    assert np.all((f >= 0) & (f <= np.pi / 2))
    c, s = neuron.neuron_amplitudes(eta, order)
    assert np.allclose(neuron.success_probability(eta, order), c**2 + s**2)
    assert np.allclose(
        neuron.success_probability(eta, order),
        np.cos(eta) ** (2 ** (order + 1)) + np.sin(eta) ** (2 ** (order + 1)),
    )
    # the renormalised amplitudes are the rotation by f
    norm = np.sqrt(c**2 + s**2)
    assert np.allclose(c / norm, np.cos(f)) and np.allclose(s / norm, np.sin(f))


def test_activation_at_pi_over_2_is_exact():
    # tan overflows at pi/2; atan2 keeps f = pi/2
    assert neuron.activation(np.pi / 2, 2) == pytest.approx(np.pi / 2)


def test_walsh_matrix_inverts():
    w = neuron.walsh_matrix(3)
    assert np.allclose(w @ w, 8 * np.eye(8))


def test_walsh_support_of_polynomials(rng):
    n, d = 5, 2
    table = neuron.monomial_matrix(n, d) @ rng.normal(size=neuron.num_weights(n, d))
    coefficients = neuron.walsh_matrix(n) @ table / 2**n
    weights_of = np.array([bin(b).count("1") for b in range(2**n)])
    assert np.allclose(coefficients[weights_of > d], 0)
    assert not np.allclose(coefficients[weights_of == d], 0)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: neuron.check_degree(0), ValueError, "degree must be at least 1; got 0"),
        (lambda: neuron.check_degree(1.5), TypeError, "degree must be an int; got float"),
        (lambda: neuron.check_order(0), ValueError, "order must be at least 1; got 0"),
        (lambda: neuron.check_order("2"), TypeError, "order must be an int; got str"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_monomial_matrix_rows_are_bits():
    m = neuron.monomial_matrix(3, 3)
    for x, subset_row in itertools.product(range(8), [0]):
        bits = [(x >> (2 - i)) & 1 for i in range(3)]
        assert list(m[x, 1:4]) == bits
