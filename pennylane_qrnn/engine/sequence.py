"""Whole sequences: :func:`run_sequence` checks its inputs and memory, runs the recurrence and adds
the operators' scales back into a :class:`SequenceResult`. Its inputs are tokens, or per-step
token weights for real-valued inputs (:mod:`pennylane_qrnn.encoding`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .. import memory
from ..errors import QRNNTypeError, QRNNValueError
from ..layout import CellLayout
from .checks import check_finite
from .operators import CellOperators
from .outcomes import check_skip_output
from .recurrence import _Plan, _Recurrence
from .transforms import opaque


@dataclass
class SequenceResult:
    """What :func:`run_sequence` returns.

    Attributes:
        log_probs: ``(L, N, 2**I)`` per-step log-probabilities of the next token
        state: ``(N, 2**H)`` final workspace state (real amplitudes, normalised)
        outcomes: ``(L, N)`` the token each step collapsed on (the target, or the sample;
            :data:`~pennylane_qrnn.engine.outcomes.NOT_MEASURED` where the output stage was
            skipped)
        neuron_success: ``(L, N)`` probability that all of a step's neuron postselections succeed
            (exactly 1 in amplified mode); ``exp(log_neuron_success)``, so 0 where that is below
            the smallest float
        outcome_probability: ``(L, N)`` probability of the outcome collapsed on (for teacher
            forcing: the postselection probability of the target; 1 where the output stage was
            skipped: nothing is read, nothing is paid)
        log_neuron_success: ``(L, N)`` its logarithm, computed without underflow
        log_outcome_probability: ``(L, N)`` the log-probability of the outcome collapsed on
        log_unwrite_success: ``(L, N)`` for real-valued inputs, the log-probability that the
            unwrite's postselection of the i/o lanes on ``|0...0>`` succeeds
            (:mod:`pennylane_qrnn.encoding`); 0 for tokens

    Steps whose every branch underflows (see the package docstring) and all later steps of that
    sequence are NaN in every field but ``outcomes``. ``log_probs`` is NaN at steps whose output
    stage was skipped (nothing measured).

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence
    >>> layout = CellLayout(io_bits=1, workspace=2, stages=1)
    >>> weights = [torch.full(s, 0.3, dtype=torch.float64) for s in layout.weight_shapes().values()]
    >>> result = run_sequence(build_operators(layout, *weights), torch.tensor([[0], [1]]))
    >>> tuple(result.log_probs.shape), tuple(result.state.shape), tuple(result.outcomes.shape)
    ((2, 1, 2), (1, 4), (2, 1))
    >>> bool(torch.allclose(result.log_probs.exp().sum(-1), torch.ones(2, 1, dtype=torch.float64)))
    True
    """

    log_probs: torch.Tensor
    state: torch.Tensor
    outcomes: torch.Tensor
    neuron_success: torch.Tensor
    outcome_probability: torch.Tensor
    log_neuron_success: torch.Tensor | None = None
    log_outcome_probability: torch.Tensor | None = None
    log_unwrite_success: torch.Tensor | None = None


def initial_state(
    layout: CellLayout, batch: int, dtype: torch.dtype | None, device: torch.device | str | None
) -> torch.Tensor:
    """The workspace in ``|0...0>`` for ``batch`` sequences."""
    state = torch.zeros((batch, 2**layout.workspace), dtype=dtype, device=device)
    state[:, 0] = 1
    return state


def amplified_success(layout: CellLayout, log_success: torch.Tensor) -> torch.Tensor:
    """``log_success`` as computed, or exactly 0 in amplified mode (not the rounding error of
    ``log |W psi|**2``): amplified neurons succeed by construction. NaN stays NaN."""
    if layout.mode != "amplified":
        return log_success
    return torch.where(torch.isnan(log_success), log_success, 0.0)


@opaque
def _recur(
    write: torch.Tensor,
    output: torch.Tensor,
    state: torch.Tensor,
    tokens: torch.Tensor,
    targets: torch.Tensor | None,
    collapse: torch.Tensor | None,
    generator: torch.Generator | None,
    skip_output: torch.Tensor | None,
    layout: CellLayout,
    keep: bool,
    mix: torch.Tensor | None = None,
    unwrite: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, ...]:
    """The recurrence (:class:`_Recurrence`) without its saved intermediates; eager under
    :func:`torch.compile` (:mod:`~pennylane_qrnn.engine.transforms`)."""
    plan = _Plan(
        tokens,
        2**layout.io_bits,
        2**layout.workspace,
        targets,
        collapse,
        generator,
        skip_output,
        unwrite,
        interval=memory.transfer_checkpoint_interval(
            layout.io_bits,
            layout.workspace,
            tokens.shape[0],
            tokens.shape[1],
            write.element_size(),
        ),
    )
    return _Recurrence.apply(write, output, state, mix, plan, keep)[:6]


@opaque
def _check_run(
    operators: CellOperators,
    tokens: torch.Tensor,
    state: torch.Tensor | None,
    generator: torch.Generator | None,
    skip_output: torch.Tensor | None,
) -> tuple[bool, torch.Tensor | None]:
    """:func:`run_sequence`'s checks (host-side, one graph break under :func:`torch.compile`):
    whether a backward pass will follow, and the checked ``skip_output``."""
    layout = operators.layout
    write, output = operators.write_stage, operators.output_stage
    if tokens.is_floating_point():
        _check_token_weights(tokens, layout)
        tokens = tokens[..., 0]
    length, batch = tokens.shape
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
        write.requires_grad
        or output.requires_grad
        or (state is not None and state.requires_grad)
        or tokens.requires_grad
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
    return grad, check_skip_output(skip_output, tokens)


def _check_token_weights(weights: torch.Tensor, layout: CellLayout) -> None:
    n_x = 2**layout.io_bits
    if weights.dim() != 3 or weights.shape[-1] != n_x:
        raise QRNNValueError(
            f"tokens given as token weights (real-valued inputs) must have shape (L, N, {n_x}) "
            f"for io_bits={layout.io_bits}; got {tuple(weights.shape)}"
        )
    check_finite(tokens=weights)
    if bool((weights.detach() < 0).any()):
        raise QRNNValueError(
            "tokens given as token weights must be >= 0 (squared amplitudes, "
            f"pennylane_qrnn.encoding.token_weights); got a minimum of {float(weights.min())}"
        )


def run_sequence(
    operators: CellOperators,
    tokens: torch.Tensor,
    targets: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    collapse: torch.Tensor | None = None,
    skip_output: torch.Tensor | None = None,
) -> SequenceResult:
    """Run a batch of sequences through the cell.

    Differentiable with respect to the operators, the initial state and token weights; the
    recurrence has a
    hand-written backward pass (:class:`_Recurrence`) that accumulates the weight gradients of
    all steps in one matrix product each. Works under :func:`torch.compile` (the recurrence runs
    eagerly inside the compiled code), ``torch.func.grad`` and ``torch.func.vmap`` over the
    operators (:mod:`~pennylane_qrnn.engine.transforms`).

    Args:
        operators: from :func:`build_operators`
        tokens: ``(L, N)`` long, the input token of each step; or, for real-valued inputs,
            ``(L, N, 2**I)`` floating: each step's weight of every token's write block
            (:func:`pennylane_qrnn.encoding.token_weights` of the angles; differentiable). The
            step then writes ``sum_x w_x W[x] psi`` and pays the unwrite's postselection
            (:attr:`SequenceResult.log_unwrite_success`)
        targets: ``(L, N)`` long or ``None``. Given: teacher forcing, each step's i/o lanes are
            postselected on the target. ``None``: each step's outcome is sampled.
        state: ``(N, 2**H)`` initial workspace state, default ``|0...0>``
        generator: random generator for sampling
        collapse: ``(L, N)`` bool, optional; where ``False`` and ``targets`` is given, that step
            samples instead of postselecting (e.g. an unscored step measured on hardware)
        skip_output: ``(L, N)`` bool, optional; where ``True`` the step skips its output stage:
            nothing is measured (no log-probabilities, no outcome, no random number drawn, no
            target read), the workspace state continues pure as ``W[x] psi`` renormalised
            (:mod:`~pennylane_qrnn.engine.outcomes`)

    Returns:
        SequenceResult: the per-step log-probabilities, the final state, the outcomes and the
        postselection probabilities, in the operators' dtype

    Raises:
        NonFiniteError: ``state`` or token weights hold a NaN or an infinity
        QRNNValueError: token weights of the wrong shape, or negative
        ModelSizeError: the run would not fit in memory (:mod:`pennylane_qrnn.memory`)

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.engine import CellLayout, build_operators, run_sequence
    >>> layout = CellLayout(io_bits=1, workspace=2, stages=1)
    >>> weights = [torch.full(s, 0.3, dtype=torch.float64) for s in layout.weight_shapes().values()]
    >>> operators = build_operators(layout, *weights)
    >>> tokens = torch.tensor([[0, 1], [1, 1], [0, 0]])  # (L, N): 3 steps, 2 sequences
    >>> targets = torch.tensor([[1, 1], [0, 0], [1, 0]])  # teacher forcing
    >>> result = run_sequence(operators, tokens, targets)
    >>> result.outcomes.tolist() == targets.tolist()  # postselected on the targets
    True
    >>> result.outcome_probability.round(decimals=3)
    tensor([[0.0080, 0.1860],
            [0.9230, 0.7630],
            [0.2030, 0.4250]], dtype=torch.float64)
    """
    layout = operators.layout
    write, output = operators.write_stage, operators.output_stage
    grad, skip_output = _check_run(operators, tokens, state, generator, skip_output)
    batch = tokens.shape[1]
    if state is None:
        state = initial_state(layout, batch, write.dtype, write.device)
    mix, unwrite, log_scale = _mixture(operators, tokens)
    steps = tokens[..., 0] if mix is not None else tokens
    log_probs, final, outcomes, log_success, log_chosen, log_unwrite = _recur(
        write,
        output,
        state,
        steps,
        targets,
        collapse,
        generator,
        skip_output,
        layout,
        grad,
        mix,
        unwrite,
    )
    # the stored operators are scaled (package docstring): add the scales back (O's only where
    # the output stage ran)
    if operators.log_output_scale is not None:
        log_output = operators.log_output_scale
        if skip_output is not None:
            log_output = torch.where(skip_output, 0.0, log_output)
        log_scale = log_scale + log_output
    # the step's total success is the neurons' times the unwrite's (real-valued inputs)
    log_success = amplified_success(layout, log_success + 2 * log_scale - log_unwrite)
    return SequenceResult(
        log_probs,
        final,
        outcomes,
        log_success.exp(),
        log_chosen.exp(),
        log_success,
        log_chosen,
        log_unwrite,
    )


def _mixture(
    operators: CellOperators, tokens: torch.Tensor
) -> tuple[torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None, Any]:
    """For token weights: the weights the recurrence mixes the stored (scaled) blocks with, the
    unwrite's bookkeeping (the weights and the blocks' log scales) and the write's log scale per
    step. For tokens: ``None``, ``None`` and the log scale of each step's block."""
    log_write = operators.log_write_scale
    if not tokens.is_floating_point():
        return None, None, 0.0 if log_write is None else log_write[tokens]
    weights = tokens.to(operators.write_stage.dtype)
    if log_write is None:
        log_write = weights.new_zeros(weights.shape[-1])
    # W[x] = exp(s_x) B[x] = exp(s) exp(s_x - s) B[x] with s = max s_x: every factor <= 1
    shift = log_write.amax()
    mix = weights * (log_write - shift).exp()
    return mix, (weights.detach(), log_write), shift
