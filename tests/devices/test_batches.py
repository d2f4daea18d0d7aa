"""Hardware runs as users run them (issue 11 item 6): a batch of sequences goes to the provider
as one submission, its ids and records go to the run folder's ledger, an interrupted run resumes
without sending finished submissions again, and the budget guard counts every submission.

Submissions are counted on the real backend objects (a fake IBM backend's ``run``, Braket's
``LocalSimulator.run`` / ``run_batch``, a PennyLane device's ``execute``), wrapped, not
replaced."""

import json

import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN, Shots
from pennylane_qrnn.devices import submission
from pennylane_qrnn.devices.ledger import LEDGER_NAME, SubmissionLedger
from pennylane_qrnn.devices.pricing import BudgetExceededError
from pennylane_qrnn.errors import QRNNValueError, UnsafeFileError

from ..conftest import requires_braket, requires_qiskit

# four sequences of two steps (time-major), a 3-qubit amplified model: fits FakeManilaV2
TOKENS = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0]])
TARGETS = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 1]])


class Killed(RuntimeError):
    """Stands for the process being killed while a submission runs."""


def _count(obj, name, calls, kill_at=None):
    """Wrap ``obj.name`` (a bound method of a real backend) to record each call's batch size;
    the ``kill_at``-th call raises :class:`Killed` instead of running."""
    original = getattr(obj, name)

    def counted(*args, **kwargs):
        calls.append(args[0] if args else None)
        if kill_at is not None and len(calls) == kill_at:
            raise Killed(f"killed during submission {kill_at}")
        return original(*args, **kwargs)

    setattr(obj, name, counted)


def _model(executor):
    torch.manual_seed(0)
    return QRNN(1, 2, stages=1, degree=2, order=1, mode="amplified", executor=executor)


def _fake_ibm():
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    backend = FakeManilaV2()
    return backend, qml.device("qiskit.remote", wires=5, backend=backend)


