"""Gradients from shots by the parameter-shift rule (issue 11 item 6): the estimate agrees with
the exact engine's gradient within its shot noise and converges as the shots grow, in both
neuron modes; each forward pass is one submission of ``N (1 + 2 G L)`` circuits, priced and
counted by the budget guard and read back from the ledger; ``qrnn train --gradient
parameter-shift`` trains, resumes without paying twice and refuses bad flag combinations.

The statistics run on ``default.qubit`` with measurements deferred (a noiseless shot simulator
that runs a whole submission in one ``qml.execute``); Aer and Braket's local simulator run the
same circuits in the tests marked for them."""

import json
import math
import re

import pytest
import torch

from pennylane_qrnn import QRNN, Shots
from pennylane_qrnn.devices.ledger import SubmissionLedger
from pennylane_qrnn.devices.pricing import BudgetExceededError
from pennylane_qrnn.errors import QRNNValueError
from pennylane_qrnn.executors import DeviceSpec
from pennylane_qrnn.executors.parameter_shift import estimated_log_probs

from .conftest import requires_braket, requires_qiskit

# one i/o qubit, one workspace qubit, no work stage: G = 4 weight-dependent RY per step
MODEL = dict(stages=0, degree=1, order=1, dtype=torch.float64)
TOKENS = torch.tensor([[1, 0], [0, 1]])  # (L, N) = (2, 2)
TARGETS = torch.tensor([[0, 1], [1, 1]])
CIRCUITS = 2 * (1 + 2 * 4 * 2)  # N (1 + 2 G L)
PRICED = dict(price_table={"default.qubit": (0.01, 0.001)})  # USD per task, per shot


def _model(executor=None, mode="amplified"):
    torch.manual_seed(0)
    return QRNN(1, 1, mode=mode, executor=executor, **MODEL)


def _gradient(model, tokens=TOKENS, targets=TARGETS):
    model.zero_grad()
    output = model(tokens, targets)
    model.loss(output.log_probs, targets).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _shots(shots, seed=0, **options):
    return Shots(
        "default.qubit",
        shots=shots,
        method="deferred",
        gradient="parameter-shift",
        device_options={"seed": seed},
        **options,
    )


def _on_shots(model, executor):
    twin = _model(executor, model.layout.mode)
    twin.load_state_dict(model.state_dict())
    return twin


def _spread(mode, shots, runs):
    exact = _gradient(_model(mode=mode))
    estimates = torch.stack(
        [_gradient(_on_shots(_model(mode=mode), _shots(shots, seed))) for seed in range(runs)]
    )
    return exact, estimates


# -- agreement with the exact gradient ----------------------------------------------------------
def test_amplified_gradient_agrees_with_the_exact_engine_and_converges():
    """8 runs of 1000 shots: their mean is within 5 standard errors of the exact gradient; one
    run of 16000 shots is within 5 sigma, sigma scaled from 1000 shots by sqrt(1000/16000)."""
    exact, estimates = _spread("amplified", 1000, 8)
    sigma = estimates.std(0)
    assert bool((sigma > 0).all())
    assert bool(((estimates.mean(0) - exact).abs() <= 5 * sigma / math.sqrt(8)).all())
    precise = _gradient(_on_shots(_model(), _shots(16000, seed=99)))
    # a quarter of the 1000-shot tolerance: the estimate converges like 1/sqrt(shots)
    assert bool(((precise - exact).abs() <= 5 * sigma * math.sqrt(1000 / 16000)).all())


@pytest.mark.slow  # about 20 s: postselect-mode circuits carry ancilla records
def test_postselect_mode_gradient_agrees_with_the_exact_engine():
    """The shift rule holds for postselected records too (the neurons' ancillas are gates and
    records, without feed-forward): 6 runs of 2000 shots, mean within 5 standard errors."""
    exact, estimates = _spread("postselect", 2000, 6)
    sigma = estimates.std(0)
    assert bool(((estimates.mean(0) - exact).abs() <= 5 * sigma / math.sqrt(6)).all())


# -- what is sent --------------------------------------------------------------------------------
def _counted(executor, calls):
    device = executor.device.live(2)  # default.qubit takes any wires
    original = device.execute

    def execute(circuits, *args, **kwargs):
        calls.append(len(circuits))
        return original(circuits, *args, **kwargs)

    device.execute = execute


