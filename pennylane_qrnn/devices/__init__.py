"""Devices: what each can do, and running QRNN circuits on them."""

from .capabilities import (
    DeviceCapabilities,
    DeviceCapabilityError,
    capabilities,
    device_name,
    qnode_options,
)
from .facts import DEVICE_FACTS, DeviceFacts, device_facts, qiskit_backend

__all__ = [
    "DeviceCapabilities",
    "DeviceCapabilityError",
    "capabilities",
    "device_name",
    "qnode_options",
    "DeviceFacts",
    "DEVICE_FACTS",
    "device_facts",
    "qiskit_backend",
]
