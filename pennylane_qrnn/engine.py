r"""The exact simulation engine: batched, differentiable torch maths for whole QRNN sequences.

It computes exactly what the templates' circuits compute (tests pin the two together), but it
exploits the model's structure instead of simulating gate by gate:

* every amplitude is real (RY rotations, X gates and the neurons' real maps), so the state is a
  real tensor;
* a neuron on a basis control state acts on its target by the 2x2 map ``[[C, -S], [S, C]]``
  (:func:`pennylane_qrnn.neuron.neuron_amplitudes`, or the rotation by ``f(eta)`` in amplified
  mode); the whole table over the control states is computed once per forward pass;
* the neurons' renormalisations are per-sample scalars and everything else is linear, so they are
  deferred to the end of each step. Between steps the i/o lanes are measured and reset, so the
  state lives on the workspace alone (``2**H`` amplitudes). One step is then two fixed matrices:
  ``v = W[x] psi`` (write token ``x``, input and work stages, reset) and ``u = O v`` (output
  stage), where ``u[y]`` is the unnormalised workspace state if the i/o lanes read ``y``.
  ``p(y) = |u[y]|^2 / sum_y' |u[y']|^2`` and the next state is ``u[y] / |u[y]|``.

``W`` and ``O`` are built once per forward pass by running the cell on basis states, so a training
step costs two small matrix products per sequence step for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from . import neuron
from .templates.quantum_neuron import check_mode
from .errors import QRNNValueError

__all__ = ["CellLayout", "CellOperators", "SequenceResult", "build_operators", "run_sequence"]


@dataclass(frozen=True)
class CellLayout:
    """The static structure of a QRNN cell: sizes, neuron settings and every neuron's lanes.

    Lanes are numbered as qubits: i/o lanes ``0 .. I-1`` (lane 0 the most significant bit of a
    token), then workspace lanes ``I .. I+H-1``.
    """

    io_bits: int
    workspace: int
    stages: int
    degree: int
    order: int
    mode: str = "postselect"

    def __post_init__(self):
        for name in ("io_bits", "workspace"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise QRNNValueError(f"{name} must be a positive int; got {value!r}")
        if isinstance(self.stages, bool) or not isinstance(self.stages, (int, np.integer)) or self.stages < 0:
            raise QRNNValueError(f"stages must be a non-negative int; got {self.stages!r}")
        neuron.check_degree(self.degree)
        neuron.check_order(self.order)
        check_mode(self.mode)

    @property
    def n_lanes(self) -> int:
        return self.io_bits + self.workspace

    @property
    def n_controls(self) -> int:
        return self.n_lanes - 1

    @property
    def n_neurons(self) -> int:
        """Neurons per step: input stage, work stages, output stage."""
        return self.workspace * (1 + self.stages) + self.io_bits

    @property
    def n_weights(self) -> int:
        """Angles per neuron."""
        return neuron.num_weights(self.n_controls, self.degree)

    def controls(self, target: int) -> list[int]:
        """A neuron's control lanes: workspace first, then i/o, skipping the target (the
        template's :func:`~pennylane_qrnn.templates.neuron_controls` order)."""
        lanes = list(range(self.io_bits, self.n_lanes)) + list(range(self.io_bits))
        return [lane for lane in lanes if lane != target]

    @cached_property
    def _table_permutations(self) -> dict:
        # For each target lane: how to lay an eta table (controls in `controls` order) out on the
        # natural lane axes, with a singleton axis at the target.
        result = {}
        for target in range(self.n_lanes):
            controls = self.controls(target)
            permutation = tuple(int(i) for i in np.argsort(controls))
            shape = tuple(1 if lane == target else 2 for lane in range(self.n_lanes))
            result[target] = (permutation, shape)
        return result

    def lay_out(self, table: torch.Tensor, target: int) -> torch.Tensor:
        """Reshape a ``(2**n_controls,)`` table to the lane axes, singleton at ``target``."""
        permutation, shape = self._table_permutations[target]
        return table.reshape((2,) * self.n_controls).permute(permutation).reshape(shape)


