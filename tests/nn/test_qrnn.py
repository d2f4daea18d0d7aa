"""QRNN and QRNNCell modules: engine vs circuit path, the nn.RNN contract, errors, round-trips."""

import copy
import io
import math
import pickle

import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN, sequence_nll
from pennylane_qrnn.nn import QRNNCell

CONFIGS = [
    dict(io_bits=1, workspace=2, stages=1, degree=2, order=1),
    dict(io_bits=2, workspace=2, stages=1, degree=2, order=2),
    dict(io_bits=2, workspace=3, stages=0, degree=3, order=1),
]


def _randomise(model, scale=0.8):
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-scale, scale)
    return model


class TestEngineVsCircuits:
    @pytest.mark.parametrize("config", CONFIGS)
    @pytest.mark.parametrize("mode", ["postselect", "amplified"])
    def test_log_probs_and_gradients_default_qubit(self, config, mode):
        exact = _randomise(QRNN(**config, mode=mode, dtype=torch.float64))
        circuit = QRNN(**config, mode=mode, dtype=torch.float64, backend="default.qubit")
        circuit.load_state_dict(exact.state_dict())
        vocab = 2 ** config["io_bits"]
        tokens = torch.randint(0, vocab, (3, 2))
        targets = torch.randint(0, vocab, (3, 2))
        grads = []
        outputs = []
        for model in (exact, circuit):
            log_probs, _ = model(tokens, targets)
            model.loss(log_probs, targets).backward()
            outputs.append(log_probs.detach())
            grads.append(
                [
                    torch.zeros_like(p) if p.grad is None else p.grad.clone()
                    for p in model.parameters()
                ]
            )
        assert torch.allclose(outputs[0], outputs[1], atol=1e-6)
        for a, b in zip(*grads, strict=True):
            assert torch.allclose(a, b, atol=1e-6)

    @pytest.mark.parametrize("mode", ["postselect", "amplified"])
    def test_lightning_qubit(self, mode):
        config = CONFIGS[1]
        exact = _randomise(QRNN(**config, mode=mode, dtype=torch.float64))
        circuit = QRNN(**config, mode=mode, dtype=torch.float64, backend="lightning.qubit")
        circuit.load_state_dict(exact.state_dict())
        tokens, targets = torch.randint(0, 4, (3, 2)), torch.randint(0, 4, (3, 2))
        assert torch.allclose(exact(tokens, targets)[0], circuit(tokens, targets)[0], atol=1e-6)

    def test_sampling_paths_agree_on_outcomes(self):
        """Without targets both paths sample; feeding the sampled outcomes back as targets must
        reproduce the same log-probabilities on the other path."""
        config = CONFIGS[1]
        exact = _randomise(QRNN(**config, dtype=torch.float64))
        circuit = QRNN(**config, dtype=torch.float64, backend="default.qubit")
        circuit.load_state_dict(exact.state_dict())
        tokens = torch.randint(0, 4, (4, 2))
        generator = torch.Generator().manual_seed(3)
        output = circuit(tokens, generator=generator)
        log_probs, outcomes = output.log_probs, output.outcomes
        replay, _ = exact(tokens, outcomes)
        assert torch.allclose(log_probs, replay, atol=1e-6)


