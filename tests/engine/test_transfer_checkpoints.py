"""The transfer-matrix engine's checkpointed backward pass (issue 10, item 5): long sequences keep
every ``k``-th state and recompute one segment at a time; the numbers and gradients are those of
the pass that keeps every step, for every kind of step the recurrence has."""

import pytest
import torch

from pennylane_qrnn import memory
from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence

F64 = torch.float64


def _weights(layout, seed):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(shape, generator=generator, dtype=F64) * 1.6 - 0.8).requires_grad_(True)
        for shape in layout.weight_shapes().values()
    ]


def _run(layout, tokens, **options):
    """One run and the gradients of a random functional of its outputs with respect to the
    weights, the initial state and (real-valued inputs) the token weights."""
    weights = _weights(layout, 3)
    batch = tokens.shape[1]
    probe = torch.Generator().manual_seed(5)
    state = torch.randn(batch, 2**layout.workspace, generator=probe, dtype=F64)
    state = (state / state.norm(dim=1, keepdim=True)).requires_grad_(True)
    leaves = [*weights, state]
    if tokens.is_floating_point():
        tokens = tokens.clone().requires_grad_(True)
        leaves.append(tokens)
    seed = options.pop("sample_seed", None)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    result = run_sequence(
        build_operators(layout, *weights), tokens, state=state, generator=generator, **options
    )
    coefficients = torch.randn(result.log_probs.shape, generator=probe, dtype=F64)
    log_probs = torch.nan_to_num(result.log_probs, nan=0.0)  # skipped steps are NaN constants
    value = (log_probs * coefficients).sum() + result.state.sum() + result.log_neuron_success.sum()
    grads = torch.autograd.grad(value, leaves, allow_unused=True, materialize_grads=True)
    return result, grads


def _compare(monkeypatch, layout, tokens, interval, **options):
    every, every_grads = _run(layout, tokens, **dict(options))
    calls = []

    def forced(*args):
        calls.append(args)
        return interval

    monkeypatch.setattr(memory, "transfer_checkpoint_interval", forced)
    segments, segment_grads = _run(layout, tokens, **dict(options))
    assert calls, "the engine did not ask for its checkpoint interval"
    assert torch.equal(every.outcomes, segments.outcomes)
    for name in ("log_probs", "state", "log_neuron_success", "log_outcome_probability"):
        a, b = getattr(every, name), getattr(segments, name)
        assert torch.allclose(a, b, atol=0, rtol=0, equal_nan=True), name
    for a, b in zip(every_grads, segment_grads, strict=True):
        assert a.abs().max() > 0
        assert torch.allclose(a, b, atol=1e-12 * float(a.abs().max()), rtol=0), (a - b).abs().max()


@pytest.mark.parametrize("interval", [2, 3, 4, 7])
def test_teacher_forced_segments_match(monkeypatch, interval):
    layout = CellLayout(2, 3, 1, 2, 2)
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 4, (11, 3), generator=generator)
    targets = torch.randint(0, 4, (11, 3), generator=generator)
    _compare(monkeypatch, layout, tokens, interval, targets=targets)


def test_grouped_writes_sampled_and_collapsed_steps(monkeypatch):
    """A workspace of 6 (the grouped write, one block per token), sampled outcomes replayed in
    the recomputation, a partial collapse and skipped output stages."""
    layout = CellLayout(1, 6, 1, 2, 2, "amplified")
    generator = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, 2, (9, 4), generator=generator)
    targets = torch.randint(0, 2, (9, 4), generator=generator)
    collapse = torch.rand(9, 4, generator=generator) < 0.5
    skip = torch.rand(9, 4, generator=generator) < 0.3
    skip[4] = True  # one step skipped for every sequence
    _compare(
        monkeypatch,
        layout,
        tokens,
        3,
        targets=targets,
        collapse=collapse,
        skip_output=skip,
        sample_seed=7,
    )


def test_real_valued_inputs(monkeypatch):
    layout = CellLayout(2, 2, 1, 2, 2)
    generator = torch.Generator().manual_seed(3)
    weights = torch.rand(8, 3, 4, generator=generator, dtype=F64)
    targets = torch.randint(0, 4, (8, 3), generator=generator)
    _compare(monkeypatch, layout, weights, 3, targets=targets)


def test_the_interval_follows_the_intermediates_size():
    # the paper's tasks at L <= 100 keep every step (DNA: io 2, H 5, batch 128; MNIST 0/1:
    # io 1, H 8, batch 100), at L = 1000 they checkpoint every ceil(sqrt(L)) = 32 steps
    assert memory.transfer_checkpoint_interval(2, 5, 100, 128) == 1
    assert memory.transfer_checkpoint_interval(1, 8, 100, 100) == 1
    assert memory.transfer_checkpoint_interval(2, 5, 1000, 128) == 32
    assert memory.transfer_checkpoint_interval(1, 8, 1000, 100, itemsize=8) == 32
    # the estimate used by the size guard and the automatic choice follows the same rule
    every = memory.engine_sequence_bytes(1, 8, 100, 100)
    long = memory.engine_sequence_bytes(1, 8, 1000, 100)
    assert long < 2 * every
