r"""One step of Bausch's QRNN as a PennyLane template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import pennylane as qml
from pennylane.decomposition import register_resources, resource_rep
from pennylane.wires import Wires

from .. import neuron
from ..errors import QRNNTypeError, QRNNValueError
from ..layout import CellLayout, neuron_controls
from .base import (
    MeasuringTemplate,
    PostselectedRY,
    PostselectZero,
    check_finite_weights,
    register_template_decomposition,
)
from .quantum_neuron import (
    QuantumNeuron,
    _neuron_resource_counts,
    check_ancillas,
    distinct_wires,
)
from .tokens import token_bits, unwrite_angles, write_angles, write_token

if TYPE_CHECKING:
    from pennylane.operation import Operator
    from pennylane.typing import TensorLike

__all__ = ["QRNNCell", "neuron_controls"]


class QRNNCell(MeasuringTemplate):
    r"""One step of a recurrent quantum neural network (Bausch, NeurIPS 2020).

    With the i/o lanes in :math:`|0\ldots0\rangle`, the cell applies

    1. the write of the input ``token``: ``X`` gates on the i/o lanes of its 1 bits
       (:func:`write_token`; skipped with ``write=False``);
    2. the input stage: one :class:`QuantumNeuron` per workspace lane;
    3. ``stages`` work stages: a trainable rotation :math:`R(a) = \exp(i a Y)` (``qml.RY(2 a)``) on
       each workspace lane, then one neuron per workspace lane;
    4. the reset of the i/o lanes: the same ``X`` gates, undoing the token (valid because so far
       the i/o lanes were only controls);
    5. the output stage: one neuron per i/o lane (left out with ``output=False``: the i/o lanes
       are then back in ``|0>``, with nothing to read; the ``qpu`` protocol's unscored steps).

    **Real-valued inputs.** Given ``angles`` (one per i/o lane) instead of a ``token``, the write
    is ``qml.RY(2 angle)`` on each i/o lane and the reset is ``qml.RY(-2 angle)`` followed by a
    mid-circuit measurement of each i/o lane postselected on 0: the workspace is then left in
    ``sum_x a_x**2 W[x] psi`` (:mod:`pennylane_qrnn.encoding`). The cell postselects even in
    ``mode="amplified"``, so it needs a QNode that postselects, and is differentiable with
    respect to the angles (``diff_method="backprop"``).

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
        token (int or None): the input token; the cell writes it onto the i/o lanes and resets
            them. ``None`` when ``angles`` are given
        io_wires (Iterable): the ``I`` i/o lanes, most significant bit first
        workspace_wires (Iterable): the ``H`` workspace lanes
        ancilla_wires (Iterable or None): ``order`` ancillas for ``mode="postselect"``
        degree (int): the neurons' degree
        order (int): the neurons' order
        mode (str): ``"postselect"`` or ``"amplified"`` (see :class:`QuantumNeuron`)
        write (bool): ``True`` (default): the cell writes ``token`` itself. ``False``: the caller
            has already written exactly ``token`` onto the i/o lanes (e.g. with
            :func:`write_token`) and the cell only resets it.
        output (bool): ``True`` (default): with the output stage; ``False``: without it.
        id (str or None): string representing the operation (optional), as for PennyLane's
            templates
        angles (tensor_like or None): shape ``(I,)`` (or ``(batch, I)``), real-valued inputs
            written instead of a token (see above); a fifth trainable parameter

    **Who writes the token.** Earlier development versions had the caller write the token
    (``write_token(token, io_wires)``) and pass it again for the reset. That code now writes
    it twice (``X X`` = identity), so the cell refuses, when queued in a QNode or tape, to start
    with an ``X`` gate as the last operation on an i/o lane (``write=True``), and to reset a token
    other than the one the preceding ``X`` gates or resetting measurements left there
    (``write=False``), with a ``QRNNValueError`` naming the fix: drop the ``write_token`` call, or
    pass ``write=False``. An operator list assembled by hand outside any queue (from
    ``decomposition()``) cannot be checked: there the token must be written once.

    All four weight tensors may carry one leading broadcast dimension (the same for all).

    In ``mode="postselect"`` the QNode must postselect mid-circuit measurements: give it
    ``mcm_method="tree-traversal"`` (or use ``default.qubit`` without fixed wires), and
    differentiate it with ``diff_method="backprop"``; gradient transforms are refused, see
    :class:`QuantumNeuron`. :class:`~pennylane_qrnn.QRNN` with a ``backend`` runs cells on any
    of these devices with right gradients.

    Raises:
        TypeError: if ``write`` or ``output`` is not a bool
        ValueError: for inconsistent shapes, overlapping wires, a bad token or mode; when queued
            after ``X`` gates on the i/o lanes with ``write=True`` (the token would be written
            twice), or after gates that wrote another token with ``write=False``
        DeviceCapabilityError: in ``mode="postselect"``, when queued in a QNode whose
            mid-circuit measurement method cannot postselect (see :class:`QuantumNeuron`)

    **Example**

    >>> import pennylane as qml, numpy as np
    >>> from pennylane_qrnn import QRNNCell
    >>> shapes = QRNNCell.shape(io_bits=1, workspace=2, stages=1, degree=2)
    >>> rng = np.random.default_rng(0)
    >>> weights = {k: rng.normal(0.4, 0.3, size=s) for k, s in shapes.items()}
    >>> @qml.qnode(qml.device("default.qubit"))
    ... def step():
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

    **Resources.** The decomposition's count is registered with PennyLane
    (``qml.list_decomps(QRNNCell)``; ``resource_keys``: ``io_bits``, ``workspace``, ``stages``,
    ``degree``, ``order``, ``mode``, ``token_ones``, ``write``, ``output``): the graph
    decomposition system plans with it, and ``qml.specs`` counts the gates inside a cell through
    :meth:`resources`.
    """

    grad_method = None
    _wire_keys = ("io_wires", "workspace_wires", "ancilla_wires")
    resource_keys = {"io_bits", "workspace", "stages", "degree", "order", "mode", "token_ones"}
    resource_keys |= {"write", "output", "angles"}

    def __init__(
        self,
        input_weights: TensorLike,
        rotation_weights: TensorLike,
        stage_weights: TensorLike,
        output_weights: TensorLike,
        token: int | None,
        io_wires: Any,
        workspace_wires: Any,
        ancilla_wires: Any = None,
        degree: int = 2,
        order: int = 2,
        mode: str = "postselect",
        write: bool = True,
        id: str | None = None,
        output: bool = True,
        angles: TensorLike | None = None,
    ) -> None:
        degree = neuron.check_degree(degree)
        order = neuron.check_order(order)
        mode = neuron.check_mode(mode)
        for flag, value in (("write", write), ("output", output)):
            if not isinstance(value, bool):
                raise QRNNTypeError(f"{flag} must be a bool; got {type(value).__name__}")
        io_wires, workspace_wires = Wires(io_wires), Wires(workspace_wires)
        ancilla_wires = Wires([] if ancilla_wires is None else ancilla_wires)
        if len(io_wires) < 1:
            raise QRNNValueError(f"io_wires must hold at least one wire; got {io_wires.tolist()}")
        if len(workspace_wires) < 1:
            raise QRNNValueError(
                f"workspace_wires must hold at least one wire; got {workspace_wires.tolist()}"
            )
        check_ancillas(mode, order, ancilla_wires)
        all_wires = distinct_wires(
            io_wires=io_wires, workspace_wires=workspace_wires, ancilla_wires=ancilla_wires
        )
        if angles is None:
            token_bits(cast(int, token), len(io_wires))
        else:
            _check_angles(angles, token, write, len(io_wires))
        weights = (input_weights, rotation_weights, stage_weights, output_weights)
        names = ("input_weights", "rotation_weights", "stage_weights", "output_weights")
        stages = (
            qml.math.shape(rotation_weights)[-2]
            if len(qml.math.shape(rotation_weights)) >= 2
            else None
        )
        if stages is None:
            raise QRNNValueError(
                "rotation_weights must have shape (stages, H) (or (batch, stages, H)); "
                f"got {tuple(qml.math.shape(rotation_weights))}"
            )
        expected = self.shape(len(io_wires), len(workspace_wires), stages, degree)
        batch = None
        for name, tensor in zip(names, weights, strict=True):
            shape, want = tuple(qml.math.shape(tensor)), expected[name]
            if shape[-len(want) :] != want or len(shape) - len(want) not in (0, 1):
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
            "token": int(cast(int, token)) if angles is None else None,
            "io_wires": io_wires,
            "workspace_wires": workspace_wires,
            "ancilla_wires": ancilla_wires,
            "degree": degree,
            "order": order,
            "mode": mode,
            "write": write,
            "output": output,
        }
        extra = () if angles is None else (angles,)
        self._n_params = len(weights) + len(extra)  # the angles are a fifth parameter
        super().__init__(*weights, *extra, wires=Wires(all_wires), id=id)

    @classmethod
    def from_layout(
        cls,
        layout: CellLayout,
        *weights: TensorLike,
        token: int | None = None,
        angles: TensorLike | None = None,
        output: bool = True,
    ) -> QRNNCell:
        """The cell of ``layout`` (its wires, degree, order and mode) with ``weights`` (the
        layout's four weight tensors), reading ``token`` or, for real-valued inputs, ``angles``:
        how the executors and the hardware programs build a step.

        **Example**

        >>> import torch
        >>> from pennylane_qrnn.engine import CellLayout
        >>> from pennylane_qrnn.templates import QRNNCell
        >>> layout = CellLayout(io_bits=1, workspace=2, stages=1)
        >>> weights = [torch.zeros(s) for s in layout.weight_shapes().values()]
        >>> cell = QRNNCell.from_layout(layout, *weights, token=1)
        >>> cell.wires.tolist()  # i/o lane 0, workspace 1-2, the neurons' ancillas 3-4
        [0, 1, 2, 3, 4]
        """
        input_weights, rotation_weights, stage_weights, output_weights = weights
        return cls(
            input_weights,
            rotation_weights,
            stage_weights,
            output_weights,
            token=None if angles is not None else token,
            angles=angles,
            io_wires=layout.io_wires,
            workspace_wires=layout.workspace_wires,
            ancilla_wires=layout.ancilla_wires or None,
            degree=layout.degree,
            order=layout.order,
            mode=layout.mode,
            output=output,
        )

    @property
    def num_params(self) -> int:
        return self._n_params

    @property
    def ndim_params(self) -> tuple[int, ...]:
        return (2, 2, 3, 2, 1)[: self._n_params]

    @classmethod
    def _unflatten(cls, data: Sequence[Any], metadata: tuple[Any, ...]) -> QRNNCell:
        # the angles are the fifth parameter, not a hyperparameter
        settings = {**dict(metadata[1]), "angles": data[4] if len(data) > 4 else None}
        return cls(*data[:4], **settings)

    @property
    def resource_params(self) -> dict[str, Any]:
        hp = self.hyperparameters
        return {
            "io_bits": len(hp["io_wires"]),
            "workspace": len(hp["workspace_wires"]),
            "stages": qml.math.shape(self.data[1])[-2],
            "degree": hp["degree"],
            "order": hp["order"],
            "mode": hp["mode"],
            "token_ones": 0
            if hp["token"] is None
            else sum(token_bits(hp["token"], len(hp["io_wires"]))),
            "write": hp["write"],
            "output": hp["output"],
            "angles": self._n_params > 4,
        }

    def queue(self, context: Any = qml.QueuingManager) -> QRNNCell:
        _check_token_written_once(self, context)
        if self._n_params > 4 and self.hyperparameters["mode"] == "amplified":
            # the unwrite postselects even with amplified neurons: queued expanded, as a
            # postselected cell is where it cannot be queued lazily (MeasuringTemplate.queue)
            with qml.QueuingManager.stop_recording():
                ops = self.decomposition()
            for op in ops:
                context.append(op)
            return self
        return super().queue(context)

    @staticmethod
    def shape(io_bits: int, workspace: int, stages: int, degree: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the four weight arguments for ``io_bits`` i/o lanes, ``workspace`` lanes,
        ``stages`` work stages and neurons of the given degree."""
        return CellLayout(io_bits, workspace, stages, degree).weight_shapes()

    @staticmethod
    def num_weights(io_bits: int, workspace: int, stages: int, degree: int) -> int:
        """Total number of trainable angles: ``(H + S H + I) n_weights + S H``."""
        return CellLayout(io_bits, workspace, stages, degree).n_parameters

    @staticmethod
    def compute_decomposition(
        input_weights: TensorLike,
        rotation_weights: TensorLike,
        stage_weights: TensorLike,
        output_weights: TensorLike,
        *angles: TensorLike,
        wires: Any,
        token: int | None,
        io_wires: Any,
        workspace_wires: Any,
        ancilla_wires: Any,
        degree: int,
        order: int,
        mode: str,
        write: bool = True,
        output: bool = True,
    ) -> list[Operator]:
        r"""Token write (unless ``write=False``), input stage, work stages, i/o reset and output
        stage (unless ``output=False``), as standard operations; with ``angles`` (a fifth
        parameter) the write and reset are ``RY`` rotations and the reset postselects."""
        if angles:
            ops = list(write_angles(angles[0], io_wires))
        else:
            ops = list(write_token(cast(int, token), io_wires)) if write else []

        def add_neuron(weights: TensorLike, target: Any) -> None:
            controls = neuron_controls(target, io_wires, workspace_wires)
            settings: dict[str, Any] = {"degree": degree, "order": order, "mode": mode}
            if mode == "postselect":
                # expanded in place, so a deferring QNode's tape holds its measurements
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
        if angles:
            ops.extend(unwrite_angles(angles[0], io_wires))
        else:
            ops.extend(write_token(cast(int, token), io_wires))
        for lane, target in enumerate(io_wires if output else ()):
            add_neuron(output_weights[..., lane, :], target)
        return ops


def _cell_resource_counts(
    io_bits: int,
    workspace: int,
    stages: int,
    degree: int,
    order: int,
    mode: str,
    token_ones: int,
    write: bool,
    output: bool = True,
    angles: bool = False,
) -> dict[Any, int]:
    """The operators of :meth:`QRNNCell.compute_decomposition`, counted without building it: the
    resource function registered with PennyLane. Amplified neurons stay templates (counted by
    their own registered rule); postselected ones are expanded in place, as the cell does."""
    neurons = workspace * (1 + stages) + (io_bits if output else 0)
    n_controls = io_bits + workspace - 1
    counts: dict[Any, int] = {}

    def add(rep: Any, count: int) -> None:
        if count:
            counts[rep] = counts.get(rep, 0) + count

    if mode == "amplified":
        add(
            resource_rep(
                QuantumNeuron, n_controls=n_controls, degree=degree, order=order, mode=mode
            ),
            neurons,
        )
        add(resource_rep(qml.RY), stages * workspace)
    else:
        for rep, count in _neuron_resource_counts(n_controls, degree, order, mode).items():
            add(rep, neurons * count)
        add(resource_rep(PostselectedRY), stages * workspace)
    add(resource_rep(qml.PauliX), token_ones * (2 if write else 1))
    if angles:  # the RY write and unwrite, and the unwrite's postselections
        add(resource_rep(qml.RY), 2 * io_bits)
        add(resource_rep(PostselectZero), io_bits)
    return counts


def _check_angles(angles: TensorLike, token: Any, write: Any, io_bits: int) -> None:
    """Real-valued inputs: ``(I,)`` or ``(batch, I)`` finite angles, no token, written here."""
    if token is not None:
        raise QRNNValueError(f"token must be None when angles are given; got {token!r}")
    if write is not True:
        raise QRNNValueError(f"write must be True when angles are given; got {write!r}")
    shape = tuple(qml.math.shape(angles))
    if len(shape) not in (1, 2) or shape[-1] != io_bits:
        raise QRNNValueError(
            f"angles must have shape ({io_bits},) (or (batch, {io_bits})) for I={io_bits}; got "
            f"{shape}"
        )
    check_finite_weights("angles", angles)


@register_resources(_cell_resource_counts)
def _cell_decomposition(*weights: TensorLike, wires: Any, **hyperparameters: Any) -> None:
    with qml.QueuingManager.stop_recording():
        # the four weights fill the four weight parameters; wires is keyword-only here
        ops = QRNNCell.compute_decomposition(*weights, wires=wires, **hyperparameters)
    for op in ops:
        qml.apply(op)


register_template_decomposition(QRNNCell, _cell_decomposition)


def _active_queue(context: Any) -> Any:
    if context is qml.QueuingManager:
        return qml.QueuingManager.active_context()
    return context if hasattr(context, "queue") else None


def _lane_states(queue: Sequence[Any], io_wires: Sequence[Any]) -> dict[Any, str]:
    """What the operations queued so far say about each i/o lane: ``"written"`` (the last
    operation on it is an ``X``), ``"zero"`` (none yet, or a measurement with reset) or
    ``"unknown"``."""
    last: dict[Any, Any] = {}
    for obj in reversed(queue):
        for wire in getattr(obj, "wires", ()):
            if wire in io_wires and wire not in last:
                last[wire] = obj
        if len(last) == len(io_wires):
            break
    states = {}
    for wire in io_wires:
        op = last.get(wire)
        if op is None or (isinstance(op, qml.ops.MidMeasure) and op.reset):
            states[wire] = "zero"
        elif isinstance(op, qml.PauliX):
            states[wire] = "written"
        else:
            states[wire] = "unknown"
    return states


def _check_token_written_once(cell: QRNNCell, context: Any) -> None:
    """Refuse, when the queue shows it, a cell that would write its token onto lanes that already
    hold it (the pre-0.1 pattern ``write_token(t, io); QRNNCell(token=t)``: ``X X`` cancels), or
    reset a token other than the one written (``write=False``)."""
    queue = _active_queue(context)
    if queue is None:
        return
    hp = cell.hyperparameters
    io_wires, token = hp["io_wires"].tolist(), hp["token"]
    states = _lane_states(queue.queue, io_wires)
    written = [w for w in io_wires if states[w] == "written"]
    if hp["write"]:
        if written:
            raise QRNNValueError(
                "io_wires must be in |0> when a QRNNCell writes its token (write=True); got X "
                f"gates on {written} just before it: QRNNCell now writes token={token} itself, so "
                "write_token(token, io_wires) before it writes the token twice (X X cancels). "
                "Drop the write_token call, or pass write=False to write the token yourself"
            )
        return
    bits = token_bits(token, len(io_wires))
    mismatched = [
        w
        for w, bit in zip(io_wires, bits, strict=True)
        if (bit and states[w] == "zero") or (not bit and states[w] == "written")
    ]
    if mismatched:
        raise QRNNValueError(
            f"token must be the one written on the i/o lanes for a QRNNCell with write=False; got "
            f"token={token} (bits {bits} on {io_wires}) but lanes {mismatched} hold the other bit "
            "(write_token wrote a different token?). Pass the written token, or drop the "
            "write_token call and let the cell write it (write=True)"
        )