class TestContract:
    def test_shapes(self):
        model = QRNN(2, 3)
        tokens = torch.randint(0, 4, (7, 5))
        log_probs, state = model(tokens, tokens)
        assert log_probs.shape == (7, 5, 4)
        assert state.shape == (5, 8)
        assert torch.allclose(log_probs.exp().sum(-1), torch.ones(7, 5))
        assert torch.allclose(state.norm(dim=-1), torch.ones(5))

    def test_batch_first(self):
        model = QRNN(2, 3, batch_first=True)
        reference = QRNN(2, 3)
        reference.load_state_dict(model.state_dict())
        tokens = torch.randint(0, 4, (5, 7))  # (N, L)
        log_probs, state = model(tokens, tokens)
        expected, expected_state = reference(tokens.t(), tokens.t())
        assert log_probs.shape == (5, 7, 4)
        assert torch.allclose(log_probs, expected.transpose(0, 1))
        assert torch.allclose(state, expected_state)

    def test_unbatched(self):
        model = QRNN(2, 3)
        tokens = torch.randint(0, 4, (6,))
        log_probs, state = model(tokens, tokens)
        batched, batched_state = model(tokens.unsqueeze(1), tokens.unsqueeze(1))
        assert log_probs.shape == (6, 4) and state.shape == (8,)
        assert torch.allclose(log_probs, batched[:, 0]) and torch.allclose(state, batched_state[0])

    def test_initial_state_continues_a_sequence(self):
        model = QRNN(1, 3)
        tokens = torch.randint(0, 2, (8, 3))
        whole, final = model(tokens, tokens)
        first, middle = model(tokens[:5], tokens[:5])
        second, final_split = model(tokens[5:], tokens[5:], state=middle)
        assert torch.allclose(torch.cat([first, second]), whole, atol=1e-6)
        assert torch.allclose(final_split, final, atol=1e-6)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_dtype(self, dtype):
        model = QRNN(2, 3, dtype=dtype)
        assert all(p.dtype == dtype for p in model.parameters())
        log_probs, state = model(
            torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long)
        )
        assert log_probs.dtype == dtype and state.dtype == dtype
        assert (
            model.to(torch.float64)(torch.zeros(2, 1, dtype=torch.long))[0].dtype == torch.float64
        )

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
    def test_cuda(self):
        model = QRNN(2, 3, dtype=torch.float64)
        tokens = torch.randint(0, 4, (5, 4))
        expected, _ = model(tokens, tokens)
        model = model.to("cuda")
        got, state = model(tokens.cuda(), tokens.cuda())
        assert got.device.type == "cuda" and state.device.type == "cuda"
        assert torch.allclose(got.cpu(), expected, atol=1e-10)

    def test_parameters_visible(self):
        model = QRNN(3, 5, stages=1, degree=3)
        assert sum(p.numel() for p in model.parameters()) == 837
        assert set(model.state_dict()) == {
            "input_weights",
            "rotation_weights",
            "stage_weights",
            "output_weights",
        }

    def test_reset_parameters(self):
        model = QRNN(2, 4, stages=2)
        bias = torch.cat(
            [
                model.input_weights[:, 0],
                model.stage_weights[..., 0].flatten(),
                model.output_weights[:, 0],
            ]
        )
        assert abs(bias.mean() - math.pi / 4) < 0.05 and bias.std() < 0.1
        assert model.input_weights[:, 1:].abs().max() < 0.05
        assert model.rotation_weights.abs().max() < 0.05

    def test_extra_repr(self):
        assert repr(QRNN(2, 3)) == "QRNN(io_bits=2, workspace=3)"
        assert repr(QRNN(2, 3, stages=2, mode="amplified", batch_first=True)) == (
            "QRNN(io_bits=2, workspace=3, stages=2, mode='amplified', batch_first=True)"
        )

    def test_postselection_bookkeeping(self):
        model = QRNN(2, 3)
        tokens = torch.randint(0, 4, (6, 4))
        output = model(tokens, tokens)
        log_probs, stats = output.log_probs, output.postselection
        assert stats.neuron.shape == stats.teacher_forcing.shape == (6, 4)
        picked = log_probs.gather(2, tokens.unsqueeze(2)).squeeze(2).exp()
        assert torch.allclose(stats.teacher_forcing, picked.detach())
        assert torch.all((stats.neuron > 0) & (stats.neuron <= 1 + 1e-6))
        assert torch.allclose(stats.min_step, (stats.neuron * stats.teacher_forcing).min(0).values)
        assert torch.allclose(stats.amplification_rounds, stats.step.rsqrt().sum(0))
        # amplified neurons never fail
        amplified = QRNN(2, 3, mode="amplified")
        stats = amplified(tokens, tokens).postselection
        assert torch.allclose(stats.neuron, torch.ones(6, 4), atol=1e-5)

    def test_neuron_success_matches_circuit(self):
        """The neuron postselection probability of step 0 against the template circuit's
        measured (not postselected) ancillas."""
        from pennylane_qrnn import QRNNCell as CellTemplate

        model = _randomise(QRNN(1, 2, stages=1, degree=2, order=1, dtype=torch.float64))
        output = model(torch.tensor([[1]]), torch.tensor([[0]]))
        expected = output.postselection.neuron[0, 0]
        weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        op = CellTemplate(
            **weights,
            token=1,
            io_wires=[0],
            workspace_wires=[1, 2],
            ancilla_wires=[3],
            degree=2,
            order=1,
        )

        # P(all ancilla measurements give 0) = prod_k P(m_k = 0 | the earlier ones gave 0); each
        # factor from a circuit cut just before measurement k (earlier ones postselected)
        total = 1.0
        decomposition = op.decomposition()
        indices = [i for i, o in enumerate(decomposition) if isinstance(o, qml.ops.MidMeasure)]
        for index in indices:

            @qml.qnode(qml.device("default.qubit"), mcm_method="tree-traversal")
            def conditional():
                # the cell's decomposition writes token 1 itself; the qnode is called in this
                # iteration, so the loop variable is not bound late
                for o in decomposition[:index]:  # noqa: B023
                    qml.apply(o)
                return qml.probs(wires=decomposition[index].wires)  # noqa: B023

            total *= float(conditional()[0])
        assert total == pytest.approx(float(expected), rel=1e-8)


