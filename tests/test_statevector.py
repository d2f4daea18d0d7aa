"""The statevector engine against the transfer-matrix engine (issue 10, items 1, 2 and 5): the same
numbers and gradients in float64, the same float32 behaviour, and the exact executor's choice."""

import math
import warnings

import pytest
import torch

from pennylane_qrnn import engine, memory
from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence
from pennylane_qrnn.engine.statevector import run_statevector
from pennylane_qrnn.errors import ModelSizeError, NonFiniteError, QRNNTypeError, QRNNValueError
from pennylane_qrnn.executors import Exact
from pennylane_qrnn.nn import QRNN

F64 = torch.float64


def _weights(layout, seed, scale=0.8, dtype=F64):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(shape, generator=generator, dtype=F64) * 2 * scale - scale).to(dtype)
        for shape in layout.weight_shapes().values()
    ]


def _run_both(layout, tokens, targets=None, state=None, collapse=None, seed=0, sample_seed=None):
    """Both engines on the same weights; returns their results and the gradients of a random
    functional of the log-probabilities and the final state w.r.t. the weights and the state."""
    results, grads = [], []
    probe = torch.Generator().manual_seed(seed + 100)
    length, batch = tokens.shape
    w_lp = torch.randn(length, batch, 2**layout.io_bits, generator=probe, dtype=F64)
    w_state = torch.randn(batch, 2**layout.workspace, generator=probe, dtype=F64)
    for method in ("transfer-matrix", "statevector"):
        weights = [w.requires_grad_(True) for w in _weights(layout, seed)]
        start = None if state is None else state.clone().requires_grad_(True)
        generator = None if sample_seed is None else torch.Generator().manual_seed(sample_seed)
        if method == "transfer-matrix":
            result = run_sequence(
                build_operators(layout, *weights), tokens, targets, start, generator, collapse
            )
        else:
            result = run_statevector(layout, weights, tokens, targets, start, generator, collapse)
        value = (result.log_probs * w_lp).sum() + (result.state * w_state).sum()
        inputs = weights + ([start] if start is not None else [])
        grads.append(torch.autograd.grad(value, inputs, allow_unused=True, materialize_grads=True))
        results.append(result)
    return results, grads


def _assert_same(results, grads, atol=1e-10):
    a, b = results
    assert torch.equal(a.outcomes, b.outcomes)
    for name in ("log_probs", "state", "log_neuron_success", "log_outcome_probability"):
        x, y = getattr(a, name), getattr(b, name)
        assert torch.allclose(x, y, atol=atol, rtol=0), (name, (x - y).abs().max())
    for x, y in zip(*grads, strict=True):
        scale = max([1.0] + x.abs().reshape(-1).tolist())
        assert torch.allclose(x, y, atol=atol * scale, rtol=0), (x - y).abs().max()


