"""Steps that skip their output stage, and the QPU-runnable protocol built on them (issue 12,
item 1): both exact engines against each other and against a brute-force statevector written
here (every lane of the register, every neuron as an explicit 2x2 map per basis state), forward
and gradients, in float64."""

import itertools
import math

import pytest
import torch

from pennylane_qrnn import memory
from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence
from pennylane_qrnn.engine.outcomes import NOT_MEASURED
from pennylane_qrnn.engine.statevector import run_statevector
from pennylane_qrnn.errors import QRNNTypeError, QRNNValueError
from pennylane_qrnn.executors import Exact
from pennylane_qrnn.nn import QRNN
from pennylane_qrnn.protocols import (
    FORCED_STEPS,
    MEASURED,
    PROTOCOLS,
    QPU,
    TEACHER_FORCED,
    Protocol,
)

F64 = torch.float64
METHODS = ("transfer-matrix", "statevector")


# -- the brute-force reference --------------------------------------------------------------


def _bits(n):
    index = torch.arange(2**n)
    return torch.stack([(index >> (n - 1 - lane)) & 1 for lane in range(n)], dim=1)


def _map(state, bits, target, cos, sin):
    """``[[cos, -sin], [sin, cos]]`` on lane ``target`` of the full register, per basis state
    (``cos``, ``sin`` do not depend on the target's own bit)."""
    n = bits.shape[1]
    partner = torch.arange(2**n) ^ (1 << (n - 1 - target))
    other = state[partner]
    return torch.where(bits[:, target] == 0, cos * state - sin * other, sin * other + cos * state)


def _neuron(state, bits, layout, weights, target):
    """A neuron on ``target`` of the full register: ``eta = sum_A theta_A prod_{i in A} x_i`` over
    the subsets of its controls up to the degree (bias first, sizes ascending, lexicographic),
    then ``(cos eta**p, sin eta**p)`` (postselect) or its normalisation (amplified)."""
    controls = layout.controls(target)
    subsets = [
        subset
        for size in range(min(layout.degree, len(controls)) + 1)
        for subset in itertools.combinations(controls, size)
    ]
    assert len(subsets) == weights.shape[0]
    eta = sum(
        theta * torch.prod(bits[:, list(subset)], dim=1).to(F64)
        for theta, subset in zip(weights, subsets, strict=True)
    )
    power = 2**layout.order
    cos, sin = torch.cos(eta) ** power, torch.sin(eta) ** power
    if layout.mode == "amplified":
        norm = torch.sqrt(cos**2 + sin**2)
        cos, sin = cos / norm, sin / norm
    return _map(state, bits, target, cos, sin)


def _brute_step(layout, weights, psi, token, skip):
    """One step from the workspace state ``psi``: the unnormalised branches ``u`` ``(2**I,
    2**H)``, or with ``skip`` the workspace state after the reset alone ``(2**H,)``."""
    input_weights, rotation_weights, stage_weights, output_weights = weights
    io, ws = layout.io_bits, layout.workspace
    bits = _bits(io + ws)
    # the token written by X gates on |0...0>: the i/o block ``token``
    state = torch.zeros(2**io, 2**ws, dtype=F64)
    state = torch.cat([state[:token], psi.unsqueeze(0), state[token + 1 :]]).reshape(-1)
    for lane in range(ws):
        state = _neuron(state, bits, layout, input_weights[lane], io + lane)
    for stage in range(layout.stages):
        for lane in range(ws):
            angle = rotation_weights[stage, lane]
            state = _map(state, bits, io + lane, torch.cos(angle), torch.sin(angle))
        for lane in range(ws):
            state = _neuron(state, bits, layout, stage_weights[stage, lane], io + lane)
    blocks = state.reshape(2**io, 2**ws)
    # the i/o lanes were only controls: they are still |token>, and the X gates reset them
    assert float(blocks.detach().abs().sum() - blocks[token].detach().abs().sum()) == 0
    v = blocks[token]
    if skip:
        return v
    state = torch.cat([v.unsqueeze(0), torch.zeros(2**io - 1, 2**ws, dtype=F64)]).reshape(-1)
    for lane in range(io):
        state = _neuron(state, bits, layout, output_weights[lane], lane)
    return state.reshape(2**io, 2**ws)


