"""The exact engines under torch.compile and torch.func, and float32 in, float32 out on every path.

Compiling with inductor (the default backend) costs tens of seconds on this machine, so the fast
tests compile with ``aot_eager`` (Dynamo's graph capture and AOTAutograd's backward, without
generating C++), sharing one compiled function per engine and dtype; the inductor checks are
marked slow.
"""

import warnings

import numpy as np
import pytest
import torch

from pennylane_qrnn import QRNN, neuron
from pennylane_qrnn.engine import CellOperators, build_operators, run_sequence
from pennylane_qrnn.engine.statevector import run_statevector
from pennylane_qrnn.engine.sweep import NeuronTables, SweepPlan, _Sweep
from pennylane_qrnn.executors import Circuits, Exact

METHODS = ["transfer-matrix", "statevector"]
#: (atol, rtol): float32 log-probabilities reach about 10 in size, where inductor's reordered sums
#: differ from eager by a few units in the last place (1e-6 relative)
TOLERANCE = {torch.float64: (1e-10, 0.0), torch.float32: (1e-5, 1e-5)}


def _model(method, dtype, seed=0):
    torch.manual_seed(seed)
    model = QRNN(2, 2, 1, 2, 2, executor=Exact(method), dtype=dtype)
    with torch.no_grad():
        for weight in model.parameters():
            weight.uniform_(-1, 1)
    return model


def _tokens():
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 4, (6, 3), generator=generator)


def _step(model):
    def step(tokens):
        log_probs, state = model(tokens[:-1], tokens[1:])
        return log_probs, state, model.loss(log_probs, tokens[1:])

    return step


def _grads(model, loss):
    return torch.autograd.grad(loss, list(model.parameters()))


@pytest.fixture(scope="module")
def compiled():
    """One model and its compiled training step per (method, dtype, backend), built once."""
    cache = {}

    def get(method, dtype, backend="aot_eager"):
        key = (method, dtype, backend)
        if key not in cache:
            model = _model(method, dtype)
            cache[key] = model, torch.compile(_step(model), backend=backend)
        return cache[key]

    yield get
    torch._dynamo.reset()


def _check_compiled_matches_eager(compiled, method, dtype, backend):
    model, step = compiled(method, dtype, backend)
    tokens = _tokens()
    log_probs, state, loss = _step(model)(tokens)
    grads = _grads(model, loss)
    for _ in range(2):  # the first call compiles, the second runs the compiled code
        c_log_probs, c_state, c_loss = step(tokens)
    atol, rtol = TOLERANCE[dtype]
    assert c_log_probs.dtype == dtype and c_state.dtype == dtype
    torch.testing.assert_close(c_log_probs, log_probs, atol=atol, rtol=rtol)
    torch.testing.assert_close(c_state, state, atol=atol, rtol=rtol)
    for c_grad, grad in zip(_grads(model, c_loss), grads, strict=True):
        assert c_grad.dtype == dtype
        torch.testing.assert_close(c_grad, grad, atol=atol, rtol=rtol)
    assert grads[0].abs().sum() > 0  # the comparison is not between zeros


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", METHODS)
def test_compiled_model_matches_eager(compiled, method, dtype):
    _check_compiled_matches_eager(compiled, method, dtype, "aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", METHODS)
def test_inductor_compiled_model_matches_eager(compiled, method, dtype):
    _check_compiled_matches_eager(compiled, method, dtype, "inductor")


def test_engines_break_graphs_only_where_designed():
    """build_operators is one graph after its host-side checks; run_sequence and run_statevector
    break only around their checks and their recurrences (engine.transforms)."""
    torch._dynamo.reset()
    model = _model("transfer-matrix", torch.float64)
    tokens = _tokens()
    explained = torch._dynamo.explain(build_operators)(model.layout, *model.weights())
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    assert len(explained.graphs[0].graph.nodes) > 100  # the whole build

    def transfer(weights):
        operators = build_operators(model.layout, *weights)
        return run_sequence(operators, tokens[:-1], tokens[1:]).log_probs

    def statevector(weights):
        return run_statevector(model.layout, weights, tokens[:-1], tokens[1:]).log_probs

    for function, breaks in ((transfer, 3), (statevector, 2)):
        torch._dynamo.reset()
        explained = torch._dynamo.explain(function)(model.weights())
        reasons = [reason.reason for reason in explained.break_reasons]
        assert explained.graph_break_count <= breaks, reasons
        assert all("wrapped with `torch.compiler.disable`" in reason for reason in reasons)


