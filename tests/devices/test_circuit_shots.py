"""The circuit path on a simulator with shots: a step no shot reaches is NaN with a warning,
never PennyLane's ZeroDivisionError or an invented distribution."""

import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.errors import InsufficientShotsError, InsufficientShotsWarning


def _model():
    torch.manual_seed(0)
    return QRNN(1, 1, 1, 1, 2, backend=qml.device("default.qubit", shots=2000, seed=1))


def test_unreached_step_is_nan_with_a_warning():
    tokens = torch.tensor([[0], [1], [0], [1]])
    with (
        torch.no_grad(),
        pytest.warns(InsufficientShotsWarning, match="no shot of default.qubit survived"),
    ):
        log_probs, _ = _model()(tokens, tokens)
    reached = torch.isfinite(log_probs).all(dim=-1)[:, 0]
    assert reached[0]  # the first step postselects nothing but the neurons
    assert not reached.all()  # 2000 shots do not reach every step of this sequence
    assert torch.isnan(log_probs[~reached]).all()
    assert torch.allclose(
        log_probs[reached].exp().sum(-1), torch.ones(int(reached.sum()), dtype=log_probs.dtype)
    )


def test_sampling_from_an_unmeasured_step_is_refused():
    model = QRNN(1, 1, 1, 1, 3, backend=qml.device("default.qubit", shots=1, seed=3))
    with (
        torch.no_grad(),
        pytest.warns(InsufficientShotsWarning),
        pytest.raises(InsufficientShotsError, match="no outcome can be sampled"),
    ):
        for seed in range(20):
            model(
                torch.zeros(6, 1, dtype=torch.long), generator=torch.Generator().manual_seed(seed)
            )
