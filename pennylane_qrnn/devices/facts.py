"""What this package knows about each PennyLane device: one record per device name.

Every other module of :mod:`pennylane_qrnn.devices` reads its device-specific behaviour from here
(:func:`device_facts`): the capability records (:mod:`~pennylane_qrnn.devices.capabilities`), the
device table (:mod:`~pennylane_qrnn.devices.catalogue`), which devices get a wire count
(:func:`~pennylane_qrnn.devices.circuit_path.make_device`) and which simulators' memory is checked
before a run (:mod:`~pennylane_qrnn.devices.execution`). A device missing from the table gets
conservative defaults: it cannot postselect, runs on the shot path with deferred measurements
(Qiskit devices: dynamic circuits), and is given a fixed number of wires.

Example::

    >>> device_facts("lightning.qubit").mcm_method(shots=100)
    'one-shot'
    >>> device_facts("some.plugin").measurements
    'deferred'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeviceFacts", "DEVICE_FACTS", "device_facts", "qiskit_backend"]


@dataclass(frozen=True)
class DeviceFacts:
    """What a device offers a QRNN circuit.

    Attributes:
        name: the PennyLane short name
        postselects: runs mid-circuit measurements postselected on an outcome natively
        mcm_analytic: the QNode's ``mcm_method`` without shots (``None``: PennyLane's default)
        mcm_shots: the QNode's ``mcm_method`` with shots
        measurements: how a sequence's measurements are realised on the shot path: ``"native"``
            (simulated mid-circuit measurements), ``"dynamic"`` (Qiskit dynamic circuits) or
            ``"deferred"`` (a fresh qubit per measurement)
        dynamic_wires: allocates wires on demand (created without a wire count)
        local: simulates on this machine (its state must fit in this machine's memory)
        density_matrix: simulates a density matrix (``4**n`` amplitudes)
        adjoint_probabilities: its adjoint differentiation returns probabilities
        aws_credentials: needs AWS credentials before it is created
        extra: the package extra that installs its plugin (``pip install pennylane-qrnn[extra]``)
        notes: one line for the device table

    **Example**

    >>> from pennylane_qrnn.devices import DEVICE_FACTS
    >>> facts = DEVICE_FACTS["lightning.qubit"]
    >>> facts.postselects, facts.mcm_method(), facts.mcm_method(shots=1000)
    (True, 'tree-traversal', 'one-shot')
    """

    name: str
    postselects: bool = False
    mcm_analytic: str | None = None
    mcm_shots: str | None = None
    measurements: str = "deferred"
    dynamic_wires: bool = False
    local: bool = False
    density_matrix: bool = False
    adjoint_probabilities: bool = False
    aws_credentials: bool = False
    extra: str | None = None
    notes: str = ""

    def mcm_method(self, shots=None) -> str | None:
        """The ``mcm_method`` a QNode on this device takes, with or without ``shots``."""
        return self.mcm_shots if shots else self.mcm_analytic


def _lightning(name: str, extra: str | None, notes: str) -> DeviceFacts:
    return DeviceFacts(
        name,
        postselects=True,
        mcm_analytic="tree-traversal",
        mcm_shots="one-shot",
        measurements="native",
        dynamic_wires=True,
        local=True,
        extra=extra,
        notes=notes,
    )


_SHOT_PATH = "shot path, both modes"
_SPSA = "postselection by filtering shots; no gradient (SPSA)"

#: every device this package knows, by short name
DEVICE_FACTS = {
    facts.name: facts
    for facts in (
        DeviceFacts(
            "default.qubit",
            postselects=True,
            mcm_analytic="tree-traversal",
            mcm_shots="tree-traversal",
            measurements="native",
            dynamic_wires=True,
            local=True,
            adjoint_probabilities=True,
            notes="exact; backprop gradients; the reference for the circuit path",
        ),
        _lightning(
            "lightning.qubit", None, "fast C++ state vector; postselection via tree-traversal"
        ),
        _lightning("lightning.gpu", "gpu", "CUDA state vector (extra 'gpu'); needs an NVIDIA GPU"),
        _lightning("lightning.kokkos", None, "Kokkos state vector"),
        DeviceFacts("default.mixed", local=True, density_matrix=True),
        DeviceFacts(
            "qiskit.aer",
            measurements="dynamic",
            local=True,
            extra="ibm",
            notes=f"Qiskit Aer (extra 'ibm'); {_SHOT_PATH}: dynamic circuits (measure + reset), "
            f"{_SPSA}",
        ),
        DeviceFacts(
            "qiskit.remote",
            measurements="dynamic",
            extra="ibm",
            notes=f"IBM backends via qiskit-ibm-runtime (extra 'ibm'); {_SHOT_PATH}: dynamic "
            f"circuits on the backend, {_SPSA}",
        ),
        DeviceFacts(
            "braket.local.qubit",
            local=True,
            extra="braket",
            notes=f"Braket local simulator (extra 'braket'); {_SHOT_PATH}: measurements deferred "
            f"onto fresh qubits (at most 26 with braket_sv, 13 with braket_dm), {_SPSA}",
        ),
        DeviceFacts(
            "braket.aws.qubit",
            aws_credentials=True,
            extra="braket",
            notes="Amazon Braket QPUs/simulators (extra 'braket'); needs AWS credentials; "
            f"{_SHOT_PATH}, measurements deferred; no gradient (SPSA)",
        ),
    )
}


def device_facts(name: str) -> DeviceFacts:
    """The record of the device called ``name``; conservative defaults for one not in
    :data:`DEVICE_FACTS` (no postselection; deferred measurements, Qiskit's dynamic).

    Args:
        name (str): the device's PennyLane short name

    Returns:
        DeviceFacts: the record

    **Example**

    >>> from pennylane_qrnn.devices import device_facts
    >>> device_facts("qiskit.aer").extra  # the package extra that installs its plugin
    'ibm'
    >>> device_facts("qiskit.someday").measurements, device_facts("qiskit.someday").postselects
    ('dynamic', False)
    """
    known = DEVICE_FACTS.get(name)
    if known is not None:
        return known
    return DeviceFacts(name, measurements="dynamic" if name.startswith("qiskit.") else "deferred")


def qiskit_backend(device):
    """The Qiskit backend behind ``device``: a pennylane-qiskit device's ``backend``, else
    ``device`` itself (already a backend); ``None`` for ``None``. Whether it is a backend that
    can transpile is the caller's question (``hasattr(backend, "target")``).

    Args:
        device (Any): a pennylane-qiskit device, a Qiskit backend, or ``None``

    Returns:
        Any: the backend, or ``None``

    **Example**

    >>> from types import SimpleNamespace
    >>> from pennylane_qrnn.devices import qiskit_backend
    >>> qiskit_backend(SimpleNamespace(backend="a Qiskit backend"))  # a device's backend
    'a Qiskit backend'
    >>> qiskit_backend(None) is None
    True
    """
    if device is None:
        return None
    backend = getattr(device, "backend", None)
    return device if backend is None else backend
