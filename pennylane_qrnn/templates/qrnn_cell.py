r"""One step of Bausch's QRNN as a PennyLane template."""

from __future__ import annotations

import pennylane as qml
from pennylane.wires import Wires

from .. import neuron
from .base import MeasuringTemplate, PostselectedRY, check_finite_weights
from .quantum_neuron import QuantumNeuron, check_ancillas, check_mode, distinct_wires
from ..errors import QRNNValueError

__all__ = ["QRNNCell", "neuron_controls"]


def neuron_controls(target, io_wires, workspace_wires) -> list:
    """The control lanes of the neuron on ``target``: the workspace lanes, then the i/o lanes,
    skipping the target (the reference implementation's order, so checkpoints map one to one)."""
    return [w for w in list(workspace_wires) + list(io_wires) if w != target]


class QRNNCell(MeasuringTemplate):
    r"""One step of a recurrent quantum neural network (Bausch, NeurIPS 2020).

    With the input token already written onto the i/o lanes (:func:`write_token`), the cell
    applies

    1. the input stage: one :class:`QuantumNeuron` per workspace lane;
    2. ``stages`` work stages: a trainable rotation :math:`R(a) = \exp(i a Y)` (``qml.RY(2 a)``) on
       each workspace lane, then one neuron per workspace lane;
    3. the reset of the i/o lanes: ``X`` gates undoing the token (valid because so far the i/o
       lanes were only controls), so this step takes the token as the ``token`` argument;
    4. the output stage: one neuron per i/o lane.

    Every neuron on a lane ``t`` is controlled by all other i/o and workspace lanes, workspace
    first (:func:`neuron_controls`), so it has ``n_weights = sum_{k<=degree} C(I+H-1, k)`` angles.
    The i/o lanes then hold the prediction for the next token; between steps the sequence
    measures them (:func:`postselect_token` for teacher forcing, :func:`measure_token` for
    sampling) and the workspace carries the state on.

    Args:
        input_weights (tensor_like): shape ``(H, n_weights)``
        rotation_weights (tensor_like): shape ``(stages, H)``, the work stages' rotation angles
        stage_weights (tensor_like): shape ``(stages, H, n_weights)``
        output_weights (tensor_like): shape ``(I, n_weights)``
        token (int): the input token written on the i/o lanes (needed for the reset)
        io_wires (Iterable): the ``I`` i/o lanes, most significant bit first
        workspace_wires (Iterable): the ``H`` workspace lanes
        ancilla_wires (Iterable or None): ``order`` ancillas for ``mode="postselect"``
        degree (int): the neurons' degree
        order (int): the neurons' order
        mode (str): ``"postselect"`` or ``"amplified"`` (see :class:`QuantumNeuron`)

    All four weight tensors may carry one leading broadcast dimension (the same for all).

    In ``mode="postselect"`` the QNode must postselect mid-circuit measurements: give it
    ``mcm_method="tree-traversal"`` (or use ``default.qubit`` without fixed wires), and
    differentiate it with ``diff_method="backprop"``; gradient transforms are refused, see
    :class:`QuantumNeuron`. :class:`~pennylane_qrnn.QRNN` with a ``backend`` runs cells on any
    of these devices with right gradients.

    Raises:
        ValueError: for inconsistent shapes, overlapping wires, a bad token or mode
        DeviceCapabilityError: in ``mode="postselect"``, when queued in a QNode whose
            mid-circuit measurement method cannot postselect (see :class:`QuantumNeuron`)

    **Example**

    >>> import pennylane as qml, numpy as np
    >>> from pennylane_qrnn import QRNNCell, write_token
    >>> shapes = QRNNCell.shape(io_bits=1, workspace=2, stages=1, degree=2)
    >>> rng = np.random.default_rng(0)
    >>> weights = {k: rng.normal(0.4, 0.3, size=s) for k, s in shapes.items()}
    >>> @qml.qnode(qml.device("default.qubit"))
    ... def step():
    ...     write_token(1, io_wires=[0])
    ...     QRNNCell(**weights, token=1, io_wires=[0], workspace_wires=[1, 2],
    ...              ancilla_wires=[3, 4], degree=2, order=2)
    ...     return qml.probs(wires=[0])
    >>> step()
    array([0.51630919, 0.48369081])

    .. details::
        :title: Parameter shapes

        ``QRNNCell.shape(io_bits, workspace, stages, degree)`` returns a dict with the shape of
        each weight argument; ``QRNNCell.num_weights(...)`` their total, which reproduces the
        paper's counts (e.g. 837 for ``I=3, H=5, stages=1, degree=3``).
    """

    grad_method = None
    _wire_keys = ("io_wires", "workspace_wires", "ancilla_wires")
    ndim_params = (2, 2, 3, 2)

    def __init__(
        self,
        input_weights,
        rotation_weights,
        stage_weights,
        output_weights,
        token,
        io_wires,
        workspace_wires,
        ancilla_wires=None,
        degree=2,
        order=2,
        mode="postselect",
        id=None,
    ):
        degree = neuron.check_degree(degree)
        order = neuron.check_order(order)
        mode = check_mode(mode)
        io_wires, workspace_wires = Wires(io_wires), Wires(workspace_wires)
        ancilla_wires = Wires([] if ancilla_wires is None else ancilla_wires)
        if len(io_wires) < 1:
            raise QRNNValueError(f"io_wires must hold at least one wire; got {io_wires.tolist()}")
        if len(workspace_wires) < 1:
            raise QRNNValueError(
                f"workspace_wires must hold at least one wire; got {workspace_wires.tolist()}"
            )
        check_ancillas(mode, order, ancilla_wires)
        all_wires = distinct_wires(io_wires=io_wires, workspace_wires=workspace_wires, ancilla_wires=ancilla_wires)
        from .tokens import token_bits  # pylint: disable=import-outside-toplevel

        token_bits(token, len(io_wires))
        weights = (input_weights, rotation_weights, stage_weights, output_weights)
        names = ("input_weights", "rotation_weights", "stage_weights", "output_weights")
        stages = qml.math.shape(rotation_weights)[-2] if len(qml.math.shape(rotation_weights)) >= 2 else None
        if stages is None:
            raise QRNNValueError(
                "rotation_weights must have shape (stages, H) (or (batch, stages, H)); "
                f"got {tuple(qml.math.shape(rotation_weights))}"
            )
        expected = self.shape(len(io_wires), len(workspace_wires), stages, degree)
        batch = None
        for name, tensor in zip(names, weights):
            shape, want = tuple(qml.math.shape(tensor)), expected[name]
            if shape[-len(want):] != want or len(shape) - len(want) not in (0, 1):
                raise QRNNValueError(
                    f"{name} must have shape {want} (or (batch, *{want})) for I={len(io_wires)}, "
                    f"H={len(workspace_wires)}, stages={stages}, degree={degree}; got {shape}"
                )
            check_finite_weights(name, tensor)
            this_batch = shape[0] if len(shape) > len(want) else None
            if name != names[0] and this_batch != batch:
                raise QRNNValueError(
                    f"all weights must share one broadcast dimension; got {batch} for "
                    f"input_weights and {this_batch} for {name}"
                )
            batch = this_batch
        self._hyperparameters = {
            "token": int(token),
            "io_wires": io_wires,
            "workspace_wires": workspace_wires,
            "ancilla_wires": ancilla_wires,
            "degree": degree,
            "order": order,
            "mode": mode,
        }
        super().__init__(*weights, wires=Wires(all_wires), id=id)

    @property
    def num_params(self):
        return 4

    @staticmethod
    def shape(io_bits, workspace, stages, degree) -> dict:
        """Shapes of the four weight arguments for ``io_bits`` i/o lanes, ``workspace`` lanes,
        ``stages`` work stages and neurons of the given degree."""
        n_weights = neuron.num_weights(io_bits + workspace - 1, neuron.check_degree(degree))
        return {
            "input_weights": (workspace, n_weights),
            "rotation_weights": (stages, workspace),
            "stage_weights": (stages, workspace, n_weights),
            "output_weights": (io_bits, n_weights),
        }

    @staticmethod
    def num_weights(io_bits, workspace, stages, degree) -> int:
        """Total number of trainable angles: ``(H + S H + I) n_weights + S H``."""
        total = 0
        for shape in QRNNCell.shape(io_bits, workspace, stages, degree).values():
            count = 1
            for size in shape:
                count *= size
            total += count
        return total

    @staticmethod
    def compute_decomposition(
        input_weights,
        rotation_weights,
        stage_weights,
        output_weights,
        wires,
        token,
        io_wires,
        workspace_wires,
        ancilla_wires,
        degree,
        order,
        mode,
    ):  # pylint: disable=arguments-differ,too-many-arguments
        r"""Input stage, work stages, i/o reset and output stage, as standard operations."""
        from .tokens import write_token  # pylint: disable=import-outside-toplevel

        ops = []

        def add_neuron(weights, target):
            controls = neuron_controls(target, io_wires, workspace_wires)
            settings = {"degree": degree, "order": order, "mode": mode}
            if mode == "postselect":
                # expanded in place: its mid-circuit measurements must reach the tape
                ops.extend(
                    QuantumNeuron.compute_decomposition(
                        weights,
                        wires=None,
                        control_wires=Wires(controls),
                        target_wire=Wires([target]),
                        ancilla_wires=ancilla_wires,
                        **settings,
                    )
                )
            else:
                ops.append(QuantumNeuron(weights, controls, target, **settings))

        for lane, target in enumerate(workspace_wires):
            add_neuron(input_weights[..., lane, :], target)
        # in a postselected cell every angle acts through renormalised states: guard them all
        rotation = PostselectedRY if mode == "postselect" else qml.RY
        for stage in range(qml.math.shape(rotation_weights)[-2]):
            for lane, target in enumerate(workspace_wires):
                ops.append(rotation(2 * rotation_weights[..., stage, lane], wires=target))
            for lane, target in enumerate(workspace_wires):
                add_neuron(stage_weights[..., stage, lane, :], target)
        ops.extend(write_token(token, io_wires))
        for lane, target in enumerate(io_wires):
            add_neuron(output_weights[..., lane, :], target)
        return ops
