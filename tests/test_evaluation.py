"""evaluate(): a scored step is sampled, never postselected, so the sampled accuracy counts real
samples; it agrees with the expected accuracy within binomial noise (issue 8, item 4)."""

import math

import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.errors import QRNNValueError
from pennylane_qrnn.evaluation import collapse_mask, evaluate
from pennylane_qrnn.tasks import Batch, get_task

#: tasks that build without a data folder
SYNTHETIC = ["memorise", "memorise-rvqe", "elman-xor", "elman-letters", "dna", "dna-rvqe"]


class _Recording(QRNN):
    """A QRNN that remembers the postselection mask of every forward call."""

    def forward(self, tokens, targets=None, state=None, generator=None, *, postselected=None):
        mask = None if postselected is None else postselected.clone()
        self.seen = getattr(self, "seen", []) + [mask]
        output = super().forward(tokens, targets, state, generator, postselected=postselected)
        self.last_output_outcomes = output.outcomes
        return output


def _binomial_sigma(expected, scored):
    # The sampled hits are a martingale: each step hits with its conditional probability p_t,
    # and Var(sum of hits - sum of p_t) = sum E[p_t (1 - p_t)] <= n e (1 - e) (concavity).
    return math.sqrt(expected * (1 - expected) / scored)


@pytest.mark.parametrize("protocol", ["forced-steps", "measured"])
def test_untrained_elman_letters_sampled_agrees_with_expected(protocol):
    # the case: untrained H6 S2 d2 model, 34 % sampled against 5 % expected
    task = get_task("elman-letters")
    torch.manual_seed(0)
    model = QRNN(3, 6, stages=2, degree=2, order=2, dtype=torch.float64)
    data = torch.Generator().manual_seed(1)
    batches = [task.batch(32, data) for _ in range(4)]
    scored = sum(int(b.scored.sum()) for b in batches)
    assert sum(int((b.forced & b.scored).sum()) for b in batches) > scored / 5  # the case at stake
    result = evaluate(model, batches, protocol, generator=torch.Generator().manual_seed(2))
    sigma = _binomial_sigma(result.accuracy_expected, scored)
    assert 0 < result.accuracy_expected < 0.2  # untrained: near chance (1/8), not near 1
    assert abs(result.accuracy_sampled - result.accuracy_expected) <= 4 * sigma, (
        result.accuracy_sampled,
        result.accuracy_expected,
        sigma,
    )


def test_forced_and_scored_steps_are_sampled():
    # every step forced and scored: evaluation must sample them all (the model's distribution is
    # far from one-hot, so a run postselected on its targets would score 100 %)
    torch.manual_seed(3)
    model = _Recording(1, 2, dtype=torch.float64)
    tokens = torch.randint(0, 2, (6, 400), generator=torch.Generator().manual_seed(4))
    targets = torch.randint(0, 2, (6, 400), generator=torch.Generator().manual_seed(5))
    everything = torch.ones_like(tokens, dtype=torch.bool)
    batch = Batch(tokens, targets, scored=everything, forced=everything)
    result = evaluate(model, [batch], "forced-steps", generator=torch.Generator().manual_seed(6))
    assert not model.seen[-1].any()  # nothing postselected
    outcomes = model.last_output_outcomes
    assert (outcomes != targets).any()  # real samples, not the targets
    sigma = _binomial_sigma(result.accuracy_expected, tokens.numel())
    assert abs(result.accuracy_sampled - result.accuracy_expected) <= 4 * sigma
    assert result.accuracy_sampled < 0.9 and result.log_io_success_min == 0.0


def test_unscored_forced_steps_are_still_postselected():
    # Elman XOR: the two unpredictable bits of each triple are forced and unscored
    task = get_task("elman-xor", length=12)
    batch = task.batch(16, torch.Generator().manual_seed(0))
    model = _Recording(2, 3, dtype=torch.float64)
    result = evaluate(model, [batch], "forced-steps", generator=torch.Generator().manual_seed(1))
    seen = model.seen[-1]
    assert torch.equal(seen, batch.forced & ~batch.scored) and seen.any()
    assert torch.equal(model.last_output_outcomes[seen], batch.targets[seen])  # postselected
    assert result.log_io_success_min < 0  # and the i/o postselection is paid for


@pytest.mark.parametrize("name", SYNTHETIC)
@pytest.mark.parametrize("protocol", ["forced-steps", "measured"])
def test_collapse_mask_never_postselects_a_scored_step(name, protocol):
    batch = get_task(name).batch(4, torch.Generator().manual_seed(0))
    mask = collapse_mask(batch, protocol)
    assert mask.shape == batch.tokens.shape and mask.dtype == torch.bool
    assert not (mask & batch.scored).any()
    if protocol == "forced-steps":
        assert torch.equal(mask, batch.forced & ~batch.scored)
    else:
        assert not mask.any()


def test_protocol_refused():
    batch = get_task("elman-xor", length=6).batch(2)
    with pytest.raises(QRNNValueError, match="protocol must be one of"):
        collapse_mask(batch, "postselected")
    with pytest.raises(QRNNValueError, match="protocol must be one of"):
        evaluate(QRNN(2, 2), [batch], "postselected")


def test_reference_protocol_is_deprecated_and_means_forced_steps():
    batch = get_task("elman-xor", length=9).batch(4, torch.Generator().manual_seed(0))
    model = QRNN(2, 2, dtype=torch.float64)
    with pytest.warns(FutureWarning, match="'reference' is deprecated.*'forced-steps'"):
        old = evaluate(model, [batch], "reference", generator=torch.Generator().manual_seed(1))
    new = evaluate(model, [batch], "forced-steps", generator=torch.Generator().manual_seed(1))
    assert old == new and new.protocol == "forced-steps"


def test_teacher_forced_evaluation_samples_nothing():
    """Every step postselected: there is no sampled accuracy to report, so it is NaN (with a
    warning), while the loss and the other accuracies are still measured."""
    batch = get_task("elman-xor", length=9).batch(4, torch.Generator().manual_seed(0))
    model = QRNN(2, 2, dtype=torch.float64)
    with pytest.warns(UserWarning, match="sampled accuracy is NaN"):
        result = evaluate(model, [batch], "teacher-forced")
    assert math.isnan(result.accuracy_sampled)
    assert 0 <= result.accuracy_argmax <= 1 and result.loss > 0
    assert result.log_io_success_min < 0  # every step paid for its target
