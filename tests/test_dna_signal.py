"""benchmarks/dna_signal.py: the dependence of DNA's scored step on the remembered base."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import dna_signal  # noqa: E402

from pennylane_qrnn.training import TrainConfig, build_model  # noqa: E402


def _model(**extra):
    config = TrainConfig(task="dna", length=8, protocol="qpu", mode="amplified", **extra)
    config = config.resolved()
    torch.manual_seed(0)
    return build_model(config, config.make_task()).eval()


def test_dependence_is_a_distance_and_zero_when_the_base_is_not_read():
    model = _model()
    value = dna_signal.base_dependence(model, 8, 16, 0)
    assert 0 < value <= 1
    # a readout that ignores the state: the same distribution whatever the base
    with torch.no_grad():
        model.output_weights.zero_()
        for weights in (model.input_weights, model.stage_weights):
            weights.zero_()
    assert dna_signal.base_dependence(model, 8, 16, 0) < 1e-6


def test_table(capsys):
    dna_signal.main(["--lengths", "6,8", "--seeds", "1", "--sequences", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 + len(dna_signal.MODELS)
    for line in lines[2:]:
        values = [float(v) for v in line.strip("| ").split(" | ")[1:]]
        assert len(values) == 2 and all(0 <= v <= 1 for v in values)
