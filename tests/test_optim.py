"""SPSA: the update rule by hand, convergence (quadratic, noisy, a QRNN), reproducibility, state."""

import math

import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.optim import SPSA

TARGET = torch.linspace(-1, 1, 20, dtype=torch.float64)


def _quadratic(theta):
    return ((theta - TARGET) ** 2).sum()


def _quadratic_small(theta):
    return ((theta - torch.tensor([1.0, -1.0, 0.5], dtype=theta.dtype)) ** 2).sum()


def _alternating_task():
    """Two phases of 0101..., twice: each step's target is the next token of the pattern."""
    tokens = torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]).t()  # (L, N)
    return tokens, 1 - tokens


class TestUpdateRule:
    def test_one_step_by_hand(self):
        theta = torch.nn.Parameter(torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64))
        start = theta.detach().clone()
        optimizer = SPSA(
            [theta],
            lr=0.2,
            perturbation=0.05,
            alpha=0.6,
            gamma=0.1,
            stability=2.0,
            generator=torch.Generator().manual_seed(7),
        )
        seen = []

        def closure():
            seen.append(theta.detach().clone())
            return _quadratic_small(theta)

        returned = optimizer.step(closure)

        delta = 2 * torch.randint(0, 2, (3,), generator=torch.Generator().manual_seed(7)) - 1
        delta = delta.to(torch.float64)
        a_0, c_0 = 0.2 / (1 + 2.0) ** 0.6, 0.05 / 1**0.1
        plus, minus = start + c_0 * delta, start - c_0 * delta
        assert len(seen) == 2  # two evaluations, whatever the dimension
        assert torch.allclose(seen[0], plus) and torch.allclose(seen[1], minus)
        l_plus, l_minus = float(_quadratic_small(plus)), float(_quadratic_small(minus))
        expected = start - a_0 * (l_plus - l_minus) / (2 * c_0) * delta
        assert torch.allclose(theta.detach(), expected, atol=1e-14)
        assert returned == pytest.approx((l_plus + l_minus) / 2)
        assert optimizer.step_count == 1
        assert optimizer.gains(optimizer.param_groups[0]) == pytest.approx(
            (0.2 / (2 + 2.0) ** 0.6, 0.05 / 2**0.1)
        )

    def test_closure_needs_no_backward_and_runs_without_grad(self):
        theta = torch.nn.Parameter(torch.zeros(4))
        grad_enabled = []

        def closure():
            grad_enabled.append(torch.is_grad_enabled())
            return _quadratic_small(theta[:3])

        SPSA([theta]).step(closure)
        assert grad_enabled == [False, False]
        assert theta.grad is None

    def test_resamplings_average_estimates(self):
        theta = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        calls = []
        optimizer = SPSA([theta], resamplings=4, generator=torch.Generator().manual_seed(0))
        optimizer.step(lambda: calls.append(1) or _quadratic_small(theta))
        assert len(calls) == 8

    def test_resampling_reduces_the_variance_of_a_step(self):
        def spread(resamplings):
            moves = []
            for seed in range(30):
                theta = torch.nn.Parameter(torch.zeros(20, dtype=torch.float64))
                optimizer = SPSA(
                    [theta],
                    lr=0.05,
                    resamplings=resamplings,
                    generator=torch.Generator().manual_seed(seed),
                )
                optimizer.step(lambda theta=theta: _quadratic(theta))
                moves.append(theta.detach().clone())
            return torch.stack(moves).var(dim=0).sum()

        assert spread(8) < 0.3 * spread(1)  # ~1/8 in expectation

    def test_frozen_parameters_are_left_alone(self):
        trained = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        frozen = torch.nn.Parameter(torch.ones(3, dtype=torch.float64), requires_grad=False)
        optimizer = SPSA([trained, frozen])
        optimizer.step(lambda: _quadratic_small(trained) + frozen.sum())
        assert torch.equal(frozen, torch.ones(3, dtype=torch.float64))
        assert not torch.equal(trained.detach(), torch.zeros(3, dtype=torch.float64))

    def test_parameter_groups_use_their_own_gains(self):
        a = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        b = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        optimizer = SPSA(
            [{"params": [a]}, {"params": [b], "lr": 0.0001}],
            lr=0.1,
            generator=torch.Generator().manual_seed(3),
        )
        # distinct weights 1, 2, 4, 8: the difference of the two evaluations is never 0
        far = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
        optimizer.step(lambda: ((torch.cat([a, b]) - far) ** 2).sum())
        assert a.detach().abs().max() > 100 * b.detach().abs().max() > 0

    def test_parameters_restored_when_the_closure_raises(self):
        theta = torch.nn.Parameter(torch.tensor([0.5, 0.25]))
        calls = []

        def closure():
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("QPU job failed")
            return theta.sum()

        optimizer = SPSA([theta])
        with pytest.raises(RuntimeError, match="QPU job failed"):
            optimizer.step(closure)
        assert torch.equal(theta.detach(), torch.tensor([0.5, 0.25]))
        assert optimizer.step_count == 0


