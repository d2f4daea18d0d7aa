"""benchmarks/qpu_cost.py (issue 12, item 4): the hardware cost of a model under the ``qpu``
protocol, on a tiny freshly built amplified QRNN (not the trained runs)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import qpu_cost  # noqa: E402

from pennylane_qrnn import QRNN  # noqa: E402
from pennylane_qrnn.tasks import ElmanXOR  # noqa: E402


def _model(seed=0):
    torch.manual_seed(seed)
    return QRNN(2, 2, stages=1, degree=2, mode="amplified", dtype=torch.float64)


@pytest.fixture(scope="module")
def batch():
    return ElmanXOR(length=6).batch(2, torch.Generator().manual_seed(0))


def test_success_probability_is_exactly_one_and_marginals_normalised(batch):
    readout = qpu_cost.exact_readout(_model(), batch)
    assert readout.success.tolist() == [1.0, 1.0]
    assert len(readout.targets) == int(batch.scored.sum()) == 4
    np.testing.assert_allclose(readout.probs.sum(1), 1.0, atol=1e-12)
    # the second scored step follows a measured one: a mixture, yet a proper distribution
    assert 0 < readout.single_shot_accuracy < 1


def test_gate_counts_positive_and_equal_for_identical_models(batch):
    from qiskit_ibm_runtime.fake_provider import FakeBrisbane

    backend = FakeBrisbane()
    first, second = _model(), _model()
    counts = []
    for model in (first, second):
        program = qpu_cost.qpu_program(model, batch)
        ibm, ionq = qpu_cost.gate_counts(program, backend), qpu_cost.gate_counts(program)
        counts.append([(c["two_qubit_gates"], c["depth"], c["qubits"]) for c in (ibm, ionq)])
    assert counts[0] == counts[1]
    (ibm_gates, ibm_depth, ibm_qubits), (ionq_gates, ionq_depth, ionq_qubits) = counts[0]
    assert ibm_gates > 0 and ionq_gates > 0 and ibm_depth > 0 and ionq_depth > 0
    # deferred on IonQ: a fresh qubit per i/o readout (2 scored steps x 2 lanes), none on IBM
    assert (ibm_qubits, ionq_qubits) == (4, 8)
    # a skipped output stage saves gates: a step with output costs more than one without
    with_output = qpu_cost.gate_counts(
        qpu_cost.SequenceProgram.build(first.weights(), [0], first.layout, [False])
    )
    without = qpu_cost.gate_counts(
        qpu_cost.SequenceProgram.build(first.weights(), [0], first.layout, [True])
    )
    assert with_output["two_qubit_gates"] > without["two_qubit_gates"] > 0


def test_vote_accuracy_against_hand_computations():
    # two tokens, p = 0.7: one shot 0.7; two shots 0.49 + half of the 0.42 ties; three shots
    # 0.7**3 + 3 * 0.7**2 * 0.3 = 0.784
    two = np.array([[0.7, 0.3]])
    assert [float(qpu_cost.vote_accuracy(two, [0], n)[0]) for n in (1, 2, 3)] == pytest.approx(
        [0.7, 0.7, 0.784]
    )
    # three tokens (0.5, 0.3, 0.2), target 1, three shots: 1-1-1 (0.027), two 1s and another
    # (3 * 0.09 * 0.7 = 0.189), one of each, a three-way tie (6 * 0.03 / 3 = 0.06)
    three = np.array([[0.5, 0.3, 0.2]])
    assert float(qpu_cost.vote_accuracy(three, [1], 3)[0]) == pytest.approx(0.276)
    # a certain token always wins
    assert float(qpu_cost.vote_accuracy(np.array([[0.0, 1.0, 0.0]]), [1], 4)[0]) == 1.0


def test_shots_needed_is_the_smallest_vote_within_tolerance():
    readout = qpu_cost.Readout(
        np.array([[0.7, 0.3]]), np.array([0]), np.array([0]), np.array([1.0])
    )
    assert readout.argmax_accuracy == 1.0
    # 1 and 2 shots: 0.7; 3 shots: 0.784 >= 1 - 0.25
    assert qpu_cost.shots_needed(readout, 0.25, 100) == 3
    assert qpu_cost.shots_needed(readout, 0.5, 100) == 1
    assert qpu_cost.shots_needed(readout, 0.0, 2) is None


def test_ideal_shots_match_the_exact_marginals(batch):
    from qiskit_aer import AerSimulator

    model = _model()
    exact = qpu_cost.exact_readout(model, batch)
    shots = qpu_cost.noisy_accuracy(model, batch, AerSimulator(), 400, seed=3)
    assert shots["kept_fraction_min"] == 1.0 and shots["scored_pairs"] == 1600
    assert abs(shots["accuracy"] - exact.single_shot_accuracy) < 5 * shots["standard_error"] + 0.01


def test_a_prefix_program_is_the_sequences_first_steps(batch):
    model = _model()
    whole = qpu_cost.qpu_program(model, batch)
    prefix = qpu_cost.qpu_program(model, batch, steps=2)
    assert (whole.length, prefix.length) == (batch.length, 2)
    assert prefix.length < whole.length
    counts = qpu_cost.gate_counts(prefix)
    assert 0 < counts["two_qubit_gates"] < qpu_cost.gate_counts(whole)["two_qubit_gates"]


def test_which_models_run_on_the_noise(tmp_path):
    """``--noise smallest``: per task the converged model with the fewest parameters; ``every``:
    all given (tasks learned without reaching the convergence target, such as DNA); ``none``."""
    import json

    files = []
    for name, task, params, converged in [
        ("a", "elman-xor", 264, True),
        ("b", "elman-xor", 100, False),
        ("c", "elman-xor", 200, True),
        ("d", "dna", 837, False),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"task": task, "seed": 0}))
        summary = {"converged": converged, "parameters": params}
        (folder / "summary.json").write_text(json.dumps(summary))
        (folder / "model.pt").write_bytes(b"")
        files.append(folder / "model.pt")
    assert qpu_cost.noisy_models(files, "smallest") == {files[2]}
    assert qpu_cost.noisy_models(files, "every") == set(files)
    assert qpu_cost.noisy_models(files, "none") == set()
