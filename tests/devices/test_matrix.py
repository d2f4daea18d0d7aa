"""The same small QRNN on every device that installs here, against the exact engine.

Exact devices must agree to 1e-10 (tests/nn covers default.qubit and lightning.qubit on the
circuit path). Sampling devices must agree within shot noise: for every step and token,
``|p_hat - p| <= 5 sqrt(p (1 - p) / n) + 2 / n`` with ``n`` the shots still alive at that step
(5 standard deviations of a binomial frequency, plus a small-count margin).
"""

import numpy as np
import pennylane as qml
import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.devices import capabilities

from ..conftest import requires_braket, requires_qiskit

TOKENS = torch.tensor([[1], [0]])


def _model(mode="postselect", **kwargs):
    model = QRNN(1, 2, stages=1, degree=2, order=1, mode=mode, dtype=torch.float64, **kwargs)
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=generator, dtype=p.dtype) * 2 - 1) * 0.9)
    return model


def _likely_targets(mode):
    """Teacher-forcing targets the model finds likely (greedy), so enough shots survive."""
    exact = _model(mode)
    targets = []
    for step in range(TOKENS.shape[0]):
        partial = torch.tensor(targets + [0]).unsqueeze(1)
        log_probs, _ = exact(TOKENS[: step + 1], partial)
        targets.append(int(log_probs[step, 0].argmax()))
    return torch.tensor(targets).unsqueeze(1)


TARGETS = _likely_targets("postselect")


def _assert_within_shot_noise(model, mode):
    exact = _model(mode)
    expected = exact(TOKENS, TARGETS)[0][:, 0].exp().detach().numpy()
    estimated = model(TOKENS, TARGETS)[0][:, 0].exp().detach().numpy()
    (estimate,) = model.last_shot_estimates
    for step in range(TOKENS.shape[0]):
        n = estimate.neuron_survivors[step]
        assert n > 50, f"too few surviving shots at step {step}: {n}"
        bound = 5 * np.sqrt(expected[step] * (1 - expected[step]) / n) + 2 / n
        assert np.all(np.abs(estimated[step] - expected[step]) <= bound), (step, estimated[step], expected[step], bound)
    return estimate


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
def test_lightning_shots_native(mode):
    model = _model(mode, backend="lightning.qubit", execution="native", shots=3000, seed=1)
    model.load_state_dict(_model(mode).state_dict())
    assert model.execution_plan() == {"backend": "lightning.qubit", "path": "shots", "measurements": "native", "shots": 3000}
    _assert_within_shot_noise(model, mode)


@requires_qiskit
@pytest.mark.parametrize("mode", ["postselect", "amplified"])
def test_qiskit_aer_dynamic_circuits(mode):
    model = _model(mode, backend="qiskit.aer", shots=4000, seed=3)
    assert model.execution_plan()["measurements"] == "dynamic"
    estimate = _assert_within_shot_noise(model, mode)
    if mode == "amplified":
        assert estimate.neuron_survivors[0] == 4000  # no neuron postselection in amplified mode


@requires_qiskit
def test_qiskit_aer_deferred_via_pennylane():
    model = _model("amplified", backend="qiskit.aer", execution="deferred", shots=4000, backend_options={"seed_simulator": 5})
    _assert_within_shot_noise(model, "amplified")


@requires_braket
@pytest.mark.parametrize("simulator, mode", [("braket_sv", "postselect"), ("braket_sv", "amplified"), ("braket_dm", "amplified")])
def test_braket_local_deferred(simulator, mode):
    model = _model(mode, backend="braket.local.qubit", backend_options={"backend": simulator}, shots=3000)
    plan = model.execution_plan()
    assert plan["measurements"] == "deferred"
    _assert_within_shot_noise(model, mode)


@requires_qiskit
def test_qiskit_remote_fake_backend_noisy_but_close():
    """qiskit.remote on a fake IBM backend (real calibration data): PennyLane's device refuses
    mid-circuit measurements, so the model runs as a dynamic circuit on the device's backend,
    transpiled to its native gates, with its noise."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    device = qml.device("qiskit.remote", wires=5, backend=FakeManilaV2())
    model = _model("amplified", backend=device, shots=4000, seed=7)
    assert model.execution_plan()["measurements"] == "dynamic"
    expected = _model("amplified")(TOKENS, TARGETS)[0][:, 0].exp().detach().numpy()
    estimated = model(TOKENS, TARGETS)[0][:, 0].exp().detach().numpy()
    # noise, not just shot noise: a total-variation distance bound (about 70 two-qubit gates)
    assert np.abs(estimated - expected).sum(axis=1).max() / 2 < 0.2


@pytest.mark.skipif(
    "lightning.gpu" not in {ep.name for ep in __import__("importlib.metadata").metadata.entry_points(group="pennylane.plugins")}
    or not torch.cuda.is_available(),
    reason="lightning.gpu needs pennylane-lightning-gpu (extra 'gpu') and an NVIDIA GPU",
)
def test_lightning_gpu_exact():
    model = _model(backend="lightning.gpu")
    model.load_state_dict(_model().state_dict())
    assert torch.allclose(model(TOKENS, TARGETS)[0], _model()(TOKENS, TARGETS)[0], atol=1e-8)


@pytest.mark.skipif(
    "lightning.kokkos" not in {ep.name for ep in __import__("importlib.metadata").metadata.entry_points(group="pennylane.plugins")},
    reason="lightning.kokkos needs pennylane-lightning-kokkos (extra 'kokkos')",
)
def test_lightning_kokkos_exact():
    model = _model(backend="lightning.kokkos")
    model.load_state_dict(_model().state_dict())
    assert torch.allclose(model(TOKENS, TARGETS)[0], _model()(TOKENS, TARGETS)[0], atol=1e-10)


def test_capability_table():
    rows = {name: capabilities(name) for name in ("default.qubit", "lightning.qubit", "qiskit.aer", "qiskit.remote", "braket.local.qubit", "braket.aws.qubit")}
    assert rows["default.qubit"].path == "circuits" and rows["lightning.qubit"].mcm_method == "tree-traversal"
    assert rows["qiskit.remote"].path == "shots" and rows["qiskit.remote"].measurements == "dynamic"
    assert rows["braket.aws.qubit"].measurements == "deferred"


def test_bad_execution_choices():
    with pytest.raises(ValueError, match="execution must be 'native', 'dynamic' or 'deferred'; got 'magic'"):
        QRNN(1, 2, backend="default.qubit", execution="magic")
    model = QRNN(1, 2, backend="default.qubit", execution="dynamic", shots=10)
    with pytest.raises(ValueError, match="execution='dynamic' needs a Qiskit backend"):
        model(TOKENS, TARGETS)
    with pytest.raises(ValueError, match="shots must be a positive int or None; got 0"):
        QRNN(1, 2, backend="lightning.qubit", execution="native", shots=0)


@requires_qiskit
def test_sampled_run_reports_a_surviving_shot():
    """Without targets the shot path reports one shot's outcomes; that shot must have passed every
    neuron postselection (its ancillas all read 0)."""
    model = _model("postselect", backend="qiskit.aer", shots=500, seed=4)
    model(TOKENS, generator=torch.Generator().manual_seed(0))
    (estimate,) = model.last_shot_estimates
    assert estimate.alive.any() and not estimate.alive.all()  # some shots fail: the check bites
    reported = model.last_outcomes[:, 0].numpy()
    assert any((estimate.outcomes[shot] == reported).all() for shot in np.flatnonzero(estimate.alive))
