"""The executor design (issue 9, items 1 and 4): a QRNN is handed an executor; results come back
from the call; the old ``backend=`` spellings build the same executors and give the same numbers."""

import copy
import pickle

import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN, Circuits, Exact, SequenceOutput, Shots
from pennylane_qrnn.baselines import LSTMBaseline
from pennylane_qrnn.errors import QRNNTypeError, QRNNValueError
from pennylane_qrnn.executors import Executor, executor_for
from pennylane_qrnn.nn.contract import SequenceModel
from tests.conftest import requires_qiskit

TOKENS = torch.tensor([[1, 0], [0, 1], [1, 1]])
TARGETS = torch.tensor([[0, 1], [1, 1], [0, 0]])


def _pair(executor, **kwargs):
    """An exact model with random weights and a twin on ``executor`` holding them."""
    torch.manual_seed(0)
    exact = QRNN(1, 2, dtype=torch.float64, **kwargs)
    with torch.no_grad():
        for p in exact.parameters():
            p.uniform_(-1, 1)
    twin = QRNN(1, 2, dtype=torch.float64, executor=executor, **kwargs)
    twin.load_state_dict(exact.state_dict())
    return exact, twin


class TestOldSpellings:
    """``backend=`` and its options still work and build the executor they describe."""

    def test_default_is_exact(self):
        model = QRNN(1, 2)
        assert isinstance(model.executor, Exact) and model.backend is None
        assert model.execution_plan() == {"backend": None, "path": "engine", "method": "auto"}

    def test_postselecting_device_gives_circuits(self):
        model = QRNN(1, 2, backend="default.qubit", diff_method="backprop")
        assert isinstance(model.executor, Circuits)
        assert model.backend == "default.qubit" and model.diff_method == "backprop"
        assert model.execution_plan()["path"] == "circuits"

    def test_execution_gives_shots(self):
        model = QRNN(1, 2, backend="default.qubit", execution="native", shots=50, seed=3)
        assert isinstance(model.executor, Shots)
        assert model.execution_plan() == {
            "backend": "default.qubit",
            "path": "shots",
            "measurements": "native",
            "shots": 50,
        }

    @requires_qiskit
    def test_device_object_that_cannot_postselect_gives_shots(self):
        model = QRNN(1, 2, mode="amplified", backend=qml.device("qiskit.aer", wires=4, shots=99))
        assert isinstance(model.executor, Shots) and model.execution_plan()["shots"] == 99

    def test_same_numbers_as_the_explicit_executor(self):
        old = QRNN(1, 2, dtype=torch.float64, backend="default.qubit")
        new = QRNN(1, 2, dtype=torch.float64, executor=Circuits("default.qubit"))
        new.load_state_dict(old.state_dict())
        assert torch.equal(old(TOKENS, TARGETS).log_probs, new(TOKENS, TARGETS).log_probs)

    def test_budget_on_the_engine_is_kept(self):
        model = QRNN(1, 2, budget=2.5)
        assert model.budget == 2.5 and model.spending.spent == 0.0
        assert "budget_spent_usd" in model.state_dict()

    def test_executor_for_matches_the_constructor(self):
        assert isinstance(executor_for(), Exact)
        assert isinstance(executor_for("lightning.qubit"), Circuits)
        assert isinstance(executor_for("lightning.qubit", execution="native"), Shots)