def _same(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


# -- one submission per batch -----------------------------------------------------------------
@requires_qiskit
def test_a_batch_is_one_ibm_job_on_a_fake_backend(tmp_path):
    backend, device = _fake_ibm()
    calls = []
    _count(backend, "run", calls)
    model = _model(Shots(device, shots=100, seed=1, ledger=tmp_path))
    output = model(TOKENS, TARGETS)
    assert [len(c) for c in calls] == [4]  # one backend.run with the four circuits
    assert model.executor.last_submissions.sent == 1
    assert [e.shots for e in output.shot_estimates] == [100] * 4
    (entry,) = json.loads((tmp_path / LEDGER_NAME).read_text())["submissions"].values()
    assert entry["provider"] == "qiskit" and entry["backend"] == "fake_manila"
    assert entry["status"] == "done" and entry["local"] and entry["sequences"] == 4
    assert len(entry["ids"]) == 1 and entry["ids"][0]  # the runtime job's id


@requires_qiskit
def test_ibm_runtime_batch_mode_still_one_job_per_submission():
    backend, device = _fake_ibm()
    calls = []
    _count(backend, "run", calls)
    model = _model(Shots(device, shots=50, seed=1, batch_size=2, runtime="batch"))
    model(TOKENS, TARGETS)
    assert [len(c) for c in calls] == [2, 2]  # two submissions of two, in one runtime Batch
    with pytest.raises(QRNNValueError, match="runtime must be one of"):
        Shots(device, runtime="queue")


@requires_braket
@pytest.mark.parametrize("program_sets", [True, False])
def test_a_batch_is_one_braket_submission(monkeypatch, program_sets):
    """Where the simulator takes program sets (braket_sv does): one task; otherwise one
    run_batch of parallel tasks. Either way one call on the real LocalSimulator."""
    if not program_sets:  # as on a device without program sets
        monkeypatch.setattr(submission, "program_set_limits", lambda device: None)
    device = qml.device("braket.local.qubit", wires=11, backend="braket_sv")
    runs, batches = [], []
    _count(device._device, "run", runs)
    _count(device._device, "run_batch", batches)
    model = _model(Shots(device, shots=200))
    output = model(TOKENS, TARGETS)
    assert (len(runs), len(batches)) == ((1, 0) if program_sets else (0, 1))
    sent = (runs or batches)[0]
    assert len(sent.entries if program_sets else sent) == 4  # the four circuits
    # amplified neurons: every shot survives, and the estimates are the exact engine's
    exact = _model(None)
    p = exact(TOKENS, TARGETS).log_probs.exp()[..., 1]
    q = output.log_probs.exp()[..., 1]
    assert torch.all((q - p).abs() < 4 * 0.5 / 200**0.5 + 0.02)


# -- interrupted and resumed ------------------------------------------------------------------
@requires_qiskit
def test_killed_ibm_run_resumes_without_resending_and_matches_an_uninterrupted_one(tmp_path):
    _, device = _fake_ibm()
    reference = _model(Shots(device, shots=100, seed=7, batch_size=2))
    expected = reference(TOKENS, TARGETS, generator=torch.Generator().manual_seed(3))

    backend, device = _fake_ibm()
    calls = []
    _count(backend, "run", calls, kill_at=2)
    killed = _model(Shots(device, shots=100, seed=7, batch_size=2, ledger=tmp_path))
    with pytest.raises(Killed):
        killed(TOKENS, TARGETS, generator=torch.Generator().manual_seed(3))
    ledger = SubmissionLedger(tmp_path)
    assert sorted(e["status"] for e in ledger.entries.values()) == ["done", "submitted"]

    backend, device = _fake_ibm()  # a new process: a new backend object
    calls = []
    _count(backend, "run", calls)
    resumed = _model(Shots(device, shots=100, seed=7, batch_size=2, ledger=tmp_path))
    output = resumed(TOKENS, TARGETS, generator=torch.Generator().manual_seed(3))
    assert [len(c) for c in calls] == [2]  # only the unfinished submission ran
    stats = resumed.executor.last_submissions
    assert (stats.sent, stats.reused) == (1, 1)
    _same(output.log_probs, expected.log_probs)
    _same(output.outcomes, expected.outcomes)
    # run again: everything is read back, nothing is sent
    again = resumed(TOKENS, TARGETS, generator=torch.Generator().manual_seed(3))
    assert len(calls) == 1 and resumed.executor.last_submissions.reused == 2
    _same(again.log_probs, expected.log_probs)


@requires_braket
def test_killed_braket_run_resumes_without_resending(tmp_path):
    device = qml.device("braket.local.qubit", wires=11, backend="braket_sv")
    runs = []
    _count(device._device, "run", runs, kill_at=2)
    killed = _model(Shots(device, shots=100, batch_size=2, ledger=tmp_path))
    with pytest.raises(Killed):
        killed(TOKENS, TARGETS)
    first = SubmissionLedger(tmp_path)
    (done,) = [k for k, e in first.entries.items() if e["status"] == "done"]
    stored = first.results(done)

    device = qml.device("braket.local.qubit", wires=11, backend="braket_sv")
    runs = []
    _count(device._device, "run", runs)
    resumed = _model(Shots(device, shots=100, batch_size=2, ledger=tmp_path))
    output = resumed(TOKENS, TARGETS)
    assert len(runs) == 1 and resumed.executor.last_submissions.reused == 1
    # the first two sequences are the stored shots of the finished submission
    for estimate, bits in zip(output.shot_estimates[:2], stored, strict=True):
        assert estimate.outcomes[:, 0].tolist() == bits[:, 0].tolist()
    assert SubmissionLedger(tmp_path).results(done)[0].tolist() == stored[0].tolist()


# -- the budget guard -------------------------------------------------------------------------
#: 0.01 USD a task + 0.001 USD a shot: a sequence of 40 shots costs 0.05 USD
PRICED = dict(shots=40, seed=0, price_table={"default.qubit": (0.01, 0.001)})


def _counted_device(calls):
    device = qml.device("default.qubit")
    _count(device, "execute", calls)
    return device


def test_budget_guard_counts_and_charges_every_submission(tmp_path):
    calls = []
    model = _model(
        Shots(_counted_device(calls), method="native", batch_size=1, budget=1.0, **PRICED)
    )
    model(TOKENS, TARGETS)
    assert len(calls) == 4  # four submissions of one sequence, each one device execution
    assert model.spending.submissions == 4
    assert model.spending.spent == pytest.approx(4 * 0.05)


def test_budget_refuses_before_the_first_submission_and_resume_pays_only_the_rest(tmp_path):
    calls = []
    model = _model(
        Shots(
            _counted_device(calls),
            method="native",
            batch_size=2,
            budget=0.15,
            ledger=tmp_path,
            **PRICED,
        )
    )
    with pytest.raises(BudgetExceededError, match=r"estimated price 0.20 USD exceeds .* 0.15"):
        model(TOKENS, TARGETS)  # 4 sequences: 0.20 USD
    assert calls == [] and model.spending.submissions == 0 and model.spending.spent == 0.0
    model.budget = 0.10  # enough for the first two sequences only
    with pytest.raises(BudgetExceededError):
        model(TOKENS, TARGETS)
    assert calls == []  # the estimate covers the whole run: refused before anything is sent
    model(TOKENS[:, :2], TARGETS[:, :2])  # the first submission alone (the same circuits)
    assert len(calls) == 1 and model.spending.spent == pytest.approx(0.10)
    model.budget = 0.20  # 0.10 left: the first submission is in the ledger, the second fits
    model(TOKENS, TARGETS)
    assert len(calls) == 2 and model.spending.submissions == 2
    assert model.spending.spent == pytest.approx(0.20)


# -- the ledger --------------------------------------------------------------------------------
def test_a_ledger_that_is_not_ours_is_refused(tmp_path):
    (tmp_path / LEDGER_NAME).write_text('{"something": "else"}')
    with pytest.raises(UnsafeFileError, match="must be a submissions ledger"):
        Shots("default.qubit", shots=10, ledger=tmp_path)


# -- training with SPSA on shots ---------------------------------------------------------------
TINY_SPSA = dict(
    task="elman-xor",
    length=3,
    workspace=1,
    stages=1,
    degree=1,
    order=1,
    mode="amplified",
    batch_size=2,
    eval_batches=1,
    optimizer="spsa",
    backend="qiskit.aer",
    shots=100,
)


@requires_qiskit
def test_qrnn_train_spsa_on_a_shot_device_writes_its_ledger(tmp_path):
    from pennylane_qrnn.cli import main

    out = tmp_path / "run"
    flags = ["--task", "elman-xor", "--length", "3", "--workspace", "1", "--stages", "1"]
    flags += ["--degree", "1", "--order", "1", "--mode", "amplified", "--batch-size", "2"]
    flags += ["--steps", "2", "--eval-every", "2", "--quiet", "--device", "qiskit.aer"]
    assert main(["train", *flags, "--optimizer", "spsa", "--shots", "100", "--out", str(out)]) == 0
    entries = SubmissionLedger(out).entries.values()
    # two steps, two loss evaluations each, each evaluation one submission of the batch of 2
    assert [(e["status"], e["sequences"], e["shots"]) for e in entries] == [("done", 2, 100)] * 4
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


@requires_qiskit
@pytest.mark.slow  # about 15 s: three short training runs on Aer
def test_killed_spsa_training_resumes_from_its_checkpoint_without_resending(tmp_path):
    """Killed during step 2's second submission (the checkpoint is at step 1): the resumed run
    replays step 2 with the saved SPSA generator, reads its first submission back from the
    ledger, sends only the second, and ends with the weights of an uninterrupted run."""
    from pennylane_qrnn.training import TrainConfig
    from pennylane_qrnn.training.shot_optim import SPSATrainer

    config = TrainConfig(**TINY_SPSA, steps=2, eval_every=2, checkpoint_every=1)
    straight = SPSATrainer(config, tmp_path / "straight")
    straight.run(progress=False)

    def counted(trainer, calls, kill_at=None):
        device = trainer.model.executor.device.live(trainer.model.layout.n_wires)
        _count(device.backend, "run", calls, kill_at)

    calls = []
    killed = SPSATrainer(config, tmp_path / "killed")
    counted(killed, calls, kill_at=4)
    with pytest.raises(Killed):
        killed.run(progress=False)
    assert len(calls) == 4 and killed.saved_step == 1

    calls = []
    resumed = SPSATrainer(None, tmp_path / "killed", resume=True)
    counted(resumed, calls)
    resumed.run(progress=False)
    assert len(calls) == 1  # step 2's first submission came from the ledger
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_trainer_with_spsa_is_an_spsa_trainer(tmp_path):
    """``Trainer(TrainConfig(optimizer="spsa"))`` trains by SPSA (it once took the gradient path
    and failed at the optimiser's step)."""
    from pennylane_qrnn.training import TrainConfig, Trainer
    from pennylane_qrnn.training.shot_optim import SPSATrainer

    config = TrainConfig(task="elman-xor", optimizer="spsa", steps=2, batch_size=4)
    trainer = Trainer(config, tmp_path / "run")
    assert type(trainer) is SPSATrainer
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = trainer.train_step()
    assert metrics["loss"] > 0
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert type(Trainer(TrainConfig(task="elman-xor", steps=2), tmp_path / "other")) is Trainer


def test_a_ledger_never_reads_results_from_a_path_it_names(tmp_path):
    """A tampered ledger that points a submission's results elsewhere is refused."""
    import json

    import numpy as np

    from pennylane_qrnn.devices.ledger import SubmissionLedger
    from pennylane_qrnn.errors import UnsafeFileError

    ledger = SubmissionLedger(tmp_path)
    ledger.submitted("abc", "qiskit", "aer_simulator", ["job-1"], sequences=1, shots=4, local=True)
    ledger.finished("abc", [np.zeros((4, 2), dtype=np.uint8)])
    assert ledger.results("abc")[0].shape == (4, 2)
    saved = json.loads(ledger.path.read_text())
    saved["submissions"]["abc"]["results"] = "../elsewhere.json"
    ledger.path.write_text(json.dumps(saved))
    with pytest.raises(UnsafeFileError, match="must name submissions/abc.json"):
        SubmissionLedger(tmp_path).results("abc")


# -- gradients from shots (parameter-shift) ----------------------------------------------------
@requires_qiskit
def test_a_parameter_shift_forward_is_one_ibm_job_with_every_shifted_circuit(tmp_path):
    """One sequence of two steps, four weight-dependent rotations per step: 1 + 2 x 8 = 17
    circuits, all in one job on the fake backend, and the gradient reaches every weight the
    circuits use."""
    backend, device = _fake_ibm()
    calls = []
    _count(backend, "run", calls)
    executor = Shots(device, shots=100, seed=1, ledger=tmp_path, gradient="parameter-shift")
    torch.manual_seed(0)
    model = QRNN(1, 1, stages=0, degree=1, order=1, mode="amplified", executor=executor)
    tokens, targets = TOKENS[:, :1], TARGETS[:, :1]
    model.loss(model(tokens, targets).log_probs, targets).backward()
    assert [len(c) for c in calls] == [17] and executor.last_submissions.sent == 1
    (entry,) = json.loads((tmp_path / LEDGER_NAME).read_text())["submissions"].values()
    assert entry["sequences"] == 17 and entry["status"] == "done"
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
