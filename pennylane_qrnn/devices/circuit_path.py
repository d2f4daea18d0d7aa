"""The circuit path: a QRNN run through its PennyLane templates as QNodes on any device.

Step ``t`` of a sequence is one QNode holding the whole prefix: for every earlier step the token
is written, the cell applied and the i/o lanes measured with reset and postselected on that
step's outcome, then the cell of step ``t`` and ``qml.probs`` of the i/o lanes. With a
shift-rule gradient (``parameter-shift``) the i/o lanes are measured instead of postselected and
the QNode returns the joint probabilities of all outcomes (linear in the state, as shift rules
need); the conditional distribution of step ``t`` is then taken in torch. This costs
``O(L**2)`` cells per sequence; it exists to check the exact engine on real devices and to run
trained models on them, not to train long sequences.

Gradient methods (:func:`resolve_diff_method`; the runner decides, not PennyLane's ``"best"``,
which picks ``parameter-shift`` on Lightning and is wrong under postselection):

* ``"backprop"``: exact; devices that simulate in the ML framework (``default.qubit``, analytic);
* ``"parameter-shift"``: exact through joint probabilities; ``mode="amplified"`` only (the
  neurons' postselections would renormalise too);
* ``"finite-diff"``: central differences (``h = 1e-6``, second order; error about ``1e-9``
  relative) of circuits that return the probabilities of *every* wire, marginalised in torch.
  PennyLane's gradient transforms skip angles with no path to a measured wire in the circuit
  graph, which a postselection breaks (an ancilla's last rotations act on the output only
  through the renormalisation: measured on the i/o lanes alone, the output neurons' gradients
  come out ``2**order`` too small); measuring every wire keeps every angle. Analytic devices only;
* ``"adjoint"``: one step of ``mode="amplified"`` (no mid-circuit measurement) on a device
  whose adjoint method returns probabilities (``default.qubit``);
* ``None`` / ``"best"``: ``"backprop"`` where the device offers it, else ``"parameter-shift"``
  for ``mode="amplified"`` and ``"finite-diff"`` for ``mode="postselect"``.

Anything else is refused with :class:`~pennylane_qrnn.devices.capabilities.DeviceCapabilityError`
naming the choices that work.
"""

from __future__ import annotations

import warnings

import numpy as np
import pennylane as qml
import torch

from ..errors import (
    InsufficientShotsError,
    InsufficientShotsWarning,
    QRNNValueError,
)
from ..layout import CellLayout
from ..templates import QRNNCell, measure_token, postselect_token
from ..templates.base import renormalisation_handled
from .capabilities import DeviceCapabilityError, device_name, qnode_options
from .facts import device_facts
from .program import check_layout

__all__ = ["CircuitRunner", "make_device", "resolve_diff_method", "DIFF_METHODS"]


#: gradient methods the circuit path accepts (``None`` means ``"best"``)
DIFF_METHODS = ("best", "backprop", "adjoint", "parameter-shift", "finite-diff")
#: gradient methods that differentiate by re-running circuits at shifted parameters
SHIFT_METHODS = {"parameter-shift"}
#: the finite-difference settings of the circuit path (central, second order)
FINITE_DIFF = {"h": 1e-6, "approx_order": 2, "strategy": "center"}


def _analytic(device) -> bool:
    shots = getattr(device, "shots", None)
    return not getattr(shots, "total_shots", shots)


def _backprop(device) -> bool:
    from pennylane.devices import ExecutionConfig

    supports = getattr(device, "supports_derivatives", None)
    return bool(
        _analytic(device) and supports and supports(ExecutionConfig(gradient_method="backprop"))
    )


