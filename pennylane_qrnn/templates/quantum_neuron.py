r"""The quantum neuron of Cao, Guerreschi & Aspuru-Guzik (2017), as used by Bausch's QRNN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pennylane as qml
from pennylane.decomposition import register_resources, resource_rep
from pennylane.wires import Wires

from .. import neuron
from ..errors import QRNNValueError
from ..neuron import MODES, check_mode
from .base import (
    MeasuringTemplate,
    PostselectedRY,
    PostselectZero,
    basic_gate_counts,
    check_finite_weights,
    register_template_decomposition,
)
from .multiplexed_rotation import multiplexed_rotation_cost, multiplexed_ry

if TYPE_CHECKING:
    from pennylane.operation import Operator
    from pennylane.typing import TensorLike

__all__ = ["QuantumNeuron", "MODES", "check_mode", "neuron_resources"]


def check_ancillas(mode: str, order: int, ancilla_wires: Wires) -> None:
    """``order`` ancillas for ``"postselect"``, none for ``"amplified"``."""
    if mode == "postselect" and len(ancilla_wires) != order:
        raise QRNNValueError(
            f"ancilla_wires must hold order={order} wires for mode='postselect'; got "
            f"{len(ancilla_wires)}"
        )
    if mode == "amplified" and len(ancilla_wires) > 0:
        raise QRNNValueError(
            f"ancilla_wires must be empty for mode='amplified'; got {ancilla_wires.tolist()}"
        )


def distinct_wires(**groups: Wires) -> list[Any]:
    """All wires of the named groups, in order; raises unless no wire appears twice."""
    all_wires = [w for wires in groups.values() for w in wires.tolist()]
    if len(set(all_wires)) != len(all_wires):
        names = ", ".join(groups)
        names = " and ".join(names.rsplit(", ", 1))
        values = ", ".join(str(wires.tolist()) for wires in groups.values())
        raise QRNNValueError(f"{names} must be distinct; got {values}")
    return all_wires


def _controlled_minus_i_y(control: Any, target: Any, sign: int) -> list[Operator]:
    """Controlled ``RY(sign * pi)`` (``-iY`` for ``sign=+1``, ``+iY`` for ``-1``) with one CNOT:
    ``Y = S X S^dagger`` and the phase ``-/+ i`` moved onto the control as a phase shift."""
    return [
        qml.PhaseShift(-np.pi / 2, wires=target),
        qml.CNOT(wires=[control, target]),
        qml.PhaseShift(np.pi / 2, wires=target),
        qml.PhaseShift(-sign * np.pi / 2, wires=control),
    ]


class QuantumNeuron(MeasuringTemplate):
    r"""A quantum neuron: rotates a target qubit by a nonlinear function of a polynomial in
    control qubits, by nested repeat-until-success circuits (Cao et al. 2017; Bausch 2020).

    On a control basis state :math:`x` the pre-activation is

    .. math:: \eta(x) = \sum_{A \subseteq \text{controls},\ |A| \le d} \theta_A \prod_{i\in A} x_i,

    and the target is rotated by :math:`R(f(\eta))` with
    :math:`f(\eta) = \arctan(\tan(\eta)^{2^{k}})` for order :math:`k`, in the paper's
    convention :math:`R(a) = \exp(i a Y)` (PennyLane's ``qml.RY(2 a)``): from :math:`|0\rangle`
    the target ends in :math:`\cos f|0\rangle + \sin f|1\rangle`.

    Two modes:

    * ``"postselect"``: the circuit itself. Order 1 is a multiplexed ``RY(2 eta)`` onto an
      ancilla, a controlled :math:`-iY` from the ancilla onto the target, the inverse multiplexed
      rotation, and a mid-circuit measurement of the ancilla postselected on 0 and reset; order
      :math:`k` replaces the multiplexed rotation by an order-:math:`(k-1)` circuit on a fresh
      ancilla, so ``order`` ancillas are needed. On a superposed control register each branch gets
      the unnormalised map :math:`[[C, -S], [S, C]]`, :math:`C = \cos^{2^k}\eta`,
      :math:`S = \sin^{2^k}\eta`, and the state is renormalised. The device must postselect
      mid-circuit measurements (``default.qubit``; ``lightning.qubit`` with
      ``mcm_method="tree-traversal"`` or with shots); see :mod:`pennylane_qrnn.devices`.
    * ``"amplified"``: the ideal amplitude-amplification limit, a unitary multiplexed rotation of
      the target by :math:`f(\eta(x))` per control basis state; no ancillas, no measurement.

    **On the tape.** In a QNode the neuron is one operation, one box in ``qml.draw``, and
    ``qml.specs(level="top")`` counts the gates inside it (:meth:`resources`); the device's
    ``decompose`` transform expands it. Its measurements are :class:`~.base.PostselectZero`:
    kept as mid-circuit measurements under ``mcm_method="tree-traversal"``, ``"one-shot"`` or
    shots, and turned into ``qml.Projector([0], ancilla)`` where ``default.qubit`` defers
    (PennyLane's default for an analytic device, whose ``defer_measurements`` runs before
    ``decompose`` and sees only top-level measurements), so no fresh wire per measurement.
    Two cases still queue the decomposition: a deferring QNode whose state is batched by then
    (``default.qubit`` cannot postselect a batched state; ``defer_measurements`` splits the
    batch), or another deferring device; and outside a QNode.

    **QNode settings for** ``"postselect"``: ``default.qubit`` with any ``mcm_method``, or
    ``lightning.*`` with ``mcm_method="tree-traversal"`` (or ``"one-shot"`` with shots).
    Lightning refuses postselection where it defers, and a batched neuron that is deferred
    takes a fresh wire per measurement: queuing the neuron where this cannot run (Lightning
    deferring, too few fixed wires, a deferred state larger than this machine's memory) raises
    :class:`~pennylane_qrnn.devices.capabilities.DeviceCapabilityError` naming what works.

    **Gradients in** ``"postselect"`` **mode**: only ``diff_method="backprop"`` (``default.qubit``)
    is right. Postselection renormalises the state, so outputs are not linear in it (shift rules
    are wrong), and PennyLane's gradient transforms drop angles whose only effect on the measured
    wires is through a postselection (finite differences come out ``2**order`` too small). The
    neuron's rotations therefore refuse parameter-shift, finite-diff, SPSA and Hadamard gradients
    with a ``QRNNValueError`` when the gradient is taken. ``"amplified"`` neurons are unitary:
    every method works. :class:`~pennylane_qrnn.QRNN` on the circuit path handles both effects
    (joint probabilities for shift rules, all wires measured for finite differences).

    Args:
        weights (tensor_like): angles of shape ``(..., n_weights)`` (see :meth:`shape`): the bias,
            then one per subset of the controls of size ``1 .. degree``, sizes ascending, each
            size's subsets in lexicographic order of their positions in ``control_wires``. A
            leading dimension broadcasts.
        control_wires (Iterable): the neuron's inputs (may be empty: then only the bias acts)
        target_wire (Any or Iterable): the qubit rotated
        ancilla_wires (Iterable or None): ``order`` qubits in :math:`|0\rangle`, returned to it;
            required for ``"postselect"``, must be ``None`` or empty for ``"amplified"``
        degree (int): highest degree of the monomials, at least 1
        order (int): nesting depth of the repeat-until-success circuit, at least 1
        mode (str): ``"postselect"`` or ``"amplified"``
        id (str or None): string representing the operation (optional), as for PennyLane's
            templates

    Raises:
        TypeError: if ``degree`` or ``order`` is not an int
        ValueError: for a wrong weight shape, overlapping or missing wires, an unknown mode

    **Cost** (``postselect``; :func:`neuron_resources`): :math:`2^k` multiplexed rotations on the
    controls, each a walk through the Walsh coefficients of the degree-:math:`d` polynomial with
    one CNOT per step (e.g. 58 CNOTs for 8 controls at degree 2 instead of 256 for a full Gray
    code), :math:`2^k-1` kickbacks of one CNOT each, and :math:`2^k-1` mid-circuit measurements.
    The count is registered with PennyLane's decomposition system (``resource_keys``
    ``n_controls``, ``degree``, ``order``, ``mode``; ``qml.list_decomps(QuantumNeuron)``), so
    graph-based decompositions and ``qml.specs`` (through :meth:`resources`) see it.

    **Example**

    >>> import pennylane as qml, numpy as np
    >>> from pennylane_qrnn import QuantumNeuron
    >>> dev = qml.device("default.qubit")
    >>> weights = np.array([0.3, 0.5, -0.2, 0.4])  # bias, x0, x1, x0*x1
    >>> @qml.qnode(dev)
    ... def circuit():
    ...     qml.X(0)
    ...     QuantumNeuron(weights, control_wires=[0, 1], target_wire=2, ancilla_wires=[3, 4],
    ...                   degree=2, order=2)
    ...     return qml.probs(wires=2)
    >>> circuit()  # eta = 0.3 + 0.5 = 0.8: [cos^2 f, sin^2 f] with f = arctan(tan(0.8)**4)
    array([0.44184869, 0.55815131])

    .. details::
        :title: Parameter shape

        ``QuantumNeuron.shape(n_controls, degree)`` gives ``(sum_{k<=degree} C(n_controls, k),)``.
    """

    grad_method = None
    _wire_keys = ("control_wires", "target_wire", "ancilla_wires")
    ndim_params = (1,)
    resource_keys = {"n_controls", "degree", "order", "mode"}

    def __init__(
        self,
        weights: TensorLike,
        control_wires: Any,
        target_wire: Any,
        ancilla_wires: Any = None,
        degree: int = 1,
        order: int = 1,
        mode: str = "postselect",
        id: str | None = None,
    ) -> None:
        degree = neuron.check_degree(degree)
        order = neuron.check_order(order)
        mode = check_mode(mode)
        control_wires = Wires(control_wires)
        target_wire = Wires(target_wire)
        ancilla_wires = Wires([] if ancilla_wires is None else ancilla_wires)
        if len(target_wire) != 1:
            raise QRNNValueError(f"target_wire must be a single wire; got {target_wire.tolist()}")
        check_ancillas(mode, order, ancilla_wires)
        all_wires = distinct_wires(
            control_wires=control_wires, target_wire=target_wire, ancilla_wires=ancilla_wires
        )
        expected = self.shape(len(control_wires), degree)
        shape = qml.math.shape(weights)
        if len(shape) not in (1, 2) or tuple(shape[-1:]) != expected:
            raise QRNNValueError(
                f"weights must have shape {expected} (or (batch, {expected[0]})) for "
                f"{len(control_wires)} controls at degree {degree}; got {tuple(shape)}"
            )
        check_finite_weights("weights", weights)
        self._hyperparameters = {
            "control_wires": control_wires,
            "target_wire": target_wire,
            "ancilla_wires": ancilla_wires,
            "degree": degree,
            "order": order,
            "mode": mode,
        }
        super().__init__(weights, wires=Wires(all_wires), id=id)

    @property
    def num_params(self) -> int:
        return 1

    @staticmethod
    def shape(n_controls: int, degree: int) -> tuple[int]:
        """Shape of the weights of a neuron with ``n_controls`` controls and the given degree."""
        return (neuron.num_weights(int(n_controls), neuron.check_degree(degree)),)

    @property
    def resource_params(self) -> dict[str, Any]:
        hp = self.hyperparameters
        return {
            "n_controls": len(hp["control_wires"]),
            "degree": hp["degree"],
            "order": hp["order"],
            "mode": hp["mode"],
        }

    @staticmethod
    def compute_decomposition(
        weights: TensorLike,
        wires: Any,
        control_wires: Any,
        target_wire: Any,
        ancilla_wires: Any,
        degree: int,
        order: int,
        mode: str,
    ) -> list[Operator]:
        r"""The neuron as standard gates (and, in ``"postselect"`` mode, mid-circuit measurements
        postselected on 0 with reset)."""
        n = len(control_wires)
        eta = neuron.eta_table(weights, n, degree)
        target = target_wire[0]
        if mode == "amplified":
            return multiplexed_ry(2 * neuron.activation(eta, order), control_wires, target)

        def prepare(level: int, qubit: Any, sign: int) -> list[Operator]:
            # level 0: the multiplexed rotation itself; level j: an order-j block on `qubit`
            if level == 0:
                return multiplexed_ry(
                    sign * 2 * eta, control_wires, qubit, degree=degree, rotation=PostselectedRY
                )
            return block(level, qubit, sign)

        def block(level: int, qubit: Any, sign: int) -> list[Operator]:
            ancilla = ancilla_wires[level - 1]
            ops = prepare(level - 1, ancilla, +1)
            ops += _controlled_minus_i_y(ancilla, qubit, sign)
            ops += prepare(level - 1, ancilla, -1)
            ops.append(PostselectZero(ancilla))
            return ops

        return block(order, target, +1)


def _neuron_resource_counts(n_controls: int, degree: int, order: int, mode: str) -> dict[Any, int]:
    """The operators of :meth:`QuantumNeuron.compute_decomposition`, counted without building it:
    the resource function registered with PennyLane (the one count of a neuron's gates)."""
    if mode == "amplified":
        cost = multiplexed_rotation_cost(n_controls, None)
        return {resource_rep(qml.RY): cost["ry"], resource_rep(qml.CNOT): cost["cnot"]}
    mux = multiplexed_rotation_cost(n_controls, degree)
    n_mux, n_kick = 2**order, 2**order - 1
    return {
        resource_rep(PostselectedRY): n_mux * mux["ry"],
        resource_rep(qml.CNOT): n_mux * mux["cnot"] + n_kick,
        resource_rep(qml.PhaseShift): 3 * n_kick,
        resource_rep(PostselectZero): n_kick,
    }


@register_resources(_neuron_resource_counts)
def _neuron_decomposition(
    weights: TensorLike,
    wires: Any,
    control_wires: Any,
    target_wire: Any,
    ancilla_wires: Any,
    degree: int,
    order: int,
    mode: str,
    **_: Any,
) -> None:
    with qml.QueuingManager.stop_recording():
        ops = QuantumNeuron.compute_decomposition(
            weights, wires, control_wires, target_wire, ancilla_wires, degree, order, mode
        )
    for op in ops:
        qml.apply(op)


register_template_decomposition(QuantumNeuron, _neuron_decomposition)


def neuron_resources(
    n_controls: int, degree: int, order: int, mode: str = "postselect"
) -> dict[str, int]:
    """Gate counts of a :class:`QuantumNeuron`'s decomposition, without building it; read from
    the resource count registered with PennyLane (``qml.list_decomps(QuantumNeuron)``).

    Args:
        n_controls (int): number of control lanes
        degree (int): the neuron's degree
        order (int): the neuron's order
        mode (str): ``"postselect"`` or ``"amplified"``

    Returns:
        dict[str, int]: ``cnot``, ``ry``, ``phase_shift`` (the phase gates of the kickbacks),
        ``mid_circuit_measurements`` and ``ancillas``

    Raises:
        QRNNValueError: an unknown ``mode``, or a degree or order below 1

    **Example**

    >>> from pennylane_qrnn.templates import neuron_resources
    >>> neuron_resources(n_controls=3, degree=2, order=2)
    {'cnot': 35, 'ry': 28, 'phase_shift': 9, 'mid_circuit_measurements': 3, 'ancillas': 2}
    >>> neuron_resources(n_controls=3, degree=2, order=2, mode="amplified")["cnot"]
    8
    """
    check_mode(mode)
    counts = basic_gate_counts(
        _neuron_decomposition.compute_resources(
            n_controls=int(n_controls),
            degree=neuron.check_degree(degree),
            order=neuron.check_order(order),
            mode=mode,
        ).gate_counts
    )
    return {
        "cnot": counts.get("CNOT", 0),
        "ry": counts.get("RY", 0),
        "phase_shift": counts.get("PhaseShift", 0),
        "mid_circuit_measurements": counts.get("MidMeasureMP", 0),
        "ancillas": order if mode == "postselect" else 0,
    }
