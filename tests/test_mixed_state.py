"""The density-matrix mode (``mixed=True``, :mod:`pennylane_qrnn.engine.mixed`) against brute force:
the marginal of a step after measured ones is the sum over every measurement history of the pure
engine's postselected runs (issue 12 item 1), forward and gradients."""

import itertools

import pytest
import torch

from pennylane_qrnn import QRNN, Circuits, Exact, get_protocol
from pennylane_qrnn.engine import run_sequence
from pennylane_qrnn.engine.mixed import run_mixed
from pennylane_qrnn.errors import QRNNTypeError, QRNNValueError


def _model(mode, io_bits=1, workspace=2, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return QRNN(io_bits, workspace, mode=mode, dtype=dtype)


def _brute_marginal(ops, tokens, measured_steps, last, n_y):
    """P(y_last | neurons succeed through ``last``), summed over the outcomes of the measured
    steps before it, each history run postselected by the pure engine (differentiable)."""
    length = tokens.shape[0]
    numerator, denominator = 0.0, 0.0
    for history in itertools.product(range(n_y), repeat=len(measured_steps)):
        targets = torch.zeros_like(tokens)
        for step, y in zip(measured_steps, history, strict=True):
            targets[step, 0] = y
        skip = torch.ones(length, 1, dtype=torch.bool)
        skip[list(measured_steps) + [last], 0] = False
        run = run_sequence(ops, tokens, targets, skip_output=skip)
        weight = 1.0
        for step in range(last):
            weight = weight * run.neuron_success[step, 0]
        for step, y in zip(measured_steps, history, strict=True):
            weight = weight * run.log_probs[step, 0, y].exp()
        weight = weight * run.neuron_success[last, 0]
        numerator = numerator + weight * run.log_probs[last, 0].exp()
        denominator = denominator + weight
    return numerator / denominator


@pytest.mark.parametrize("mode", ["amplified", "postselect"])
@pytest.mark.parametrize("io_bits,workspace", [(1, 2), (2, 1)])
def test_marginal_after_measured_steps_is_the_sum_over_histories(mode, io_bits, workspace):
    model = _model(mode, io_bits, workspace, seed=3)
    n_y = 2**io_bits
    tokens = torch.tensor([[1], [0], [n_y - 1], [1]])
    skip = torch.tensor([[False], [True], [False], [False]])
    ops = model.operators()
    mixed = run_mixed(ops, tokens, skip_output=skip)
    brute = _brute_marginal(ops, tokens, [0, 2], 3, n_y)
    torch.testing.assert_close(mixed.log_probs[3, 0].exp(), brute, atol=1e-12, rtol=0)
    assert torch.isnan(mixed.log_probs[1]).all() and int(mixed.outcomes[1, 0]) == -1


def test_gradient_of_the_marginal_loss_equals_brute_force():
    model = _model("amplified", 1, 2, seed=5)
    tokens = torch.tensor([[1], [1], [0]])
    mixed = run_mixed(model.operators(), tokens)
    (grads_mixed,) = [torch.autograd.grad(-mixed.log_probs[2, 0, 1], list(model.parameters()))]
    brute = _brute_marginal(model.operators(), tokens, [0, 1], 2, 2)
    grads_brute = torch.autograd.grad(-brute[1].log(), list(model.parameters()))
    for a, b in zip(grads_mixed, grads_brute, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    assert any(float(g.abs().max()) > 1e-6 for g in grads_mixed)  # a real gradient


def test_pure_runs_are_unchanged_where_nothing_is_measured():
    """Teacher forcing (every step postselected), and the qpu protocol with only the last step
    scored: no mixture arises, so the density matrix is psi psi^T and every number is the pure
    engine's."""
    model = _model("amplified", 2, 2, seed=7)
    torch.manual_seed(1)
    tokens, targets = torch.randint(0, 4, (6, 5)), torch.randint(0, 4, (6, 5))
    ops = model.operators()
    pure, mixed = run_sequence(ops, tokens, targets), run_mixed(ops, tokens, targets)
    torch.testing.assert_close(mixed.log_probs, pure.log_probs, atol=1e-12, rtol=0)
    torch.testing.assert_close(
        mixed.state, pure.state.unsqueeze(2) * pure.state.unsqueeze(1), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(mixed.log_neuron_success, pure.log_neuron_success)
    skip = torch.ones(6, 5, dtype=torch.bool)
    skip[-1] = False
    pure = run_sequence(ops, tokens, None, skip_output=skip, generator=torch.Generator())
    mixed = run_mixed(ops, tokens, skip_output=skip)
    torch.testing.assert_close(mixed.log_probs[-1], pure.log_probs[-1], atol=1e-12, rtol=0)


def test_qrnn_forward_mixed_and_its_refusals():
    model = QRNN(1, 2, mode="amplified")
    tokens = torch.randint(0, 2, (4, 3))
    output = model(tokens, mixed=True, generator=torch.Generator().manual_seed(0))
    assert output.log_probs.dtype == torch.float32 and tuple(output.state.shape) == (3, 4, 4)
    torch.testing.assert_close(output.log_probs.exp().sum(-1), torch.ones(4, 3))
    assert bool(output.postselection.log_total.eq(0).all())  # amplified, nothing postselected
    with pytest.raises(QRNNTypeError, match="mixed must be a bool; got int"):
        model(tokens, mixed=1)
    circuit_model = QRNN(1, 1, executor=Circuits("default.qubit"))
    with pytest.raises(QRNNValueError, match="needs an executor that simulates mixed states"):
        circuit_model(tokens, mixed=True)
    assert Exact.supports_mixed_state and not Circuits.supports_mixed_state


def test_qpu_training_masks_use_the_mixture_where_a_scored_step_follows_a_measured_one():
    qpu = get_protocol("qpu")
    forced = torch.zeros(3, 2, dtype=torch.bool)
    scored = torch.tensor([[True, True], [False, False], [True, True]])
    assert qpu.needs_mixture(forced, scored)
    assert qpu.training_masks(forced, scored, mixed_ok=True)["mixed"] is True
    with pytest.raises(QRNNValueError, match="mixed=True"):
        qpu.training_masks(forced, scored, mixed_ok=False)
    last_only = torch.tensor([[False, False], [False, False], [True, True]])
    assert not qpu.needs_mixture(forced, last_only)
    assert "mixed" not in qpu.training_masks(forced, last_only, mixed_ok=True)
    assert not get_protocol("measured").needs_mixture(forced, scored)


def test_elman_xor_trains_under_the_qpu_protocol_on_mixed_states(tmp_path):
    from pennylane_qrnn.training import TrainConfig, Trainer

    config = TrainConfig(
        task="elman-xor", protocol="qpu", mode="amplified", steps=3, batch_size=4, seed=0
    )
    trainer = Trainer(config, tmp_path / "run")
    first = trainer.train_step()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    second = trainer.train_step()
    assert all(0 < r["loss"] < 10 for r in (first, second))
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
