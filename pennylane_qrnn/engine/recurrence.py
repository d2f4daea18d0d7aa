"""The recurrence over a sequence: :class:`_Recurrence`, the teacher-forced / sampled / skipped
steps with a hand-written backward pass, and :class:`_Plan`, the non-differentiable part of a run
(tokens, targets, sampling, skipped output stages, how each token's write matrix is applied).

A step's input is a token ``x`` (``v = W[x] psi``) or, for real-valued inputs
(:mod:`pennylane_qrnn.encoding`), a weight per token (``v = sum_x m_x W[x] psi``, the ``mix``
tensor, differentiable); the plan then also keeps the unscaled weights and the blocks' log scales
to compute the unwrite's success probability.

The backward pass reads every step's state, written state and branches. For long sequences
(:func:`pennylane_qrnn.memory.transfer_checkpoint_interval`) the forward pass keeps only every
``k``-th state (``k = ceil(sqrt(L))``) and the backward pass recomputes one segment of ``k`` steps
at a time from it (:func:`_step`, replaying the forward pass's outcomes, so sampled steps are
not redrawn): about ``2 sqrt(L)`` steps' intermediates alive instead of ``L``, the same numbers
(the forward pass's bit for bit; the gradients up to the order of the segments' sums)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from ..encoding import log_unwrite_probability
from .checks import NumericalRangeWarning, warn_out_of_range
from .outcomes import SkipPlan, choose_outcome, mark_skipped
from .transforms import opaque, vmap_by_slices


class _Plan:
    """Everything about a sequence run that is not a differentiable tensor."""

    #: outcomes whose branch was floored at the dtype's smallest number (set by the forward pass)
    floored: int

    def __init__(
        self,
        tokens: torch.Tensor,
        n_x: int,
        n_w: int,
        targets: torch.Tensor | None,
        collapse: torch.Tensor | None,
        generator: torch.Generator | None,
        skip_output: torch.Tensor | None = None,
        unwrite: tuple[torch.Tensor, torch.Tensor] | None = None,
        interval: int = 1,
    ) -> None:
        self.tokens, self.n_x, self.n_w = tokens, n_x, n_w
        # keep every interval-th state for the backward pass (1: keep every step's intermediates)
        self.interval = interval
        self.targets, self.collapse, self.generator = targets, collapse, generator
        self.skip = SkipPlan(skip_output)
        # real-valued inputs: the token weights (L, N, n_x) and the blocks' log scales (n_x,)
        self.unwrite = unwrite
        length, batch = self.length, self.batch = tokens.shape[:2]
        if unwrite is not None:
            self.grouped = False  # every block is needed at every step
            self.members: list[torch.Tensor] = []
            self.rows = torch.arange(batch, device=tokens.device)
            return
        # Large workspaces: apply each W[x] to its group of the batch (2**I times fewer
        # multiply-adds). Small ones: apply every W[x] and pick, one product per step.
        self.grouped = n_w >= 64
        if self.grouped:
            self.order = torch.argsort(tokens, dim=1, stable=True)
            self.inverse = torch.argsort(self.order, dim=1)
            self.counts = torch.stack(
                [torch.bincount(row, minlength=n_x) for row in tokens]
            ).tolist()
        self.members = self.segment_members(0, length)
        self.rows = torch.arange(batch, device=tokens.device)
        # each item's token block as a row of the (N * 2**I, 2**H) products (index_select and
        # index_copy_ are several times faster than advanced indexing on these small tensors)
        self.token_rows = tokens + (self.rows * n_x).unsqueeze(0)

    def segment_members(self, start: int, stop: int) -> list[torch.Tensor]:
        """Per token, the flat ``(step, item)`` indices of steps ``start..stop-1`` that read it."""
        flat = self.tokens[start:stop].reshape(-1)
        return [torch.nonzero(flat == x).squeeze(1) for x in range(self.n_x)]

    def outcome(self, step: int, log_probs: torch.Tensor) -> torch.Tensor:
        # teacher forcing draws nothing: no probabilities needed
        probs = None if self.targets is not None and self.collapse is None else log_probs.exp()
        return choose_outcome(
            step, probs, self.targets, self.collapse, self.skip.rows(step), self.generator
        )

    def write(
        self,
        blocks: torch.Tensor | None,
        write: torch.Tensor,
        state: torch.Tensor,
        step: int,
        out: torch.Tensor,
    ) -> torch.Tensor:
        """``W[x_t] psi`` for every item, into ``out``."""
        if self.grouped:
            groups = state.index_select(0, self.order[step]).split(self.counts[step])
            # a grouped plan is always given blocks (_Recurrence.forward)
            written = torch.cat(
                [g @ blocks[x] for x, g in enumerate(groups) if g.shape[0]]  # type: ignore[index]
            )
            return torch.index_select(written, 0, self.inverse[step], out=out)
        batch = state.shape[0]
        written = (state @ write).view(batch * self.n_x, self.n_w)
        return torch.index_select(written, 0, self.token_rows[step], out=out)

    def mixed_write(
        self, write: torch.Tensor, mix: torch.Tensor, state: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``sum_x m_x W[x] psi`` for every item (real-valued inputs), and the log of the
        probability that the unwrite's postselection succeeds."""
        every = (state @ write).view(state.shape[0], self.n_x, self.n_w)
        written = torch.bmm(mix[step].unsqueeze(1), every).squeeze(1)
        weights, log_scales = self.unwrite  # type: ignore[misc]  # set for real-valued inputs
        return written, log_unwrite_probability(every, weights[step], log_scales)

    def write_transposed(
        self, blocks: torch.Tensor | None, write: torch.Tensor, grad: torch.Tensor, step: int
    ) -> torch.Tensor:
        """``W[x_t]^T g`` for every item (the backward of :meth:`write`)."""
        if self.grouped:
            groups = grad.index_select(0, self.order[step]).split(self.counts[step])
            # a grouped plan is always given blocks (_Recurrence.forward)
            back = torch.cat(
                [g @ blocks[x].T for x, g in enumerate(groups) if g.shape[0]]  # type: ignore[index]
            )
            return back.index_select(0, self.inverse[step])
        batch = grad.shape[0]
        spread = grad.new_zeros(batch * self.n_x, self.n_w)
        spread.index_copy_(0, self.token_rows[step], grad)
        return spread.view(batch, -1) @ write.T


