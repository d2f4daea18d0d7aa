"""The statevector engine's pieces: :class:`NeuronTables` (every neuron's 2x2 maps, once per
forward pass), :func:`cell` (one step on the batched state), :func:`readout` (the i/o
distribution and the collapsed state) and :class:`_Sweep`, the recurrence with a checkpointed
backward pass (see :mod:`pennylane_qrnn.engine.statevector`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .. import memory, neuron
from ..layout import CellLayout
from .checks import NumericalRangeWarning, warn_out_of_range
from .outcomes import SkipPlan, choose_outcome, mark_skipped
from .transforms import opaque, vmap_by_slices


@dataclass
class NeuronTables:
    """Every neuron's map for one forward pass, laid out for :func:`cell`.

    ``tensors`` holds, in the order the cell applies them: for each workspace neuron its
    ``cos`` and ``sin`` tables, shape ``(2**I, 2**j, 1, 2**(H-1-j))`` for lane ``j`` (token axis
    first); for each work-stage rotation its ``cos`` and ``sin`` (0-d); for each output neuron
    its tables, shape ``(1, 2**l, 1, 2**(I-1-l+H))`` for i/o lane ``l``. Postselect mode: the
    maps divided by a constant per neuron whose logs sum to ``log_scale`` (a 0-d tensor), as in
    :func:`pennylane_qrnn.engine.operators._maps`, ``log_output_scale`` of it from the output
    neurons; amplified mode: the rotations by ``f(eta)``.
    """

    layout: CellLayout
    tensors: list[torch.Tensor]
    log_scale: torch.Tensor | float
    log_output_scale: torch.Tensor | float = 0.0

    @classmethod
    def build(cls, layout: CellLayout, weights: Sequence[torch.Tensor]) -> NeuronTables:
        input_weights, rotation_weights, stage_weights, output_weights = weights
        io, ws = layout.io_bits, layout.workspace
        n_weights = input_weights.shape[-1]
        # one eta table for all workspace neurons, one for the output neurons (the monomial
        # matrix is converted once per call)
        workspace = torch.cat([input_weights, stage_weights.reshape(-1, n_weights)])
        cos_ws, sin_ws, log_ws = _maps(layout, workspace)
        cos_io, sin_io, log_io = _maps(layout, output_weights)
        tensors: list[torch.Tensor] = []
        for index in range(ws * (1 + layout.stages)):
            stage, lane = divmod(index, ws)
            if stage and lane == 0:
                angles = rotation_weights[stage - 1]
                for rotated in range(ws):
                    tensors += [torch.cos(angles[rotated]), torch.sin(angles[rotated])]
            shape = (2**io, 2**lane, 1, 2 ** (ws - 1 - lane))
            for table in (cos_ws[index], sin_ws[index]):
                tensors.append(layout.lay_out(table, io + lane).reshape(shape))
        for lane in range(io):
            shape = (1, 2**lane, 1, 2 ** (io - 1 - lane + ws))
            for table in (cos_io[lane], sin_io[lane]):
                tensors.append(layout.lay_out(table, lane).reshape(shape))
        return cls(layout, tensors, log_ws + log_io, log_io)


def _maps(
    layout: CellLayout, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]:
    """Rows of weights ``(n, n_weights)`` -> their neurons' ``C``, ``S`` tables ``(n, 2**c)`` and
    the sum of the logs of the constants they were divided by, a 0-d tensor (0.0 in amplified
    mode; the engine's ``_maps`` per row)."""
    eta = neuron.eta_table(weights, layout.n_controls, layout.degree)
    if layout.mode == "amplified":
        cos, sin = neuron.activation_rotation(eta, layout.order)
        return cos, sin, 0.0
    with torch.no_grad():
        reference = torch.maximum(eta.cos().abs(), eta.sin().abs()).amax(dim=-1, keepdim=True)
    cos, sin = neuron.scaled_amplitudes(eta, layout.order, reference)
    return cos, sin, 2**layout.order * torch.log(reference).sum()


def _apply(state: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``[[cos, -sin], [sin, cos]]`` on axis 2 of ``state`` ``(N, A, 2, B)`` (tables broadcast
    as ``(N or 1, A, 1, B)``)."""
    zero, one = state[:, :, :1], state[:, :, 1:]
    return torch.cat((cos * zero - sin * one, sin * zero + cos * one), dim=2)


class _Rescaler:
    """Divides the per-item state by its largest entry (a constant for autograd) before it
    could leave the dtype's range, and keeps the log of what it divided by (per item). The
    bound is the engine's (:class:`pennylane_qrnn.engine.operators._Rescaler`)."""

    def __init__(self, layout: CellLayout, dtype: torch.dtype) -> None:
        self.active = layout.mode == "postselect"
        self.bits_per_neuron = 2**layout.order / 2 + 0.5
        self.budget = -math.log2(torch.finfo(dtype).tiny) / 4
        self.spent = 0.0
        self.floor = 2 / torch.finfo(dtype).max

    def normalise(self, state: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        """``state`` ``(N, ...)`` divided by its largest entry per item; ``log_scale`` ``(N,)``
        gains the log of that entry (in place)."""
        with torch.no_grad():
            top = state.abs().reshape(state.shape[0], -1).amax(dim=1).clamp_min(self.floor)
            log_scale += top.log()
        self.spent = 0.0
        return state / top.reshape((-1,) + (1,) * (state.dim() - 1))

    def neuron(self, state: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return state
        self.spent += self.bits_per_neuron
        if self.spent <= self.budget:
            return state
        state = self.normalise(state, log_scale)
        self.spent = self.bits_per_neuron
        return state


def cell(
    tables: NeuronTables,
    tensors: Sequence[torch.Tensor],
    psi: torch.Tensor,
    tokens: torch.Tensor,
    skipped: torch.Tensor | None = None,
    every: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step without the readout: the workspace state ``psi`` ``(N, 2**H)`` after writing
    ``tokens`` ``(N,)``, the input and work stages, the reset and the output stage, as the
    branch amplitudes ``u`` ``(N, 2**I, 2**H)`` divided by a constant per item, whose log
    ``(N,)`` is returned with them (with the tables' own constants). Items ``skipped``
    (``(N,)`` bool) skip the output stage: ``u[0]`` is their state after the reset, the other
    branches 0; ``every``: all items do, and the output stage is not computed."""
    layout = tables.layout
    io, ws, batch = layout.io_bits, layout.workspace, psi.shape[0]
    rescale = _Rescaler(layout, psi.dtype)
    log_scale = torch.as_tensor(tables.log_scale, dtype=psi.dtype, device=psi.device)
    log_scale = log_scale.expand(batch).clone()
    state = rescale.normalise(psi, log_scale)
    # write, input and work stages: the i/o lanes stay in the basis state of the token (they
    # are only controls), so each item's tables are sliced at its token and the state is the
    # workspace alone; the reset returns the i/o lanes to |0>
    items = iter(tensors)
    for index in range(ws * (1 + layout.stages)):
        lane = index % ws
        if index >= ws and lane == 0:
            for rotated in range(ws):
                cos, sin = next(items), next(items)
                view = state.reshape(batch, 2**rotated, 2, 2 ** (ws - 1 - rotated))
                state = _apply(view, cos, sin)
                rescale.spent += 0.5
        cos, sin = next(items)[tokens], next(items)[tokens]
        state = rescale.neuron(state, log_scale)
        state = _apply(state.reshape(batch, 2**lane, 2, 2 ** (ws - 1 - lane)), cos, sin)
    # output stage on |0>|phi>
    state = state.reshape(batch, 1, 2**ws)
    state = torch.cat((state, state.new_zeros(batch, 2**io - 1, 2**ws)), dim=1)
    if skipped is not None:
        # the i/o lanes stay in |0>: this is u already, without the output neurons' constants
        reset, reset_scale = state, log_scale - tables.log_output_scale
        if every:
            return reset, reset_scale
    for lane in range(io):
        cos, sin = next(items), next(items)
        state = rescale.neuron(state, log_scale)
        state = _apply(state.reshape(batch, 2**lane, 2, -1), cos, sin)
    state = state.reshape(batch, 2**io, 2**ws)
    if skipped is not None:
        state = torch.where(skipped.view(-1, 1, 1), reset, state)
        log_scale = torch.where(skipped, reset_scale, log_scale)
    return state, log_scale


def readout(
    u: torch.Tensor, tiny: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Branch amplitudes ``u`` ``(N, n_y, n_w)`` -> ``log p`` ``(N, n_y)``, the unit branches
    ``u_y / |u_y|``, ``log sum_y q_y`` ``(N,)`` with ``q_y = |u_y / max|u||**2`` and
    ``max |u|`` ``(N,)`` (the step is dead where it is 0). Differentiable; no amplitude is
    squared (``1e-19`` squared underflows float32), and the constants divided by are held fixed
    (the results do not depend on them). As the engine's ``_branches``."""
    floor = 2 / torch.finfo(u.dtype).max
    with torch.no_grad():
        whole = u.abs().amax(dim=(1, 2))
    u = u / whole.clamp_min(floor).view(-1, 1, 1)
    with torch.no_grad():
        top = u.abs().amax(-1).clamp_min(tiny)
    scaled = u / top.unsqueeze(-1)
    norm = torch.linalg.vector_norm(scaled, dim=-1).clamp_min(1)
    unit = scaled / norm.unsqueeze(-1)
    log_q = 2 * (norm.log() + top.log())
    log_total = torch.logsumexp(log_q, -1)
    return log_q - log_total.unsqueeze(1), unit, log_total, whole


class SweepPlan:
    """The non-differentiable part of a statevector run: tokens, targets, sampling and the
    checkpoint interval; the outcomes are recorded by the forward pass for the backward one."""

    def __init__(
        self,
        tables: NeuronTables,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        collapse: torch.Tensor | None,
        generator: torch.Generator | None,
        skip_output: torch.Tensor | None = None,
    ) -> None:
        self.tables, self.tokens = tables, tokens
        self.targets, self.collapse, self.generator = targets, collapse, generator
        self.skip = SkipPlan(skip_output)
        layout = tables.layout
        self.interval = memory.statevector_checkpoint_interval(
            layout.io_bits, layout.workspace, layout.stages, tokens.shape[0]
        )
        self.outcomes = torch.empty_like(tokens)
        self.rows = torch.arange(tokens.shape[1], device=tokens.device)

    def outcome(self, step: int, probs: torch.Tensor) -> torch.Tensor:
        """As :meth:`pennylane_qrnn.engine.recurrence._Plan.outcome` (same generator use)."""
        return choose_outcome(
            step, probs, self.targets, self.collapse, self.skip.rows(step), self.generator
        )

    def step(
        self, tensors: Sequence[torch.Tensor], psi: torch.Tensor, step: int, decide: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``log p``, the next state, ``log sum q`` (:func:`readout`), the log of the constant
        ``u`` was divided by before it (so that the neurons' success is their sum) and
        ``max |u|``, for ``step``; ``decide``: choose the outcome (forward) or replay it."""
        u, log_scale = cell(
            self.tables,
            tensors,
            psi,
            self.tokens[step],
            self.skip.rows(step),
            self.skip.every(step),
        )
        log_probs, unit, log_total, whole = readout(u, torch.finfo(u.dtype).tiny)
        if decide:
            self.outcomes[step] = self.outcome(step, log_probs.detach().exp())
        floor = 2 / torch.finfo(u.dtype).max
        log_scale = log_scale + whole.clamp_min(floor).log()
        return log_probs, unit[self.rows, self.outcomes[step]], log_total, log_scale, whole


class _StepFunction:
    """One step of a sweep as a function of the state and the tables in ``needed`` (the others
    held at ``tensors``), returning the next state and, with ``n_outputs`` 2, the
    log-probabilities: what :class:`_Sweep`'s backward pass differentiates."""

    def __init__(
        self,
        plan: SweepPlan,
        tensors: Sequence[torch.Tensor],
        needed: list[int],
        step: int,
        n_outputs: int,
    ) -> None:
        self.plan, self.tensors, self.needed = plan, tensors, needed
        self.step, self.n_outputs = step, n_outputs

    def __call__(self, psi: torch.Tensor, *tables: torch.Tensor) -> tuple[torch.Tensor, ...]:
        tensors = list(self.tensors)
        for index, table in zip(self.needed, tables, strict=True):
            tensors[index] = table
        log_probs, new_psi = self.plan.step(tensors, psi, self.step, decide=False)[:2]
        return (new_psi, log_probs)[: self.n_outputs]


class _PullBack:
    """The vector-Jacobian product of a :class:`_StepFunction` with respect to the state and the
    tables ``tables``. Under a :mod:`torch.func` transform (``torch.func.grad`` of a loss) by
    ``torch.func.vjp``; otherwise by ``torch.autograd.grad`` on leaves made once per backward
    pass, the same numbers with less overhead per step (``torch.func.vjp`` costs 20-40% of a
    small model's training step)."""

    def __init__(self, tables: list[torch.Tensor]) -> None:
        # torch offers no public test for "inside a torch.func transform"; without the private
        # one, torch.func.vjp always (right under both, only slower outside a transform)
        active = getattr(torch._C, "_are_functorch_transforms_active", None)
        self.functional = True if active is None else bool(active())
        self.tables = tables
        if not self.functional:
            self.leaves = [table.detach().requires_grad_(True) for table in tables]

    def __call__(
        self, function: _StepFunction, psi: torch.Tensor, cotangents: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.functional:
            pullback = torch.func.vjp(function, psi, *self.tables)[1]
            grad_psi, *grads = pullback(tuple(cotangents))
            return grad_psi, grads
        psi = psi.detach().requires_grad_(True)
        with torch.enable_grad():
            outputs = function(psi, *self.leaves)
        inputs = [psi, *self.leaves]
        grads = torch.autograd.grad(outputs, inputs, cotangents, allow_unused=True)
        grad_psi, *rest = (
            torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)
        )
        return grad_psi, rest


class _Sweep(torch.autograd.Function):
    """The recurrence. Forward: every step without autograd, keeping the state at every
    ``interval``-th step. Backward, segment by segment from the end: the segment's states again
    (without autograd), then each step recomputed with autograd and differentiated at once, so
    that at most one step's graph and ``length / interval + interval`` states are alive.

    In the ``forward`` / ``setup_context`` form that :mod:`torch.func` needs: the kept states and
    the outcomes (branch indices, which the backward pass replays) are returned as
    non-differentiable outputs after the five results, and the range warnings are given here
    (per slice under the :meth:`vmap` rule)."""

    generate_vmap_rule = False

    @staticmethod
    def forward(
        plan: SweepPlan, state: torch.Tensor, *tensors: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        length, batch = plan.tokens.shape
        plan.outcomes = torch.empty_like(plan.tokens)  # this run's (a plan may be run per slice)
        n_y = 2**plan.tables.layout.io_bits
        log_probs = state.new_empty(length, batch, n_y)
        log_totals = state.new_empty(length, batch)
        log_scales = state.new_empty(length, batch)
        tops = state.new_empty(length, batch)
        kept = []
        psi = state
        for step in range(length):
            if step % plan.interval == 0:
                kept.append(psi)
            log_probs[step], psi, log_totals[step], log_scales[step], tops[step] = plan.step(
                tensors, psi, step, decide=True
            )
        log_chosen = log_probs.gather(2, plan.outcomes.unsqueeze(2)).squeeze(2)
        # the neurons' success: sum q times the constants taken out (squared)
        log_success = log_totals + 2 * log_scales
        outcomes = mark_skipped(plan.skip.mask, log_probs, plan.outcomes.clone(), log_chosen)
        # nothing survived (every branch below the smallest float): NaN, never uniform
        dead = ~(tops > 0)
        log_probs.masked_fill_(dead.unsqueeze(2), math.nan)
        log_success.masked_fill_(dead, math.nan)
        log_chosen.masked_fill_(dead, math.nan)
        # outcomes whose branch is below the smallest float: log q floored at log(tiny**2)
        tiny = torch.finfo(state.dtype).tiny
        floored = int((log_chosen + log_totals <= 2 * math.log(tiny) + 1e-6).sum())
        warn_out_of_range(floored, log_chosen, state.dtype, stacklevel=6)
        return log_probs, psi, outcomes, log_success, log_chosen, torch.stack(kept), plan.outcomes

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        plan, _, *tensors = inputs
        ctx.plan = plan
        ctx.save_for_backward(output[5], output[6], *tensors)
        ctx.mark_non_differentiable(*output[2:])
        # no zero-filled gradients for the outputs that hold intermediates
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[int | None, ...], *args: Any
    ) -> tuple[tuple[torch.Tensor, ...], tuple[int, ...]]:
        """``torch.func.vmap``: one run per slice of the mapped state and tables, stacked."""
        return vmap_by_slices(_Sweep, info, in_dims, args)

    @staticmethod
    @opaque  # the autograd engine may call it from a compiled training step: never traced
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, grad_log_probs: torch.Tensor | None, grad_state: torch.Tensor | None, *_: Any
    ) -> tuple[Any, ...]:
        plan: SweepPlan = ctx.plan
        stacked, outcomes, *tensors = ctx.saved_tensors
        kept = stacked.unbind(0)
        plan.outcomes = outcomes  # the outcomes of the run being differentiated, replayed
        length = plan.tokens.shape[0]
        needed = [index for index, need in enumerate(ctx.needs_input_grad[2:]) if need]
        pull_back = _PullBack([tensors[index] for index in needed])
        table_grads: list[torch.Tensor | None] = [None] * len(tensors)
        grad_psi = grad_state if grad_state is not None else kept[0].new_zeros(kept[0].shape)
        for start in reversed(range(0, length, plan.interval)):
            stop = min(start + plan.interval, length)
            states = [kept[start // plan.interval]]
            with torch.no_grad():
                for step in range(start, stop - 1):
                    states.append(plan.step(tensors, states[-1], step, decide=False)[1])
            for step in reversed(range(start, stop)):
                cotangents = [grad_psi]
                skipped = plan.skip.rows(step)
                if grad_log_probs is not None and not plan.skip.every(step):
                    grad = grad_log_probs[step]
                    if skipped is not None:
                        # a skipped step's log-probabilities are NaN constants, not outputs
                        grad = grad.masked_fill(skipped.unsqueeze(1), 0.0)
                    cotangents.append(grad)
                local = _StepFunction(plan, tensors, needed, step, len(cotangents))
                grad_psi, grads = pull_back(local, states[step - start], cotangents)
                for index, grad in zip(needed, grads, strict=True):
                    total = table_grads[index]
                    table_grads[index] = grad if total is None else total + grad
        if not all(bool(torch.isfinite(g).all()) for g in table_grads if g is not None):
            warnings.warn(
                f"the gradient of the neuron tables overflowed {grad_psi.dtype} (a scored "
                "outcome's probability is near the dtype's smallest number); the weight gradients "
                "are not finite. Use dtype=torch.float64, or a lower order",
                NumericalRangeWarning,
                stacklevel=2,
            )
        return (None, grad_psi if ctx.needs_input_grad[1] else None, *table_grads)