class TestConvergence:
    def test_quadratic(self):
        theta = torch.nn.Parameter(torch.zeros(20, dtype=torch.float64))
        optimizer = SPSA(
            [theta], lr=0.1, perturbation=0.1, generator=torch.Generator().manual_seed(0)
        )
        start = float(_quadratic(theta.detach()))
        for _ in range(300):
            optimizer.step(lambda: _quadratic(theta))
        assert float(_quadratic(theta.detach())) < 0.01 * start  # 7.37 -> ~0.04

    def test_noisy_quadratic(self):
        """Shot-noise-like: every evaluation carries independent noise of std 0.05 (what ~400
        shots give a probability near 1/2)."""
        theta = torch.nn.Parameter(torch.zeros(20, dtype=torch.float64))
        noise = torch.Generator().manual_seed(100)
        optimizer = SPSA(
            [theta], lr=0.1, perturbation=0.2, generator=torch.Generator().manual_seed(0)
        )

        def closure():
            return _quadratic(theta) + 0.05 * torch.randn((), generator=noise, dtype=torch.float64)

        start = float(_quadratic(theta.detach()))
        for _ in range(300):
            optimizer.step(closure)
        assert float(_quadratic(theta.detach())) < 0.02 * start  # 7.37 -> ~0.05

    def test_fine_tunes_a_qrnn(self):
        """The exact engine stands in for the QPU: 100 steps, 200 forward passes, no backward."""
        model = QRNN(1, 2, stages=1, degree=2, order=2, dtype=torch.float64)
        tokens, targets = _alternating_task()

        def closure():
            log_probs, _ = model(tokens, targets)
            return model.loss(log_probs, targets)

        optimizer = SPSA(
            model.parameters(), lr=0.1, perturbation=0.1, generator=torch.Generator().manual_seed(0)
        )
        with torch.no_grad():
            start = float(closure())
        estimates = [optimizer.step(closure) for _ in range(100)]
        with torch.no_grad():
            end = float(closure())
        assert start == pytest.approx(math.log(2), abs=0.05)  # the paper's initialisation
        assert end < 0.7 * start  # in practice ~0.03 from ~0.70
        assert sum(estimates[-10:]) / 10 < 0.7 * start

    def test_runs_on_the_circuit_path(self):
        """The setting SPSA is for: the loss from QNodes. Smoke test, a few analytic steps."""
        model = QRNN(
            1, 2, stages=1, degree=2, order=2, dtype=torch.float64, backend="default.qubit"
        )
        tokens, targets = torch.tensor([[0], [1]]), torch.tensor([[1], [0]])

        def closure():
            log_probs, _ = model(tokens, targets)
            return model.loss(log_probs, targets)

        before = [p.detach().clone() for p in model.parameters()]
        optimizer = SPSA(model.parameters(), lr=0.1, generator=torch.Generator().manual_seed(0))
        losses = [optimizer.step(closure) for _ in range(2)]
        assert all(math.isfinite(loss) for loss in losses)
        assert any(
            not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True)
        )


class TestReproducibility:
    @staticmethod
    def _trajectory(seed, steps=20):
        theta = torch.nn.Parameter(torch.zeros(20, dtype=torch.float64))
        optimizer = SPSA([theta], generator=torch.Generator().manual_seed(seed))
        path = []
        for _ in range(steps):
            optimizer.step(lambda: _quadratic(theta))
            path.append(theta.detach().clone())
        return torch.stack(path)

    def test_same_seed_same_trajectory(self):
        assert torch.equal(self._trajectory(5), self._trajectory(5))

    def test_other_seed_other_trajectory(self):
        assert not torch.equal(self._trajectory(5), self._trajectory(6))


