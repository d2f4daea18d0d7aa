"""The exact engine's own pieces: both token-write strategies, the hand-written backward pass,
and its validation."""

import math
import warnings

import pytest
import torch

from pennylane_qrnn import engine, memory
from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence
from pennylane_qrnn.engine.operators import _Rescaler
from pennylane_qrnn.engine.recurrence import _Plan
from pennylane_qrnn.errors import ModelSizeError, NonFiniteError
from pennylane_qrnn.nn import QRNN


def _operators(io, ws, stages=1, degree=2, order=2, scale=0.7):
    model = QRNN(io, ws, stages, degree, order, dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-scale, scale)
    return model.operators()


def test_grouped_and_one_hot_writes_agree(monkeypatch):
    operators = _operators(2, 6)  # 64 workspace amplitudes: the grouped strategy
    tokens = torch.randint(0, 4, (5, 9))
    targets = torch.randint(0, 4, (5, 9))
    grouped = run_sequence(operators, tokens, targets)
    original = _Plan.__init__

    def one_hot(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.grouped = False

    monkeypatch.setattr(_Plan, "__init__", one_hot)
    dense = run_sequence(operators, tokens, targets)
    assert torch.allclose(grouped.log_probs, dense.log_probs, atol=1e-12)
    assert torch.allclose(grouped.state, dense.state, atol=1e-12)


@pytest.mark.parametrize("workspace", [2, 6])
def test_backward_pass_gradcheck(workspace):
    operators = _operators(1, workspace, stages=0, degree=1, order=1, scale=0.5)
    length, batch = (3, 2) if workspace < 6 else (2, 1)
    tokens = torch.randint(0, 2, (length, batch))
    targets = torch.randint(0, 2, (length, batch))
    write = operators.write_stage.detach().requires_grad_(True)
    output = operators.output_stage.detach().requires_grad_(True)
    state = torch.randn(batch, 2**workspace, dtype=torch.float64)
    state = (state / state.norm(dim=1, keepdim=True)).requires_grad_(True)
    weights = torch.randn(length, batch, 2, dtype=torch.float64)

    def function(w, o, s):
        ops = engine.CellOperators(w, o, operators.layout)
        result = run_sequence(ops, tokens, targets, state=s)
        return (result.log_probs * weights).sum() + result.state.sum()

    # the large case checks a random projection of the Jacobian (seconds instead of a minute)
    assert torch.autograd.gradcheck(
        function, (write, output, state), atol=1e-6, fast_mode=workspace >= 6
    )


def test_sampling_is_reproducible_and_collapses():
    operators = _operators(2, 3)
    tokens = torch.randint(0, 4, (6, 50))
    a = run_sequence(operators, tokens, generator=torch.Generator().manual_seed(1))
    b = run_sequence(operators, tokens, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.outcomes, b.outcomes)
    # replaying the sampled outcomes as targets gives the same run
    replay = run_sequence(operators, tokens, a.outcomes)
    assert torch.allclose(replay.log_probs, a.log_probs, atol=1e-12)


def test_neuron_success_is_one_when_amplified():
    layout = CellLayout(2, 3, 1, 2, 2, "amplified")
    from pennylane_qrnn import QRNNCell

    weights = [torch.rand(s, dtype=torch.float64) for s in QRNNCell.shape(2, 3, 1, 2).values()]
    result = run_sequence(
        build_operators(layout, *weights), torch.randint(0, 4, (4, 3)), torch.randint(0, 4, (4, 3))
    )
    assert torch.allclose(result.neuron_success, torch.ones(4, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 3, 1, 2, 2), ValueError, "io_bits must be an int >= 1; got 0"),
        ((1, True, 1, 2, 2), TypeError, r"workspace must be an int >= 1; got True \(bool\)"),
        ((1, 3, -1, 2, 2), ValueError, "stages must be an int >= 0; got -1"),
        ((1, 3, 1, 0, 2), ValueError, "degree must be an int >= 1; got 0"),
        ((1, 3, 1, 2, 0), ValueError, "order must be an int >= 1; got 0"),
        ((1, 3, 1, 2, 2, "fast"), ValueError, "mode must be one of"),
    ],
)
def test_layout_errors(args, error, match):
    with pytest.raises(error, match=match):
        CellLayout(*args)


# -- numerical range (issue 8, item 7) ------------------------------------------------------------


def _twin_models(order, mode, seed, io=2, ws=3, stages=1, degree=2, scale=1.0):
    """The same weights (exactly representable in float32) in a float64 and a float32 model."""
    torch.manual_seed(seed)
    exact = QRNN(io, ws, stages, degree, order, mode, dtype=torch.float64)
    with torch.no_grad():
        for p in exact.parameters():
            p.uniform_(-scale, scale)
            p.copy_(p.float().double())
    single = QRNN(io, ws, stages, degree, order, mode, dtype=torch.float32)
    single.load_state_dict({k: v.float() for k, v in exact.state_dict().items()})
    return exact, single