def _brute_force(layout, weights, tokens, outcomes, skip, state=None):
    """The runs of ``tokens`` ``(L, N)`` collapsing on ``outcomes`` where not ``skip``: per step
    ``log p`` (NaN where skipped), the final state, ``log`` of the neurons' success."""
    length, batch = tokens.shape
    n_y = 2**layout.io_bits
    log_probs, finals, log_success = [], [], []
    for item in range(batch):
        psi = torch.zeros(2**layout.workspace, dtype=F64)
        psi = torch.cat([psi.new_ones(1), psi[1:]]) if state is None else state[item]
        psi = psi / psi.norm()
        item_lp, item_success = [], []
        for step in range(length):
            token = int(tokens[step, item])
            if skip[step, item]:
                v = _brute_step(layout, weights, psi, token, True)
                item_lp.append(torch.full((n_y,), math.nan, dtype=F64))
                item_success.append(torch.log(v.square().sum()))
                psi = v / v.norm()
                continue
            u = _brute_step(layout, weights, psi, token, False)
            q = u.square().sum(1)
            item_lp.append(torch.log(q) - torch.log(q.sum()))
            item_success.append(torch.log(q.sum()))
            chosen = u[int(outcomes[step, item])]
            psi = chosen / chosen.norm()
        log_probs.append(torch.stack(item_lp))
        log_success.append(torch.stack(item_success))
        finals.append(psi)
    return torch.stack(log_probs, 1), torch.stack(finals), torch.stack(log_success, 1)


# -- helpers ----------------------------------------------------------------------------------


def _weights(layout, seed, scale=0.8):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(shape, generator=generator, dtype=F64) * 2 - 1) * scale
        for shape in layout.weight_shapes().values()
    ]


def _engine(method, layout, weights, tokens, targets, **kwargs):
    if method == "transfer-matrix":
        return run_sequence(build_operators(layout, *weights), tokens, targets, **kwargs)
    return run_statevector(layout, weights, tokens, targets, **kwargs)


def _functional(log_probs, state, skip, seed):
    """A random linear functional of the measured steps' log-probabilities and the state."""
    probe = torch.Generator().manual_seed(seed)
    w_lp = torch.randn(log_probs.shape, generator=probe, dtype=F64)
    w_state = torch.randn(state.shape, generator=probe, dtype=F64)
    measured = ~skip
    return (log_probs[measured] * w_lp[measured]).sum() + (state * w_state).sum()


def _grads(value, weights):
    return torch.autograd.grad(value, weights, allow_unused=True, materialize_grads=True)


def _close(x, y, atol=1e-10):
    scale = max([1.0] + y.detach().nan_to_num(0.0).abs().reshape(-1).tolist())
    assert torch.allclose(x, y, atol=atol * scale, rtol=0, equal_nan=True), (x - y).abs().max()


CONFIGS = [
    # io, workspace, stages, degree, order, mode
    (1, 2, 1, 2, 2, "postselect"),
    (2, 3, 1, 2, 1, "postselect"),
    (2, 2, 2, 3, 2, "amplified"),
    (1, 6, 0, 1, 1, "postselect"),  # 64 workspace amplitudes: the grouped write
    (3, 2, 1, 2, 3, "amplified"),
]


def _skip_mask(length, batch, generator):
    """Every kind of step: skipped by all items, by none, by some."""
    skip = torch.rand(length, batch, generator=generator) < 0.5
    skip[0], skip[1] = True, False
    skip[2, 0], skip[2, 1] = True, False
    return skip


