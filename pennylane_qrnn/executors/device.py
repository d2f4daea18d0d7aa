"""A PennyLane device held by an executor: by name and options, built when first needed.

A live device (Lightning's C++ state, a cloud session) must not be pickled or deep-copied with a
model; :class:`DeviceSpec` keeps what rebuilds it and drops the live object on copy.
"""

from __future__ import annotations

from typing import Any

from ..devices.capabilities import device_name
from ..devices.catalogue import installed_devices
from ..devices.circuit_path import make_device
from ..errors import QRNNTypeError, QRNNValueError

__all__ = ["DeviceSpec"]


class DeviceSpec:
    """A device given as a PennyLane device or the name of an installed one.

    Args:
        device (Any): a PennyLane device object, or its short name (e.g. ``"lightning.qubit"``)
        options (dict or None): keyword arguments for ``qml.device`` when ``device`` is a name
            (a device object's own ``shots`` are recorded here too)

    Raises:
        QRNNValueError: a name that is not an installed PennyLane device
        QRNNTypeError: neither a name nor a device

    **Example**

    >>> from pennylane_qrnn.executors import DeviceSpec
    >>> spec = DeviceSpec("default.qubit", {"seed": 7})
    >>> spec, spec.name  # the repr names option keys only (they may hold account details)
    (DeviceSpec('default.qubit', options: seed), 'default.qubit')
    >>> spec.live(n_wires=3).name  # built when first needed
    'default.qubit'
    """

    def __init__(self, device: Any, options: dict | None = None) -> None:
        if options is not None and not isinstance(options, dict):
            raise QRNNTypeError(
                f"backend_options must be a dict or None; got {type(options).__name__}"
            )
        options = dict(options or {})
        if isinstance(device, str):
            installed = installed_devices()
            if device not in installed:
                raise QRNNValueError(
                    "backend must be the name of an installed PennyLane device "
                    f"({', '.join(installed)}); got {device!r}"
                )
            self.name, self.options, self._live = device, options, None
            return
        if not hasattr(device, "execute"):
            raise QRNNTypeError(
                f"backend must be None, a PennyLane device or its name; got {type(device).__name__}"
            )
        shots = getattr(device, "shots", None)
        if shots:
            options.setdefault(
                "shots", shots.total_shots if hasattr(shots, "total_shots") else shots
            )
        self.name, self.options, self._live = device_name(device), options, device

    @property
    def given(self) -> Any:
        """The device object if one was given or built, else the name."""
        return self._live if self._live is not None else self.name

    def live(self, n_wires: int) -> Any:
        """The device, built with ``n_wires`` wires (where it needs a count) if not yet."""
        if self._live is None:
            self._live = make_device(self.name, n_wires, **self.options)
        return self._live

    @property
    def shots(self) -> int | None:
        shots = self.options.get("shots")
        return int(shots) if shots else None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_live"] = None
        return state

    def __deepcopy__(self, memo: dict[int, Any]) -> DeviceSpec:
        import copy

        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = None if key == "_live" else copy.deepcopy(value, memo)
        return clone

    def __repr__(self) -> str:
        # options may hold account details (a Braket profile, an IBM instance): names only
        keys = ", ".join(sorted(self.options))
        return f"DeviceSpec({self.name!r}{f', options: {keys}' if keys else ''})"