class TestState:
    def test_state_dict_round_trip_restores_the_step_count(self):
        theta = torch.nn.Parameter(torch.zeros(20, dtype=torch.float64))
        optimizer = SPSA([theta], lr=0.3, stability=5.0)
        for _ in range(7):
            optimizer.step(lambda: _quadratic(theta))
        state = optimizer.state_dict()
        restored = SPSA([theta])
        restored.load_state_dict(state)
        assert restored.step_count == 7
        assert restored.state[theta]["step"] == 7
        assert (
            restored.param_groups[0]["lr"] == 0.3 and restored.param_groups[0]["stability"] == 5.0
        )
        assert restored.gains(restored.param_groups[0]) == optimizer.gains(
            optimizer.param_groups[0]
        )

    def test_resume_continues_the_same_trajectory(self):
        def fresh():
            return torch.nn.Parameter(torch.zeros(20, dtype=torch.float64))

        theta, generator = fresh(), torch.Generator().manual_seed(11)
        optimizer = SPSA([theta], generator=generator)
        for _ in range(15):
            optimizer.step(lambda: _quadratic(theta))
        uninterrupted = theta.detach().clone()

        theta, generator = fresh(), torch.Generator().manual_seed(11)
        optimizer = SPSA([theta], generator=generator)
        for _ in range(10):
            optimizer.step(lambda: _quadratic(theta))
        saved, generator_state = optimizer.state_dict(), generator.get_state()

        resumed_theta = torch.nn.Parameter(theta.detach().clone())
        resumed_generator = torch.Generator()
        resumed_generator.set_state(generator_state)
        resumed = SPSA([resumed_theta], generator=resumed_generator)
        resumed.load_state_dict(saved)
        for _ in range(5):
            resumed.step(lambda: _quadratic(resumed_theta))
        assert torch.equal(resumed_theta.detach(), uninterrupted)


class TestInputs:
    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(lr=-1), "lr must be positive; got -1"),
            (dict(lr=0.0), "lr must be positive; got 0.0"),
            (dict(perturbation=0), "perturbation must be positive; got 0"),
            (dict(alpha=-0.1), r"alpha must be non-negative; got -0.1"),
            (dict(gamma=-1), "gamma must be non-negative; got -1"),
            (dict(stability=-2), "stability must be non-negative; got -2"),
            (dict(resamplings=0), "resamplings must be an int >= 1; got 0"),
        ],
    )
    def test_bad_hyperparameters(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            SPSA([torch.nn.Parameter(torch.zeros(2))], **kwargs)

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(resamplings=2.0), r"resamplings must be an int >= 1; got 2.0 \(float\)"),
            (dict(lr="0.1"), r"lr must be a finite number; got '0.1' \(str\)"),
            (dict(alpha=True), r"alpha must be a finite number; got True \(bool\)"),
        ],
    )
    def test_wrong_types_are_type_errors(self, kwargs, match):
        with pytest.raises(TypeError, match=match):
            SPSA([torch.nn.Parameter(torch.zeros(2))], **kwargs)

    def test_bad_group_hyperparameter(self):
        with pytest.raises(ValueError, match="lr must be positive; got -0.5"):
            SPSA([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": -0.5}])

    def test_bad_generator(self):
        with pytest.raises(TypeError, match="generator must be a torch.Generator or None; got int"):
            SPSA([torch.nn.Parameter(torch.zeros(2))], generator=0)

    def test_missing_closure(self):
        optimizer = SPSA([torch.nn.Parameter(torch.zeros(2))])
        with pytest.raises(
            ValueError, match="closure must be given: SPSA evaluates the loss itself; got None"
        ):
            optimizer.step()

    def test_non_finite_loss(self):
        theta = torch.nn.Parameter(torch.zeros(2))
        optimizer = SPSA([theta])
        with pytest.raises(ValueError, match="closure must return a finite loss; got nan"):
            optimizer.step(lambda: torch.tensor(float("nan")))
        assert torch.equal(theta.detach(), torch.zeros(2))
