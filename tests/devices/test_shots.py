"""The shot path never invents a number: a step too few shots reached is NaN with a warning (or an
error), a measured step reports the shots it rests on, and a program too wide for its device is
refused before it runs."""

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN, engine
from pennylane_qrnn.devices.capabilities import DeviceCapabilityError
from pennylane_qrnn.devices.execution import analyse_shots, check_capacity
from pennylane_qrnn.devices.hardware import ShotRunner
from pennylane_qrnn.devices.program import SequenceProgram
from pennylane_qrnn.errors import (
    InsufficientShotsError,
    InsufficientShotsWarning,
    ModelSizeError,
    QRNNTypeError,
    QRNNValueError,
)

from ..conftest import requires_braket, requires_qiskit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "devices.md"

# the reproduction: QRNN(2, 2, 1, 1, 1) at initialisation on a teacher-forced 3-step
# sequence; about 1.6 % of the shots pass step 1's neurons, 0.008 % reach step 2, 3e-7 step 3
TOKENS, TARGETS = torch.tensor([1, 2, 3]), torch.tensor([2, 3, 0])


def _small_model(**kwargs):
    torch.manual_seed(0)
    return QRNN(2, 2, 1, 1, 1, **kwargs)


def _engine_survival(model, tokens, targets):
    """Fraction of shots reaching each step's readout, from the exact engine (float64)."""
    with torch.no_grad():
        weights = [w.detach().double() for w in model.weights()]
        layout = engine.CellLayout(
            model.io_bits, model.workspace, model.stages, model.degree, model.order, model.mode
        )
        result = engine.run_sequence(
            engine.build_operators(layout, *weights), tokens.reshape(-1, 1), targets.reshape(-1, 1)
        )
    step = result.neuron_success[:, 0] * result.outcome_probability[:, 0]
    before = torch.cat([torch.ones(1, dtype=step.dtype), torch.cumprod(step, 0)[:-1]])
    return (before * result.neuron_success[:, 0]).numpy()


def _one_bit_program(length=2):
    """An amplified 1-bit program: one i/o record per step, no ancilla."""
    torch.manual_seed(1)
    model = QRNN(1, 2, 1, 2, 1, mode="amplified")
    return SequenceProgram.build(model.weights(), [1] * length, model.layout)


# -- analyse_shots on hand-made records (no device) --------------------------------------------
class TestAnalyseShots:
    def test_unmeasured_step_is_nan_not_uniform(self):
        program = _one_bit_program(2)
        bits = np.array([[0, 1], [0, 0], [0, 1]], dtype=np.uint8)  # step 1 outcomes 0, 0, 0
        estimate = analyse_shots(program, bits, targets=[1, 0])  # no shot reads the target 1
        assert estimate.probs[0] == pytest.approx([1.0, 0.0])
        assert np.isnan(estimate.probs[1]).all()
        assert list(estimate.survivors) == [3, 0] and list(estimate.measured) == [True, False]

    def test_one_survivor_is_kept_with_its_count_and_error(self):
        program = _one_bit_program(2)
        bits = np.array([[1, 0], [0, 1], [0, 0]], dtype=np.uint8)
        estimate = analyse_shots(program, bits, targets=[1, 0])  # only shot 0 reads 1 at step 1
        assert list(estimate.survivors) == [3, 1]
        assert estimate.probs[1] == pytest.approx([1.0, 0.0])  # the one shot's outcome ...
        assert estimate.standard_error[1] == pytest.approx(
            0.5
        )  # ... reported as uncertain as it is
        assert estimate.standard_error[0] == pytest.approx(0.5 / math.sqrt(3))

    def test_min_survivors_threshold(self):
        program = _one_bit_program(2)
        bits = np.array([[1, 0], [0, 1], [0, 0]], dtype=np.uint8)
        estimate = analyse_shots(program, bits, targets=[1, 0], min_survivors=2)
        assert not np.isnan(estimate.probs[0]).any() and np.isnan(estimate.probs[1]).all()
        assert np.isnan(estimate.standard_error[1]) and list(estimate.completed) == [2, 0, 0]
        with pytest.raises(QRNNValueError, match="min_survivors must be an int >= 1; got 0"):
            analyse_shots(program, bits, min_survivors=0)

    def test_trajectory_without_survivors_reports_targets_where_forced(self):
        program = _one_bit_program(3)
        bits = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.uint8)
        forced = [True, False, True]
        estimate = analyse_shots(program, bits, targets=[1, 0, 1], forced=forced)
        assert not estimate.alive.any() and list(estimate.completed) == [2, 2, 0]
        for seed in range(5):
            chosen = ShotRunner._trajectory(
                estimate, [1, 0, 1], forced, torch.Generator().manual_seed(seed)
            )
            # one of the shots that lasted longest (0 or 1), with the forced steps' targets
            assert chosen.tolist() in ([1, 1, 1], [1, 0, 1])