class TestExecutorArgument:
    def test_circuits_agree_with_exact_forward_and_gradient(self):
        exact, circuit = _pair(Circuits("default.qubit", diff_method="backprop"))
        a, b = exact(TOKENS, TARGETS), circuit(TOKENS, TARGETS)
        assert torch.allclose(a.log_probs, b.log_probs, atol=1e-10)
        assert torch.equal(a.outcomes, TARGETS) and torch.equal(b.outcomes, TARGETS)
        a.log_probs.sum().backward()
        b.log_probs.sum().backward()
        for p, q in zip(exact.parameters(), circuit.parameters(), strict=True):
            assert torch.allclose(p.grad, q.grad, atol=1e-9)
        # the circuit path's postselection bookkeeping: i/o from its own probabilities
        assert torch.allclose(
            b.postselection.log_teacher_forcing, a.postselection.log_teacher_forcing, atol=1e-9
        )
        assert torch.isnan(b.postselection.neuron).all()  # the simulator postselects: unseen

    def test_shots_estimate_the_exact_distribution(self):
        exact, shots = _pair(
            Shots("default.qubit", shots=400, method="native", seed=7), mode="amplified"
        )
        a, b = exact(TOKENS, TARGETS), shots(TOKENS, TARGETS)
        assert b.state is None and len(b.shot_estimates) == 2
        measured = torch.isfinite(b.log_probs)
        assert measured[0].all()
        # the first step rests on every shot that passed the neurons: 4 sigma of binomial noise
        n = torch.tensor([float(e.survivors[0]) for e in b.shot_estimates])
        p = a.log_probs[0].exp()
        sigma = (p * (1 - p) / n.unsqueeze(1)).sqrt()
        assert ((b.log_probs[0].exp() - p).abs() <= 4 * sigma + 1e-12).all()
        assert not b.log_probs.requires_grad

    def test_executor_and_backend_options_exclude_each_other(self):
        with pytest.raises(QRNNValueError, match="either executor= or the backend options.*shots"):
            QRNN(1, 2, executor=Exact(), shots=10)
        with pytest.raises(QRNNValueError, match="backend"):
            QRNN(1, 2, executor=Exact(), backend="default.qubit")

    def test_executor_must_be_an_executor(self):
        with pytest.raises(QRNNTypeError, match="executor must be an Executor.*got str"):
            QRNN(1, 2, executor="default.qubit")

    def test_bad_executor_options(self):
        with pytest.raises(QRNNValueError, match="backend must be the name of an installed"):
            Circuits("no.such.device")
        with pytest.raises(QRNNValueError, match="diff_method must be one of.*got 'magic'"):
            QRNN(1, 2, executor=Circuits("default.qubit", diff_method="magic"))
        with pytest.raises(QRNNValueError, match="shots must be an int >= 1; got 0"):
            Shots("default.qubit", shots=0)
        with pytest.raises(QRNNTypeError, match="shots must be an int >= 1; got 2.5"):
            Shots("default.qubit", shots=2.5)
        with pytest.raises(QRNNValueError, match="on_insufficient_shots must be one of"):
            Shots("default.qubit", on_insufficient_shots="ignore")
        with pytest.raises(QRNNValueError, match="execution='dynamic' needs a Qiskit backend"):
            Shots("default.qubit", method="dynamic")

    def test_state_and_mixed_protocols_are_refused_where_unsupported(self):
        model = QRNN(1, 2, executor=Circuits("default.qubit"))
        with pytest.raises(QRNNValueError, match="state must be None on the circuit path"):
            model(TOKENS, TARGETS, state=torch.ones(2, 4) / 2)
        mixed = torch.tensor([[True, False], [True, True], [False, True]])
        with pytest.raises(QRNNValueError, match="needs the exact engine or the shot path"):
            model(TOKENS, TARGETS, postselected=mixed)
        with pytest.raises(QRNNValueError, match="sample needs an executor that carries"):
            model.sample(torch.tensor([1, 0]), 2)

    def test_repr_names_the_executor_and_hides_options(self):
        model = QRNN(1, 2, executor=Shots("default.qubit", shots=10, method="native"))
        assert "executor=Shots('default.qubit', shots=10, method='native')" in repr(model)
        spec = Circuits("default.qubit", device_options={"seed": 1234}).device
        assert "1234" not in repr(spec) and "seed" in repr(spec)

    def test_copies_drop_the_live_device(self):
        model = QRNN(1, 2, dtype=torch.float64, executor=Circuits("default.qubit"))
        model(TOKENS, TARGETS)  # builds the device
        assert model.executor.device._live is not None
        for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert clone.executor.device._live is None
            assert torch.equal(clone(TOKENS, TARGETS).log_probs, model(TOKENS, TARGETS).log_probs)


