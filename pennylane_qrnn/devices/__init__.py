"""Devices: what each can do, and running QRNN circuits on them."""

from .capabilities import (
    DeviceCapabilities,
    DeviceCapabilityError,
    capabilities,
    device_name,
    qnode_options,
)

__all__ = [
    "DeviceCapabilities",
    "DeviceCapabilityError",
    "capabilities",
    "device_name",
    "qnode_options",
]
