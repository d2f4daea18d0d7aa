"""Which PennyLane devices are installed here, and what each can do for a QRNN."""

from __future__ import annotations

from importlib.metadata import entry_points

from .capabilities import capabilities

__all__ = ["installed_devices", "describe_devices"]

_NOTES = {
    "default.qubit": "exact; backprop gradients; the reference for the circuit path",
    "lightning.qubit": "fast C++ state vector; postselection via tree-traversal",
    "lightning.gpu": "CUDA state vector (extra 'gpu'); needs an NVIDIA GPU",
    "lightning.kokkos": "Kokkos state vector",
    "qiskit.aer": "Qiskit Aer simulator (extra 'ibm'); samples; mode='amplified' only",
    "qiskit.remote": "IBM backends via qiskit-ibm-runtime (extra 'ibm'); mode='amplified' only",
    "braket.local.qubit": "Braket local simulator (extra 'braket'); mode='amplified' only",
    "braket.aws.qubit": "Amazon Braket QPUs/simulators (extra 'braket'); needs AWS credentials",
}


def installed_devices() -> list[str]:
    """Short names of the PennyLane devices installed in this environment."""
    names = {ep.name for ep in entry_points(group="pennylane.plugins")}
    return sorted(names)


def describe_devices() -> list[dict]:
    """One row per installed device: name, postselection support, mcm method, notes."""
    rows = []
    for name in installed_devices():
        caps = capabilities(name)
        rows.append({"name": name, "postselect": caps.postselect, "mcm_method": caps.mcm_method, "notes": _NOTES.get(name, "")})
    return rows
