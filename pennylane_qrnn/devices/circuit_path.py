"""The circuit path: a QRNN run through its PennyLane templates as QNodes on any device.

Step ``t`` of a sequence is one QNode holding the whole prefix: for every earlier step the token
is written, the cell applied and the i/o lanes measured with reset and postselected on that
step's outcome, then the cell of step ``t`` and ``qml.probs`` of the i/o lanes. With a
shift-rule gradient (``parameter-shift``) the i/o lanes are measured instead of postselected and
the QNode returns the joint probabilities of all outcomes (linear in the state, as shift rules
need); the conditional distribution of step ``t`` is then taken in torch. This costs
``O(L**2)`` cells per sequence; it exists to check the exact engine on real devices and to run
trained models on them, not to train long sequences.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import torch

from ..templates import QRNNCell, measure_token, postselect_token, write_token
from .capabilities import qnode_options
from ..errors import QRNNValueError

__all__ = ["CircuitRunner", "make_device"]


#: devices that allocate wires on demand (mid-circuit measurements may need extra ones)
_DYNAMIC_WIRES = {"default.qubit", "lightning.qubit"}
#: gradient methods that differentiate by re-running circuits at shifted parameters
SHIFT_METHODS = {"parameter-shift", "hadamard", "spsa"}


def make_device(name: str, n_wires: int, **kwargs):
    """Create the PennyLane device ``name`` (with ``n_wires`` wires where it needs a count)."""
    if name == "braket.aws.qubit":
        from .braket import require_credentials  # pylint: disable=import-outside-toplevel

        require_credentials(kwargs.get("aws_profile"))  # before the plugin calls AWS
        kwargs.pop("aws_profile", None)
    if name in _DYNAMIC_WIRES and "wires" not in kwargs:
        return qml.device(name, **kwargs)
    return qml.device(name, wires=n_wires, **kwargs)


class CircuitRunner:
    """Runs a QRNN's cells as QNodes on ``device``.

    Args:
        device: a PennyLane device with at least ``I + H (+ order)`` wires
        io_bits, workspace, degree, order, mode: the cell's settings
        diff_method: the QNodes' differentiation method (``None``: the device's preference)
    """

    def __init__(self, device, io_bits, workspace, degree, order, mode, diff_method=None):
        self.device = device
        self.io_bits, self.workspace = io_bits, workspace
        self.degree, self.order, self.mode = degree, order, mode
        self.io_wires = list(range(io_bits))
        self.workspace_wires = list(range(io_bits, io_bits + workspace))
        n_anc = order if mode == "postselect" else 0
        self.ancilla_wires = list(range(io_bits + workspace, io_bits + workspace + n_anc)) or None
        n_wires = io_bits + workspace + n_anc
        device_wires = getattr(device, "wires", None)
        if device_wires is not None and len(device_wires) < n_wires:
            raise QRNNValueError(
                f"device must have at least {n_wires} wires for I={io_bits}, H={workspace}"
                f"{f', {n_anc} ancillas' if n_anc else ''}; got {len(device_wires)}"
            )
        if diff_method == "parameter-shift" and mode == "postselect":
            raise QRNNValueError(
                "diff_method must not be 'parameter-shift' with mode='postselect': postselected "
                "outputs are renormalised, so shift rules give wrong gradients; got "
                "'parameter-shift' (use mode='amplified', or 'backprop'/'finite-diff')"
            )
        self.diff_method = diff_method or "best"
        # Shift rules need outputs linear in the state; postselected (renormalised) i/o lanes are
        # not, so such methods read joint probabilities of measured outcomes instead.
        self.joint = self.diff_method in SHIFT_METHODS

    def _joint_qnode(self):
        return qml.QNode(self._joint_circuit, self.device, interface="torch",
                         diff_method=self.diff_method, mcm_method="deferred")

    def _joint_circuit(self, weights, inputs):
        measured = []
        for token in inputs:
            write_token(token, self.io_wires)
            QRNNCell(*weights, token=token, io_wires=self.io_wires, workspace_wires=self.workspace_wires,
                     ancilla_wires=self.ancilla_wires, degree=self.degree, order=self.order, mode=self.mode)
            measured += measure_token(self.io_wires)
        return qml.probs(op=measured)

    def _qnode(self, teacher_forcing: bool):
        options = qnode_options(self.device, self.mode, teacher_forcing=teacher_forcing)
        return qml.QNode(
            self._circuit, self.device, interface="torch", diff_method=self.diff_method, **options
        )

    def _circuit(self, weights, inputs, outcomes):
        for step, token in enumerate(inputs):
            write_token(token, self.io_wires)
            QRNNCell(
                *weights,
                token=token,
                io_wires=self.io_wires,
                workspace_wires=self.workspace_wires,
                ancilla_wires=self.ancilla_wires,
                degree=self.degree,
                order=self.order,
                mode=self.mode,
            )
            if step < len(outcomes):
                postselect_token(outcomes[step], self.io_wires)
        return qml.probs(wires=self.io_wires)

    def step_probabilities(self, weights, inputs, outcomes):
        """Probabilities of the i/o lanes after the cell on ``inputs[-1]``, the earlier steps
        postselected on ``outcomes`` (``len(outcomes) == len(inputs) - 1``)."""
        inputs, outcomes = [int(t) for t in inputs], [int(o) for o in outcomes]
        if self.joint:
            # P(y_1..y_t) of measured (not postselected) outcomes is linear in the state; the
            # conditional distribution of step t is a ratio taken here, after the circuit
            vocabulary = 2 ** len(self.io_wires)
            joint = self._joint_qnode()(weights, inputs).reshape((vocabulary,) * len(inputs))
            prefix = joint[tuple(outcomes)]
            return prefix / prefix.sum()
        qnode = self._qnode(teacher_forcing=len(outcomes) > 0)
        return qnode(weights, inputs, outcomes)

    def run(self, weights, tokens, targets=None, generator=None):
        """Per-step log-probabilities ``(L, N, 2**I)`` and the outcomes collapsed on ``(L, N)``."""
        length, batch = tokens.shape
        rows, outcome_rows = [], []
        for item in range(batch):
            inputs = tokens[:, item].tolist()
            outcomes, per_step = [], []
            for step in range(length):
                probs = self.step_probabilities(weights, inputs[: step + 1], outcomes)
                probs = torch.as_tensor(probs)
                per_step.append(probs)
                if targets is not None:
                    outcomes.append(int(targets[step, item]))
                else:
                    p = probs.detach().to(torch.float64).clamp_min(0)
                    outcomes.append(int(torch.multinomial(p / p.sum(), 1, generator=generator)))
            rows.append(torch.stack(per_step))
            outcome_rows.append(outcomes)
        probs = torch.stack(rows, dim=1)
        tiny = torch.finfo(probs.dtype).tiny
        return probs.clamp_min(tiny).log(), torch.tensor(np.array(outcome_rows).T, dtype=torch.long)
