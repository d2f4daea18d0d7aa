"""braket.aws.qubit without an AWS account: the target, its OpenQASM program, prices, and the
clear error before any network call."""

import re
import socket

import pytest
import torch

from pennylane_qrnn import QRNN
from pennylane_qrnn.devices.program import SequenceProgram

from ..conftest import requires_braket

pytestmark = requires_braket

ARN = "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """No credentials anywhere, and any attempt to open a connection fails loudly."""
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise ConnectionRefusedError(f"test: no network ({address})")

    def no_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(f"test: no network ({host})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    return attempts


def test_target_validation():
    from pennylane_qrnn.devices.braket import BraketTarget

    target = BraketTarget(ARN, "amazon-braket-qrnn-results", "runs")
    assert target.is_qpu and "s3://amazon-braket-qrnn-results/runs" in repr(target)
    with pytest.raises(
        ValueError,
        match="device_arn must look like arn:aws:braket:REGION::device/qpu/VENDOR/NAME; got 'iqm'",
    ):
        BraketTarget("iqm", "amazon-braket-x")
    with pytest.raises(ValueError, match="s3_bucket must be an S3 bucket name"):
        BraketTarget(ARN, "Bad_Bucket")


def test_openqasm_program():
    from pennylane_qrnn.devices.braket import openqasm

    model = QRNN(1, 2, stages=1, degree=2, order=1)
    program = SequenceProgram.build(model.weights(), [1, 0], model.layout)
    source = openqasm(program)
    assert source.startswith("OPENQASM 3.0;")
    assert f"qubit[{program.deferred_wires}] q;" in source
    assert len(re.findall(r"^cnot ", source, re.M)) == program.counts()["CNOT"] + 2 * len(
        program.records
    )
    assert len(re.findall(r"= measure q\[", source)) == len(program.records)
    assert len(re.findall(r"^ry\(", source, re.M)) == program.counts()["RY"]


def test_missing_credentials_fail_before_network(no_aws):
    from pennylane_qrnn.devices.braket import BraketTarget, MissingCredentialsError

    with pytest.raises(
        MissingCredentialsError,
        match="AWS credentials must be configured to use Amazon Braket; none found",
    ):
        BraketTarget(ARN, "amazon-braket-qrnn").device(wires=8)
    model = QRNN(
        1,
        2,
        mode="amplified",
        backend="braket.aws.qubit",
        shots=100,
        backend_options={
            "device_arn": ARN,
            "s3_destination_folder": ("amazon-braket-qrnn", "runs"),
        },
    )
    with pytest.raises(MissingCredentialsError, match="Nothing was sent"):
        model(torch.tensor([[1], [0]]), torch.tensor([[0], [1]]))
    assert no_aws == []  # not a single connection attempted


def test_credentials_checked_first_then_the_plugin_calls_aws(no_aws, monkeypatch):
    """With (dummy) credentials our check passes and only then does the plugin reach for AWS,
    which this sandbox refuses; the secret never shows up in the error."""
    from pennylane_qrnn.devices.braket import BraketTarget, aws_credentials_available

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-0123456789")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert aws_credentials_available()
    with pytest.raises(Exception) as caught:
        BraketTarget(ARN, "amazon-braket-qrnn").device(wires=8)
    assert "not-a-real-secret" not in str(caught.value)
    assert any("amazonaws.com" in str(host) for host in no_aws), (
        "the plugin should have tried to reach AWS"
    )


def test_budget_refuses_before_running():
    """IQM Garnet in the default table: 0.30 USD a task + 0.00145 USD a shot; two sequences of
    1000 shots = 2 x (0.30 + 1.45) = 3.50 USD > 1 USD."""
    from pennylane_qrnn.devices.resources import BudgetExceededError

    model = QRNN(
        1,
        2,
        mode="amplified",
        backend="braket.aws.qubit",
        shots=1000,
        budget=1.0,
        backend_options={
            "device_arn": ARN,
            "s3_destination_folder": ("amazon-braket-qrnn", "runs"),
        },
    )
    with pytest.raises(
        BudgetExceededError,
        match=r"estimated price 3.50 USD exceeds the budget of 1.00 USD "
        r"\(0.00 USD already spent, 1.00 USD remaining; 2 sequence\(s\) x 1,000 shots",
    ):
        model(torch.tensor([[1, 0], [0, 1]]), torch.tensor([[0, 1], [1, 0]]))
    assert model.spending.spent == 0.0


def test_budget_with_own_price_table_lets_a_cheap_run_through(no_aws):
    """Priced within budget, the run proceeds to the device, which then needs credentials."""
    from pennylane_qrnn.devices.braket import MissingCredentialsError

    model = QRNN(
        1,
        2,
        mode="amplified",
        backend="braket.aws.qubit",
        shots=1000,
        budget=1.0,
        price_table={"iqm/garnet": (0.0, 0.0001)},
        backend_options={
            "device_arn": ARN,
            "s3_destination_folder": ("amazon-braket-qrnn", "runs"),
        },
    )
    with pytest.raises(MissingCredentialsError):
        model(torch.tensor([[1], [0]]), torch.tensor([[0], [1]]))


def test_budget_charges_nothing_when_nothing_is_sent(no_aws):
    """Within budget, the run is charged only once it is submitted: missing credentials stop it
    before, so nothing is spent; the spending limit is per model, across calls."""
    from pennylane_qrnn.devices.braket import MissingCredentialsError

    model = QRNN(
        1,
        2,
        mode="amplified",
        backend="braket.aws.qubit",
        shots=1000,
        budget=1.0,
        price_table={"iqm/garnet": (0.0, 0.0001)},
        backend_options={
            "device_arn": ARN,
            "s3_destination_folder": ("amazon-braket-qrnn", "runs"),
        },
    )
    for _ in range(3):
        with pytest.raises(MissingCredentialsError):
            model(torch.tensor([[1], [0]]), torch.tensor([[0], [1]]))
    assert model.spending.spent == 0.0 and no_aws == []


def test_deferred_width_checked_against_the_simulator():
    """braket.local.qubit (state vector) simulates at most 26 qubits; a 3-step postselect
    sequence of QRNN(2, 2, 1, 1, 2) needs 66 with deferred measurements: refused before running."""
    import pennylane as qml

    from pennylane_qrnn.devices.capabilities import DeviceCapabilityError
    from pennylane_qrnn.devices.execution import run_program

    torch.manual_seed(0)
    model = QRNN(2, 2, 1, 1, 2)
    program = SequenceProgram.build(model.weights(), [1, 2, 3], model.layout)
    assert program.deferred_wires == 66
    device = qml.device("braket.local.qubit", wires=66, shots=10)
    with pytest.raises(
        DeviceCapabilityError, match="needs 66 qubits .* braket.local.qubit takes at most 26"
    ):
        run_program(program, device, "deferred", 10)
