"""TrainConfig.init_bias: where the QRNN's workspace neurons start."""

import math

import pytest
import torch

from pennylane_qrnn.errors import QRNNValueError
from pennylane_qrnn.training import TrainConfig, build_model


def _model(**extra):
    config = TrainConfig(task="elman-xor", workspace=6, stages=2, **extra).resolved()
    torch.manual_seed(config.seed)
    return build_model(config, config.make_task())


def test_default_is_the_papers_initialisation_unchanged():
    model = _model()
    again = _model(init_bias=None)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    biases = torch.cat([model.input_weights[..., 0].ravel(), model.stage_weights[..., 0].ravel()])
    assert abs(float(biases.mean()) - math.pi / 4) < 0.05


def test_init_bias_moves_the_workspace_neurons_only():
    paper, moved = _model(), _model(init_bias=0.3)
    for name in ("input_weights", "stage_weights"):
        biases = getattr(moved, name)[..., 0]
        assert abs(float(biases.mean()) - 0.3) < 0.05
        assert float(biases.std()) < 0.1
        # the other monomial weights are the paper's draw
        assert torch.equal(getattr(moved, name)[..., 1:], getattr(paper, name)[..., 1:])
    assert torch.equal(moved.output_weights, paper.output_weights)
    assert torch.equal(moved.rotation_weights, paper.rotation_weights)


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        ({"init_bias": 0.3, "model": "lstm"}, QRNNValueError, "init-bias is for the QRNN"),
        ({"init_bias": float("nan")}, QRNNValueError, "init-bias must be"),
    ],
)
def test_bad_init_bias_is_refused(extra, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(task="elman-xor", **extra).resolved()