# -- skipped output stages: the engines against the brute force --------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "io{}-H{}-S{}-d{}-o{}-{}".format(*c))
@pytest.mark.parametrize("sampled", [False, True], ids=["postselected", "sampled"])
def test_skipped_steps_match_the_brute_force(config, sampled):
    layout = CellLayout(*config)
    n_x = 2**layout.io_bits
    generator = torch.Generator().manual_seed(sum(config[:5]))
    length, batch = 5, 3
    tokens = torch.randint(0, n_x, (length, batch), generator=generator)
    targets = None if sampled else torch.randint(0, n_x, (length, batch), generator=generator)
    skip = _skip_mask(length, batch, generator)
    state = torch.randn(batch, 2**layout.workspace, generator=generator, dtype=F64)
    state = state / state.norm(dim=1, keepdim=True)
    results, grads = [], []
    for method in METHODS:
        weights = [w.requires_grad_(True) for w in _weights(layout, 1)]
        start = state.clone().requires_grad_(True)
        draw = torch.Generator().manual_seed(5)
        result = _engine(
            method, layout, weights, tokens, targets, state=start, generator=draw, skip_output=skip
        )
        value = _functional(result.log_probs, result.state, skip, 2)
        results.append(result)
        grads.append(_grads(value, weights + [start]))
    a, b = results
    assert torch.equal(a.outcomes, b.outcomes)  # the same draws from the same generator
    assert bool((a.outcomes[skip] == NOT_MEASURED).all())
    assert bool((a.outcomes[~skip] >= 0).all())
    if not sampled:
        assert torch.equal(a.outcomes[~skip], targets[~skip])
    # the brute force, collapsing on the engines' outcomes, with autograd for its gradients
    weights = [w.requires_grad_(True) for w in _weights(layout, 1)]
    start = state.clone().requires_grad_(True)
    log_probs, final, log_success = _brute_force(layout, weights, tokens, a.outcomes, skip, start)
    brute_grads = _grads(_functional(log_probs, final, skip, 2), weights + [start])
    for result, result_grads in zip(results, grads, strict=True):
        assert bool(result.log_probs[skip].isnan().all())
        _close(result.log_probs, log_probs)
        _close(result.state, final)
        _close(result.log_neuron_success, log_success.detach())
        chosen = log_probs.gather(2, a.outcomes.clamp_min(0).unsqueeze(2)).squeeze(2)
        _close(result.log_outcome_probability, torch.where(skip, 0.0, chosen).detach())
        assert bool((result.outcome_probability[skip] == 1).all())
        for x, y in zip(result_grads, brute_grads, strict=True):
            _close(x, y)
    if layout.mode == "amplified":
        assert torch.equal(a.log_neuron_success, torch.zeros_like(a.log_neuron_success))
        assert torch.equal(b.log_neuron_success, torch.zeros_like(b.log_neuron_success))


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_with_skipped_steps(method):
    layout = CellLayout(2, 2, 1, 2, 2)
    tokens = torch.tensor([[1, 3], [0, 2], [2, 2], [3, 0]])
    skip = torch.tensor([[True, True], [False, True], [True, False], [False, False]])
    weights = [w.requires_grad_(True) for w in _weights(layout, 4, scale=0.6)]
    state = torch.randn(2, 4, dtype=F64, requires_grad=True)

    def function(state, *weights):
        result = _engine(
            method, layout, weights, tokens, tokens.flip(0), state=state, skip_output=skip
        )
        return result.log_probs[~skip], result.state

    assert torch.autograd.gradcheck(function, (state, *weights), atol=1e-7)


def test_checkpoint_segments_replay_the_skipped_steps(monkeypatch):
    layout = CellLayout(2, 3, 1, 2, 2, "amplified")
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 4, (9, 4), generator=generator)
    skip = _skip_mask(9, 4, generator)
    runs = []
    for interval in (1, 3):
        monkeypatch.setattr(memory, "statevector_checkpoint_interval", lambda *a, k=interval: k)
        weights = [w.requires_grad_(True) for w in _weights(layout, 2)]
        draw = torch.Generator().manual_seed(8)
        result = run_statevector(layout, weights, tokens, None, generator=draw, skip_output=skip)
        runs.append((result, _grads(_functional(result.log_probs, result.state, skip, 1), weights)))
    (a, a_grads), (b, b_grads) = runs
    assert torch.equal(a.outcomes, b.outcomes)
    _close(a.log_probs, b.log_probs, atol=1e-13)
    for x, y in zip(a_grads, b_grads, strict=True):
        _close(x, y, atol=1e-13)


