"""What each PennyLane device can do for a QRNN, and how to configure a QNode for it.

The QRNN's circuits need mid-circuit measurements with postselection (the neurons' ancillas in
``mode="postselect"``, and the i/o lanes under teacher forcing) and with reset. Devices differ:

* ``default.qubit``: postselects natively (``mcm_method="tree-traversal"``, analytic or shots);
* ``lightning.*``: postselects with ``mcm_method="tree-traversal"`` (analytic) or ``"one-shot"``
  (shots); its deferred method refuses postselection;
* ``qiskit.aer``, ``braket.local.qubit`` and other plugin devices only defer measurements and
  cannot postselect through PennyLane: run them with ``mode="amplified"``, or through the
  hardware path that postselects on shots.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeviceCapabilityError
from .facts import device_facts

__all__ = [
    "DeviceCapabilities",
    "capabilities",
    "qnode_options",
    "DeviceCapabilityError",
    "device_name",
]


@dataclass(frozen=True)
class DeviceCapabilities:
    """What a device offers a QRNN circuit.

    Attributes:
        name: the PennyLane short name
        postselect: mid-circuit measurements postselected on an outcome
        mcm_method: the ``mcm_method`` to give the QNode (``None``: PennyLane's default)
        analytic: exact probabilities without shots
        measurements: how a sequence's measurements are realised when run with shots:
            ``"native"`` (simulated mid-circuit measurements), ``"dynamic"`` (Qiskit dynamic
            circuits: measure and reset on the backend) or ``"deferred"`` (a fresh qubit per
            measurement); see :mod:`pennylane_qrnn.devices.execution`

    **Example**

    >>> from pennylane_qrnn.devices import capabilities
    >>> capabilities("lightning.qubit")
    DeviceCapabilities(name='lightning.qubit', postselect=True, mcm_method='tree-traversal', \
analytic=True, measurements='native')
    >>> capabilities("qiskit.aer").path  # no postselection: sequences run on the shot path
    'shots'
    """

    name: str
    postselect: bool
    mcm_method: str | None
    analytic: bool
    measurements: str = "deferred"

    @property
    def path(self) -> str:
        """``"circuits"``: QNodes, postselection done by the simulator (differentiable);
        ``"shots"``: the whole sequence as one circuit, postselection by filtering shots."""
        return "circuits" if self.postselect else "shots"


def device_name(device) -> str:
    """The short name of a device object or name.

    Args:
        device (Any): a PennyLane device, or its short name

    Returns:
        str: the short name (e.g. ``"lightning.qubit"``)

    **Example**

    >>> import pennylane as qml
    >>> from pennylane_qrnn.devices import device_name
    >>> device_name(qml.device("default.qubit")), device_name("qiskit.aer")
    ('default.qubit', 'qiskit.aer')
    """
    return device if isinstance(device, str) else getattr(device, "short_name", None) or device.name


def capabilities(device, shots=None) -> DeviceCapabilities:
    """The capability record of ``device`` (a device or its short name) at the given shots,
    from its :func:`~pennylane_qrnn.devices.facts.device_facts`.

    Args:
        device (Any): a PennyLane device, or its short name
        shots (int or None): the shots it runs with; ``None`` takes a device object's own

    Returns:
        DeviceCapabilities: the record

    **Example**

    >>> from pennylane_qrnn.devices import capabilities
    >>> capabilities("lightning.qubit").mcm_method, capabilities("lightning.qubit", 100).mcm_method
    ('tree-traversal', 'one-shot')
    """
    name = device_name(device)
    if shots is None and not isinstance(device, str):
        shots = getattr(device, "shots", None)
        shots = None if shots is None or not shots else shots
    facts = device_facts(name)
    return DeviceCapabilities(
        name, facts.postselects, facts.mcm_method(shots), not shots, facts.measurements
    )


def qnode_options(device, mode: str, teacher_forcing: bool = True, shots=None) -> dict:
    """QNode keyword arguments that run a QRNN circuit of this ``mode`` on ``device``.

    Args:
        device (Any): a PennyLane device, or its short name
        mode (str): the neurons' mode, ``"postselect"`` or ``"amplified"``
        teacher_forcing (bool): whether the circuit postselects the i/o lanes across steps
        shots (int or None): the shots it runs with; ``None`` takes a device object's own

    Returns:
        dict: the keyword arguments (``mcm_method``, or none)

    **Example**

    >>> from pennylane_qrnn.devices import qnode_options
    >>> qnode_options("default.qubit", "postselect")
    {'mcm_method': 'tree-traversal'}
    >>> qnode_options("qiskit.aer", "amplified", teacher_forcing=False)
    {}
    >>> qnode_options("qiskit.aer", "postselect")
    Traceback (most recent call last):
    ...
    pennylane_qrnn.errors.DeviceCapabilityError: device 'qiskit.aer' cannot postselect ...

    Raises:
        DeviceCapabilityError: if the circuit needs postselection (``mode="postselect"``, or teacher
            forcing across steps) and the device cannot postselect; the message names the
            alternative.
    """
    caps = capabilities(device, shots=shots)
    if not caps.postselect:
        if mode == "postselect":
            raise DeviceCapabilityError(
                f"device {caps.name!r} cannot postselect mid-circuit measurements through "
                "PennyLane (it only defers them), which mode='postselect' needs for the neurons' "
                "ancillas; use mode='amplified' (unitary neurons, no ancillas), or a device that "
                "postselects: default.qubit, lightning.qubit"
            )
        if teacher_forcing:
            raise DeviceCapabilityError(
                f"device {caps.name!r} cannot postselect mid-circuit measurements through "
                "PennyLane, which teacher forcing across steps needs; run single steps, use "
                "mode='amplified' with one step per circuit, or a device that postselects: "
                "default.qubit, lightning.qubit"
            )
        return {}
    return {"mcm_method": caps.mcm_method}