# -- the shot path of a model ---------------------------------------------------------------
@requires_qiskit
class TestInsufficientShots:
    SHOTS = 2000

    def _run(self, **kwargs):
        model = _small_model(
            backend=qml.device("qiskit.aer", wires=20), shots=self.SHOTS, seed=1, **kwargs
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            output = model(TOKENS, TARGETS)
        ours = [w for w in caught if issubclass(w.category, InsufficientShotsWarning)]
        return model, output, ours

    def test_unmeasured_steps_are_nan_and_warn_with_counts_and_needed_shots(self):
        model, output, caught = self._run()
        log_probs = output.log_probs
        (estimate,) = output.shot_estimates
        survival = _engine_survival(model, TOKENS, TARGETS)
        # step 1: expected 0.0162 x 2000 = 32 survivors; 5 binomial standard deviations
        expected = self.SHOTS * survival
        assert abs(estimate.survivors[0] - expected[0]) < 5 * math.sqrt(expected[0])
        assert estimate.survivors[0] > 0 and estimate.survivors[2] == 0  # 3e-7 x 2000: none
        unmeasured = estimate.survivors == 0
        assert torch.isnan(log_probs[torch.as_tensor(unmeasured)]).all()  # before: log(0.25) each
        assert torch.isfinite(log_probs[torch.as_tensor(~unmeasured)]).all()
        assert log_probs[0].exp().sum() == pytest.approx(1.0)
        # the neurons' success fraction of a step no shot reached is unknown, not 0
        tried = torch.as_tensor(estimate.alive_before == 0)
        assert torch.isnan(output.postselection.neuron[tried, 0]).all()
        # step 1 within shot noise of the engine: |p_hat - p| <= 5 sqrt(p (1 - p) / n) + 2 / n
        exact = QRNN(2, 2, 1, 1, 1, dtype=torch.float64)
        exact.load_state_dict(model.state_dict())
        p = exact(TOKENS, TARGETS)[0][0].exp().detach().numpy()
        n = estimate.survivors[0]
        assert np.all(np.abs(estimate.probs[0] - p) <= 5 * np.sqrt(p * (1 - p) / n) + 2 / n)
        # one warning, with the survivors per step and the shots the engine says are needed
        (warning,) = caught
        text = str(warning.message)
        assert (
            "survivors per step: "
            + ", ".join(str(int(k)) for k in estimate.survivors)
            + " of 2,000 shots"
            in text
        )
        needed = int(
            re.search(r"about ([\d,]+) shots per sequence for 1 expected survivor", text)
            .group(1)
            .replace(",", "")
        )
        assert needed == math.ceil(1 / survival.min())
        assert "NaN" in text and "on_insufficient_shots='raise'" in text

    def test_raise_option(self):
        model = _small_model(
            backend=qml.device("qiskit.aer", wires=20),
            shots=200,
            seed=1,
            on_insufficient_shots="raise",
        )
        with pytest.raises(
            InsufficientShotsError,
            match=r"survivors per step: \d+, 0, 0 of 200 shots.*Nothing was returned",
        ):
            model(TOKENS, TARGETS)

    def test_min_survivors_on_the_model(self):
        _, output, caught = self._run(min_survivors=100)
        log_probs = output.log_probs
        (estimate,) = output.shot_estimates
        assert estimate.survivors[0] < 100  # about 32
        assert torch.isnan(log_probs).all() and len(caught) == 1
        assert "fewer than min_survivors=100" in str(caught[0].message)

    def test_enough_shots_no_warning(self):
        """Amplified neurons, one step: every shot survives; nothing to warn about."""
        model = _small_model(mode="amplified", backend="qiskit.aer", shots=300, seed=2)
        with warnings.catch_warnings():
            warnings.simplefilter("error", InsufficientShotsWarning)
            output = model(TOKENS[:1], TARGETS[:1])
        assert output.shot_estimates[0].survivors.tolist() == [300]
        assert output.shot_estimates[0].standard_error[0] == pytest.approx(0.5 / math.sqrt(300))
        assert torch.isfinite(output.log_probs).all()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(on_insufficient_shots="ignore"),
            QRNNValueError,
            r"on_insufficient_shots must be one of \('warn', 'raise'\); got 'ignore'",
        ),
        (dict(min_survivors=0), QRNNValueError, "min_survivors must be an int >= 1; got 0"),
        # a wrong type is a TypeError (issue 9: TypeError for types, ValueError for values)
        (dict(min_survivors=2.5), QRNNTypeError, "min_survivors must be an int >= 1; got 2.5"),
        (dict(min_survivors=True), QRNNTypeError, "min_survivors must be an int >= 1; got True"),
    ],
)
def test_shot_options_validated(kwargs, error, message):
    with pytest.raises(error, match=message):
        QRNN(1, 2, backend="default.qubit", execution="native", shots=10, **kwargs)


def test_native_shots_warn_too():
    """The same on default.qubit's one-shot path (no extra needed): 50 shots of a postselect
    model over 3 steps leave no survivor at the end (the engine predicts < 1e-4 of one)."""
    torch.manual_seed(0)
    model = QRNN(2, 2, 1, 1, 1, backend="default.qubit", execution="native", shots=50, seed=3)
    with pytest.warns(InsufficientShotsWarning, match="survivors per step"):
        log_probs, _ = model(TOKENS, TARGETS)
    assert torch.isnan(log_probs[-1]).all()


