"""What the package's templates share: wire hyperparameters, pytree flattening, queuing
themselves as one operation (or their decomposition where a device could not run them so),
the measurement that lets a deferring device expand them (:class:`PostselectZero`), the
rotation that guards postselected circuits against gradient transforms, and their resource
counts.

Resources have one source: each template registers a decomposition rule with PennyLane's graph
decomposition system (:func:`register_template_decomposition`), whose resource function counts
the rule's operators. ``qml.specs`` sees inside a template through
:meth:`MeasuringTemplate.resources` (a :class:`~pennylane.resource.ResourcesOperation`), which
expands that registered count down to basic gates;
:func:`~pennylane_qrnn.templates.neuron_resources` reads the same count.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pennylane as qml
from pennylane.decomposition import add_decomps, register_resources
from pennylane.resource import Resources, ResourcesOperation
from pennylane.wires import Wires

from ..errors import NonFiniteError, QRNNValueError

if TYPE_CHECKING:
    from pennylane.operation import Operator
    from pennylane.typing import TensorLike

__all__ = [
    "MeasuringTemplate",
    "PostselectedRY",
    "PostselectZero",
    "check_finite_weights",
    "renormalisation_handled",
    "register_template_decomposition",
    "basic_gate_counts",
]


def check_finite_weights(name: str, weights: TensorLike) -> None:
    """Refuse NaN or infinite angles (a circuit would run and return NaN, or garbage, silently).
    Traced weights (under jit) are not inspected."""
    if qml.math.is_abstract(weights):
        return
    finite = qml.math.isfinite(weights)
    if not bool(qml.math.all(finite)):
        bad = int(qml.math.sum(qml.math.logical_not(finite)))
        raise NonFiniteError(f"{name} must be finite; got {bad} NaN or infinite value(s)")


_HANDLED = contextvars.ContextVar("pennylane_qrnn_renormalisation_handled", default=False)


@contextlib.contextmanager
def renormalisation_handled() -> Iterator[None]:
    """Within this context, :class:`PostselectedRY` gates are built unguarded: for callers that
    make gradient transforms right themselves (the circuit path's finite differences read the
    probabilities of every wire, so PennyLane's light-cone pruning keeps every angle)."""
    token = _HANDLED.set(True)
    try:
        yield
    finally:
        _HANDLED.reset(token)


POSTSELECT_GRADIENT_MESSAGE = (
    "diff_method must be 'backprop' (default.qubit) to differentiate a QuantumNeuron or QRNNCell "
    "with mode='postselect' in a QNode; got a gradient transform (parameter-shift, finite-diff, "
    "spsa, hadamard, or 'best' on a device without backprop). Postselection renormalises the "
    "state, so the outputs are not linear in it and shift rules are wrong, and PennyLane's "
    "gradient transforms give zero for angles whose only effect on the measured wires is through "
    "a postselection (finite-diff is off by 2**order). Use diff_method='backprop' on "
    "default.qubit, mode='amplified' (exact with parameter-shift), or pennylane_qrnn.QRNN on the "
    "circuit path, whose 'finite-diff' accounts for both"
)


class PostselectedRY(qml.RY):
    """``qml.RY`` inside a postselected neuron: the same gate (its name is ``"RY"``, so every
    device and the hardware path run it as one), but it refuses PennyLane's gradient
    transforms with a clear error instead of letting them return wrong numbers.

    Parameter-shift, finite-diff, SPSA and Hadamard gradients ask each trainable operation for
    its ``grad_method``; this gate raises there. Backpropagation never asks. Gates built inside
    :func:`renormalisation_handled` carry ``handled=True`` and behave like ``qml.RY``.
    """

    def __init__(
        self, phi: TensorLike, wires: Any, handled: bool | None = None, id: str | None = None
    ) -> None:
        super().__init__(phi, wires=wires, id=id)
        self._hyperparameters = {"handled": bool(_HANDLED.get() if handled is None else handled)}

    @property
    def name(self) -> str:
        return "RY"

    @property
    def grad_method(self) -> str:
        if self.hyperparameters.get("handled"):
            return "A"
        raise QRNNValueError(POSTSELECT_GRADIENT_MESSAGE)


#: the package's own decomposition rule of each template (the registered resource count)
_RULES: dict[type, Any] = {}
#: qubits of each basic gate the templates decompose into (for ``qml.specs``' gate sizes)
_GATE_SIZES = {"CNOT": 2}


def register_template_decomposition(template: type, rule: Any) -> None:
    """Register ``rule`` (a function decorated with ``qml.register_resources``) as ``template``'s
    decomposition with PennyLane (``qml.add_decomps``), and as the count its
    :meth:`~MeasuringTemplate.resources` expand."""
    add_decomps(template, rule)
    _RULES[template] = rule


def _gate_name(rep: Any) -> str:
    # PostselectedRY is an RY and PostselectZero a MidMeasureMP on every device and in qml.specs
    if issubclass(rep.op_type, qml.RY):
        return "RY"
    return "MidMeasureMP" if issubclass(rep.op_type, qml.ops.MidMeasure) else rep.name


def basic_gate_counts(counts: dict[Any, int]) -> dict[str, int]:
    """``{gate name: count}`` from PennyLane resource counts (``{CompressedResourceOp: count}``),
    the package's templates expanded through their registered rules, down to the names
    ``qml.specs`` reports for the expanded circuit (``RY``, ``CNOT``, ``PhaseShift``, ``PauliX``,
    ``MidMeasureMP``)."""
    out: dict[str, int] = {}
    for rep, count in counts.items():
        if not count:
            continue
        rule = _RULES.get(rep.op_type)
        if rule is None:
            inner = {_gate_name(rep): 1}
        else:
            inner = basic_gate_counts(rule.compute_resources(**rep.params).gate_counts)
        for name, n in inner.items():
            out[name] = out.get(name, 0) + count * n
    return out


@register_resources({qml.RY: 1})
def _postselected_ry_as_ry(phi: TensorLike, wires: Any, **_: Any) -> None:
    # for the graph decomposition system, which knows gates by type: the same gate as a plain RY
    # (kept as PostselectedRY wherever "RY" is in the target gate set, since its name is "RY")
    qml.RY(phi, wires=wires)


add_decomps(PostselectedRY, _postselected_ry_as_ry)


class PostselectZero(qml.ops.MidMeasure):
    """The mid-circuit measurement that ends a repeat-until-success block: the ancilla measured,
    postselected on 0 and reset (``qml.measure(wire, reset=True, postselect=0)``).

    It is a ``MidMeasure`` (named ``"MidMeasureMP"``): tree-traversal, one-shot and every
    device that keeps mid-circuit measurements treat it as one. Unlike a plain measurement it
    also has a decomposition, ``qml.Projector([0], wire)``: once postselected on 0 the ancilla
    is in ``|0>`` (the reset does nothing) and its outcome is never read, so projecting is the
    whole effect. ``default.qubit`` renormalises after every ``Projector``. This is what lets a
    postselecting template stay one operation in a QNode that defers measurements: PennyLane's
    ``defer_measurements`` runs before the device's ``decompose`` and sees only the tape's
    top-level measurements; ``decompose`` then expands the template and turns its measurements,
    which that device may not keep, into projectors (no fresh wire each, unlike deferral).

    Args:
        wires (Any or Iterable): the ancilla
        reset (bool): must be ``True``
        postselect (int): must be 0
        meas_uid (str or None): the measurement's id (a fresh one by default)
        id (str or None): accepted for ``MidMeasure``'s signature; use ``meas_uid``

    **Example**

    >>> import pennylane as qml
    >>> from pennylane_qrnn.templates.base import PostselectZero
    >>> op = PostselectZero(3)
    >>> op.name, op.postselect, op.reset
    ('MidMeasureMP', 0, True)
    >>> op.decomposition()
    [Projector(array([0]), wires=[3])]
    """

    def __init__(
        self,
        wires: Any,
        reset: bool = True,
        postselect: int | None = 0,
        meas_uid: str | None = None,
        id: str | None = None,
    ) -> None:
        if reset is not True or postselect != 0:
            raise QRNNValueError(
                f"PostselectZero must have reset=True and postselect=0; got reset={reset!r}, "
                f"postselect={postselect!r}"
            )
        super().__init__(
            wires=wires, reset=True, postselect=0, meas_uid=meas_uid or str(uuid.uuid4()), id=id
        )

    @staticmethod
    def compute_decomposition(*params: Any, wires: Any, **hyperparameters: Any) -> list[Operator]:
        """``qml.Projector([0], wires)``: the postselection (the reset then does nothing)."""
        return [qml.Projector([0], wires=wires)]


@register_resources({qml.ops.MidMeasure: 1})
def _postselect_zero_as_measurement(wires: Any, **_: Any) -> None:
    # for the graph system's planning where "MidMeasureMP" is in the gate set (the operator
    # itself is kept there, as its name is "MidMeasureMP")
    qml.ops.MidMeasure(wires, reset=True, postselect=0)


@register_resources({qml.Projector: 1})
def _postselect_zero_as_projector(wires: Any, **_: Any) -> None:
    # where measurements are not kept (a deferring default.qubit): the postselection itself
    qml.Projector([0], wires=wires)


add_decomps(PostselectZero, _postselect_zero_as_measurement, _postselect_zero_as_projector)


class MeasuringTemplate(ResourcesOperation):
    """Base of :class:`QuantumNeuron` and :class:`QRNNCell`.

    Subclasses name the hyperparameters that hold wires in ``_wire_keys``. A template that
    postselects (:meth:`_postselects`; ``mode="postselect"``) queues itself (lazily expanded,
    one box in ``qml.draw``) in a QNode on ``default.qubit`` under any ``mcm_method`` (its
    measurements must be :class:`PostselectZero`, which a deferring device turns into
    projectors), and on other devices where the method keeps measurements until the device
    decomposes (``tree-traversal``, ``one-shot``, shots); it queues its decomposition elsewhere
    (see :func:`_queues_lazily`).

    Subclasses register their decomposition with :func:`register_template_decomposition`;
    :meth:`resources` expands that rule's registered count to basic gates, so ``qml.specs`` of a
    QNode holding a template counts the gates inside it.
    """

    grad_method = None
    _wire_keys: tuple[str, ...] = ()

    def resources(self) -> Resources:
        """Gates of this template's full decomposition, by name (from its registered resource
        function, see :func:`basic_gate_counts`), as ``qml.specs`` reads them.

        Returns:
            pennylane.resource.Resources: ``gate_types`` and ``gate_sizes`` of the basic gates,
            and the depth of the expanded decomposition (``qml.specs`` weighs the template's node
            of the circuit graph by it; this one part builds the decomposition)
        """
        rule = _RULES[type(self)]
        counts = basic_gate_counts(rule.compute_resources(**self.resource_params).gate_counts)
        sizes: dict[int, int] = {}
        for name, count in counts.items():
            size = _GATE_SIZES.get(name, 1)
            sizes[size] = sizes.get(size, 0) + count
        return Resources(
            num_wires=len(self.wires),
            num_gates=sum(counts.values()),
            gate_types=counts,
            gate_sizes=sizes,
            depth=_depth(self),
        )

    @classmethod
    def _unflatten(cls, data: Sequence[Any], metadata: tuple[Any, ...]) -> MeasuringTemplate:
        return cls(*data, **dict(metadata[1]))

    def map_wires(self, wire_map: dict[Any, Any]) -> MeasuringTemplate:
        new_op = super().map_wires(wire_map)
        for key in self._wire_keys:
            new_op._hyperparameters[key] = Wires(
                [wire_map.get(w, w) for w in self._hyperparameters[key]]
            )
        return new_op

    def _postselects(self) -> bool:
        """Whether the decomposition holds mid-circuit measurements (all of them
        :class:`PostselectZero`)."""
        return bool(self.hyperparameters["mode"] == "postselect")

    def queue(self, context: Any = qml.QueuingManager) -> MeasuringTemplate:
        if self._postselects() and not _queues_lazily(self, context):
            with qml.QueuingManager.stop_recording():
                ops = self.decomposition()
            for op in ops:
                context.append(op)
            return self
        return super().queue(context)


def _expanded(op: Operator) -> Iterator[Operator]:
    """``op``'s decomposition with the package's templates expanded, down to basic gates."""
    with qml.QueuingManager.stop_recording():
        for inner in op.decomposition():
            if isinstance(inner, MeasuringTemplate):
                yield from _expanded(inner)
            else:
                yield inner


def _depth(op: Operator) -> int:
    """Depth of ``op``'s expanded decomposition (layers of gates on disjoint wires)."""
    level: dict[Any, int] = {}
    for gate in _expanded(op):
        layer = 1 + max((level.get(w, 0) for w in gate.wires), default=0)
        for w in gate.wires:
            level[w] = layer
    return max(level.values(), default=0)


def _recording_qnode() -> qml.QNode | None:
    """The QNode whose tape is being recorded, if the template is queued by one: PennyLane calls
    the quantum function from ``QNode.construct`` (``self``) or, for ``qml.draw``, ``qml.specs``
    and ``construct_tape``, from ``construct_batch`` (a local ``qnode``, possibly a
    ``qml.qnn.TorchLayer`` holding it), a few frames up."""
    frame = inspect.currentframe()
    for _ in range(24):
        if frame is None:
            return None
        for name in ("self", "qnode"):
            owner = frame.f_locals.get(name)
            owner = getattr(owner, "qnode", owner)  # a TorchLayer holds its QNode
            if isinstance(owner, qml.QNode):
                return owner
        frame = frame.f_back
    return None


def _state_vector_limit() -> int:
    """Bytes of memory on this machine (64 GiB where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 2**36


def _batched_so_far(template: MeasuringTemplate, queue: Sequence[Any]) -> bool:
    """Whether the state is broadcast (batched) when ``template`` runs: ``default.qubit``
    refuses to postselect a batched state, and only its ``defer_measurements`` splits a batch,
    for postselecting measurements it sees on the tape."""
    return template.batch_size is not None or any(
        getattr(op, "batch_size", None) is not None for op in queue
    )


def _queues_lazily(template: MeasuringTemplate, context: Any) -> bool:
    """Whether a postselecting ``template`` may go on the tape as itself (one operation, expanded
    by the device's ``decompose`` transform) rather than as its decomposition.

    In a QNode on ``default.qubit`` always, except under the deferred method (the default for
    an analytic device) with a batched state by then: ``defer_measurements`` runs before
    ``decompose`` and reads the tape's top-level operations only, so it never sees the
    template's measurements; ``decompose`` turns them into projectors (:class:`PostselectZero`),
    and ``default.qubit`` refuses to postselect a batched state (only ``defer_measurements``
    splits the batch, for measurements it sees). On other devices: in a QNode whose method keeps
    measurements until the device decomposes (``tree-traversal``, ``one-shot``, ``device``, or
    shots). Elsewhere, and outside a QNode (where the executing method is unknown), the template
    queues its decomposition.

    Raises, with what works, for a deferring QNode that cannot run it: Lightning (refuses
    postselection when deferring), a ``default.qubit`` with too few fixed wires (one fresh wire
    per deferred measurement), or more deferred wires than this machine's memory holds.
    """
    qnode = _recording_qnode()
    if qnode is None:
        return False
    from ..errors import DeviceCapabilityError

    device = qnode.device
    mcm_method = qnode.execute_kwargs.get("mcm_method")
    shots = [
        getattr(getattr(owner, "shots", None), "total_shots", None) for owner in (qnode, device)
    ]
    if mcm_method not in (None, "deferred") or (mcm_method is None and any(shots)):
        return True
    # every PennyLane device has a str name (mypy types getattr(..., None) or ... as optional)
    name: str = getattr(device, "short_name", None) or getattr(device, "name", "")  # type: ignore[assignment]
    fix = (
        "use mcm_method='tree-traversal' in the QNode (qml.qnode(dev, mcm_method="
        "'tree-traversal')), or mode='amplified' (no mid-circuit measurements)"
    )
    kind = type(template).__name__
    if name.startswith("lightning."):
        raise DeviceCapabilityError(
            f"mcm_method must be 'tree-traversal' for a {kind} with mode='postselect' on {name}; "
            f"got {mcm_method!r}: {name} defers mid-circuit measurements by default and refuses "
            f"postselection there; {fix}"
        )
    queue = getattr(qml.QueuingManager.active_context(), "queue", [])
    lazy = name == "default.qubit" and not _batched_so_far(template, queue)
    rule = _RULES[type(template)]
    counts = basic_gate_counts(rule.compute_resources(**template.resource_params).gate_counts)
    # a lazy template's measurements become projectors: no fresh wire
    n_mcm = 0 if lazy else counts.get("MidMeasureMP", 0)
    # measurements whose wire is used again (reset, or the template's) get a fresh wire; a
    # lower bound: measurements queued after the template need more
    earlier = sum(
        isinstance(op, qml.ops.MidMeasure) and (op.reset or op.wires[0] in template.wires)
        for op in queue
    )
    used = set(template.wires).union(*(getattr(op, "wires", ()) for op in queue))
    n_qubits = len(used) + earlier + n_mcm
    wires = getattr(device, "wires", None)
    if name == "default.qubit" and wires is not None and len(wires) < n_qubits:
        deferred = (
            f"its {n_mcm} mid-circuit measurements"
            + (f" and {earlier} before it" if earlier else "")
            if n_mcm
            else f"the {earlier} mid-circuit measurement(s) before it"
        )
        raise DeviceCapabilityError(
            f"device wires must number at least {n_qubits} for a {kind} with mode='postselect' "
            f"under mcm_method={mcm_method!r} ({deferred} are deferred, each onto a fresh wire, "
            f"beside the {len(used)} wires used); got {len(wires)} ({wires.tolist()}); {fix}, "
            "or a device without fixed wires (qml.device('default.qubit'))"
        )
    if 16 * 2**n_qubits > _state_vector_limit():
        raise DeviceCapabilityError(
            f"mcm_method must be 'tree-traversal' (or shots) for this circuit of {kind}s with "
            f"mode='postselect'; got {mcm_method!r}: deferring its {earlier + n_mcm} mid-circuit "
            f"measurements so far puts each on a fresh wire, a {n_qubits}-qubit state of "
            f"{16 * 2**n_qubits / 2**30:.4g} GiB, more than this machine's memory; {fix}"
        )
    return lazy