def _forward_backward(model, tokens, targets):
    output = model(tokens, targets)
    log_probs, state = output
    model.loss(log_probs, targets).backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()
    return log_probs.detach().double(), state.detach().double(), grads, output.postselection


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_matches_float64_at_every_order(order, mode, seed):
    """Before: float32 gradients were NaN from order 4 and the forward pass uniform from order 5.
    (Scored log-probabilities here reach -100; see the next test for where float32 ends.)"""
    exact, single = _twin_models(order, mode, seed)
    tokens, targets = torch.randint(0, 4, (6, 3)), torch.randint(0, 4, (6, 3))
    a = _forward_backward(exact, tokens, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("error", engine.NumericalRangeWarning)
        b = _forward_backward(single, tokens, targets)
    # "float32 precision" of a steep model: how far float64 itself moves when every weight
    # moves by a float32 rounding (up to 1e-3 relative in the gradient at order 5)
    nudged = QRNN(2, 3, 1, 2, order, mode, dtype=torch.float64)
    nudged.load_state_dict(exact.state_dict())
    with torch.no_grad():
        for p in nudged.parameters():
            p.mul_(1 + 6e-8 * torch.randn_like(p))
    c = _forward_backward(nudged, tokens, targets)
    assert (b[0] - a[0]).abs().max() <= 4 * (c[0] - a[0]).abs().max() + 1e-5
    assert torch.allclose(b[1], a[1], atol=1e-4)
    assert torch.isfinite(b[2]).all()
    assert (b[2] - a[2]).norm() <= 4 * (c[2] - a[2]).norm() + 1e-5 * a[2].norm()
    # the postselection bookkeeping: logs, finite and right, where the probabilities underflow
    assert torch.isfinite(b[3].log_total).all()
    assert torch.allclose(b[3].log_total.double(), a[3].log_total, rtol=1e-5, atol=1e-4)
    assert torch.allclose(b[3].log_neuron.double(), a[3].log_neuron, rtol=1e-5, atol=1e-4)


def test_float32_gradient_overflow_is_reported():
    """A scored outcome of probability below e**-100 at order 6: its gradient with respect to the
    transfer matrices exceeds the float32 range (1e40 in float64). The forward pass is still
    finite; the gradient is not, and a warning says so."""
    exact, single = _twin_models(6, "postselect", 6)
    tokens, targets = torch.randint(0, 4, (6, 3)), torch.randint(0, 4, (6, 3))
    a = _forward_backward(exact, tokens, targets)
    with pytest.warns(
        engine.NumericalRangeWarning, match="gradient of the transfer matrices overflowed"
    ):
        b = _forward_backward(single, tokens, targets)
    assert a[0].gather(2, targets.unsqueeze(2)).min() < -100
    assert torch.isfinite(b[0]).all()
    assert not torch.isfinite(b[2]).all()


def test_log_neuron_success_below_the_smallest_float32():
    exact, single = _twin_models(6, "postselect", 0)
    tokens = torch.randint(0, 4, (6, 3))
    a = engine.run_sequence(exact.operators(), tokens, tokens)
    b = engine.run_sequence(single.operators(), tokens, tokens)
    assert a.log_neuron_success.min() < math.log(torch.finfo(torch.float32).tiny)  # the point
    assert torch.allclose(b.log_neuron_success.double(), a.log_neuron_success, rtol=1e-5)
    assert torch.allclose(a.neuron_success, a.log_neuron_success.exp())
    assert torch.allclose(
        b.log_outcome_probability.double(), a.log_outcome_probability, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
def test_weight_gradients_through_the_rescaling(mode):
    """Order 7 in float64 renormalises the operators while they are built (every few neurons):
    the constant factors must not change the gradients."""
    torch.manual_seed(3)
    model = QRNN(1, 2, 1, 2, 7, mode, dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.6, 0.9)
    tokens, targets = torch.randint(0, 2, (3, 2)), torch.randint(0, 2, (3, 2))
    weights = [w.detach().clone().requires_grad_(True) for w in model.weights()]

    def function(*weights):
        operators = build_operators(model.layout, *weights)
        result = run_sequence(operators, tokens, targets)
        return result.log_probs, result.state

    assert torch.autograd.gradcheck(function, weights, atol=1e-7, rtol=1e-5)


def test_rescaling_is_exact(monkeypatch):
    """Renormalising after every neuron gives the same numbers as never (float64)."""
    model = QRNN(2, 3, 1, 2, 3, dtype=torch.float64)
    tokens, targets = torch.randint(0, 4, (5, 3)), torch.randint(0, 4, (5, 3))
    reference = run_sequence(model.operators(), tokens, targets)
    monkeypatch.setattr(_Rescaler, "__init__", _always_rescale(_Rescaler.__init__))
    operators = model.operators()
    assert (operators.log_write_scale != reference.log_neuron_success.new_zeros(1)).any()
    rescaled = run_sequence(operators, tokens, targets)
    assert torch.allclose(rescaled.log_probs, reference.log_probs, atol=1e-13)
    assert torch.allclose(rescaled.state, reference.state, atol=1e-13)
    assert torch.allclose(rescaled.log_neuron_success, reference.log_neuron_success, atol=1e-12)


def _always_rescale(original):
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.budget = 0.0

    return init


def test_nothing_representable_is_nan_with_a_warning():
    """Before: every branch underflowing gave a uniform distribution, without a word."""
    operators = _operators(2, 2)
    dead = engine.CellOperators(
        operators.write_stage, torch.zeros_like(operators.output_stage), operators.layout
    )
    tokens = torch.randint(0, 4, (3, 2))
    with pytest.warns(engine.NumericalRangeWarning, match="2 of 2 sequence"):
        result = run_sequence(dead, tokens, tokens)
    assert torch.isnan(result.log_probs).all()
    assert torch.isnan(result.log_neuron_success).all()


def test_a_tiny_state_is_rescaled():
    """A float32 state of size 1e-30 (its square underflows) gives the same run as the normalised
    one. Before: every q underflowed and the step read uniform."""
    operators = _operators(1, 2)
    operators = engine.CellOperators(
        operators.write_stage.float(), operators.output_stage.float(), operators.layout
    )
    state = torch.tensor([[0.6, 0.0, 0.8, 0.0]])
    tokens = torch.randint(0, 2, (3, 1))
    reference = run_sequence(operators, tokens, tokens, state=state)
    tiny = run_sequence(operators, tokens, tokens, state=state * 1e-30)
    assert torch.allclose(tiny.log_probs, reference.log_probs, atol=1e-5)


@pytest.mark.parametrize(
    "name", ["input_weights", "rotation_weights", "stage_weights", "output_weights"]
)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_weights_refused(name, bad):
    """Before: NaN or infinite weights gave NaN log-probabilities without an error."""
    model = QRNN(2, 3)
    with torch.no_grad():
        getattr(model, name).view(-1)[0] = bad
    with pytest.raises(NonFiniteError, match=f"{name} must be finite; got 1 NaN or infinite value"):
        model(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long))


# -- memory (issue 8, item 8) ----------------------------------------------------------------------


def test_sequence_memory_checked_before_running(monkeypatch):
    model = QRNN(1, 6)
    monkeypatch.setenv(memory.ENV_VARIABLE, "64M")
    with pytest.raises(
        ModelSizeError,
        match=r"memory for the exact engine on 3000 sequence\(s\) of "
        r"length 500 .* must be at most 64.0 MiB \(QRNN_MEMORY_LIMIT\); got an estimate of",
    ):
        model(torch.zeros(500, 3000, dtype=torch.long), torch.zeros(500, 3000, dtype=torch.long))
    model(torch.zeros(5, 3, dtype=torch.long))  # small runs still pass


def test_operator_memory_checked_before_building(monkeypatch):
    layout = CellLayout(1, 6, 1, 2, 2)
    model = QRNN(1, 6)
    monkeypatch.setenv(memory.ENV_VARIABLE, "100K")
    with pytest.raises(ModelSizeError, match="transfer matrices for io_bits=1, workspace=6"):
        build_operators(layout, *model.weights())


_MEASURE = """
import resource, sys, torch
from pennylane_qrnn.nn import QRNN
from pennylane_qrnn import memory
from pennylane_qrnn.executors import Exact
io, ws, stages, length, batch = map(int, sys.argv[1:])
model = QRNN(io, ws, stages, 1, 2, executor=Exact("transfer-matrix"))
tokens = torch.randint(0, 2**io, (length, batch))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
log_probs, _ = model(tokens, tokens)
model.loss(log_probs, tokens).backward()
used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
estimate = (memory.engine_operator_bytes(io, ws, stages, 4)
            + memory.engine_sequence_bytes(io, ws, length, batch, 4))
print(used, estimate)
"""


@pytest.mark.slow
@pytest.mark.parametrize("io, ws, stages, length, batch", [(2, 9, 1, 4, 4), (1, 5, 1, 100, 1000)])
def test_engine_estimates_bound_the_peak_memory(io, ws, stages, length, batch):
    """The estimates bound the growth of the process's peak memory, within a factor 4."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(io), str(ws), str(stages), str(length), str(batch)],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, memory.ENV_VARIABLE: "off"},
    )
    used, estimate = map(int, out.stdout.split())
    assert used <= estimate <= 4 * used
