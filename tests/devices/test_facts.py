"""One table of device facts, one Qiskit unwrapping, runners that take the cell's layout, and a
shot run that returns its results instead of leaving them on the runner (issue 9)."""

import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.devices import capabilities
from pennylane_qrnn.devices.circuit_path import CircuitRunner
from pennylane_qrnn.devices.execution import run_program
from pennylane_qrnn.devices.facts import DEVICE_FACTS, device_facts, qiskit_backend
from pennylane_qrnn.devices.hardware import ShotRun, ShotRunner
from pennylane_qrnn.devices.program import SequenceProgram
from pennylane_qrnn.errors import QRNNTypeError, QRNNValueError
from pennylane_qrnn.layout import CellLayout

LIGHTNING = ("lightning.qubit", "lightning.gpu", "lightning.kokkos")


@pytest.mark.parametrize("name", ["default.qubit", *LIGHTNING])
def test_postselecting_simulators(name):
    analytic, sampled = capabilities(name), capabilities(name, shots=100)
    assert analytic.postselect and analytic.path == "circuits" and analytic.measurements == "native"
    assert analytic.mcm_method == "tree-traversal"
    assert sampled.mcm_method == ("tree-traversal" if name == "default.qubit" else "one-shot")
    assert device_facts(name).dynamic_wires and device_facts(name).local


@pytest.mark.parametrize(
    "name, measurements, local",
    [
        ("qiskit.aer", "dynamic", True),
        ("qiskit.remote", "dynamic", False),
        ("braket.local.qubit", "deferred", True),
        ("braket.aws.qubit", "deferred", False),
        ("default.mixed", "deferred", True),
    ],
)
def test_shot_devices(name, measurements, local):
    caps = capabilities(name, shots=10)
    assert (caps.postselect, caps.mcm_method, caps.path) == (False, None, "shots")
    assert caps.measurements == measurements and device_facts(name).local is local
    assert not device_facts(name).dynamic_wires


def test_unknown_devices_get_conservative_defaults():
    for name, measurements in (("qiskit.basicsim", "dynamic"), ("some.plugin", "deferred")):
        facts = device_facts(name)
        assert name not in DEVICE_FACTS and facts.measurements == measurements
        assert not (facts.postselects or facts.dynamic_wires or facts.local)
        assert facts.mcm_method() is None and facts.notes == ""
    assert device_facts("default.mixed").density_matrix
    assert device_facts("braket.aws.qubit").aws_credentials


def test_qiskit_backend_unwraps_once():
    class Wrapped:
        backend = object()

    bare = object()
    assert qiskit_backend(None) is None
    assert qiskit_backend(Wrapped()) is Wrapped.backend
    assert qiskit_backend(bare) is bare  # already a backend (or the caller's question)


def test_program_width_is_the_layouts():
    torch.manual_seed(0)
    for mode in ("postselect", "amplified"):
        model = QRNN(2, 2, 1, 2, 2, mode=mode)
        program = SequenceProgram.build(model.weights(), [1, 2, 3], model.layout)
        # the records the cells really emit are the measurements the layout counts
        assert len(program.records) == 3 * model.layout.measurements_per_step
        assert program.deferred_wires == program.n_wires + len(program.records)
        assert program.n_wires == model.layout.n_wires and program.io_bits == 2
    with pytest.raises(QRNNTypeError, match="layout must be a CellLayout; got tuple"):
        SequenceProgram.build(model.weights(), [1], (2, 2, 1, 2, 2, "amplified"))


def test_runners_take_the_layout():
    layout = CellLayout(1, 2, 1, degree=2, order=1, mode="postselect")
    runner = CircuitRunner(qml.device("default.qubit"), layout)
    assert runner.layout is layout and runner.diff_method == "backprop"
    with pytest.raises(QRNNValueError, match="at least 4 wires for I=1, H=2, 1 ancillas; got 3"):
        CircuitRunner(qml.device("default.qubit", wires=3), layout)
    with pytest.raises(QRNNTypeError, match="layout must be a CellLayout"):
        ShotRunner(qml.device("default.qubit"), 1, "native", 10)


def test_shot_run_returns_its_results_and_leaves_nothing_behind():
    torch.manual_seed(0)
    model = QRNN(1, 2, 1, 2, 1, mode="amplified")
    runner = ShotRunner(qml.device("default.qubit"), model.layout, "native", 40, seed=0)
    before = dict(vars(runner))
    tokens, targets = torch.tensor([[1, 0], [0, 1]]), torch.tensor([[0, 1], [1, 1]])
    run = runner.run(model.weights(), tokens, targets, torch.tensor([[True, False]] * 2))
    assert isinstance(run, ShotRun) and vars(runner) == before
    assert run.log_probs.shape == (2, 2, 2) and run.log_probs.dtype == torch.float64
    assert run.outcomes.shape == run.neuron.shape == run.picked.shape == (2, 2)
    assert len(run.estimates) == 2 and all(e.shots == 40 for e in run.estimates)
    assert torch.equal(run.outcomes[:, 0], targets[:, 0])  # postselected: the targets
    assert (run.neuron == 1).all()  # amplified neurons: nothing to fail


def test_run_program_validates_its_arguments():
    torch.manual_seed(0)
    model = QRNN(1, 2, 1, 2, 1, mode="amplified")
    program = SequenceProgram.build(model.weights(), [1], model.layout)
    device = qml.device("default.qubit")
    with pytest.raises(QRNNTypeError, match="shots must be an int >= 1; got 2.5"):
        run_program(program, device, "native", 2.5)
    with pytest.raises(QRNNValueError, match="shots must be an int >= 1; got 0"):
        run_program(program, device, "native", 0)
    with pytest.raises(QRNNValueError, match="method must be one of"):
        run_program(program, device, "magic", 10)
    with pytest.raises(QRNNValueError, match="decorate needs method='deferred'"):
        run_program(program, device, "native", 10, decorate=list)
    bits = run_program(program, device, "deferred", 10, decorate=list)
    assert bits.shape == (10, len(program.records))