def working_diff_methods(device, mode) -> list[str]:
    """The gradient methods that give right gradients for ``mode`` on ``device``, in words."""
    name = device_name(device)
    choices = []
    if _backprop(device):
        choices.append("'backprop' (exact)")
    if mode == "amplified":
        choices.append("'parameter-shift' (exact: joint probabilities)")
    if _analytic(device):
        choices.append("'finite-diff' (central differences, about 1e-9 relative)")
    if mode == "amplified" and device_facts(name).adjoint_probabilities and _analytic(device):
        choices.append("'adjoint' (single steps only)")
    if not choices:
        choices.append("none here: use mode='amplified' or an analytic device")
    elif mode == "postselect" and not _backprop(device):
        choices.append("mode='amplified' or backend='default.qubit' for exact gradients")
    return choices


def resolve_diff_method(device, mode, diff_method=None) -> str:
    """The gradient method the circuit path really uses for ``diff_method`` on ``device``.

    Raises:
        DeviceCapabilityError: if the method would give wrong gradients (or none) for ``mode``
            on ``device``; the message names the methods that work.
    """
    name = device_name(device)
    requested = "best" if diff_method is None else diff_method

    def refuse(why):
        return DeviceCapabilityError(
            f"diff_method must be one of {', '.join(working_diff_methods(device, mode))} for "
            f"mode={mode!r} on {name}; got {diff_method!r}: {why}"
        )

    if requested not in DIFF_METHODS:
        raise refuse(f"the circuit path supports {DIFF_METHODS} (None means 'best')")
    if requested == "best":
        if _backprop(device):
            return "backprop"
        if mode == "amplified":
            return "parameter-shift"
        if _analytic(device):
            return "finite-diff"
        return "none"  # forward only; refused when a gradient is asked for (see CircuitRunner)
    if requested == "backprop" and not _backprop(device):
        raise refuse(
            f"{name} does not simulate in torch{'' if _analytic(device) else ' with shots'}"
        )
    if requested == "parameter-shift" and mode == "postselect":
        raise refuse(
            "diff_method must not be 'parameter-shift' with mode='postselect': postselected "
            "outputs are renormalised, so shift rules give wrong gradients"
        )
    if requested == "finite-diff" and not _analytic(device):
        raise refuse("finite differences of sampled probabilities are noise")
    if requested == "adjoint" and (
        mode == "postselect"
        or not device_facts(name).adjoint_probabilities
        or not _analytic(device)
    ):
        raise refuse(
            "the adjoint method cannot differentiate mid-circuit measurements (postselected "
            "neurons, teacher forcing), and Lightning's adjoint returns no probabilities"
        )
    return requested


def make_device(name: str, n_wires: int, **kwargs):
    """Create the PennyLane device ``name`` (with ``n_wires`` wires where it needs a count)."""
    facts = device_facts(name)
    if facts.aws_credentials:
        from .braket import require_credentials

        require_credentials(kwargs.get("aws_profile"))  # before the plugin calls AWS
        kwargs.pop("aws_profile", None)
    if facts.dynamic_wires and "wires" not in kwargs:
        return qml.device(name, **kwargs)
    return qml.device(name, wires=n_wires, **kwargs)


