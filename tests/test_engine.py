"""The exact engine's own pieces: both token-write strategies, the hand-written backward pass,
and its validation."""

import pytest
import torch

from pennylane_qrnn import engine
from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence
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
    original = engine._Plan.__init__

    def one_hot(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.grouped = False

    monkeypatch.setattr(engine._Plan, "__init__", one_hot)
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

    assert torch.autograd.gradcheck(function, (write, output, state), atol=1e-6)


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
    result = run_sequence(build_operators(layout, *weights), torch.randint(0, 4, (4, 3)), torch.randint(0, 4, (4, 3)))
    assert torch.allclose(result.neuron_success, torch.ones(4, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 3, 1, 2, 2), ValueError, "io_bits must be a positive int; got 0"),
        ((1, True, 1, 2, 2), ValueError, "workspace must be a positive int; got True"),
        ((1, 3, -1, 2, 2), ValueError, "stages must be a non-negative int; got -1"),
        ((1, 3, 1, 0, 2), ValueError, "degree must be at least 1; got 0"),
        ((1, 3, 1, 2, 0), ValueError, "order must be at least 1; got 0"),
        ((1, 3, 1, 2, 2, "fast"), ValueError, "mode must be one of"),
    ],
)
def test_layout_errors(args, error, match):
    with pytest.raises(error, match=match):
        CellLayout(*args)
