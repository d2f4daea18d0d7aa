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

Numerical range. The unnormalised neuron maps shrink like ``2**(-2**order / 2)`` per neuron, and
a cell multiplies many of them: in float32 the true amplitudes underflow from order 4 or 5. Since
every probability and state the engine returns is invariant under a positive factor on ``W[x]``
(for each token ``x``), on ``O``, on ``v`` and on ``u``, the engine divides each of them by a
factor that keeps its largest entry near 1 and keeps the factors' logarithms
(:attr:`CellOperators.log_write_scale`, :attr:`CellOperators.log_output_scale`) for the neurons'
success probabilities (:attr:`SequenceResult.log_neuron_success`). The factors are constants for
autograd, which is exact: a function that is invariant under a scale has no gradient along it.
Where even then nothing survives (every branch of a step below the smallest float), the step's
log-probabilities are NaN and a :class:`NumericalRangeWarning` says so: never a made-up uniform
distribution.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from . import memory, neuron
from .errors import NonFiniteError, QRNNTypeError, QRNNValueError
from .templates.quantum_neuron import check_mode

__all__ = [
    "CellLayout",
    "CellOperators",
    "SequenceResult",
    "NumericalRangeWarning",
    "build_operators",
    "run_sequence",
    "check_finite",
]

_WEIGHT_NAMES = ("input_weights", "rotation_weights", "stage_weights", "output_weights")


