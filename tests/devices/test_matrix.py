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
    output = model(TOKENS, TARGETS)
    estimated = output.log_probs[:, 0].exp().detach().numpy()
    (estimate,) = output.shot_estimates
    for step in range(TOKENS.shape[0]):
        n = estimate.neuron_survivors[step]
        assert n > 50, f"too few surviving shots at step {step}: {n}"
        bound = 5 * np.sqrt(expected[step] * (1 - expected[step]) / n) + 2 / n
        assert np.all(np.abs(estimated[step] - expected[step]) <= bound), (
            step,
            estimated[step],
            expected[step],
            bound,
        )
    return estimate


@pytest.mark.parametrize("mode", ["postselect", "amplified"])
def test_lightning_shots_native(mode):
    model = _model(mode, backend="lightning.qubit", execution="native", shots=3000, seed=1)
    model.load_state_dict(_model(mode).state_dict())
    assert model.execution_plan() == {
        "backend": "lightning.qubit",
        "path": "shots",
        "measurements": "native",
        "shots": 3000,
    }
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
    model = _model(
        "amplified",
        backend="qiskit.aer",
        execution="deferred",
        shots=4000,
        backend_options={"seed_simulator": 5},
    )
    _assert_within_shot_noise(model, "amplified")


@requires_braket
@pytest.mark.parametrize(
    "simulator, mode",
    [("braket_sv", "postselect"), ("braket_sv", "amplified"), ("braket_dm", "amplified")],
)
def test_braket_local_deferred(simulator, mode):
    model = _model(
        mode, backend="braket.local.qubit", backend_options={"backend": simulator}, shots=3000
    )
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
    "lightning.gpu"
    not in {
        ep.name
        for ep in __import__("importlib.metadata").metadata.entry_points(group="pennylane.plugins")
    }
    or not torch.cuda.is_available(),
    reason="lightning.gpu needs pennylane-lightning-gpu (extra 'gpu') and an NVIDIA GPU",
)
def test_lightning_gpu_exact():
    model = _model(backend="lightning.gpu")
    model.load_state_dict(_model().state_dict())
    assert torch.allclose(model(TOKENS, TARGETS)[0], _model()(TOKENS, TARGETS)[0], atol=1e-8)


@pytest.mark.skipif(
    "lightning.kokkos"
    not in {
        ep.name
        for ep in __import__("importlib.metadata").metadata.entry_points(group="pennylane.plugins")
    },
    reason="lightning.kokkos needs pennylane-lightning-kokkos (extra 'kokkos')",
)
def test_lightning_kokkos_exact():
    model = _model(backend="lightning.kokkos")
    model.load_state_dict(_model().state_dict())
    assert torch.allclose(model(TOKENS, TARGETS)[0], _model()(TOKENS, TARGETS)[0], atol=1e-10)


def test_capability_table():
    rows = {
        name: capabilities(name)
        for name in (
            "default.qubit",
            "lightning.qubit",
            "qiskit.aer",
            "qiskit.remote",
            "braket.local.qubit",
            "braket.aws.qubit",
        )
    }
    assert (
        rows["default.qubit"].path == "circuits"
        and rows["lightning.qubit"].mcm_method == "tree-traversal"
    )
    assert rows["qiskit.remote"].path == "shots" and rows["qiskit.remote"].measurements == "dynamic"
    assert rows["braket.aws.qubit"].measurements == "deferred"


def test_bad_execution_choices():
    with pytest.raises(
        ValueError,
        match=r"execution must be one of \('native', 'dynamic', 'deferred'\); got 'magic'",
    ):
        QRNN(1, 2, backend="default.qubit", execution="magic")
    # refused when the model is built, before anything runs
    with pytest.raises(ValueError, match="execution='dynamic' needs a Qiskit backend"):
        QRNN(1, 2, backend="default.qubit", execution="dynamic", shots=10)
    with pytest.raises(ValueError, match="shots must be an int >= 1; got 0"):
        QRNN(1, 2, backend="lightning.qubit", execution="native", shots=0)


