"""What the package's templates share: wire hyperparameters, pytree flattening, queuing
their decomposition when it holds mid-circuit measurements, the rotation that guards
postselected circuits against gradient transforms, and their resource counts.

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
    # PostselectedRY is an RY on every device and in qml.specs (its ``name`` is "RY")
    return "RY" if issubclass(rep.op_type, qml.RY) else rep.name


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


class MeasuringTemplate(ResourcesOperation):
    """Base of :class:`QuantumNeuron` and :class:`QRNNCell`.

    Subclasses name the hyperparameters that hold wires in ``_wire_keys``. In
    ``mode="postselect"`` the template queues its decomposition instead of itself: PennyLane
    handles mid-circuit measurements before it decomposes templates, so the measurements must be
    on the tape itself.

    Subclasses register their decomposition with :func:`register_template_decomposition`;
    :meth:`resources` expands that rule's registered count to basic gates, so ``qml.specs`` of a
    QNode holding an (amplified) template counts the gates inside it.
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

    def queue(self, context: Any = qml.QueuingManager) -> MeasuringTemplate:
        if self.hyperparameters["mode"] == "postselect":
            with qml.QueuingManager.stop_recording():
                ops = self.decomposition()
            _check_qnode_postselects(self, ops)
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
    """The QNode whose tape is being recorded, if the template is queued by one (PennyLane
    calls the quantum function from ``QNode.construct``, a few frames up)."""
    frame = inspect.currentframe()
    for _ in range(12):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, qml.QNode):
            return owner
        frame = frame.f_back
    return None


def _check_qnode_postselects(template: Operator, ops: Sequence[Operator]) -> None:
    """Refuse, with what works, a QNode whose mid-circuit measurement method cannot postselect
    this template's measurements: PennyLane's default for an analytic device defers them, which
    needs one fresh wire per measurement (a device with fixed wires fails with "wires not found
    on the device") and which Lightning refuses for postselection."""
    qnode = _recording_qnode()
    if qnode is None:
        return
    from ..errors import DeviceCapabilityError

    device = qnode.device
    mcm_method = qnode.execute_kwargs.get("mcm_method")
    shots = [
        getattr(getattr(owner, "shots", None), "total_shots", None) for owner in (qnode, device)
    ]
    if mcm_method not in (None, "deferred") or any(shots):
        return
    # every PennyLane device has a str name (mypy types getattr(..., None) or ... as optional)
    name: str = getattr(device, "short_name", None) or getattr(device, "name", "")  # type: ignore[assignment]
    n_mcm = sum(isinstance(op, qml.ops.MidMeasure) for op in ops)
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
    wires = getattr(device, "wires", None)
    if name == "default.qubit" and wires is not None:
        needed = len(template.wires) + n_mcm  # a lower bound: other measurements need more
        if len(wires) < needed:
            raise DeviceCapabilityError(
                f"device wires must number at least {needed} for a {kind} with mode='postselect' "
                f"under mcm_method={mcm_method!r} (its {n_mcm} mid-circuit measurements are "
                f"deferred, each onto a fresh wire); got {len(wires)} ({wires.tolist()}); {fix}, "
                "or a device without fixed wires (qml.device('default.qubit'))"
            )