class NumericalRangeWarning(RuntimeWarning):
    """A probability fell below the smallest number of the dtype; the affected values are NaN."""


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
        if (
            isinstance(self.stages, bool)
            or not isinstance(self.stages, (int, np.integer))
            or self.stages < 0
        ):
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

    Both are stored divided by constants (see the module docstring): the true ``W[x]`` is
    ``exp(log_write_scale[x])`` times the stored block, the true ``O`` is ``exp(log_output_scale)``
    times the stored one. ``None`` means 0 (unscaled).
    """

    write_stage: torch.Tensor
    output_stage: torch.Tensor
    layout: CellLayout
    log_write_scale: torch.Tensor | None = None
    log_output_scale: torch.Tensor | None = None


def _maps(layout: CellLayout, weights: torch.Tensor):
    """The 2x2 map entries (C, S) of a neuron's table, shape ``(..., 2**n_controls)``, divided
    by a constant, and the constant's log (a 0-d tensor).

    Postselect mode: ``C = cos(eta)**p``, ``S = sin(eta)**p`` divided by ``m**p`` with ``m`` the
    table's largest ``max(|cos|, |sin|)``, so the largest entry is 1 whatever the order.
    Amplified mode: the rotation by ``f(eta)``, unscaled.
    """
    eta = neuron.eta_table(weights, layout.n_controls, layout.degree)
    if layout.mode == "amplified":
        cos, sin = neuron.activation_rotation(eta, layout.order)
        return cos, sin, eta.new_zeros(())
    with torch.no_grad():
        reference = torch.maximum(eta.cos().abs(), eta.sin().abs()).amax()
    cos, sin = neuron.scaled_amplitudes(eta, layout.order, reference)
    return cos, sin, 2**layout.order * torch.log(reference)


def _inverse_top(state: torch.Tensor, dims) -> torch.Tensor:
    """``1 / max |state|`` over ``dims`` (a constant for autograd), kept finite."""
    with torch.no_grad():
        top = state.abs().amax(dim=dims)  # (much faster than an inf-norm)
        return 1 / top.clamp_min(2 / torch.finfo(state.dtype).max)


class _Rescaler:
    """Divides a state under construction by its largest entry (per token block) before it could
    leave the dtype's range, and keeps the log of what it divided by.

    A neuron's scaled map (:func:`_maps`) has entries at most 1, and for any column its largest
    entry is at least ``(1/sqrt 2)**p`` (``p = 2**order``), so it shrinks a state's largest entry
    by at most ``p/2 + 1/2`` bits (an orthogonal rotation by half a bit). Renormalising only once a
    quarter of the exponent range could have been used keeps precision and skips the work at low
    order (never in float64 at orders 1-2).
    """

    def __init__(self, layout, dtype, log_scale, dims):
        self.active = layout.mode == "postselect"
        self.bits_per_neuron = 2**layout.order / 2 + 0.5
        self.budget = -math.log2(torch.finfo(dtype).tiny) / 4
        self.spent = 0.0
        self.log_scale, self.dims = log_scale, dims

    def neuron(self, state, cos, sin, log_scale):
        """Account for a neuron about to be applied with the tables ``cos``, ``sin`` (whose
        leading axis is the block axis when there are blocks); return the tables to use."""
        if not self.active:
            return cos, sin
        self.log_scale = self.log_scale + log_scale
        self.spent += self.bits_per_neuron
        if self.spent <= self.budget:
            return cos, sin
        self.spent = self.bits_per_neuron
        factor = _inverse_top(state, self.dims)
        self.log_scale = self.log_scale - factor.log()
        factor = factor.reshape(factor.shape + (1,) * (cos.dim() - factor.dim()))
        return cos * factor, sin * factor

    def rotation(self):
        self.spent += 0.5


def check_finite(hint: str = "", **tensors) -> None:
    """Raise :class:`~pennylane_qrnn.errors.NonFiniteError` naming the first keyword argument that
    holds a NaN or an infinity (one device synchronisation for all of them); ``hint`` ends the
    message."""
    flags = torch.stack([torch.isfinite(t).all() for t in tensors.values()])
    if bool(flags.all()):
        return
    for (name, tensor), flag in zip(tensors.items(), flags.tolist(), strict=True):
        if not flag:
            bad = (~torch.isfinite(tensor)).sum().item()
            raise NonFiniteError(
                f"{name} must be finite; got {bad} NaN or infinite value(s) of {tensor.numel()}"
                + (f" ({hint})" if hint else "")
            )


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
    """Run the cell on basis states to get its transfer matrices (differentiable).

    Raises:
        NonFiniteError: a weight is NaN or infinite
        ModelSizeError: the matrices would not fit in memory (:mod:`pennylane_qrnn.memory`)
    """
    io, ws = layout.io_bits, layout.workspace
    weights = (input_weights, rotation_weights, stage_weights, output_weights)
    memory.check(
        memory.engine_operator_bytes(
            io,
            ws,
            layout.stages,
            input_weights.element_size(),
            grad=torch.is_grad_enabled() and any(w.requires_grad for w in weights),
        ),
        f"the exact engine's transfer matrices for io_bits={io}, workspace={ws} "
        f"(2**{ws} x 2**{io + ws}, built from 2**{io + 2 * ws} amplitudes)",
        device=input_weights.device,
        advice="use fewer workspace or i/o qubits",
    )
    check_finite(
        "restore the last good checkpoint, or lower the learning rate",
        **dict(zip(_WEIGHT_NAMES, weights, strict=True)),
    )
    n_x, n_w = 2**io, 2**ws
    dtype, device = input_weights.dtype, input_weights.device
    # each token's block W[x] keeps its own scale; O has one (module docstring)
    write_scale = _Rescaler(
        layout, dtype, torch.zeros(n_x, dtype=dtype, device=device), tuple(range(1, 2 + ws))
    )

    # Write, input and work stages. The i/o lanes are only controls here, so they stay in the
    # written basis state x: keep x as a batch axis, columns w as a second one, and simulate the
    # workspace axes. Tables are laid out on all lanes; their i/o axes become the x axis.
    state = torch.eye(n_w, dtype=dtype, device=device).reshape((1, n_w) + (2,) * ws)
    state = state.expand((n_x,) + state.shape[1:])

    def workspace_neuron(state, weights, lane):
        target = io + lane
        cos, sin, log_scale = _maps(layout, weights)
        cos, sin = (layout.lay_out(t, target) for t in (cos, sin))
        cos, sin = (t.reshape((n_x, 1) + t.shape[io:]) for t in (cos, sin))
        cos, sin = write_scale.neuron(state, cos, sin, log_scale)
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
            write_scale.rotation()
        for lane in range(ws):
            state = workspace_neuron(state, stage_weights[stage, lane], lane)
    # state[x, w, w'] = <w'| W[x] |w>; psi @ write_stage must give (W[x] psi) for all x
    write_stage = state.reshape(n_x, n_w, n_w).permute(1, 0, 2).reshape(n_w, n_x * n_w)

    # Output stage on the full register, from |0>|w> for every column w.
    state = torch.zeros((n_w, n_x, n_w), dtype=dtype, device=device)
    state[:, 0, :] = torch.eye(n_w, dtype=dtype, device=device)
    state = state.reshape((n_w,) + (2,) * (io + ws))
    output_scale = _Rescaler(
        layout, dtype, torch.zeros((), dtype=dtype, device=device), tuple(range(1 + io + ws))
    )
    for lane in range(io):
        cos, sin, log_scale = _maps(layout, output_weights[lane])
        cos, sin = (layout.lay_out(t, lane).unsqueeze(0) for t in (cos, sin))
        cos, sin = output_scale.neuron(state, cos, sin, log_scale)
        state = _rotate(state, cos, sin, axis=1 + lane)
    output_stage = state.reshape(n_w, n_x * n_w)
    return CellOperators(
        write_stage, output_stage, layout, write_scale.log_scale, output_scale.log_scale
    )


@dataclass
class SequenceResult:
    """What :func:`run_sequence` returns.

    Attributes:
        log_probs: ``(L, N, 2**I)`` per-step log-probabilities of the next token
        state: ``(N, 2**H)`` final workspace state (real amplitudes, normalised)
        outcomes: ``(L, N)`` the token each step collapsed on (the target, or the sample)
        neuron_success: ``(L, N)`` probability that all of a step's neuron postselections succeed
            (1 in amplified mode); ``exp(log_neuron_success)``, so 0 where that is below the
            smallest float
        outcome_probability: ``(L, N)`` probability of the outcome collapsed on (for teacher
            forcing: the postselection probability of the target)
        log_neuron_success: ``(L, N)`` its logarithm, computed without underflow
        log_outcome_probability: ``(L, N)`` the log-probability of the outcome collapsed on

    Steps whose every branch underflows (see the module docstring) and all later steps of that
    sequence are NaN in every field but ``outcomes``.
    """

    log_probs: torch.Tensor
    state: torch.Tensor
    outcomes: torch.Tensor
    neuron_success: torch.Tensor
    outcome_probability: torch.Tensor
    log_neuron_success: torch.Tensor | None = None
    log_outcome_probability: torch.Tensor | None = None


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
    if generator is not None and not isinstance(generator, torch.Generator):
        raise QRNNTypeError(
            f"generator must be a torch.Generator or None; got {type(generator).__name__}"
        )
    if state is not None:
        check_finite(state=state)
        zero = int((state.detach().abs().amax(dim=-1) == 0).sum())
        if zero:
            raise QRNNValueError(
                f"state must have a nonzero amplitude in every row; got {zero} zero row(s)"
            )
    grad = torch.is_grad_enabled() and (
        write.requires_grad or output.requires_grad or (state is not None and state.requires_grad)
    )
    # the operators' autograd graph stays alive until the backward pass
    operator_graph = memory.engine_operator_bytes(
        layout.io_bits,
        layout.workspace,
        layout.stages,
        write.element_size(),
        grad=write.grad_fn is not None or output.grad_fn is not None,
    )
    memory.check(
        operator_graph
        + memory.engine_sequence_bytes(
            layout.io_bits, layout.workspace, length, batch, write.element_size(), grad
        ),
        f"the exact engine on {batch} sequence(s) of length {length} (io_bits={layout.io_bits}, "
        f"workspace={layout.workspace}{', with gradients' if grad else ''})",
        device=write.device,
    )
    if state is None:
        state = initial_state(layout, batch, write.dtype, write.device)
    plan = _Plan(tokens, 2**layout.io_bits, 2**layout.workspace, targets, collapse, generator)
    log_probs, final, outcomes, log_success, log_chosen = _Recurrence.apply(
        write, output, state, plan
    )
    # the stored operators are scaled (module docstring): add the scales back
    log_scale = 0.0
    if operators.log_write_scale is not None:
        log_scale = operators.log_write_scale[tokens]
    if operators.log_output_scale is not None:
        log_scale = log_scale + operators.log_output_scale
    log_success = log_success + 2 * log_scale
    if plan.floored:
        warnings.warn(
            f"{plan.floored} outcome(s) collapsed on had an amplitude below the smallest "
            f"{write.dtype} number; their log-probabilities are bounds (at most log(tiny**2) = "
            f"{2 * math.log(torch.finfo(write.dtype).tiny):.1f} below the step's largest). Use "
            "dtype=torch.float64, or a lower order",
            NumericalRangeWarning,
            stacklevel=2,
        )
    dead = torch.isnan(log_chosen)
    if bool(dead.any()):
        first = dead.float().argmax(dim=0)[dead.any(dim=0)]
        warnings.warn(
            f"{int(dead.any(dim=0).sum())} of {batch} sequence(s) reached a step (first at step "
            f"{int(first.min())}) where every branch is below the smallest {write.dtype} number; "
            "their log-probabilities from there on are NaN. Use dtype=torch.float64, or a lower "
            "order",
            NumericalRangeWarning,
            stacklevel=2,
        )
    return SequenceResult(
        log_probs, final, outcomes, log_success.exp(), log_chosen.exp(), log_success, log_chosen
    )


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
            self.counts = torch.stack(
                [torch.bincount(row, minlength=n_x) for row in tokens]
            ).tolist()
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


def _branches(u: torch.Tensor, tiny: float):
    """For branch amplitudes ``u`` ``(N, n_y, n_w)``: the unit vectors ``u_y / |u_y|``, ``log q_y``
    (``q_y = |u_y|**2``) and ``1 / |u_y|``, each computed without squaring an amplitude (which
    underflows from ``1e-19`` in float32). A branch that is exactly 0 gets ``|u_y| = tiny``."""
    top = u.abs().amax(-1).clamp_min_(tiny)
    unit = u / top.unsqueeze(-1)
    norm = torch.linalg.vector_norm(unit, dim=-1).clamp_min_(1)
    unit /= norm.unsqueeze(-1)
    norm *= top
    return unit, 2 * norm.log(), norm.reciprocal()


class _Recurrence(torch.autograd.Function):
    """The teacher-forced / sampled recurrence with a hand-written backward pass.

    Per step: ``v = W[x] psi``, ``u = O v``, ``q_y = |u_y|^2``, ``log p_y = log q_y - log sum q``,
    ``psi' = u_o / sqrt(q_o)`` for the outcome ``o``. ``v`` and ``u`` are divided by their
    largest entry (constants for the gradient: ``log p`` and ``psi'`` do not depend on them), and
    the logs of those factors go into the step's ``log sum q`` (returned as the neuron success,
    without the operators' own scales).
    """

    @staticmethod
    def forward(ctx, write, output, state, plan):
        n_x, n_w = plan.n_x, plan.n_w
        length, batch = plan.tokens.shape
        n_y = output.shape[1] // n_w
        tiny = torch.finfo(write.dtype).tiny
        blocks = (
            write.reshape(n_w, n_x, n_w).permute(1, 0, 2).contiguous() if plan.grouped else None
        )
        # keep every step's intermediates only when a backward pass will need them
        keep = any(ctx.needs_input_grad[:3])
        kept = length if keep else 1
        states = write.new_empty(kept, batch, n_w)
        written = write.new_empty(kept, batch, n_w)
        branches = write.new_empty(kept, batch, n_y, n_w)
        # largest |entry| of v and u per step and sequence (floored so that dividing is finite)
        tops = write.new_empty(length, 2, batch)
        floor = 2 / torch.finfo(write.dtype).max
        log_totals = write.new_empty(length, batch)
        log_probs = write.new_empty(length, batch, n_y)
        outcomes = torch.empty(length, batch, dtype=torch.long, device=write.device)
        psi = state
        for step in range(length):
            slot = step if keep else 0
            states[slot] = psi
            v = written[slot]
            v.copy_(plan.write(blocks, write, psi, step))
            v_top, u_top = tops[step]
            torch.amax(v.abs(), dim=1, out=v_top)
            v.div_(v_top.clamp_min(floor).unsqueeze(1))
            u = branches[slot]
            torch.mm(v, output, out=u.view(batch, n_y * n_w))
            torch.amax(u.abs(), dim=(1, 2), out=u_top)
            u.div_(u_top.clamp_min(floor).view(batch, 1, 1))
            unit, log_q, _ = _branches(u, tiny)
            log_total = log_totals[step]
            torch.logsumexp(log_q, -1, out=log_total)
            torch.sub(log_q, log_total.unsqueeze(1), out=log_probs[step])
            outcome = plan.outcome(step, log_probs[step].exp())
            outcomes[step] = outcome
            psi = unit[plan.rows, outcome]
        log_chosen = log_probs.gather(2, outcomes.unsqueeze(2)).squeeze(2)
        # the neurons' success without the operators' scales: sum q, times the factors taken out
        log_success = log_totals + 2 * tops.clamp_min(floor).log().sum(1)
        # nothing survived (every branch below the smallest float): NaN, never uniform
        dead = ~(tops[:, 1] > 0)
        log_probs.masked_fill_(dead.unsqueeze(2), math.nan)
        log_success.masked_fill_(dead, math.nan)
        log_chosen.masked_fill_(dead, math.nan)
        # outcomes whose branch is below the smallest float: log q floored at log(tiny**2)
        plan.floored = int((log_chosen + log_totals <= 2 * math.log(tiny) + 1e-6).sum())
        ctx.save_for_backward(
            write, output, states, written, branches, outcomes, tops.clamp_min(floor)
        )
        ctx.plan, ctx.blocks = plan, blocks
        ctx.mark_non_differentiable(outcomes, log_success, log_chosen)
        return log_probs, psi, outcomes, log_success, log_chosen

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_log_probs, grad_state, *_):
        write, output, states, written, branches, outcomes, tops = ctx.saved_tensors
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
            unit, log_q, inverse_norm = _branches(u, tiny)
            g = grad_log_probs[step]
            # d log p_y / d u = 2 u_y / q_y - 2 u / sum q: the first as (u_y / |u_y|) / |u_y|,
            # since 1 / q_y alone overflows where q_y is near the smallest float
            grad_u = 2 * unit * (g * inverse_norm).unsqueeze(-1)
            weight = g.sum(-1, keepdim=True) * torch.exp(-torch.logsumexp(log_q, -1, keepdim=True))
            grad_u -= 2 * u * weight.unsqueeze(-1)
            outcome = outcomes[step]
            # psi' = u_o / |u_o|: the gradient is the part of grad_psi orthogonal to psi', / |u_o|
            new_psi = unit[rows, outcome]
            radial = (grad_psi * new_psi).sum(-1, keepdim=True)
            grad_u[rows, outcome] += inverse_norm[rows, outcome].unsqueeze(1) * (
                grad_psi - radial * new_psi
            )
            # back through the constant factors: u was divided by max|u|, v by max|v|
            grad_u.div_(tops[step, 1].view(batch, 1, 1))
            grad_branches[step] = grad_u
            grad_v = grad_written[step]
            torch.mm(grad_u.reshape(batch, -1), output.T, out=grad_v)
            grad_v.div_(tops[step, 0].unsqueeze(1))
            grad_psi = plan.write_transposed(blocks, write, grad_v, step)
        grad_output = written.reshape(-1, n_w).T @ grad_branches.reshape(-1, n_y * n_w)
        flat_states = states.reshape(-1, n_w)
        flat_grad_v = grad_written.reshape(-1, n_w)
        grad_write = write.new_zeros(n_w, plan.n_x, n_w)
        for x, members in enumerate(plan.members):
            if members.numel():
                grad_write[:, x] = flat_states[members].T @ flat_grad_v[members]
        if not bool(torch.isfinite(grad_output).all() & torch.isfinite(grad_write).all()):
            warnings.warn(
                f"the gradient of the transfer matrices overflowed {write.dtype} (a scored "
                "outcome's probability is near the dtype's smallest number); the weight gradients "
                "are not finite. Use dtype=torch.float64, or a lower order",
                NumericalRangeWarning,
                stacklevel=2,
            )
        return grad_write.reshape(n_w, -1), grad_output, grad_psi, None