@pytest.mark.parametrize("method", METHODS)
def test_without_skipped_steps_nothing_changes(method):
    layout = CellLayout(2, 3, 1, 2, 2)
    weights = _weights(layout, 0)
    tokens = torch.randint(0, 4, (4, 5), generator=torch.Generator().manual_seed(0))
    plain = _engine(
        method, layout, weights, tokens, None, generator=torch.Generator().manual_seed(1)
    )
    masked = _engine(
        method,
        layout,
        weights,
        tokens,
        None,
        generator=torch.Generator().manual_seed(1),
        skip_output=torch.zeros(4, 5, dtype=torch.bool),
    )
    assert torch.equal(plain.outcomes, masked.outcomes)
    assert torch.equal(plain.log_probs, masked.log_probs)
    assert torch.equal(plain.state, masked.state)


@pytest.mark.parametrize("method", METHODS)
def test_skipped_steps_draw_no_random_number(method):
    layout = CellLayout(1, 2, 1, 1, 1)
    tokens = torch.randint(0, 2, (3, 4), generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(9)
    before = generator.get_state()
    skip = torch.ones(3, 4, dtype=torch.bool)
    result = _engine(
        method, layout, _weights(layout, 0), tokens, None, generator=generator, skip_output=skip
    )
    assert torch.equal(generator.get_state(), before)
    assert bool((result.outcomes == NOT_MEASURED).all())


@pytest.mark.parametrize(
    "skip, error, match",
    [
        (torch.zeros(3, 2, dtype=torch.long), QRNNTypeError, "got a torch.int64 tensor"),
        ([[True, False]] * 3, QRNNTypeError, "skip_output must be a bool tensor or None; got list"),
        (torch.zeros(2, 3, dtype=torch.bool), QRNNValueError, r"tokens' shape \(3, 2\); got"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_skip_output_validated(method, skip, error, match):
    layout = CellLayout(1, 2, 0, 1, 1)
    tokens = torch.zeros(3, 2, dtype=torch.long)
    with pytest.raises(error, match=match):
        _engine(method, layout, _weights(layout, 0), tokens, tokens, skip_output=skip)


# -- the protocol ---------------------------------------------------------------------------


def test_protocols_say_where_the_output_stage_runs():
    forced = torch.tensor([[True], [True], [False], [False]])
    scored = torch.tensor([[False], [False], [True], [True]])
    for protocol in (TEACHER_FORCED, FORCED_STEPS, MEASURED):
        assert not bool(protocol.skips_output(forced, scored).any())
        protocol.check_loss(forced, scored)  # unchanged: no refusal
    assert QPU.skips_output(forced, scored)[:, 0].tolist() == [True, True, False, False]
    assert not bool(QPU.postselected(forced, scored).any())
    assert QPU.samples_scored_steps
    assert PROTOCOLS["qpu"] is QPU  # selectable by name (the circuit and shot paths refuse it)
    masks = QPU.forward_masks(forced, scored)
    assert set(masks) == {"postselected", "skip_output"} and not masks["postselected"].any()
    assert set(MEASURED.forward_masks(forced, scored)) == {"postselected"}
    with pytest.raises(ValueError, match="output must be one of"):
        Protocol("x", "none", "", output="sometimes")


def test_qpu_refuses_a_loss_after_a_measured_step():
    """Elman-like scoring (a scored step followed by more scored steps) needs the mixture."""
    scored = torch.tensor([[False, False], [True, False], [False, False], [True, True]])
    forced = ~scored
    last = torch.tensor([[False], [False], [True]])
    QPU.check_loss(~last, last)  # only the last step scored: exact
    with pytest.raises(QRNNValueError, match=r"protocol 'qpu' trains exactly only.*1 sequence"):
        QPU.check_loss(forced, scored)


def _dna_like(length=6, batch=4, seed=0):
    """A marker token, then the base to remember, filler, and the base asked at the last step."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 4, (batch,), generator=generator)
    tokens = torch.randint(0, 4, (length, batch), generator=generator)
    tokens[1], tokens[2] = 7, base + 4
    targets = torch.zeros(length, batch, dtype=torch.long)
    targets[-1] = base
    scored = torch.zeros(length, batch, dtype=torch.bool)
    scored[-1] = True
    return tokens, targets, scored


@pytest.mark.parametrize("mode", ["amplified", "postselect"])
def test_qpu_loss_on_a_last_step_task_is_exact(mode):
    """One measurement, at the end: the loss -log p(target) is exact and differentiable, the
    same on both engines and the brute force; amplified neurons make every shot count."""
    tokens, targets, scored = _dna_like()
    forced = ~scored
    skip = QPU.skips_output(forced, scored)
    postselected = QPU.postselected(forced, scored)
    QPU.check_loss(forced, scored)
    losses, grads, outputs = [], [], []
    for method in METHODS:
        torch.manual_seed(0)
        model = QRNN(3, 3, 1, 2, 2, mode, dtype=F64, executor=Exact(method))
        with torch.no_grad():
            for weight, value in zip(model.weights(), _weights(model.layout, 6), strict=True):
                weight.copy_(value)
        output = model.executor.run(
            model,
            tokens,
            targets,
            postselected,
            None,
            torch.Generator().manual_seed(2),
            skip_output=skip,
        )
        loss = -output.log_probs[-1].gather(1, targets[-1].unsqueeze(1)).mean()
        losses.append(loss)
        grads.append(_grads(loss, list(model.weights())))
        outputs.append(output)
    weights = [w.requires_grad_(True) for w in _weights(model.layout, 6)]
    log_probs, _, log_success = _brute_force(
        model.layout, weights, tokens, outputs[0].outcomes, skip
    )
    brute = -log_probs[-1].gather(1, targets[-1].unsqueeze(1)).mean()
    brute_grads = _grads(brute, weights)
    for loss, loss_grads, output in zip(losses, grads, outputs, strict=True):
        _close(loss, brute)
        for x, y in zip(loss_grads, brute_grads, strict=True):
            _close(x, y)
        assert torch.equal(output.outcomes, outputs[0].outcomes)
        assert bool((output.outcomes[:-1] == NOT_MEASURED).all())
        stats = output.postselection
        # nothing postselected on the i/o lanes
        assert torch.equal(stats.log_teacher_forcing, torch.zeros(4, dtype=F64))
        if mode == "amplified":
            assert torch.equal(stats.log_total, torch.zeros(4, dtype=F64))
            assert torch.equal(stats.step, torch.ones(6, 4, dtype=F64))
        else:
            _close(stats.log_total, log_success.sum(0).detach())
            assert bool((stats.log_total < 0).all())


def test_qpu_last_step_matches_teacher_forcing_where_nothing_is_read():
    """In amplified mode a skipped step equals a step whose output stage is the identity: so the
    QPU run is the teacher-forced run of a model whose output neurons do nothing (eta = 0), at
    every step before the last."""
    tokens, targets, scored = _dna_like(seed=3)
    layout = CellLayout(3, 3, 1, 2, 2, "amplified")
    weights = _weights(layout, 7)
    skip = QPU.skips_output(~scored, scored)
    qpu = run_sequence(build_operators(layout, *weights), tokens, targets, skip_output=skip)
    idle = [w.clone() for w in weights]
    idle[3].zero_()  # output neurons rotate by f(0) = 0: the i/o lanes stay |0>, token 0 read
    forced = run_sequence(
        build_operators(layout, *idle), tokens[:-1], torch.zeros_like(tokens[:-1])
    )
    _close(qpu.log_neuron_success[:-1], forced.log_neuron_success)
    assert torch.allclose(forced.log_outcome_probability, torch.zeros(5, 4, dtype=F64), atol=1e-14)
    last = run_sequence(
        build_operators(layout, *weights), tokens[-1:], targets[-1:], state=forced.state
    )
    _close(qpu.log_probs[-1], last.log_probs[0])
