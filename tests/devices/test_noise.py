"""Noisy evaluation: shot accuracy on an ideal backend matches the exact engine, and noise only
lowers it."""

import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.evaluation import evaluate
from pennylane_qrnn.tasks import ElmanXOR

from ..conftest import requires_braket, requires_qiskit


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    task = ElmanXOR(length=3)
    model = QRNN(2, 2, stages=1, degree=2, order=2, mode="amplified", dtype=torch.float64)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    data = torch.Generator().manual_seed(0)
    for _ in range(150):
        batch = task.batch(16, data)
        log_probs, _ = model(
            batch.tokens, batch.targets, collapse=torch.zeros_like(batch.scored), generator=data
        )
        loss = model.loss(log_probs, batch.targets, batch.scored)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    batch = task.batch(4, torch.Generator().manual_seed(5))
    return model, batch, evaluate_replicated(model, batch)


def evaluate_replicated(model, batch):
    """The shots average over every history of measured outcomes; so does the engine here, over
    1000 sampled histories per sequence (its Monte Carlo error is far below the bounds used)."""
    from pennylane_qrnn.tasks import Batch

    columns = torch.arange(batch.size).repeat_interleave(1000)
    replicas = Batch(
        batch.tokens[:, columns],
        batch.targets[:, columns],
        batch.scored[:, columns],
        batch.forced[:, columns],
    )
    return evaluate(
        model, [replicas], "measured", generator=torch.Generator().manual_seed(1)
    ).accuracy_expected


@requires_qiskit
def test_ideal_dynamic_circuits_match_exact_and_noise_degrades(trained):
    from qiskit_aer import AerSimulator

    from pennylane_qrnn.devices.noise import depolarizing_aer, noiseless, shot_accuracy

    model, batch, exact = trained
    shots = 2000
    ideal = shot_accuracy(model, batch, noiseless(AerSimulator(), "dynamic", seed=2), shots)
    # 4 sequences x 2000 shots: a binomial standard error below 0.006; 5 of them
    assert abs(ideal.accuracy - exact) < 0.03
    assert (
        ideal.surviving_fraction == 1.0
    )  # amplified neurons, measured protocol: nothing discarded
    noisy = shot_accuracy(model, batch, noiseless(depolarizing_aer(0.03), "dynamic", seed=2), shots)
    assert noisy.accuracy < ideal.accuracy - 0.1


@requires_braket
def test_braket_density_matrix_noise(trained):
    import pennylane as qml

    from pennylane_qrnn.devices.noise import run_noisy_deferred, shot_accuracy

    model, batch, exact = trained
    batch = type(batch)(
        batch.tokens[:, :2], batch.targets[:, :2], batch.scored[:, :2], batch.forced[:, :2]
    )
    exact = evaluate_replicated(model, batch)

    def run(p):
        return lambda program, shots: run_noisy_deferred(
            program,
            qml.device("braket.local.qubit", wires=program.deferred_wires, backend="braket_dm"),
            shots,
            p,
        )

    ideal = shot_accuracy(model, batch, run(0.0), 1000)
    assert abs(ideal.accuracy - exact) < 0.05  # 2 x 1000 shots: 5 binomial standard errors
    assert shot_accuracy(model, batch, run(0.02), 1000).accuracy < ideal.accuracy - 0.1


def test_protocol_error(trained):
    from pennylane_qrnn.devices.noise import shot_accuracy

    model, batch, _ = trained
    with pytest.raises(
        ValueError, match=r"protocol must be one of \(.*'measured', 'qpu'\); got 'x'"
    ):
        shot_accuracy(model, batch, None, 10, protocol="x")
    # postselecting the scored steps on their targets would make every surviving shot right
    with pytest.raises(ValueError, match="protocol must measure the scored steps"):
        shot_accuracy(model, batch, None, 10, protocol="teacher-forced")


@requires_braket
def test_density_matrix_width_refused_before_running(trained):
    """Braket's density-matrix simulator takes at most 13 qubits; two steps of a postselect
    model with deferred measurements need more, refused with what they need (before: numpy)."""
    import pennylane as qml

    from pennylane_qrnn.devices.capabilities import DeviceCapabilityError
    from pennylane_qrnn.devices.noise import run_noisy_deferred
    from pennylane_qrnn.devices.program import SequenceProgram
    from pennylane_qrnn.layout import CellLayout

    model, _, _ = trained
    layout = CellLayout(2, 2, 1, degree=2, order=2, mode="postselect")
    program = SequenceProgram.build(model.weights(), [1, 2], layout)
    assert program.deferred_wires > 13
    device = qml.device(
        "braket.local.qubit", wires=program.deferred_wires, backend="braket_dm", shots=10
    )
    with pytest.raises(
        DeviceCapabilityError, match=f"needs {program.deferred_wires} qubits .* takes at most 13"
    ):
        run_noisy_deferred(program, device, 10, 0.01)


@requires_qiskit
def test_reference_protocol_samples_scored_steps_even_where_forced():
    """A step that is both forced and scored is sampled (as in pennylane_qrnn.evaluation), not
    postselected on its target: postselected, it would read as right in every surviving shot."""
    from qiskit_aer import AerSimulator

    from pennylane_qrnn.devices.noise import noiseless, shot_accuracy
    from pennylane_qrnn.tasks import Batch

    torch.manual_seed(3)
    model = QRNN(2, 1, stages=1, degree=1, order=1, mode="amplified", dtype=torch.float64)
    batch = ElmanXOR(length=3).batch(2, torch.Generator().manual_seed(5))
    everything = torch.ones_like(batch.scored)
    forced_and_scored = Batch(batch.tokens, batch.targets, everything, everything)
    result = shot_accuracy(
        model,
        forced_and_scored,
        noiseless(AerSimulator(), "dynamic", seed=2),
        2000,
        protocol="forced-steps",
    )
    expected = evaluate(model, [forced_and_scored], "forced-steps").accuracy_expected
    # 2 sequences x 2000 shots: the shot accuracy's standard error is below 0.01
    assert result.accuracy < 0.9
    assert abs(result.accuracy - expected) < 0.05


def test_reference_protocol_is_deprecated_for_forced_steps(trained):
    """``protocol="reference"`` still works, warns, and means ``"forced-steps"`` (as in
    evaluation); the records come from a stand-in ``run`` (every measurement reads 0)."""
    import numpy as np

    from pennylane_qrnn.devices.noise import shot_accuracy

    model, batch, _ = trained

    def run(program, shots):
        return np.zeros((shots, len(program.records)), dtype=np.uint8)

    with pytest.warns(FutureWarning, match="protocol='reference' is deprecated.*'forced-steps'"):
        old = shot_accuracy(model, batch, run, 10, protocol="reference")
    new = shot_accuracy(model, batch, run, 10, protocol="forced-steps")
    np.testing.assert_equal(old.per_sequence, new.per_sequence)  # NaN where no shot survived
    assert old.surviving_fraction == new.surviving_fraction < 1
    measured = shot_accuracy(model, batch, run, 10)  # the default: nothing postselected
    assert measured.surviving_fraction == 1.0 and measured.shots == 10