class TestResultsTravelWithTheCall:
    def test_output_unpacks_as_a_pair_and_carries_the_rest(self):
        model = QRNN(1, 2)
        output = model(TOKENS, TARGETS)
        assert isinstance(output, SequenceOutput) and len(output) == 2
        log_probs, state = output
        assert log_probs is output.log_probs and state is output.state
        assert output[0] is log_probs and output[1] is state
        assert torch.equal(output.outcomes, TARGETS)
        assert output.postselection.log_total.shape == (2,)
        assert output.executor == "exact"

    def test_batch_first_and_unbatched_outcomes_are_shaped_like_tokens(self):
        model = QRNN(1, 2, batch_first=True)
        assert model(TOKENS.t(), TARGETS.t()).outcomes.shape == (2, 3)
        assert QRNN(1, 2)(TOKENS[:, 0], TARGETS[:, 0]).outcomes.shape == (3,)

    def test_deprecated_attributes_warn_and_read_the_last_call(self):
        model = QRNN(1, 2)
        output = model(TOKENS, generator=torch.Generator().manual_seed(0))
        with pytest.warns(FutureWarning, match="model.last_outcomes is deprecated"):
            assert torch.equal(model.last_outcomes, output.outcomes)
        with pytest.warns(FutureWarning, match="model.postselection is deprecated"):
            assert model.postselection is output.postselection
        with pytest.warns(FutureWarning, match="last_shot_estimates is deprecated"):
            assert model.last_shot_estimates is None

    def test_collapse_is_the_former_name_of_postselected(self):
        model = QRNN(1, 2, dtype=torch.float64)
        mask = torch.tensor([[True, False], [True, True], [False, True]])
        gen = torch.Generator
        a = model(TOKENS, TARGETS, collapse=mask, generator=gen().manual_seed(1))
        b = model(TOKENS, TARGETS, postselected=mask, generator=gen().manual_seed(1))
        assert torch.equal(a.log_probs, b.log_probs) and torch.equal(a.outcomes, b.outcomes)
        with pytest.raises(QRNNValueError, match="not both"):
            model(TOKENS, TARGETS, collapse=mask, postselected=mask)

    def test_cell_returns_an_output_too(self):
        from pennylane_qrnn.nn import QRNNCell

        cell = QRNNCell(1, 2)
        output = cell(torch.tensor([1, 0]), torch.tensor([0, 1]))
        log_probs, state = output
        assert log_probs.shape == (2, 2) and state.shape == (2, 4)
        assert torch.equal(output.outcomes, torch.tensor([0, 1]))


def test_qrnn_and_baselines_follow_the_declared_contract():
    for model in (QRNN(1, 2), LSTMBaseline(1, 3)):
        assert isinstance(model, SequenceModel)
        assert isinstance(model(TOKENS, TARGETS), SequenceOutput)


def test_executors_are_executors():
    for executor in (Exact(), Circuits("default.qubit"), Shots("default.qubit", shots=5)):
        assert isinstance(executor, Executor)
        assert set(executor.plan()) >= {"backend", "path"}


def test_packed_sequences_are_refused_with_the_fix():
    from torch.nn.utils.rnn import pack_sequence

    packed = pack_sequence([torch.tensor([1, 0, 1]), torch.tensor([0, 1])])
    for model in (QRNN(1, 2), LSTMBaseline(1, 3)):
        with pytest.raises(QRNNTypeError, match="got a PackedSequence: pad it"):
            model(packed)


class TestBoundExecutor:
    """``Executor.bind``: what ``QRNN.sample`` runs on (the transfer matrices built once)."""

    def test_sample_equals_the_step_by_step_forward(self):
        torch.manual_seed(1)
        model = QRNN(2, 3, dtype=torch.float64)
        prefix = torch.tensor([[1, 2], [3, 0]])
        generated = model.sample(prefix, 4, generator=torch.Generator().manual_seed(5))
        state = model(prefix[:-1], prefix[1:]).state
        current, tokens, gen = prefix[-1], [prefix], torch.Generator().manual_seed(5)
        for _ in range(4):
            output = model(current.unsqueeze(0), state=state, generator=gen)
            state, current = output.state, output.outcomes[0]
            tokens.append(current.unsqueeze(0))
        assert torch.equal(generated, torch.cat(tokens))

    def test_a_weight_changed_in_place_is_seen(self):
        model = QRNN(1, 2, dtype=torch.float64, executor=Exact(method="transfer-matrix"))
        bound = model.executor.bind(model)
        before = bound.run(model, TOKENS, TARGETS, None, None, None).log_probs
        with torch.no_grad():
            model.output_weights.add_(0.3)
        after = bound.run(model, TOKENS, TARGETS, None, None, None).log_probs
        fresh = model(TOKENS, TARGETS).log_probs
        assert not torch.allclose(before, after) and torch.equal(after, fresh)