def _branches(u: torch.Tensor, top: torch.Tensor, norm: torch.Tensor, tiny: float) -> torch.Tensor:
    """For branch amplitudes ``u`` ``(N, n_y, n_w)`` and their largest ``|entry|`` per branch
    ``top`` ``(N, n_y)``: turns ``u`` into the unit vectors ``u_y / |u_y|`` (in place), fills
    ``norm`` with ``|u_y|`` and returns ``log q_y`` (``q_y = |u_y|**2``), each computed without
    squaring an amplitude (which underflows from ``1e-19`` in float32). A branch that is exactly
    0 gets ``|u_y| = tiny``."""
    top = top.clamp_min_(tiny)
    u.div_(top.unsqueeze(-1))
    torch.linalg.vector_norm(u, dim=-1, out=norm)
    norm.clamp_min_(1)
    u.div_(norm.unsqueeze(-1))
    norm.mul_(top)
    return 2 * norm.log()


def _chosen_rows(rows: torch.Tensor, outcome: torch.Tensor, n_y: int) -> torch.Tensor:
    """Each item's chosen branch ``outcome`` as a row of its ``(N * n_y, ...)`` flattening."""
    return rows * n_y + outcome


def _pick(branches: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """``branches[rows, outcome]`` for contiguous ``(N, n_y, ...)`` branches, given
    :func:`_chosen_rows`."""
    return branches.view(-1, *branches.shape[2:]).index_select(0, chosen)


def _blocks(write: torch.Tensor, plan: _Plan) -> torch.Tensor | None:
    """The write matrix as one ``(2**H, 2**H)`` block per token, for a grouped plan."""
    if not plan.grouped:
        return None
    return write.reshape(plan.n_w, plan.n_x, plan.n_w).permute(1, 0, 2).contiguous()


def _step(
    plan: _Plan,
    blocks: torch.Tensor | None,
    write: torch.Tensor,
    output: torch.Tensor,
    mix: torch.Tensor | None,
    psi: torch.Tensor,
    step: int,
    v: torch.Tensor,
    u: torch.Tensor,
    top: torch.Tensor,
    norm: torch.Tensor,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One step up to its branches: fills ``v`` (``W[x] psi`` divided by its largest entry),
    ``top`` (that factor and the branches' largest entry, ``(2, N)``, unfloored), ``u`` (the
    branches ``O v`` as unit vectors, in place) and ``norm`` (their norms, ``(N, n_y)``, relative
    to the factors); returns the unwrite's log success for real-valued inputs (``None`` for
    tokens) and ``log q``. The forward pass and the backward pass's recomputation of a segment
    both call it."""
    batch = psi.shape[0]
    floor = 2 / torch.finfo(write.dtype).max
    log_unwrite = None
    if mix is None:
        plan.write(blocks, write, psi, step, out=v)
    else:
        mixed, log_unwrite = plan.mixed_write(write, mix, psi, step)
        v.copy_(mixed)
    v_top, u_top = top
    torch.amax(v.abs(), dim=1, out=v_top)
    v.div_(v_top.clamp_min(floor).unsqueeze(1))
    skipped = plan.skip.rows(step)
    if plan.skip.every(step):
        # no output stage: the i/o lanes stay in |0>, the branch y = 0 is v itself
        u.zero_()
        u[:, 0] = v
    else:
        torch.mm(v, output, out=u.view(batch, -1))
        if skipped is not None:
            u[skipped] = 0
            u[skipped, 0] = v[skipped]
    branch_top = torch.amax(u.abs(), dim=2)
    torch.amax(branch_top, dim=1, out=u_top)
    scale = u_top.clamp_min(floor)
    u.div_(scale.view(batch, 1, 1))
    # the largest |entry| of each branch of the divided u (bit for bit: dividing by a positive
    # number keeps the order of the rounded magnitudes)
    branch_top.div_(scale.unsqueeze(1))
    return log_unwrite, _branches(u, branch_top, norm, torch.finfo(write.dtype).tiny)


def _segments(length: int, interval: int) -> list[tuple[int, int]]:
    """The backward pass's segments ``(start, stop)``, last first (one, the whole sequence, for
    an interval of 1: every step's intermediates are kept)."""
    if interval == 1:
        return [(0, length)]
    return [(s, min(s + interval, length)) for s in reversed(range(0, length, interval))]


class _Recurrence(torch.autograd.Function):
    """The teacher-forced / sampled / skipped recurrence with a hand-written backward pass.

    Per step: ``v = W[x] psi``, ``u = O v``, ``q_y = |u_y|^2``, ``log p_y = log q_y - log sum q``,
    ``psi' = u_o / sqrt(q_o)`` for the outcome ``o``. ``v`` and ``u`` are divided by their
    largest entry (constants for the gradient: ``log p`` and ``psi'`` do not depend on them), and
    the logs of those factors go into the step's ``log sum q`` (returned as the neuron success,
    without the operators' own scales). Where the output stage is skipped
    (:mod:`~pennylane_qrnn.engine.outcomes`), ``u[0] = v``, every other branch is 0 and ``o = 0``.

    With real-valued inputs, ``v = sum_x m_x W[x] psi`` (``mix``, ``(L, N, 2**I)``, differentiable;
    ``None`` for tokens) and the sixth result is each step's log unwrite success (0 for tokens).

    In the ``forward`` / ``setup_context`` form that :mod:`torch.func` needs: the intermediates the
    backward pass reads are returned as (non-differentiable) outputs after the six results, and
    the range warnings are given here, so that the :meth:`vmap` rule (one run per slice) gives
    them per slice. ``keep`` (whether a backward pass will follow) is decided by the caller, as
    ``forward`` sees no ``ctx``; with ``plan.interval > 1`` the kept states are every
    ``interval``-th step's only, and the backward pass recomputes the rest segment by segment.
    """

    generate_vmap_rule = False

    @staticmethod
    def forward(
        write: torch.Tensor,
        output: torch.Tensor,
        state: torch.Tensor,
        mix: torch.Tensor | None,
        plan: _Plan,
        keep: bool,
    ) -> tuple[torch.Tensor, ...]:
        n_w = plan.n_w
        length, batch = plan.length, plan.batch
        n_y = output.shape[1] // n_w
        tiny = torch.finfo(write.dtype).tiny
        blocks = _blocks(write, plan)
        # keep every step's intermediates only when a backward pass will need them, and then
        # only every plan.interval-th state where the intermediates would be too large
        every = keep and plan.interval == 1
        kept = length if every else 1
        states = write.new_empty(
            kept if not keep or every else -(-length // plan.interval), batch, n_w
        )
        written = write.new_empty(kept, batch, n_w)
        # each step's branches as unit vectors, and their norms
        branches = write.new_empty(kept, batch, n_y, n_w)
        norms = write.new_empty(kept, batch, n_y)
        # largest |entry| of v and u per step and sequence (floored so that dividing is finite)
        tops = write.new_empty(length, 2, batch)
        floor = 2 / torch.finfo(write.dtype).max
        log_totals = write.new_empty(length, batch)
        log_probs = write.new_empty(length, batch, n_y)
        outcomes = torch.empty(length, batch, dtype=torch.long, device=write.device)
        log_unwrite = write.new_zeros(length, batch)
        psi = state
        for step in range(length):
            slot = step if every else 0
            if every or not keep:
                states[slot] = psi
            elif step % plan.interval == 0:
                states[step // plan.interval] = psi
            unit = branches[slot]
            unwritten, log_q = _step(
                plan,
                blocks,
                write,
                output,
                mix,
                psi,
                step,
                written[slot],
                unit,
                tops[step],
                norms[slot],
            )
            if unwritten is not None:
                log_unwrite[step] = unwritten
            log_total = log_totals[step]
            torch.logsumexp(log_q, -1, out=log_total)
            torch.sub(log_q, log_total.unsqueeze(1), out=log_probs[step])
            outcome = plan.outcome(step, log_probs[step])
            outcomes[step] = outcome
            psi = _pick(unit, _chosen_rows(plan.rows, outcome, n_y))
        log_chosen = log_probs.gather(2, outcomes.unsqueeze(2)).squeeze(2)
        # the neurons' success without the operators' scales: sum q, times the factors taken out
        log_success = log_totals + 2 * tops.clamp_min(floor).log().sum(1)
        returned = mark_skipped(plan.skip.mask, log_probs, outcomes, log_chosen)
        # nothing survived (every branch below the smallest float): NaN, never uniform
        dead = ~(tops[:, 1] > 0)
        log_probs.masked_fill_(dead.unsqueeze(2), math.nan)
        log_success.masked_fill_(dead, math.nan)
        log_chosen.masked_fill_(dead, math.nan)
        log_unwrite.masked_fill_(dead, math.nan)
        # outcomes whose branch is below the smallest float: log q floored at log(tiny**2)
        floored = int((log_chosen + log_totals <= 2 * math.log(tiny) + 1e-6).sum())
        warn_out_of_range(floored, log_chosen, write.dtype, stacklevel=6)
        saved = (states, written, branches, norms, outcomes, tops.clamp_min(floor), log_totals)
        return (log_probs, psi, returned, log_success, log_chosen, log_unwrite) + saved

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        write, output_stage, _, mix, plan, _ = inputs
        ctx.save_for_backward(write, output_stage, mix, *output[6:])
        ctx.plan = plan
        ctx.mark_non_differentiable(*output[2:])
        # no zero-filled gradients for the outputs that hold intermediates
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(
        info: Any, in_dims: tuple[int | None, ...], *args: Any
    ) -> tuple[tuple[torch.Tensor, ...], tuple[int, ...]]:
        """``torch.func.vmap``: one run per slice of the mapped tensors (same plan), stacked."""
        return vmap_by_slices(_Recurrence, info, in_dims, args, n_tensors=4)

    @staticmethod
    @opaque  # the autograd engine may call it from a compiled training step: never traced
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, grad_log_probs: torch.Tensor | None, grad_state: torch.Tensor | None, *_: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, None, None]:
        write, output, mix, states, written, branches, norms, outcomes, tops, log_totals = (
            ctx.saved_tensors
        )
        plan = ctx.plan
        blocks = _blocks(write, plan)
        length, batch = plan.length, plan.batch
        _, _, n_y, n_w = branches.shape
        interval = plan.interval
        if grad_log_probs is None:
            grad_log_probs = write.new_zeros(length, batch, n_y)
        elif plan.skip.mask is not None:
            # a skipped step's log-probabilities are NaN constants, not outputs
            grad_log_probs = grad_log_probs.masked_fill(plan.skip.mask.unsqueeze(2), 0.0)
        grad_psi = grad_state if grad_state is not None else write.new_zeros(batch, n_w)
        if interval > 1:
            # checkpointed: one segment's intermediates at a time, recomputed from its kept state
            seg_states = write.new_empty(interval, batch, n_w)
            seg_written = write.new_empty(interval, batch, n_w)
            seg_branches = write.new_empty(interval, batch, n_y, n_w)
            seg_norms = write.new_empty(interval, batch, n_y)
            scratch_top = write.new_empty(2, batch)
        size = min(interval, length) if interval > 1 else length
        grad_branches = write.new_empty(size, batch, n_y, n_w)
        grad_written = write.new_empty(size, batch, n_w)
        grad_output = write.new_zeros(output.shape)
        grad_write = write.new_zeros(n_w, plan.n_x, n_w)
        grad_mix = None if mix is None else torch.empty_like(mix)
        rows = plan.rows
        # each step's chosen branch as a row of its (N * n_y, n_w) flattening
        chosen_rows = _chosen_rows(rows, outcomes, n_y)
        for first, stop in _segments(length, interval):
            count = stop - first
            if interval == 1:
                seg_states, seg_written, seg_branches, seg_norms = states, written, branches, norms
            else:
                psi = states[first // interval]
                for i, step in enumerate(range(first, stop)):
                    seg_states[i] = psi
                    unit = seg_branches[i]
                    _step(
                        plan,
                        blocks,
                        write,
                        output,
                        mix,
                        psi,
                        step,
                        seg_written[i],
                        unit,
                        scratch_top,
                        seg_norms[i],
                    )
                    psi = _pick(unit, chosen_rows[step])
            # The segment's per-branch factors at once. With u_y = |u_y| e_y (e_y the stored unit
            # vector), d log p_y / d u = 2 u_y / q_y - 2 u / sum q = e_y (2 g_y / |u_y| - 2 |u_y|
            # sum_y' g_y' / sum q): 1 / q_y alone would overflow where q_y is near the smallest
            # float. u was divided by max|u| (a constant): so is its gradient.
            norm = seg_norms[:count]
            inverse_norm = norm.reciprocal()
            g = grad_log_probs[first:stop]
            inverse_top = tops[first:stop, 1].reciprocal().unsqueeze(2)
            # 1 / sum q, with log sum q as the forward pass computed it from the same u
            weight = g.sum(-1, keepdim=True) * torch.exp(-log_totals[first:stop]).unsqueeze(2)
            factor = 2 * (g * inverse_norm - weight * norm) * inverse_top
            # psi' = e_o: its gradient is the part of grad_psi orthogonal to psi', / |u_o|
            chosen_factor = inverse_norm.gather(2, outcomes[first:stop].unsqueeze(2)) * inverse_top
            for step in reversed(range(first, stop)):
                i = step - first
                unit = seg_branches[i]
                grad_u = torch.mul(unit, factor[i].unsqueeze(-1), out=grad_branches[i])
                chosen = chosen_rows[step]
                new_psi = _pick(unit, chosen)
                radial = (grad_psi * new_psi).sum(-1, keepdim=True)
                tangent = torch.addcmul(grad_psi, radial, new_psi, value=-1)
                grad_u.view(-1, n_w).index_add_(0, chosen, tangent.mul_(chosen_factor[i]))
                grad_v = grad_written[i]
                # where skipped, u[0] = v and O took no part in it
                skipped = plan.skip.rows(step)
                if plan.skip.every(step):
                    grad_v.copy_(grad_u[:, 0])
                    grad_u.zero_()
                else:
                    torch.mm(grad_u.view(batch, -1), output.T, out=grad_v)
                    if skipped is not None:
                        grad_v[skipped] = grad_u[skipped, 0]
                        grad_u[skipped] = 0
                grad_v.div_(tops[step, 0].unsqueeze(1))
                if mix is None:
                    grad_psi = plan.write_transposed(blocks, write, grad_v, step)
                else:
                    grad_psi = (mix[step].unsqueeze(2) * grad_v.unsqueeze(1)).view(
                        batch, -1
                    ) @ write.T
            # the segment's share of the transfer matrices' gradients
            grad_output += seg_written[:count].reshape(-1, n_w).T @ grad_branches[:count].reshape(
                -1, n_y * n_w
            )
            flat_states = seg_states[:count].reshape(-1, n_w)
            flat_grad_v = grad_written[:count].reshape(-1, n_w)
            if mix is None:
                members = plan.members if interval == 1 else plan.segment_members(first, stop)
                for x, rows_x in enumerate(members):
                    if rows_x.numel():
                        grad_write[:, x] += flat_states[rows_x].T @ flat_grad_v[rows_x]
            else:
                # v = sum_x m_x (psi @ W[x]): d/dW[x] = psi^T (m_x g), d/dm_x = (psi @ W[x]) . g
                flat_mix = mix[first:stop].reshape(-1, plan.n_x, 1)
                grad_write += (
                    flat_states.T @ (flat_mix * flat_grad_v.unsqueeze(1)).view(-1, plan.n_x * n_w)
                ).view(n_w, plan.n_x, n_w)
                every = (flat_states @ write).view(-1, plan.n_x, n_w)
                grad_mix[first:stop] = torch.bmm(  # type: ignore[index]
                    every, flat_grad_v.unsqueeze(2)
                ).view(count, batch, plan.n_x)
        if not bool(torch.isfinite(grad_output).all() & torch.isfinite(grad_write).all()):
            warnings.warn(
                f"the gradient of the transfer matrices overflowed {write.dtype} (a scored "
                "outcome's probability is near the dtype's smallest number); the weight gradients "
                "are not finite. Use dtype=torch.float64, or a lower order",
                NumericalRangeWarning,
                stacklevel=2,
            )
        return grad_write.reshape(n_w, -1), grad_output, grad_psi, grad_mix, None, None