def test_one_submission_per_forward_with_the_claimed_circuits():
    calls = []
    executor = _shots(100)
    _counted(executor, calls)
    model = _model(executor)
    _gradient(model)
    assert calls == [CIRCUITS] and executor.last_submissions.sent == 1
    with torch.no_grad():  # no gradient wanted: the batch alone
        model(TOKENS, TARGETS)
    assert calls == [CIRCUITS, 2]
    model.executor.gradient = None
    model(TOKENS, TARGETS)
    assert calls == [CIRCUITS, 2, 2]


def test_the_budget_prices_every_shifted_circuit_before_sending(tmp_path):
    calls = []
    price = CIRCUITS * (0.01 + 0.001 * 100)  # 34 circuits of 100 shots: 3.74 USD
    executor = _shots(100, budget=price - 0.01, ledger=tmp_path, **PRICED)
    _counted(executor, calls)
    model = _model(executor)
    with pytest.raises(BudgetExceededError, match=r"estimated price 3.74 USD exceeds"):
        _gradient(model)
    assert calls == [] and model.spending.submissions == 0 and model.spending.spent == 0.0
    model.budget = price
    first = _gradient(model)
    assert calls == [CIRCUITS] and model.spending.submissions == 1
    assert model.spending.spent == pytest.approx(price)
    # the same weights again: read back from the ledger, neither sent nor paid
    again = _gradient(model)
    assert calls == [CIRCUITS] and model.spending.spent == pytest.approx(price)
    assert executor.last_submissions.reused == 1
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    (entry,) = SubmissionLedger(tmp_path).entries.values()
    assert entry["sequences"] == CIRCUITS and entry["status"] == "done"


# -- the estimate of a step's probabilities ----------------------------------------------------
def test_zero_counts_follow_the_stated_pseudo_count():
    a = torch.tensor([[[0.0, 0.5]]], dtype=torch.float64, requires_grad=True)  # 0 of 50 read 0
    b = torch.tensor([[0.5]], dtype=torch.float64)
    measured = torch.tensor([[True]])
    historical = estimated_log_probs(a, b, measured, 100)
    tiny = math.log(torch.finfo(torch.float64).tiny)  # -708.4
    assert float(historical[0, 0, 0].detach()) == pytest.approx(tiny)
    kt = estimated_log_probs(a, b, measured, 100, pseudo_count=0.5)
    assert torch.allclose(kt.exp(), torch.tensor([[[0.5 / 51, 50.5 / 51]]], dtype=torch.float64))
    plain = estimated_log_probs(a, b, measured, 100, pseudo_count=0.0)
    assert float(plain[0, 0, 0]) == -math.inf and float(plain[0, 0, 1]) == 0.0
    plain[0, 0, 1].backward()  # the -inf entry leaves no NaN in the gradient
    assert bool(torch.isfinite(a.grad).all())
    short = estimated_log_probs(a, b, torch.tensor([[False]]), 100, pseudo_count=0.5)
    assert bool(torch.isnan(short).all())  # not measured: NaN, nothing invented


def test_options_are_checked():
    with pytest.raises(QRNNValueError, match="gradient must be one of .*; got 'adjoint'"):
        Shots("default.qubit", gradient="adjoint")
    with pytest.raises(QRNNValueError, match="pseudo_count must be a finite number >= 0; got"):
        Shots("default.qubit", pseudo_count=-0.5)


# -- training ------------------------------------------------------------------------------------
TINY = dict(
    task="elman-xor",
    length=3,
    workspace=1,
    stages=0,
    degree=1,
    order=1,
    mode="amplified",
    protocol="qpu",
    batch_size=1,
    eval_batches=1,
    backend="qiskit.aer",
    shots=200,
    gradient="parameter-shift",
)


def _deferred_default_qubit(trainer):
    """Run the trainer's shot executor on default.qubit (deferred measurements): the same
    circuits and submissions as on Aer, in a fraction of the time."""
    executor = trainer.model.executor
    executor.device = DeviceSpec("default.qubit", {"seed": 0})
    executor.method = "deferred"
    return executor


class Killed(RuntimeError):
    pass