@dataclass
class CellOperators:
    """One forward pass's transfer matrices (see the module docstring).

    ``write_stage``: ``(2**H, 2**I * 2**H)``, ``psi @ write_stage`` gives ``W[x] psi`` for every
    ``x``; ``output_stage``: ``(2**H, 2**I * 2**H)``, ``v @ output_stage`` gives ``u[y]`` for
    every ``y``. Rows act on row-vector states ``(N, 2**H)``.
    """

    write_stage: torch.Tensor
    output_stage: torch.Tensor
    layout: CellLayout


def _maps(layout: CellLayout, weights: torch.Tensor):
    """The 2x2 map entries (C, S) of a neuron's table, shape ``(..., 2**n_controls)``."""
    eta = neuron.eta_table(weights, layout.n_controls, layout.degree)
    if layout.mode == "amplified":
        f = neuron.activation(eta, layout.order)
        return torch.cos(f), torch.sin(f)
    return neuron.neuron_amplitudes(eta, layout.order)


def _rotate(state: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, axis: int) -> torch.Tensor:
    """Apply ``[[cos, -sin], [sin, cos]]`` (broadcast tables) to the qubit on ``axis``."""
    zero, one = state.unbind(axis)  # one backward stack, not two zero-filled selects
    cos, sin = cos.squeeze(axis), sin.squeeze(axis)
    return torch.stack((cos * zero - sin * one, sin * zero + cos * one), dim=axis)


def build_operators(
    layout: CellLayout,
    input_weights: torch.Tensor,
    rotation_weights: torch.Tensor,
    stage_weights: torch.Tensor,
    output_weights: torch.Tensor,
) -> CellOperators:
    """Run the cell on basis states to get its transfer matrices (differentiable)."""
    io, ws = layout.io_bits, layout.workspace
    n_x, n_w = 2**io, 2**ws
    dtype, device = input_weights.dtype, input_weights.device

    # Write, input and work stages. The i/o lanes are only controls here, so they stay in the
    # written basis state x: keep x as a batch axis, columns w as a second one, and simulate the
    # workspace axes. Tables are laid out on all lanes; their i/o axes become the x axis.
    state = torch.eye(n_w, dtype=dtype, device=device).reshape((1, n_w) + (2,) * ws)
    state = state.expand((n_x,) + state.shape[1:])

    def workspace_neuron(state, weights, lane):
        target = io + lane
        cos, sin = (layout.lay_out(t, target) for t in _maps(layout, weights))
        cos, sin = (t.reshape((n_x, 1) + t.shape[io:]) for t in (cos, sin))
        return _rotate(state, cos, sin, axis=2 + lane)

    for lane in range(ws):
        state = workspace_neuron(state, input_weights[lane], lane)
    for stage in range(layout.stages):
        angles = rotation_weights[stage]
        for lane in range(ws):
            shape = [1] * (2 + ws)
            cos = torch.cos(angles[lane]).reshape(shape)
            sin = torch.sin(angles[lane]).reshape(shape)
            state = _rotate(state, cos, sin, axis=2 + lane)
        for lane in range(ws):
            state = workspace_neuron(state, stage_weights[stage, lane], lane)
    # state[x, w, w'] = <w'| W[x] |w>; psi @ write_stage must give (W[x] psi) for all x
    write_stage = state.reshape(n_x, n_w, n_w).permute(1, 0, 2).reshape(n_w, n_x * n_w)

    # Output stage on the full register, from |0>|w> for every column w.
    state = torch.zeros((n_w, n_x, n_w), dtype=dtype, device=device)
    state[:, 0, :] = torch.eye(n_w, dtype=dtype, device=device)
    state = state.reshape((n_w,) + (2,) * (io + ws))
    for lane in range(io):
        cos, sin = (layout.lay_out(t, lane).unsqueeze(0) for t in _maps(layout, output_weights[lane]))
        state = _rotate(state, cos, sin, axis=1 + lane)
    output_stage = state.reshape(n_w, n_x * n_w)
    return CellOperators(write_stage, output_stage, layout)


@dataclass
class SequenceResult:
    """What :func:`run_sequence` returns.

    Attributes:
        log_probs: ``(L, N, 2**I)`` per-step log-probabilities of the next token
        state: ``(N, 2**H)`` final workspace state (real amplitudes, normalised)
        outcomes: ``(L, N)`` the token each step collapsed on (the target, or the sample)
        neuron_success: ``(L, N)`` probability that all of a step's neuron postselections succeed
            (1 in amplified mode)
        outcome_probability: ``(L, N)`` probability of the outcome collapsed on (for teacher
            forcing: the postselection probability of the target)
    """

    log_probs: torch.Tensor
    state: torch.Tensor
    outcomes: torch.Tensor
    neuron_success: torch.Tensor
    outcome_probability: torch.Tensor