CONFIGS = [
    # io, workspace, stages, degree, order, mode
    (1, 1, 0, 1, 1, "postselect"),
    (1, 2, 1, 2, 2, "postselect"),
    (2, 3, 1, 2, 2, "postselect"),
    (2, 4, 2, 2, 3, "postselect"),
    (3, 2, 2, 3, 1, "postselect"),
    (3, 3, 0, 2, 2, "postselect"),
    (1, 3, 2, 3, 3, "amplified"),
    (2, 2, 1, 2, 1, "amplified"),
    (3, 4, 1, 2, 2, "amplified"),
    (2, 1, 1, 1, 3, "amplified"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "io{}-H{}-S{}-d{}-o{}-{}".format(*c))
def test_teacher_forcing_matches_the_transfer_matrices(config):
    layout = CellLayout(*config)
    n_x = 2**layout.io_bits
    generator = torch.Generator().manual_seed(sum(config[:5]))
    tokens = torch.randint(0, n_x, (4, 3), generator=generator)
    targets = torch.randint(0, n_x, (4, 3), generator=generator)
    _assert_same(*_run_both(layout, tokens, targets))


@pytest.mark.parametrize("config", CONFIGS[1::3], ids=lambda c: "io{}-H{}".format(*c))
def test_given_state_and_mixed_collapse_match(config):
    layout = CellLayout(*config)
    n_x, n_w = 2**layout.io_bits, 2**layout.workspace
    generator = torch.Generator().manual_seed(7)
    tokens = torch.randint(0, n_x, (5, 4), generator=generator)
    targets = torch.randint(0, n_x, (5, 4), generator=generator)
    collapse = torch.rand(5, 4, generator=generator) < 0.5
    state = torch.randn(4, n_w, generator=generator, dtype=F64)
    _assert_same(*_run_both(layout, tokens, targets, state, collapse, sample_seed=3))


@pytest.mark.parametrize("config", CONFIGS[2::4], ids=lambda c: "io{}-H{}".format(*c))
def test_sampling_draws_the_same_outcomes(config):
    """Same generator, same draws; and replaying the outcomes as targets gives the same run."""
    layout = CellLayout(*config)
    tokens = torch.randint(0, 2**layout.io_bits, (6, 5), generator=torch.Generator().manual_seed(1))
    results, grads = _run_both(layout, tokens, sample_seed=11)
    _assert_same(results, grads)
    replay, _ = _run_both(layout, tokens, results[0].outcomes)
    assert torch.allclose(replay[1].log_probs, results[1].log_probs, atol=1e-12)


def test_checkpoint_segments_do_not_change_the_gradients(monkeypatch):
    """Long sequences keep every k-th state (k = ceil(sqrt(L))) and recompute the rest."""
    layout = CellLayout(2, 3, 1, 2, 2)
    tokens = torch.randint(0, 4, (11, 3), generator=torch.Generator().manual_seed(2))
    every, every_grads = _run_both(layout, tokens, tokens)
    assert memory.statevector_checkpoint_interval(2, 3, 1, 11) == 1
    assert memory.statevector_checkpoint_interval(2, 3, 1, 10_000) == 100
    monkeypatch.setattr(memory, "statevector_checkpoint_interval", lambda *args: 4)
    segments, segment_grads = _run_both(layout, tokens, tokens)
    _assert_same([every[1], segments[1]], [every_grads[1], segment_grads[1]], atol=1e-13)


def test_gradcheck():
    layout = CellLayout(2, 2, 1, 2, 2)
    tokens = torch.tensor([[1, 3], [0, 2], [2, 2]])
    weights = [w.requires_grad_(True) for w in _weights(layout, 4, scale=0.6)]
    state = torch.randn(2, 4, dtype=F64, requires_grad=True)

    def function(state, *weights):
        result = run_statevector(layout, weights, tokens, tokens.flip(0), state)
        return result.log_probs, result.state

    assert torch.autograd.gradcheck(function, (state, *weights), atol=1e-7)


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
@pytest.mark.parametrize("order", [2, 5])
def test_float32_agrees_with_float64(mode, order):
    layout = CellLayout(2, 3, 1, 2, order, mode)
    tokens = torch.randint(0, 4, (6, 3), generator=torch.Generator().manual_seed(order))
    double = [w.requires_grad_(True) for w in _weights(layout, 5, scale=1.0)]
    single = [w.detach().float().requires_grad_(True) for w in double]
    with warnings.catch_warnings():
        warnings.simplefilter("error", engine.NumericalRangeWarning)
        a = run_statevector(layout, double, tokens, tokens)
        b = run_statevector(layout, single, tokens, tokens)
    assert torch.allclose(b.log_probs.double(), a.log_probs, atol=1e-4, rtol=1e-4)
    assert torch.allclose(b.state.double(), a.state, atol=1e-4)
    assert torch.allclose(b.log_neuron_success.double(), a.log_neuron_success, rtol=1e-5, atol=1e-4)
    ga = torch.autograd.grad(a.log_probs.sum(), double, materialize_grads=True)
    gb = torch.autograd.grad(b.log_probs.sum(), single, materialize_grads=True)
    for x, y in zip(ga, gb, strict=True):
        assert torch.allclose(y.double(), x, atol=1e-3 * max([1.0] + x.abs().reshape(-1).tolist()))


def test_log_neuron_success_below_the_smallest_float32():
    layout = CellLayout(2, 3, 1, 2, 6)
    tokens = torch.randint(0, 4, (6, 3), generator=torch.Generator().manual_seed(0))
    double = _weights(layout, 0, scale=1.0)
    single = [w.float() for w in double]
    a = run_statevector(layout, double, tokens, tokens)
    b = run_statevector(layout, single, tokens, tokens)
    reference = run_sequence(build_operators(layout, *double), tokens, tokens)
    assert a.log_neuron_success.min() < math.log(torch.finfo(torch.float32).tiny)
    assert torch.allclose(a.log_neuron_success, reference.log_neuron_success, atol=1e-9)
    assert torch.allclose(b.log_neuron_success.double(), a.log_neuron_success, rtol=1e-5)


def test_nothing_representable_is_nan_with_a_warning_like_the_engine():
    """Order 9 in float32: the output neuron's map on the states it meets is 2**-256 of its
    largest entry, 0 in float32, so every branch of every step underflows in both engines."""
    layout = CellLayout(2, 2, 0, 1, 9)
    weights = [torch.zeros(shape) for shape in layout.weight_shapes().values()]
    weights[0][:, 0] = 0.3
    # output neuron on lane 0: eta = pi/4 where the other i/o lane is 0, 0 where it is 1
    weights[3][:, 0] = math.pi / 4
    weights[3][:, -1] = -math.pi / 4
    tokens = torch.zeros(3, 2, dtype=torch.long)
    for run in (
        lambda: run_sequence(build_operators(layout, *weights), tokens, tokens),
        lambda: run_statevector(layout, weights, tokens, tokens),
    ):
        with pytest.warns(engine.NumericalRangeWarning, match="2 of 2 sequence"):
            result = run()
        assert torch.isnan(result.log_probs).all()
        assert torch.isnan(result.log_neuron_success).all()


def test_a_tiny_state_is_rescaled():
    layout = CellLayout(1, 2)
    weights = [w.float() for w in _weights(layout, 1)]
    state = torch.tensor([[0.6, 0.0, 0.8, 0.0]])
    tokens = torch.tensor([[1], [0], [1]])
    reference = run_statevector(layout, weights, tokens, tokens, state=state)
    tiny = run_statevector(layout, weights, tokens, tokens, state=state * 1e-30)
    assert torch.allclose(tiny.log_probs, reference.log_probs, atol=1e-5)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(generator=1), QRNNTypeError, "generator must be a torch.Generator or None; got int"),
        (dict(state=torch.zeros(2, 8)), QRNNValueError, "got 2 zero row"),
        (dict(state=torch.full((2, 8), math.nan)), NonFiniteError, "state must be finite"),
        (dict(nan=True), NonFiniteError, "input_weights must be finite; got 1 NaN"),
        (dict(weights=2), QRNNValueError, "weights must be the 4 tensors"),
        (dict(shape=True), QRNNValueError, r"output_weights must have shape \(2, 11\)"),
    ],
)
def test_validation_like_the_engine(change, error, match):
    layout = CellLayout(2, 3)
    weights = _weights(layout, 0, dtype=torch.float32)
    if change.pop("nan", False):
        weights[0][0, 0] = math.nan
    if change.pop("shape", False):
        weights[3] = weights[3][:, :-1]
    if "weights" in change:
        weights = weights[: change.pop("weights")]
    tokens = torch.zeros(3, 2, dtype=torch.long)
    with pytest.raises(error, match=match):
        run_statevector(layout, weights, tokens, tokens, **change)