@requires_qiskit
def test_trainer_takes_one_submission_per_step_and_resumes_from_the_ledger(tmp_path):
    """Killed in step 2's validation (step 2's submission is in the ledger, the checkpoint is at
    step 1): the resumed run replays step 2 from the ledger, sends nothing, and ends with the
    weights of an uninterrupted run."""
    from pennylane_qrnn.training import TrainConfig, Trainer
    from pennylane_qrnn.training.shot_optim import ShotGradientTrainer

    config = TrainConfig(**TINY, steps=2, eval_every=2, checkpoint_every=1)
    straight = Trainer(config, tmp_path / "straight")
    assert type(straight) is ShotGradientTrainer
    assert straight.model.executor.pseudo_count == 0.5
    _deferred_default_qubit(straight)
    straight.run(progress=False)
    assert straight.model.spending.submissions == 2  # one per step

    killed = ShotGradientTrainer(config, tmp_path / "killed")
    _deferred_default_qubit(killed)

    def validate():
        raise Killed("killed while validating step 2")

    killed.validate = validate
    with pytest.raises(Killed):
        killed.run(progress=False)
    assert killed.saved_step == 1
    entries = SubmissionLedger(tmp_path / "killed").entries.values()
    circuits = killed.model.executor.last_submissions
    assert [e["status"] for e in entries] == ["done", "done"] and circuits.sent == 1

    resumed = ShotGradientTrainer(None, tmp_path / "killed", resume=True)
    _deferred_default_qubit(resumed)
    resumed.run(progress=False)
    assert resumed.model.spending.submissions == 0
    assert resumed.model.executor.last_submissions.reused == 1
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--gradient", "parameter-shift"],
            "device must be a shot device .* for gradient 'parameter-shift'; got 'exact'",
        ),
        (
            ["--gradient", "parameter-shift", "--device", "qiskit.aer", "--optimizer", "spsa"],
            r"optimizer must be a gradient optimiser \(adam, adamw, sgd, rmsprop\) .*; got 'spsa'",
        ),
        (["--device", "qiskit.aer", "--pseudo-count", "-1"], "pseudo-count must be a finite"),
        (["--device", "qiskit.aer"], "device must give gradients .* --gradient parameter-shift"),
    ],
)
@requires_qiskit
def test_bad_flag_combinations_are_refused_before_anything_starts(tmp_path, capsys, flags, message):
    from pennylane_qrnn.cli import main

    out = tmp_path / "run"
    assert main(["train", "--task", "elman-xor", "--quiet", "--out", str(out), *flags]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


# -- on the simulators users run ---------------------------------------------------------------
def _on_device(name, shots):
    model = _on_shots(_model(), Shots(name, shots=shots, seed=1, gradient="parameter-shift"))
    return _gradient(model), model.executor.last_submissions


@requires_qiskit
@requires_braket
@pytest.mark.slow  # about 60 s: 34 circuits on each simulator, and the spread on default.qubit
def test_aer_and_braket_gradients_agree_with_the_exact_engine():
    """One run of 4000 shots on each is within 5 sigma of the exact gradient, sigma the spread
    of 1000-shot runs on default.qubit scaled by sqrt(1000/4000)."""
    exact, estimates = _spread("amplified", 1000, 8)
    tolerance = 5 * estimates.std(0) * math.sqrt(1000 / 4000)
    for name in ("qiskit.aer", "braket.local.qubit"):
        gradient, sent = _on_device(name, 4000)
        assert sent.sent == 1, name
        assert bool(((gradient - exact).abs() <= tolerance).all()), (name, gradient, exact)


@requires_braket
@pytest.mark.slow  # about 35 s: two Adam steps of 41 circuits on Braket's local simulator
def test_qrnn_train_with_parameter_shift_on_braket(tmp_path):
    from pennylane_qrnn.cli import main

    out = tmp_path / "run"
    flags = ["--task", "elman-xor", "--length", "3", "--workspace", "1", "--stages", "0"]
    flags += ["--degree", "1", "--order", "1", "--mode", "amplified", "--protocol", "qpu"]
    flags += ["--batch-size", "1", "--steps", "2", "--eval-every", "2", "--quiet"]
    flags += ["--device", "braket.local.qubit", "--gradient", "parameter-shift"]
    assert main(["train", *flags, "--shots", "100", "--out", str(out)]) == 0
    entries = list(SubmissionLedger(out).entries.values())
    # each step one submission: 1 + 2 x 20 circuits (the scored step's output neurons and the
    # three steps' workspace neurons: 20 weight-dependent rotations)
    assert [(e["sequences"], e["kind"]) for e in entries] == [(41, "program_set")] * 2
    assert json.loads((out / "summary.json").read_text())["steps"] == 2