class TestCell:
    def test_cell_matches_sequence(self):
        sequence = QRNN(2, 3)
        cell = QRNNCell(2, 3)
        cell.load_state_dict(sequence.state_dict())
        tokens = torch.randint(0, 4, (4, 3))
        expected, final = sequence(tokens, tokens)
        state = None
        for t in range(4):
            log_probs, state = cell(tokens[t], tokens[t], state)
            assert torch.allclose(log_probs, expected[t], atol=1e-6)
        assert torch.allclose(state, final, atol=1e-6)

    def test_scalar_token(self):
        cell = QRNNCell(2, 3)
        log_probs, state = cell(torch.tensor(2), torch.tensor(1))
        assert log_probs.shape == (4,) and state.shape == (8,)


class TestSampling:
    def test_sample_reproducible_and_prefix_kept(self):
        model = QRNN(2, 3)
        prefix = torch.tensor([[1, 2], [3, 0]])  # (P=2, N=2)
        a = model.sample(prefix, 6, generator=torch.Generator().manual_seed(5))
        b = model.sample(prefix, 6, generator=torch.Generator().manual_seed(5))
        assert a.shape == (8, 2) and torch.equal(a, b) and torch.equal(a[:2], prefix)
        assert a.min() >= 0 and a.max() < 4

    def test_sample_follows_the_distribution(self):
        """One-step samples against the model's own distribution (chi-square-like bound)."""
        model = _randomise(QRNN(2, 2, dtype=torch.float64), 0.6)
        prefix = torch.full((1, 4000), 2)
        samples = model.sample(prefix, 1, generator=torch.Generator().manual_seed(0))[1]
        probs = model(torch.tensor([2]), torch.tensor([0]))[0][0].exp()
        freq = torch.bincount(samples, minlength=4).double() / 4000
        assert torch.all((freq - probs).abs() <= 5 * (probs * (1 - probs) / 4000).sqrt() + 1e-3)


class TestLoss:
    def test_masked_nll(self):
        log_probs = torch.log_softmax(torch.randn(4, 2, 3), -1)
        targets = torch.randint(0, 3, (4, 2))
        mask = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.bool)
        expected = (
            -sum(log_probs[t, n, targets[t, n]] for t in range(4) for n in range(2) if mask[t, n])
            / 4
        )
        assert torch.allclose(sequence_nll(log_probs, targets, mask), expected)
        assert torch.allclose(sequence_nll(log_probs, targets, mask, "sum"), expected * 4)

    @pytest.mark.parametrize(
        "args, match",
        [
            (
                (torch.zeros(4, 3, dtype=torch.long), None),
                r"targets must have shape \(4, 2\) to match log_probs; got \(4, 3\)",
            ),
            (
                (torch.zeros(4, 2, dtype=torch.long), torch.ones(4)),
                r"mask must have shape \(4, 2\); got \(4,\)",
            ),
        ],
    )
    def test_errors(self, args, match):
        with pytest.raises(ValueError, match=match):
            sequence_nll(torch.zeros(4, 2, 3), *args)

    def test_reduction_error(self):
        with pytest.raises(
            ValueError, match="reduction must be 'mean', 'sum' or 'none'; got 'avg'"
        ):
            sequence_nll(torch.zeros(1, 1, 2), torch.zeros(1, 1, dtype=torch.long), reduction="avg")


