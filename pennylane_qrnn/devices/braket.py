"""Amazon Braket: the QRNN's program as Braket sees it, credentials, and a target object.

Braket QPUs run a circuit and measure at the end, so a QRNN sequence goes there with its
measurements deferred onto fresh qubits (:meth:`SequenceProgram.deferred_operations`). Credentials
come only from the standard AWS places (environment variables, the shared credentials/config
files, ``AWS_PROFILE``); they are looked up locally, never printed, and a missing one is reported
before any network call.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

from ..errors import QRNNError, QRNNTypeError, QRNNValueError
from .program import SequenceProgram

__all__ = [
    "BraketTarget",
    "MissingCredentialsError",
    "braket_circuit",
    "openqasm",
    "aws_credentials_available",
]

_ARN = re.compile(
    r"^arn:aws:braket:[a-z0-9-]*::device/(qpu|quantum-simulator)/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
)
_BUCKET = re.compile(r"^(?!amzn-s3-demo-)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class MissingCredentialsError(QRNNError, RuntimeError):
    """No AWS credentials in the standard places; raised before any network call."""


@contextmanager
def _no_instance_metadata():
    # botocore's chain would otherwise ask the EC2 metadata service over the network
    previous = os.environ.get("AWS_EC2_METADATA_DISABLED")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["AWS_EC2_METADATA_DISABLED"]
        else:
            os.environ["AWS_EC2_METADATA_DISABLED"] = previous


def aws_credentials_available(profile: str | None = None) -> bool:
    """Whether AWS credentials are configured locally (environment, shared files, profile).

    Looks only at local sources (no instance-metadata request) and returns a bool, never the
    credentials themselves.
    """
    import botocore.session

    with _no_instance_metadata():
        session = botocore.session.Session(profile=profile)
        try:
            credentials = session.get_credentials()
        except Exception:  # a profile that does not exist, an unreadable file
            return False
    return credentials is not None and bool(credentials.access_key)


def require_credentials(profile: str | None = None) -> None:
    """Raise :class:`MissingCredentialsError` (with what to do) unless credentials are set up."""
    if not aws_credentials_available(profile):
        where = f"profile {profile!r}" if profile else "the environment or the default profile"
        raise MissingCredentialsError(
            f"AWS credentials must be configured to use Amazon Braket; none found in {where}. "
            "Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or run "
            "`aws configure` / set AWS_PROFILE (see docs/devices.md). Nothing was sent."
        )


def braket_circuit(program: SequenceProgram):
    """The program as a Braket ``Circuit``, measurements deferred onto fresh qubits, translated
    gate by gate with the PennyLane-Braket plugin's own translation."""
    from braket.circuits import Circuit, Instruction
    from braket.pennylane_plugin.translation import translate_operation

    circuit = Circuit()
    for op in program.deferred_operations():
        circuit.add_instruction(Instruction(translate_operation(op), [int(w) for w in op.wires]))
    record_qubits = [program.n_wires + r.index for r in program.records]
    circuit.measure(record_qubits)
    return circuit


def openqasm(program: SequenceProgram) -> str:
    """The OpenQASM 3 source Braket would receive for ``program``."""
    from braket.circuits.serialization import IRType

    return braket_circuit(program).to_ir(IRType.OPENQASM).source


class BraketTarget:
    """A Braket device to run a QRNN on: its ARN and the S3 folder for results.

    Args:
        device_arn (str): e.g. ``"arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"``
        s3_bucket (str): the bucket for results (``amazon-braket-...`` by convention)
        s3_prefix (str): the folder inside it
        profile (str or None): an AWS profile name (default: the standard chain)

    Raises:
        TypeError: for an ARN or bucket name that is not a string
        ValueError: for a malformed ARN or bucket name
    """

    def __init__(
        self, device_arn: str, s3_bucket: str, s3_prefix: str = "qrnn", profile: str | None = None
    ):
        for name, value in (("device_arn", device_arn), ("s3_bucket", s3_bucket)):
            if not isinstance(value, str):
                raise QRNNTypeError(f"{name} must be a str; got {type(value).__name__} {value!r}")
        if not _ARN.match(device_arn):
            raise QRNNValueError(
                "device_arn must look like arn:aws:braket:REGION::device/qpu/VENDOR/NAME; "
                f"got {device_arn!r}"
            )
        if not _BUCKET.match(s3_bucket):
            raise QRNNValueError(
                "s3_bucket must be an S3 bucket name (3-63 lowercase letters, digits, '.', '-'); "
                f"got {s3_bucket!r}"
            )
        self.device_arn, self.s3_bucket, self.s3_prefix, self.profile = (
            device_arn,
            s3_bucket,
            s3_prefix,
            profile,
        )

    def __repr__(self):
        return f"BraketTarget({self.device_arn!r}, s3://{self.s3_bucket}/{self.s3_prefix})"

    @property
    def is_qpu(self) -> bool:
        return "/qpu/" in self.device_arn

    def device(self, wires: int, **kwargs):
        """The ``braket.aws.qubit`` PennyLane device. Checks credentials first: without them it
        raises :class:`MissingCredentialsError` before anything touches the network."""
        require_credentials(self.profile)
        import pennylane as qml

        return qml.device(
            "braket.aws.qubit",
            wires=wires,
            device_arn=self.device_arn,
            s3_destination_folder=(self.s3_bucket, self.s3_prefix),
            **kwargs,
        )