@requires_qiskit
def test_sampled_run_reports_a_surviving_shot():
    """Without targets the shot path reports one shot's outcomes; that shot must have passed every
    neuron postselection (its ancillas all read 0)."""
    model = _model("postselect", backend="qiskit.aer", shots=500, seed=4)
    output = model(TOKENS, generator=torch.Generator().manual_seed(0))
    (estimate,) = output.shot_estimates
    assert estimate.alive.any() and not estimate.alive.all()  # some shots fail: the check bites
    reported = output.outcomes[:, 0].numpy()
    assert any(
        (estimate.outcomes[shot] == reported).all() for shot in np.flatnonzero(estimate.alive)
    )


# -- the differential matrix: every exact device x gradient method x mode x (1, 3 steps) -------
#
# Forward and the gradient of two log-probabilities (first and last step) on the circuit path,
# against the exact engine with the same weights. Exact methods must agree to 1e-8; the circuit
# path's finite differences (central, h=1e-6, every wire measured) to 1e-6 relative (seen: 2e-9).
# Anything else is refused with DeviceCapabilityError naming the methods that work.

import importlib.metadata  # noqa: E402

from pennylane_qrnn.devices.capabilities import DeviceCapabilityError  # noqa: E402

_INSTALLED = {ep.name for ep in importlib.metadata.entry_points(group="pennylane.plugins")}
EXACT_DEVICES = [
    pytest.param(
        name, marks=pytest.mark.skipif(name not in _INSTALLED, reason=f"{name} not installed")
    )
    for name in ("default.qubit", "lightning.qubit", "lightning.kokkos")
]
METHODS = [None, "backprop", "adjoint", "parameter-shift", "finite-diff"]
SEQUENCES = {
    1: (torch.tensor([[1]]), torch.tensor([[0]])),
    3: (torch.tensor([[1], [0], [1]]), torch.tensor([[0], [1], [1]])),
}


def expected_outcome(device, method, mode, steps):
    """``"exact"``, ``"finite-diff"`` or the regex of the refusal."""
    lightning = device.startswith("lightning.")
    if method is None:
        if not lightning:
            return "exact"  # backprop
        return "exact" if mode == "amplified" else "finite-diff"  # joint shift rule / central FD
    if method == "backprop":
        return (
            r"got 'backprop': lightning\.\w+ does not simulate in torch" if lightning else "exact"
        )
    if method == "adjoint":
        if lightning or mode == "postselect":
            return "got 'adjoint': the adjoint method cannot differentiate mid-circuit measurements"
        return "exact" if steps == 1 else "got 'adjoint': teacher forcing postselects"
    if method == "parameter-shift":
        return (
            "exact"
            if mode == "amplified"
            else "diff_method must not be 'parameter-shift' with mode='postselect'"
        )
    return "finite-diff"


def _small(mode, order, **kwargs):
    model = QRNN(1, 1, stages=1, degree=1, order=order, mode=mode, dtype=torch.float64, **kwargs)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=generator, dtype=p.dtype) * 2 - 1) * 0.9 + 0.3)
    return model


def _objective_gradient(model, tokens, targets):
    log_probs, _ = model(tokens, targets)
    objective = log_probs[0, 0, 1] + log_probs[-1, 0, 0]
    grads = torch.autograd.grad(objective, list(model.parameters()))
    return log_probs.detach(), torch.cat([g.flatten() for g in grads])


def _slow_if(condition):
    return [pytest.mark.slow] if condition else []


MATRIX = [
    pytest.param(
        device.values[0],
        method,
        mode,
        steps,
        order,
        marks=list(device.marks)
        + _slow_if(
            steps == 3
            and (
                order == 2
                or expected_outcome(device.values[0], method, mode, steps) == "finite-diff"
            )
        ),
        id=f"{device.values[0]}-{method}-{mode}-{steps}step-order{order}",
    )
    for device in EXACT_DEVICES
    for method in METHODS
    for mode in ("postselect", "amplified")
    for steps in (1, 3)
    for order in (1, 2)
]