def test_memory_checked_before_running(monkeypatch):
    layout = CellLayout(1, 6)
    weights = _weights(layout, 0, dtype=torch.float32)
    monkeypatch.setenv(memory.ENV_VARIABLE, "64M")
    tokens = torch.zeros(500, 3000, dtype=torch.long)
    with pytest.raises(
        ModelSizeError, match=r"memory for the statevector engine on 3000 sequence\(s\) of length"
    ):
        run_statevector(layout, weights, tokens, tokens)


# -- the exact executor's choice (issue 10, item 2) --------------------------------------------


class TestExactMethod:
    def test_plan_shows_the_method_and_the_choice(self):
        model = QRNN(2, 3)
        assert model.execution_plan() == {"backend": None, "path": "engine", "method": "auto"}
        plan = model.execution_plan(8, 20)
        assert plan["chosen"] == "transfer-matrix"
        assert set(plan["estimates"]) == {"transfer-matrix", "statevector"}
        assert plan["estimates"]["transfer-matrix"]["checkpoint_every"] == 1
        # DNA at L = 1000: the transfer matrices keep every 32nd state
        long = QRNN(2, 5).execution_plan(128, 1000)["estimates"]
        assert long["transfer-matrix"]["checkpoint_every"] == 32
        assert long["statevector"]["checkpoint_every"] == 32
        assert QRNN(1, 12).execution_plan(8, 20)["chosen"] == "statevector"
        fixed = QRNN(1, 12, executor=Exact("transfer-matrix"))
        assert fixed.execution_plan(8, 20)["chosen"] == "transfer-matrix"
        assert repr(fixed.executor) == "Exact(method='transfer-matrix')"

    def test_every_method_gives_the_same_numbers(self):
        reference = QRNN(2, 3, dtype=F64)
        tokens = torch.randint(0, 4, (5, 3), generator=torch.Generator().manual_seed(0))
        outputs = []
        for method in ("auto", "transfer-matrix", "statevector"):
            model = QRNN(2, 3, dtype=F64, executor=Exact(method))
            model.load_state_dict(reference.state_dict())
            outputs.append(model(tokens, tokens))
        for output in outputs[1:]:
            assert torch.allclose(output.log_probs, outputs[0].log_probs, atol=1e-12)
            assert torch.allclose(output.state, outputs[0].state, atol=1e-12)
            assert torch.allclose(
                output.postselection.log_total, outputs[0].postselection.log_total, atol=1e-12
            )

    def test_wide_models_are_accepted_and_run(self):
        """Before: QRNN(1, 16) was refused (its transfer matrices need 192 GiB)."""
        model = QRNN(1, 16, degree=1)
        assert model.execution_plan(2, 2)["chosen"] == "statevector"
        tokens = torch.tensor([[1, 0], [0, 1]])
        log_probs, state = model(tokens, tokens)
        assert log_probs.shape == (2, 2, 2) and state.shape == (2, 2**16)
        assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 2))
        with pytest.raises(ModelSizeError, match=r"\(method='transfer-matrix'\) must be at most"):
            QRNN(1, 16, degree=1, executor=Exact("transfer-matrix"))

    def test_bad_method(self):
        with pytest.raises(QRNNValueError, match="method must be one of"):
            Exact("fast")
        with pytest.raises(QRNNValueError, match="plan needs batch, length and layout together"):
            Exact().plan(batch=3)