def initial_state(layout: CellLayout, batch: int, dtype, device) -> torch.Tensor:
    """The workspace in ``|0...0>`` for ``batch`` sequences."""
    state = torch.zeros((batch, 2**layout.workspace), dtype=dtype, device=device)
    state[:, 0] = 1
    return state


def run_sequence(
    operators: CellOperators,
    tokens: torch.Tensor,
    targets: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    collapse: torch.Tensor | None = None,
) -> SequenceResult:
    """Run a batch of sequences through the cell.

    Differentiable with respect to the operators and the initial state; the recurrence has a
    hand-written backward pass (:class:`_Recurrence`) that accumulates the weight gradients of
    all steps in one matrix product each.

    Args:
        operators: from :func:`build_operators`
        tokens: ``(L, N)`` long, the input token of each step
        targets: ``(L, N)`` long or ``None``. Given: teacher forcing, each step's i/o lanes are
            postselected on the target. ``None``: each step's outcome is sampled.
        state: ``(N, 2**H)`` initial workspace state, default ``|0...0>``
        generator: random generator for sampling
        collapse: ``(L, N)`` bool, optional; where ``False`` and ``targets`` is given, that step
            samples instead of postselecting (e.g. an unscored step measured on hardware)
    """
    layout = operators.layout
    length, batch = tokens.shape
    write, output = operators.write_stage, operators.output_stage
    if state is None:
        state = initial_state(layout, batch, write.dtype, write.device)
    plan = _Plan(tokens, 2**layout.io_bits, 2**layout.workspace, targets, collapse, generator)
    log_probs, final, outcomes, success, chosen = _Recurrence.apply(write, output, state, plan)
    return SequenceResult(log_probs, final, outcomes, success, chosen)


class _Plan:
    """Everything about a sequence run that is not a differentiable tensor."""

    def __init__(self, tokens, n_x, n_w, targets, collapse, generator):
        self.tokens, self.n_x, self.n_w = tokens, n_x, n_w
        self.targets, self.collapse, self.generator = targets, collapse, generator
        length, batch = tokens.shape
        # Large workspaces: apply each W[x] to its group of the batch (2**I times fewer
        # multiply-adds). Small ones: apply every W[x] and pick, one product per step.
        self.grouped = n_w >= 64
        if self.grouped:
            self.order = torch.argsort(tokens, dim=1, stable=True)
            self.inverse = torch.argsort(self.order, dim=1)
            self.counts = torch.stack([torch.bincount(row, minlength=n_x) for row in tokens]).tolist()
        flat = tokens.reshape(-1)
        self.members = [torch.nonzero(flat == x).squeeze(1) for x in range(n_x)]
        self.rows = torch.arange(batch, device=tokens.device)

    def outcome(self, step, probs):
        if self.targets is not None and self.collapse is None:
            return self.targets[step]
        sampled = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
        if self.targets is None:
            return sampled
        return torch.where(self.collapse[step], self.targets[step], sampled)

    def write(self, blocks, write, state, step):
        """``W[x_t] psi`` for every item."""
        if self.grouped:
            groups = state.index_select(0, self.order[step]).split(self.counts[step])
            written = torch.cat([g @ blocks[x] for x, g in enumerate(groups) if g.shape[0]])
            return written.index_select(0, self.inverse[step])
        batch = state.shape[0]
        written = (state @ write).reshape(batch, self.n_x, self.n_w)
        return written[self.rows, self.tokens[step]]

    def write_transposed(self, blocks, write, grad, step):
        """``W[x_t]^T g`` for every item (the backward of :meth:`write`)."""
        if self.grouped:
            groups = grad.index_select(0, self.order[step]).split(self.counts[step])
            back = torch.cat([g @ blocks[x].T for x, g in enumerate(groups) if g.shape[0]])
            return back.index_select(0, self.inverse[step])
        batch = grad.shape[0]
        spread = grad.new_zeros(batch, self.n_x, self.n_w)
        spread[self.rows, self.tokens[step]] = grad
        return spread.reshape(batch, -1) @ write.T


