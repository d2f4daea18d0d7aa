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
    "qiskit.aer": "Qiskit Aer (extra 'ibm'); shot path, both modes: dynamic circuits (measure + "
    "reset), postselection by filtering shots; no gradient (SPSA)",
    "qiskit.remote": "IBM backends via qiskit-ibm-runtime (extra 'ibm'); shot path, both modes: "
    "dynamic circuits on the backend, postselection by filtering shots; no gradient (SPSA)",
    "braket.local.qubit": "Braket local simulator (extra 'braket'); shot path, both modes: "
    "measurements deferred onto fresh qubits (at most 26 with braket_sv, 13 with braket_dm), "
    "postselection by filtering shots; no gradient (SPSA)",
    "braket.aws.qubit": "Amazon Braket QPUs/simulators (extra 'braket'); needs AWS credentials; "
    "shot path, both modes, measurements deferred; no gradient (SPSA)",
}


def installed_devices() -> list[str]:
    """Short names of the PennyLane devices installed in this environment."""
    names = {ep.name for ep in entry_points(group="pennylane.plugins")}
    return sorted(names)


def describe_devices() -> list[dict]:
    """One row per installed device: name, whether the simulator postselects mid-circuit
    measurements itself (``postselect``; otherwise a QRNN in either mode runs on the shot path and
    postselects by filtering shots), its mcm method, the ``path`` and shot ``measurements`` that
    :meth:`~pennylane_qrnn.QRNN.execution_plan` picks, and notes."""
    rows = []
    for name in installed_devices():
        caps = capabilities(name)
        rows.append(
            {
                "name": name,
                "postselect": caps.postselect,
                "mcm_method": caps.mcm_method,
                "path": caps.path,
                "measurements": None if caps.postselect else caps.measurements,
                "notes": _NOTES.get(name, ""),
            }
        )
    return rows
