"""Which PennyLane devices are installed here, and what each can do for a QRNN."""

from __future__ import annotations

from importlib.metadata import entry_points

from .capabilities import capabilities
from .facts import device_facts

__all__ = ["installed_devices", "describe_devices"]


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
                "notes": device_facts(name).notes,
            }
        )
    return rows