class CircuitRunner:
    """Runs a QRNN's cells as QNodes on ``device``.

    Args:
        device: a PennyLane device with at least ``layout.n_wires`` wires
        layout (CellLayout): the cell's sizes, neuron settings and wires
        diff_method: the gradient method (``None``: see :func:`resolve_diff_method`)
    """

    def __init__(self, device, layout: CellLayout, diff_method=None):
        check_layout(layout)
        self.device, self.layout = device, layout
        self.mode = layout.mode
        device_wires = getattr(device, "wires", None)
        if device_wires is not None and len(device_wires) < layout.n_wires:
            n_anc = layout.n_ancillas
            raise QRNNValueError(
                f"device must have at least {layout.n_wires} wires for I={layout.io_bits}, "
                f"H={layout.workspace}{f', {n_anc} ancillas' if n_anc else ''}; "
                f"got {len(device_wires)}"
            )
        self.requested = diff_method
        self.diff_method = resolve_diff_method(device, layout.mode, diff_method)
        # Shift rules need outputs linear in the state; postselected (renormalised) i/o lanes are
        # not, so such methods read joint probabilities of measured outcomes instead.
        self.joint = self.diff_method in SHIFT_METHODS
        # finite differences read every wire, so no angle is pruned from the gradient
        self.all_wires = self.diff_method == "finite-diff"

    def _joint_qnode(self):
        return qml.QNode(
            self._joint_circuit,
            self.device,
            interface="torch",
            diff_method=self.diff_method,
            mcm_method="deferred",
        )

    def _options(self):
        if self.diff_method == "finite-diff":
            return {"diff_method": "finite-diff", "gradient_kwargs": dict(FINITE_DIFF)}
        if self.diff_method == "none":
            return {"diff_method": None}
        return {"diff_method": self.diff_method}

    def _cell(self, weights, token):
        """Queue one step: the cell writes ``token`` (an int, or a tensor of angles: real-valued
        inputs), runs and resets its i/o lanes."""
        angles = token if torch.is_tensor(token) else None
        QRNNCell.from_layout(self.layout, *weights, token=token, angles=angles)

    def _joint_circuit(self, weights, inputs):
        measured = []
        for token in inputs:
            self._cell(weights, token)
            measured += measure_token(self.layout.io_wires)
        return qml.probs(op=measured)

    def _qnode(self, teacher_forcing: bool):
        options = qnode_options(self.device, self.mode, teacher_forcing=teacher_forcing)
        return qml.QNode(
            self._circuit, self.device, interface="torch", **self._options(), **options
        )

    def _circuit(self, weights, inputs, outcomes):
        for step, token in enumerate(inputs):
            self._cell(weights, token)
            if step < len(outcomes):
                postselect_token(outcomes[step], self.layout.io_wires)
        layout = self.layout
        if self.all_wires:
            return qml.probs(wires=layout.io_wires + layout.workspace_wires + layout.ancilla_wires)
        return qml.probs(wires=layout.io_wires)

    def step_probabilities(self, weights, inputs, outcomes):
        """Probabilities of the i/o lanes after the cell on ``inputs[-1]``, the earlier steps
        postselected on ``outcomes`` (``len(outcomes) == len(inputs) - 1``)."""
        inputs = [t if torch.is_tensor(t) and t.dim() else int(t) for t in inputs]
        outcomes = [int(o) for o in outcomes]
        if self.joint and torch.is_tensor(inputs[0]):
            raise DeviceCapabilityError(
                f"diff_method must be 'backprop' or 'finite-diff' for real-valued inputs; got "
                f"{self.diff_method!r}: the unwrite of angles postselects, so shift rules give "
                "wrong gradients"
            )
        if self.joint:
            # P(y_1..y_t) of measured (not postselected) outcomes is linear in the state; the
            # conditional distribution of step t is a ratio taken here, after the circuit
            vocabulary = self.layout.vocabulary_size
            device_wires = getattr(self.device, "wires", None)
            # amplified mode only (no ancillas): the lanes and one wire per measured i/o lane
            needed = self.layout.deferred_wires(len(inputs))
            if device_wires is not None and len(device_wires) < needed:
                raise DeviceCapabilityError(
                    f"device must have at least {needed} wires for {self.diff_method!r} gradients "
                    f"over {len(inputs)} steps (each step's i/o measurement is deferred onto a "
                    f"fresh wire); got {len(device_wires)} (give a device without fixed wires)"
                )
            joint = self._joint_qnode()(weights, inputs).reshape((vocabulary,) * len(inputs))
            prefix = joint[tuple(outcomes)]
            return prefix / prefix.sum()
        qnode = self._qnode(teacher_forcing=len(outcomes) > 0)
        try:
            with renormalisation_handled():
                probs = qnode(weights, inputs, outcomes)
        except ZeroDivisionError:
            # with shots, PennyLane divides by the shots that passed the postselections: none did
            # here, so this step was not measured; say so instead of inventing a distribution
            warnings.warn(
                f"no shot of {device_name(self.device)} survived the postselections up to step "
                f"{len(inputs)} (inputs {inputs}, postselected on {outcomes}): its probabilities "
                "are NaN; give the device more shots, or run it analytically (shots=None)",
                InsufficientShotsWarning,
                stacklevel=2,
            )
            return torch.full((self.layout.vocabulary_size,), float("nan"), dtype=torch.float64)
        if self.all_wires:  # i/o lanes first: their token is the leading index
            probs = probs.reshape(self.layout.vocabulary_size, -1).sum(dim=1)
        return probs

    def _check_gradient(self, weights, length):
        """Refuse, before running, a gradient this runner cannot make right."""
        if not (
            torch.is_grad_enabled() and any(torch.is_tensor(w) and w.requires_grad for w in weights)
        ):
            return
        name = device_name(self.device)
        if self.diff_method == "none":
            raise DeviceCapabilityError(
                "diff_method must be one of "
                f"{', '.join(working_diff_methods(self.device, self.mode))} "
                f"for mode={self.mode!r} on {name} with shots; got {self.requested!r}: no gradient "
                "method is right for postselected neurons on a sampling device (run the forward "
                "under torch.no_grad(), or use pennylane_qrnn.optim.SPSA)"
            )
        if self.diff_method == "adjoint" and length > 1:
            raise DeviceCapabilityError(
                "diff_method must be one of "
                f"{', '.join(working_diff_methods(self.device, self.mode))} for sequences of "
                f"{length} steps on {name}; got 'adjoint': teacher forcing postselects mid-circuit "
                "measurements, which the adjoint method cannot differentiate"
            )

    def run(self, weights, tokens, targets=None, generator=None):
        """Per-step log-probabilities ``(L, N, 2**I)`` and the outcomes collapsed on ``(L, N)``;
        ``tokens`` ``(L, N)`` integers, or ``(L, N, I)`` angles (real-valued inputs)."""
        length, batch = tokens.shape[:2]
        dtype = weights[0].dtype if torch.is_tensor(weights[0]) else torch.float64
        self._check_gradient(
            tuple(weights) + ((tokens,) if tokens.is_floating_point() else ()), length
        )
        # circuits in double precision (finite differences need it); the result in the model's
        weights = tuple(w.to(torch.float64) if torch.is_tensor(w) else w for w in weights)
        if tokens.is_floating_point():
            tokens = tokens.to(torch.float64)
        rows, outcome_rows = [], []
        for item in range(batch):
            # real-valued inputs: one (I,) tensor of angles per step, kept for autograd
            angles = tokens.is_floating_point()
            inputs = list(tokens[:, item].unbind(0)) if angles else tokens[:, item].tolist()
            outcomes, per_step = [], []
            for step in range(length):
                probs = self.step_probabilities(weights, inputs[: step + 1], outcomes)
                probs = torch.as_tensor(probs)
                per_step.append(probs)
                if targets is not None:
                    outcomes.append(int(targets[step, item]))
                else:
                    p = probs.detach().to(torch.float64).clamp_min(0)
                    if not torch.isfinite(p).all():
                        raise InsufficientShotsError(
                            f"step {step} of sequence {item} was not measured (no shot survived "
                            "its postselections), so no outcome can be sampled from it; give the "
                            "device more shots, or run it analytically (shots=None)"
                        )
                    outcomes.append(int(torch.multinomial(p / p.sum(), 1, generator=generator)))
            rows.append(torch.stack(per_step))
            outcome_rows.append(outcomes)
        probs = torch.stack(rows, dim=1)
        if probs.is_floating_point() and dtype.is_floating_point:
            probs = probs.to(dtype)
        tiny = torch.finfo(probs.dtype).tiny
        return probs.clamp_min(tiny).log(), torch.tensor(np.array(outcome_rows).T, dtype=torch.long)
