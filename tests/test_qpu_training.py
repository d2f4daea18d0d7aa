"""The qpu protocol through the model, evaluation and training (issue 12, items 1-2): output
stages only at scored steps, nothing postselected, success probability exactly 1 with amplified
neurons, the exact loss of that run trained on the exact executor."""

import math

import pytest
import torch

from pennylane_qrnn import QRNN, Circuits
from pennylane_qrnn.baselines import LSTMBaseline
from pennylane_qrnn.errors import QRNNValueError
from pennylane_qrnn.evaluation import evaluate
from pennylane_qrnn.nn import sequence_nll
from pennylane_qrnn.protocols import QPU, get_protocol
from pennylane_qrnn.tasks import get_task
from pennylane_qrnn.training import TRAIN_PROTOCOLS, TrainConfig, Trainer


def _dna_batch(n=16, seed=0):
    return get_task("dna", length=10).batch(n, torch.Generator().manual_seed(seed))


def test_qpu_is_selectable_by_name():
    assert get_protocol("qpu") is QPU and "qpu" in TRAIN_PROTOCOLS


def test_forward_skips_unscored_output_stages():
    batch = _dna_batch()
    model = QRNN(3, 3, mode="amplified", dtype=torch.float64)
    skip = QPU.skips_output(batch.forced, batch.scored)
    assert skip.any() and not (skip & batch.scored).any()
    output = model(
        batch.tokens,
        batch.targets,
        postselected=QPU.mask(batch),
        skip_output=skip,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.isnan(output.log_probs[skip]).all()
    assert torch.isfinite(output.log_probs[~skip]).all()
    assert (output.outcomes[skip] == -1).all() and (output.outcomes[~skip] >= 0).all()
    assert torch.equal(output.postselection.log_total, torch.zeros(16, dtype=torch.float64))
    # the loss over the scored steps is finite, and so is its gradient
    loss = sequence_nll(output.log_probs, batch.targets, batch.scored)
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_only_the_exact_executor_skips():
    batch = _dna_batch(2)
    model = QRNN(3, 2, mode="amplified", executor=Circuits("default.qubit"))
    with pytest.raises(QRNNValueError, match="skip_output .* needs an executor that can skip"):
        model(batch.tokens, None, skip_output=QPU.skips_output(batch.forced, batch.scored))


def test_evaluation_under_qpu_pays_nothing_and_samples_honestly():
    batches = [_dna_batch(64, seed) for seed in range(2)]
    model = QRNN(3, 3, mode="amplified", dtype=torch.float64)
    result = evaluate(model, batches, "qpu", generator=torch.Generator().manual_seed(3))
    assert result.protocol == "qpu" and math.isfinite(result.loss)
    assert result.log_success_min == 0.0 and result.min_step_probability == 1.0
    scored = sum(int(b.scored.sum()) for b in batches)
    sigma = math.sqrt(result.accuracy_expected * (1 - result.accuracy_expected) / scored)
    assert abs(result.accuracy_sampled - result.accuracy_expected) <= 4 * sigma + 1e-12


def test_a_classical_baseline_takes_the_same_protocol():
    batches = [_dna_batch(8)]
    result = evaluate(
        LSTMBaseline(3, 4), batches, "qpu", generator=torch.Generator().manual_seed(0)
    )
    assert math.isfinite(result.loss) and result.log_success_min == 0.0


def test_training_under_qpu(tmp_path):
    config = TrainConfig(
        task="dna",
        length=10,
        protocol="qpu",
        mode="amplified",
        workspace=2,
        stages=0,
        steps=3,
        eval_every=3,
        eval_batches=1,
        batch_size=4,
    )
    trainer = Trainer(config, out=tmp_path / "run")
    assert trainer.config.validation_protocol == "qpu"
    metrics = trainer.train_step()
    assert math.isfinite(metrics["loss"]) and metrics["min_postselection"] == 1.0


def test_training_refuses_qpu_where_a_measurement_precedes_a_scored_step(tmp_path):
    """Elman XOR scores steps after measured ones: the exact executor trains it on mixed states
    (tests/test_mixed_state.py); a circuit executor cannot, and is refused before it runs."""
    config = TrainConfig(
        task="elman-xor",
        length=9,
        protocol="qpu",
        mode="amplified",
        steps=2,
        backend="default.qubit",
    )
    with pytest.raises(QRNNValueError, match="protocol must be 'teacher-forced' to train on"):
        Trainer(config, out=tmp_path / "run")
    # the protocol itself refuses that loss where the model cannot run mixed states
    batch = get_task("elman-xor", length=9).batch(2, torch.Generator().manual_seed(0))
    with pytest.raises(QRNNValueError, match="trains exactly only where no scored step follows"):
        get_protocol("qpu").training_masks(batch.forced, batch.scored, mixed_ok=False)