@pytest.mark.parametrize("method", METHODS)
def test_func_grad_equals_autograd(method):
    model = _model(method, torch.float64)
    tokens = _tokens()
    params = dict(model.named_parameters())

    def loss(weights):
        log_probs, _ = torch.func.functional_call(model, weights, (tokens[:-1], tokens[1:]))
        return model.loss(log_probs, tokens[1:])

    functional = torch.func.grad(loss)(params)
    expected = _grads(model, loss(params))
    for name, grad in zip(params, expected, strict=True):
        torch.testing.assert_close(functional[name], grad, atol=1e-12, rtol=0)
    assert sum(float(g.abs().sum()) for g in expected) > 0


def test_vmap_over_transfer_matrices():
    """torch.func.vmap through run_sequence over a stack of operators (an ensemble) equals one
    run per member (the recurrence's vmap rule)."""
    models = [_model("transfer-matrix", torch.float64, seed) for seed in range(3)]
    layout, tokens = models[0].layout, _tokens()
    with torch.no_grad():
        operators = [model.operators() for model in models]
    write = torch.stack([o.write_stage for o in operators])
    output = torch.stack([o.output_stage for o in operators])

    def run(w, o):
        return run_sequence(CellOperators(w, o, layout), tokens[:-1], tokens[1:]).log_probs

    mapped = torch.func.vmap(run)(write, output)
    assert torch.equal(mapped, torch.stack([run(w, o) for w, o in zip(write, output, strict=True)]))
    assert not torch.equal(mapped[0], mapped[1])


def test_vmap_over_statevector_tables():
    """The statevector recurrence's vmap rule: mapped over the neuron tables of three models."""
    models = [_model("statevector", torch.float64, seed) for seed in range(3)]
    layout, tokens = models[0].layout, _tokens()
    with torch.no_grad():
        tables = [NeuronTables.build(layout, model.weights()) for model in models]
    stacked = [torch.stack(parts) for parts in zip(*(t.tensors for t in tables), strict=True)]
    state = torch.zeros(tokens.shape[1], 2**layout.workspace, dtype=torch.float64)
    state[:, 0] = 1

    def run(*tensors):
        plan = SweepPlan(tables[0], tokens[:-1], tokens[1:], None, None)
        return _Sweep.apply(plan, state, *tensors)[0]

    mapped = torch.func.vmap(run)(*stacked)
    for index, table in enumerate(tables):
        assert torch.equal(mapped[index], run(*table.tensors))
    assert not torch.equal(mapped[0], mapped[1])


def test_neuron_maths_on_torch_tensors_equals_the_numpy_path():
    """The neuron module takes torch's functions directly for torch tensors (what the compiled
    engine traces); they give the numbers of its numpy path (pennylane.math dispatch)."""
    generator = np.random.default_rng(3)
    weights = generator.normal(size=(4, neuron.num_weights(4, 2)))
    eta_np = neuron.eta_table(weights, 4, 2)
    eta = neuron.eta_table(torch.tensor(weights), 4, 2)
    np.testing.assert_allclose(eta.numpy(), eta_np, rtol=1e-15, atol=1e-15)
    reference = float(np.maximum(np.abs(np.cos(eta_np)), np.abs(np.sin(eta_np))).max())
    for order in (1, 3):
        pairs = [
            (
                neuron.scaled_amplitudes(eta, order, reference),
                neuron.scaled_amplitudes(eta_np, order, reference),
            ),
            (neuron.activation_rotation(eta, order), neuron.activation_rotation(eta_np, order)),
            ((neuron.activation(eta, order),), (neuron.activation(eta_np, order),)),
            (
                (neuron.log_success_probability(eta, order),),
                (neuron.log_success_probability(eta_np, order),),
            ),
        ]
        for mine, theirs in pairs:
            for a, b in zip(mine, theirs, strict=True):
                assert isinstance(a, torch.Tensor)
                np.testing.assert_allclose(a.numpy(), b, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize(
    "executor",
    [Exact("transfer-matrix"), Exact("statevector"), Circuits("default.qubit")],
    ids=["transfer-matrix", "statevector", "circuits"],
)
def test_float32_in_float32_out(executor):
    torch.manual_seed(0)
    model = QRNN(1, 2, 1, 1, 2, executor=executor, dtype=torch.float32)
    tokens = torch.randint(0, 2, (4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        output = model(tokens[:-1], tokens[1:])
    tensors = {"log_probs": output.log_probs}
    if output.state is not None:
        tensors["state"] = output.state
    for name in ("log_neuron", "log_teacher_forcing", "log_total"):
        tensors[name] = getattr(output.postselection, name)
    loss = model.loss(output.log_probs, tokens[1:])
    tensors["loss"] = loss
    for weight, grad in zip(model.parameters(), _grads(model, loss), strict=True):
        tensors[f"grad of {tuple(weight.shape)}"] = grad
    assert {name: t.dtype for name, t in tensors.items()} == dict.fromkeys(tensors, torch.float32)
