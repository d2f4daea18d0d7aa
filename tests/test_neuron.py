"""The neuron's maths against brute force and the closed forms of QRNN.md."""

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
            w * np.prod([bits[i] for i in subset])
            for w, subset in zip(weights, neuron.monomials(n, d), strict=True)
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
        (lambda: neuron.check_degree(0), ValueError, "degree must be an int >= 1; got 0"),
        (
            lambda: neuron.check_degree(1.5),
            TypeError,
            r"degree must be an int >= 1; got .* \(float\)",
        ),
        (lambda: neuron.check_order(0), ValueError, "order must be an int >= 1; got 0"),
        (lambda: neuron.check_order("2"), TypeError, r"order must be an int >= 1; got .* \(str\)"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_monomial_matrix_rows_are_bits():
    m = neuron.monomial_matrix(3, 3)
    for x in range(8):
        bits = [(x >> (2 - i)) & 1 for i in range(3)]
        assert list(m[x, 1:4]) == bits


# -- numerical range (issue 8, item 7) ------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 3, 5, 6, 8, 10])
def test_activation_float32_at_high_order(order):
    """Before: atan2(sin**p, cos**p) was atan2(0, 0) = 0 in float32 once both powers underflow
    (order 8 near pi/4), and its gradient NaN from order 4."""
    eta64 = torch.linspace(-3, 3, 301, dtype=torch.float64)
    eta32 = eta64.float().requires_grad_(True)
    f32 = neuron.activation(eta32, order)
    f32.sum().backward()
    eta = eta32.detach().double().requires_grad_(True)
    f64 = neuron.activation(eta, order)
    f64.sum().backward()
    assert torch.isfinite(eta32.grad).all()
    assert torch.allclose(f32.double(), f64, atol=1e-6)
    # the gradient is 2**order at pi/4: compare relative to that scale
    assert torch.allclose(eta32.grad.double(), eta.grad, atol=1e-5 * 2**order, rtol=1e-4)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_stable_forms_equal_the_closed_forms(order):
    eta = np.linspace(-3, 3, 41)
    c, s = neuron.neuron_amplitudes(eta, order)
    f = neuron.activation(eta, order)
    cos_f, sin_f = neuron.activation_rotation(eta, order)
    assert np.allclose(cos_f, np.cos(f), atol=1e-14) and np.allclose(sin_f, np.sin(f), atol=1e-14)
    reference = 0.9
    scaled = neuron.scaled_amplitudes(eta, order, reference)
    assert np.allclose(scaled[0], c / reference ** (2**order), rtol=1e-12)
    assert np.allclose(scaled[1], s / reference ** (2**order), rtol=1e-12)
    assert np.allclose(
        neuron.log_success_probability(eta, order),
        np.log(neuron.success_probability(eta, order)),
        atol=1e-12,
    )


def test_activation_rotation_keeps_tiny_amplitudes():
    """cos(f) of an f that rounds to pi/2 is 1e-8 in float32 whatever the truth; the rotation
    form keeps relative precision."""
    eta = torch.tensor([1.2], dtype=torch.float32)
    cos_f, _ = neuron.activation_rotation(eta, 6)
    truth = np.abs(1 / np.tan(1.2)) ** 64  # cos f = 1/sqrt(1 + tan**128) ~ cot**64
    assert cos_f.item() == pytest.approx(truth, rel=1e-4)
    assert abs(torch.cos(neuron.activation(eta, 6)).item() - truth) > 1e-9  # the naive form


def test_log_success_probability_finite_where_the_probability_underflows():
    eta = torch.tensor([np.pi / 4], dtype=torch.float32)
    assert neuron.success_probability(eta, 8).item() == 0.0
    expected = 2 * 2**8 * np.log(np.sqrt(0.5)) + np.log(2)  # 2 * (1/2)**(2**8)
    assert neuron.log_success_probability(eta, 8).item() == pytest.approx(expected, rel=1e-6)