class _Recurrence(torch.autograd.Function):
    """The teacher-forced / sampled recurrence with a hand-written backward pass.

    Per step: ``v = W[x] psi``, ``u = O v``, ``q_y = |u_y|^2``, ``log p_y = log q_y - log sum q``,
    ``psi' = u_o / sqrt(q_o)`` for the outcome ``o``.
    """

    @staticmethod
    def forward(ctx, write, output, state, plan):  # pylint: disable=arguments-differ
        n_x, n_w = plan.n_x, plan.n_w
        length, batch = plan.tokens.shape
        n_y = output.shape[1] // n_w
        tiny = torch.finfo(write.dtype).tiny
        blocks = write.reshape(n_w, n_x, n_w).permute(1, 0, 2).contiguous() if plan.grouped else None
        # keep every step's intermediates only when a backward pass will need them
        keep = any(ctx.needs_input_grad[:3])
        kept = length if keep else 1
        states = write.new_empty(kept, batch, n_w)
        written = write.new_empty(kept, batch, n_w)
        branches = write.new_empty(kept, batch, n_y, n_w)
        log_probs = write.new_empty(length, batch, n_y)
        outcomes = torch.empty(length, batch, dtype=torch.long, device=write.device)
        success = write.new_empty(length, batch)
        chosen = write.new_empty(length, batch)
        psi = state
        for step in range(length):
            slot = step if keep else 0
            states[slot] = psi
            v = written[slot]
            v.copy_(plan.write(blocks, write, psi, step))
            u = branches[slot]
            torch.mm(v, output, out=u.view(batch, n_y * n_w))
            q = torch.linalg.vector_norm(u, dim=-1).square_().clamp_min_(tiny)
            total = q.sum(-1, keepdim=True)
            log_probs[step] = q.log() - total.log()
            outcome = plan.outcome(step, q / total)
            outcomes[step] = outcome
            picked = q[plan.rows, outcome]
            psi = u[plan.rows, outcome] * picked.rsqrt().unsqueeze(1)
            success[step] = total.squeeze(1)
            chosen[step] = picked / total.squeeze(1)
        ctx.save_for_backward(write, output, states, written, branches, outcomes)
        ctx.plan, ctx.blocks = plan, blocks
        ctx.mark_non_differentiable(outcomes, success, chosen)
        return log_probs, psi, outcomes, success, chosen

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_log_probs, grad_state, *_):  # pylint: disable=arguments-differ
        write, output, states, written, branches, outcomes = ctx.saved_tensors
        plan, blocks = ctx.plan, ctx.blocks
        length, batch, n_y, n_w = branches.shape
        tiny = torch.finfo(write.dtype).tiny
        if grad_log_probs is None:
            grad_log_probs = write.new_zeros(length, batch, n_y)
        grad_psi = grad_state if grad_state is not None else write.new_zeros(batch, n_w)
        grad_branches = torch.empty_like(branches)
        grad_written = torch.empty_like(written)
        rows = plan.rows
        for step in reversed(range(length)):
            u = branches[step]
            q = torch.linalg.vector_norm(u, dim=-1).square_().clamp_min_(tiny)
            total = q.sum(-1, keepdim=True)
            g = grad_log_probs[step]
            grad_q = g / q - g.sum(-1, keepdim=True) / total
            grad_u = 2 * u * grad_q.unsqueeze(-1)
            outcome = outcomes[step]
            u_out = u[rows, outcome]
            scale = q[rows, outcome].rsqrt().unsqueeze(1)
            radial = (grad_psi * u_out).sum(-1, keepdim=True)
            grad_u[rows, outcome] += scale * grad_psi - scale**3 * radial * u_out
            grad_branches[step] = grad_u
            grad_v = grad_written[step]
            torch.mm(grad_u.reshape(batch, -1), output.T, out=grad_v)
            grad_psi = plan.write_transposed(blocks, write, grad_v, step)
        grad_output = written.reshape(-1, n_w).T @ grad_branches.reshape(-1, n_y * n_w)
        flat_states = states.reshape(-1, n_w)
        flat_grad_v = grad_written.reshape(-1, n_w)
        grad_write = write.new_zeros(n_w, plan.n_x, n_w)
        for x, members in enumerate(plan.members):
            if members.numel():
                grad_write[:, x] = flat_states[members].T @ flat_grad_v[members]
        return grad_write.reshape(n_w, -1), grad_output, grad_psi, None