class TestErrors:
    @pytest.mark.parametrize(
        "tokens, targets, error, match",
        [
            (
                torch.tensor([[4]]),
                None,
                ValueError,
                r"tokens must lie in \[0, 3\] for io_bits=2; got values in \[4, 4\]",
            ),
            (torch.tensor([[-1]]), None, ValueError, r"tokens must lie in \[0, 3\]"),
            (
                torch.zeros(2, 2),
                None,
                TypeError,
                "tokens must be an integer tensor; got dtype torch.float32",
            ),
            (
                torch.zeros(2, 2, 2, dtype=torch.long),
                None,
                ValueError,
                r"tokens must have shape \(L, N\) or \(L,\); got \(2, 2, 2\)",
            ),
            (
                torch.zeros(3, 2, dtype=torch.long),
                torch.zeros(2, 2, dtype=torch.long),
                ValueError,
                r"targets must have the shape of tokens \(3, 2\); got \(2, 2\)",
            ),
            (
                torch.zeros(0, 2, dtype=torch.long),
                None,
                ValueError,
                "tokens must hold at least one step; got length 0",
            ),
        ],
    )
    def test_bad_tokens(self, tokens, targets, error, match):
        with pytest.raises(error, match=match):
            QRNN(2, 3)(tokens, targets)

    def test_bad_state(self):
        with pytest.raises(ValueError, match=r"state must have shape \(2, 8\); got \(2, 4\)"):
            QRNN(2, 3)(torch.zeros(3, 2, dtype=torch.long), state=torch.zeros(2, 4))

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(io_bits=0), ValueError, "io_bits must be an int >= 1; got 0"),
            (dict(workspace=2.5), TypeError, "workspace must be an int >= 1; got 2.5"),
            (dict(stages=-1), ValueError, "stages must be an int >= 0; got -1"),
            (dict(mode="fast"), ValueError, "mode must be one of"),
            (dict(order=0), ValueError, "order must be an int >= 1; got 0"),
            (
                dict(backend=3),
                TypeError,
                "backend must be None, a PennyLane device or its name; got int",
            ),
        ],
    )
    def test_bad_construction(self, kwargs, error, match):
        args = dict(io_bits=2, workspace=3)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            QRNN(**args)

    def test_parameter_shift_with_postselect_refused(self):
        # refused when the model is built, before anything runs
        with pytest.raises(
            ValueError, match="diff_method must not be 'parameter-shift' with mode='postselect'"
        ):
            QRNN(1, 2, backend="default.qubit", diff_method="parameter-shift")

    def test_too_few_device_wires(self):
        model = QRNN(1, 2, backend=qml.device("default.qubit", wires=3))
        with pytest.raises(
            ValueError, match="device must have at least 5 wires for I=1, H=2, 2 ancillas; got 3"
        ):
            model(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))


class TestRoundTrips:
    @pytest.mark.parametrize("backend", [None, "lightning.qubit", "device-object"])
    def test_pickle_deepcopy_state_dict(self, backend):
        if backend == "device-object":
            backend = qml.device("lightning.qubit", wires=5)
        model = QRNN(1, 2, dtype=torch.float64, backend=backend)
        tokens = torch.tensor([[1], [0]])
        expected, _ = model(tokens, tokens)  # builds (and caches) the live device
        for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
            assert clone.backend == model.backend
            got, _ = clone(tokens, tokens)
            assert torch.allclose(got, expected)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        fresh = QRNN(1, 2, dtype=torch.float64)
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        assert torch.allclose(fresh(tokens, tokens)[0], expected, atol=1e-10)


class TestSizeAndRange:
    """Issue 8, items 7 and 8: refusals before allocating; postselection logs that do not
    underflow."""

    @pytest.mark.parametrize(
        "args, kwargs",
        [((1, 24), dict(degree=1)), ((1, 26), {}), ((1, 40), {}), ((30, 1), {}), ((64, 1), {})],
    )
    def test_too_large_refused_at_construction(self, args, kwargs):
        from pennylane_qrnn.errors import ModelSizeError

        with pytest.raises(ModelSizeError, match=r"must be at most .*; got an estimate of"):
            QRNN(*args, **kwargs)

    def test_limit_from_the_environment(self, monkeypatch):
        from pennylane_qrnn.errors import ModelSizeError

        monkeypatch.setenv("QRNN_MEMORY_LIMIT", "2M")
        QRNN(1, 6)
        with pytest.raises(ModelSizeError, match=r"at most 2.0 MiB \(QRNN_MEMORY_LIMIT\)"):
            QRNN(1, 11)  # issue 10: 9 now fits (statevector engine)

    def test_postselection_logs_survive_float32(self):
        import warnings

        from pennylane_qrnn.engine import NumericalRangeWarning

        exact = _randomise(QRNN(2, 3, order=5, dtype=torch.float64), scale=1.0)
        with torch.no_grad():
            for p in exact.parameters():
                p.copy_(p.float().double())
        single = QRNN(2, 3, order=5)
        single.load_state_dict({k: v.float() for k, v in exact.state_dict().items()})
        tokens = torch.randint(0, 4, (6, 3))
        a = exact(tokens, tokens).postselection
        with warnings.catch_warnings():
            warnings.simplefilter("error", NumericalRangeWarning)
            b = single(tokens, tokens).postselection
        assert a.log_total.min() < -104  # whole sequences are below the smallest float32 ...
        assert torch.isfinite(b.log_total).all()  # ... their logs do not
        assert torch.allclose(b.log_total.double(), a.log_total, rtol=1e-4)
        assert torch.allclose(b.log_neuron.double(), a.log_neuron, rtol=1e-4)