@pytest.mark.parametrize("device, method, mode, steps, order", MATRIX)
def test_differential_matrix(device, method, mode, steps, order):
    tokens, targets = SEQUENCES[steps]
    exact = _small(mode, order)
    expected_log_probs, expected_grad = _objective_gradient(exact, tokens, targets)
    assert expected_grad.abs().max() > 1e-3  # not a flat point
    outcome = expected_outcome(device, method, mode, steps)
    if outcome not in ("exact", "finite-diff"):
        # refused when the model is built (a method wrong for the device and mode) or when a
        # gradient is asked for (no method is right there; the forward pass still runs)
        with pytest.raises(DeviceCapabilityError, match=outcome):
            model = _small(mode, order, backend=device, diff_method=method)
            model.load_state_dict(exact.state_dict())
            _objective_gradient(model, tokens, targets)
        return
    model = _small(mode, order, backend=device, diff_method=method)
    model.load_state_dict(exact.state_dict())
    log_probs, grad = _objective_gradient(model, tokens, targets)
    assert torch.allclose(log_probs, expected_log_probs, atol=1e-10, rtol=0)
    if outcome == "exact":
        assert torch.allclose(grad, expected_grad, atol=1e-8, rtol=0)
    else:
        assert torch.allclose(grad, expected_grad, atol=1e-6 * expected_grad.abs().max(), rtol=0)


@pytest.mark.parametrize("device", ["default.qubit", "lightning.qubit"])
@pytest.mark.filterwarnings("ignore:Setting shots on device is deprecated")
def test_refused_methods_still_run_forward_without_gradient(device):
    """The default never refuses a forward pass: only gradients that would be wrong are refused."""
    tokens, targets = SEQUENCES[1]
    exact = _small("postselect", 1)
    model = _small("postselect", 1, backend=qml.device(device, shots=2000))
    model.load_state_dict(exact.state_dict())
    with pytest.raises(
        DeviceCapabilityError,
        match="no gradient method is right for postselected neurons on a sampling device",
    ):
        model(tokens, targets)
    with torch.no_grad():
        log_probs, _ = model(tokens, targets)
    assert log_probs.shape == (1, 1, 2) and torch.isfinite(log_probs).all()


@pytest.mark.parametrize("method", ["spsa", "hadamard", "device", "best-ever"])
def test_unknown_or_unsupported_methods_refused(method):
    # refused when the model is built, before anything runs
    with pytest.raises(DeviceCapabilityError, match=rf"got '{method}': the circuit path supports"):
        _small("amplified", 1, backend="default.qubit", diff_method=method)


@pytest.mark.parametrize("backend", ["default.qubit", "lightning.qubit"])
@pytest.mark.parametrize("method", [None, "finite-diff"])
def test_float32_in_float32_out(backend, method):
    """A float32 model returns float32 on the circuit path (the circuits run in float64)."""
    model = QRNN(1, 1, 1, 1, 1, backend=backend, diff_method=method)
    reference = QRNN(1, 1, 1, 1, 1)
    reference.load_state_dict(model.state_dict())
    log_probs, _ = model(*SEQUENCES[3])
    assert log_probs.dtype == torch.float32
    assert torch.allclose(log_probs, reference(*SEQUENCES[3])[0], atol=1e-6)


def test_unknown_backend_name_refused_at_construction():
    with pytest.raises(
        ValueError,
        match=r"backend must be the name of an installed PennyLane device \(.*default\.qubit.*\); "
        r"got 'no\.such\.device'",
    ):
        QRNN(1, 2, backend="no.such.device")


@requires_qiskit
def test_shot_devices_offer_no_gradient():
    """Sampling devices run on the shot path: estimates without gradient (no plausible wrong
    gradient can leave it), within shot noise forward (checked above)."""
    model = _model("amplified", backend="qiskit.aer", shots=500, seed=2)
    log_probs, _ = model(TOKENS, TARGETS)
    assert not log_probs.requires_grad