# -- width and memory, before running ------------------------------------------------------
@requires_braket
def test_braket_local_refuses_a_program_wider_than_it_simulates():
    """3 steps of QRNN(2, 2, 1, 1, 2) need 6 lanes + 60 deferred measurements = 66 qubits; the
    state-vector simulator takes 26 (before: numpy's "Maximum allowed dimension exceeded")."""
    torch.manual_seed(0)
    model = QRNN(2, 2, 1, 1, 2, backend="braket.local.qubit", shots=10)
    with pytest.raises(
        DeviceCapabilityError,
        match=r"needs 66 qubits \(6 lanes \+ 60 deferred measurements\); "
        r"braket.local.qubit takes at most 26; .* GiB.*Nothing was run",
    ):
        model(TOKENS, TARGETS)


def test_local_simulator_memory_checked_before_running():
    program = _one_bit_program(3)  # 3 lanes, 6 qubits deferred
    device = qml.device("default.qubit")
    check_capacity(program, device, "native", memory=16 * 2**3)
    with pytest.raises(
        ModelSizeError,
        match=r"needs 6 qubits .* a state vector of 9.54e-07 GiB, and 2.52e-07 GiB "
        r"of memory is available \(room for 4 qubits\)",
    ):
        check_capacity(program, device, "deferred", memory=16 * 2**4 + 15)


@requires_qiskit
def test_qiskit_backend_too_narrow_is_refused_before_transpiling():
    """The old docs snippet: QRNN(2, 4, 1, 3, amplified) needs 6 qubits; FakeManilaV2 has 5
    (before: Qiskit's transpiler error from inside)."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    device = qml.device("qiskit.remote", wires=5, backend=FakeManilaV2())
    model = QRNN(2, 4, 1, 3, mode="amplified", backend=device, shots=100)
    with pytest.raises(
        DeviceCapabilityError,
        match=r"needs 6 qubits \(measured lanes reset and reused\); "
        r"fake_manila takes at most 5. Nothing was run",
    ):
        model(TOKENS, TARGETS)


# -- the docs' snippets run ------------------------------------------------------------------
def _docs_block(marker):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S) if marker in b]
    assert len(blocks) == 1, f"expected one python block with {marker!r} in docs/devices.md"
    return blocks[0]


@requires_qiskit
def test_docs_fake_backend_snippet_runs(capsys):
    namespace = {}
    exec(_docs_block("FakeManilaV2()"), namespace)
    model, probs = namespace["model"], namespace["log_probs"].exp()
    assert model.execution_plan()["measurements"] == "dynamic"
    assert torch.allclose(probs.sum(-1), torch.ones(3, dtype=probs.dtype))
    exact = QRNN(1, 2, stages=1, degree=2, order=1, mode="amplified", dtype=torch.float64)
    exact.load_state_dict(model.state_dict())
    expected = exact(torch.tensor([1, 0, 1]), torch.tensor([0, 1, 1]))[0].exp()
    # noise, not only shot noise: total-variation distance (as tests/devices/test_matrix.py)
    assert (probs.double() - expected).abs().sum(-1).max() / 2 < 0.2
    assert "tensor(" in capsys.readouterr().out


@requires_qiskit
def test_docs_insufficient_shots_snippet_runs(capsys):
    namespace = {}
    exec(_docs_block("catch_warnings"), namespace)
    estimate = namespace["output"].shot_estimates[0]
    assert estimate.survivors[-1] == 0 and torch.isnan(namespace["output"].log_probs[-1]).all()
    assert issubclass(namespace["caught"][-1].category, InsufficientShotsWarning)
    printed = capsys.readouterr().out
    assert "tensor([nan, nan, nan, nan])" in printed and "survivors per step" in printed


# -- the device table tells the truth --------------------------------------------------------
def test_device_table_says_shot_devices_run_both_modes():
    from pennylane_qrnn.devices.catalogue import describe_devices
    from pennylane_qrnn.devices.facts import device_facts

    for name in ("qiskit.aer", "qiskit.remote", "braket.local.qubit"):
        notes = device_facts(name).notes
        assert "amplified' only" not in notes and "both modes" in notes
    for row in describe_devices():
        if row["name"] in ("qiskit.aer", "braket.local.qubit"):
            assert row["path"] == "shots" and row["measurements"] in ("dynamic", "deferred")
    plan = QRNN(1, 2, mode="postselect", backend="braket.local.qubit").execution_plan()
    assert plan["path"] == "shots" and plan["measurements"] == "deferred"


@requires_qiskit
def test_diff_method_refused_on_the_shot_path():
    """The shot path has no gradient: asking for one by name is refused before anything runs."""
    import pennylane as qml

    from pennylane_qrnn.devices import DeviceCapabilityError

    # refused when the model is built (its executor is chosen then), at the latest when it runs
    with pytest.raises(DeviceCapabilityError, match="diff_method must be None on the shot path"):
        model = QRNN(
            1,
            1,
            1,
            1,
            1,
            mode="amplified",
            diff_method="parameter-shift",
            backend=qml.device("qiskit.aer", wires=8, shots=100),
        )
        model(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long))
