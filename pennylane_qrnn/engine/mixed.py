"""The density-matrix mode of the transfer-matrix engine: measured steps kept as mixtures.

A step whose i/o lanes are *measured* (not postselected, output stage not skipped) leaves the
workspace in a mixture over its outcomes. The pure engine
(:func:`~pennylane_qrnn.engine.run_sequence`) follows one sampled history, which is what a QPU
does shot by shot; but a loss at a later scored step is then a function of the sampled
outcomes, and its autograd gradient lacks the score-function term of the sampling.
:func:`run_mixed` instead carries the workspace's density matrix ``rho`` ``(N, 2**H, 2**H)``
through the sequence, with the cell's own transfer matrices as Kraus operators: per step

* write: ``rho <- W[x]^T rho W[x]`` (row-vector states, as the rest of the engine);
* readout: ``q_y = tr(O_y^T rho O_y)`` for every outcome ``y``; ``log p_y = log q_y - log sum q``
  is the *marginal* probability of reading ``y`` at this step, averaged over every earlier
  measured outcome (what a QPU's shots at that step estimate);
* the next state: the postselected branch ``O_t^T rho O_t`` (teacher forcing on target ``t``), the
  sum over every branch (a measured step), or ``rho`` itself (a skipped output stage),
  renormalised to trace 1.

Every number is exact and differentiable by autograd (no sampling, no estimator), at a cost of
``~ N L 2**(3H)`` per step and ``~ N L 2**(2H)`` of memory for the backward pass, against
``~ N L 2**(2H)`` and ``~ N L 2**H`` for the pure engine: the mode is for the small workspaces of
the tasks whose scored steps follow measured ones (Elman XOR and letters under
:data:`~pennylane_qrnn.protocols.QPU`).
"""

from __future__ import annotations

import math

import torch

from .. import memory
from ..errors import QRNNTypeError, QRNNValueError
from .checks import check_finite
from .operators import CellOperators
from .outcomes import NOT_MEASURED, check_skip_output
from .sequence import SequenceResult, amplified_success

__all__ = ["run_mixed", "mixed_state_bytes"]


def mixed_state_bytes(
    workspace: int, io_bits: int, length: int, batch: int, itemsize: int, grad: bool
) -> int:
    """Bytes :func:`run_mixed` holds: a few density matrices per step and sequence, kept for every
    step when a backward pass will need them, plus the output stage's ``2**I`` Kraus operators."""
    n_w, n_y = 2**workspace, 2**io_bits
    per_step = batch * n_w * n_w * (n_y + 4) * itemsize
    return per_step * (length if grad else 2) + n_y * n_w * n_w * itemsize * 2


def _as_density(state: torch.Tensor) -> torch.Tensor:
    """``(N, 2**H)`` amplitudes -> ``(N, 2**H, 2**H)`` normalised ``psi^T psi``; a density matrix
    is normalised to trace 1."""
    if state.dim() == 2:
        rho = state.unsqueeze(2) * state.unsqueeze(1)
    else:
        rho = state
    trace = torch.diagonal(rho, dim1=1, dim2=2).sum(-1)
    return rho / trace.view(-1, 1, 1)


def run_mixed(
    operators: CellOperators,
    tokens: torch.Tensor,
    targets: torch.Tensor | None = None,
    postselected: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    skip_output: torch.Tensor | None = None,
) -> SequenceResult:
    """Run a batch of sequences keeping every measured step as the mixture over its outcomes.

    Args:
        operators (CellOperators): from :func:`~pennylane_qrnn.engine.build_operators`
        tokens (torch.Tensor): ``(L, N)`` long, the input token of each step
        targets (torch.Tensor or None): ``(L, N)`` long; needed where a step is postselected
        postselected (torch.Tensor or None): ``(L, N)`` bool, the steps postselected on their
            target; ``None``: every step if ``targets`` is given, else none. Every other step
            that runs its output stage is measured and kept as a mixture.
        state (torch.Tensor or None): the initial workspace state, ``(N, 2**H)`` amplitudes or an
            ``(N, 2**H, 2**H)`` density matrix; default ``|0...0>``
        generator (torch.Generator or None): draws the ``outcomes`` reported at measured steps
            (each from that step's marginal; the state does not collapse on it)
        skip_output (torch.Tensor or None): ``(L, N)`` bool, the steps that skip their output
            stage (nothing read: ``log_probs`` NaN, outcome ``NOT_MEASURED``)

    Returns:
        SequenceResult: ``log_probs`` the marginal log-probabilities of each step's outcomes,
        ``state`` the final ``(N, 2**H, 2**H)`` density matrix, ``outcomes`` the target
        (postselected steps), a draw from the marginal (measured) or ``NOT_MEASURED`` (skipped),
        and the neurons' and the postselected outcomes' probabilities as in
        :func:`~pennylane_qrnn.engine.run_sequence` (a measured or skipped step pays nothing:
        outcome probability 1)

    **Example**

    A measured first step leaves a mixture: the second step's marginal is the average of the
    pure engine's two conditional distributions, weighted by the first step's probabilities.

    >>> import torch
    >>> from pennylane_qrnn import QRNN
    >>> from pennylane_qrnn.engine import run_sequence
    >>> torch.manual_seed(0) and None
    >>> model = QRNN(1, 2, mode="amplified", dtype=torch.float64)
    >>> ops = model.operators()
    >>> tokens = torch.tensor([[1], [0]])
    >>> mixed = run_mixed(ops, tokens)
    >>> p0 = mixed.log_probs[0, 0].exp()
    >>> branch = [run_sequence(ops, tokens, torch.tensor([[y], [0]]),
    ...           collapse=torch.tensor([[True], [False]])).log_probs[1, 0].exp() for y in (0, 1)]
    >>> bool(torch.allclose(mixed.log_probs[1, 0].exp(), p0[0] * branch[0] + p0[1] * branch[1]))
    True
    """
    layout = operators.layout
    if tokens.dim() != 2:
        raise QRNNValueError(f"tokens must be (L, N); got shape {tuple(tokens.shape)}")
    length, batch = tokens.shape
    if generator is not None and not isinstance(generator, torch.Generator):
        raise QRNNTypeError(
            f"generator must be a torch.Generator or None; got {type(generator).__name__}"
        )
    write, output = operators.write_stage, operators.output_stage
    n_x, n_w = 2**layout.io_bits, 2**layout.workspace
    n_y = output.shape[1] // n_w
    if postselected is None:
        postselected = torch.full(
            tokens.shape, targets is not None, dtype=torch.bool, device=tokens.device
        )
    if bool(postselected.any()) and targets is None:
        raise QRNNValueError("targets must be given where steps are postselected; got None")
    skip = check_skip_output(skip_output, tokens)
    grad = torch.is_grad_enabled() and (
        write.requires_grad or output.requires_grad or (state is not None and state.requires_grad)
    )
    memory.check(
        mixed_state_bytes(
            layout.workspace, layout.io_bits, length, batch, write.element_size(), grad
        ),
        f"the density-matrix engine on {batch} sequence(s) of length {length} (io_bits="
        f"{layout.io_bits}, workspace={layout.workspace}{', with gradients' if grad else ''})",
        device=write.device,
    )
    if state is None:
        rho = write.new_zeros(batch, n_w, n_w)
        rho[:, 0, 0] = 1
    else:
        check_finite(state=state)
        if state.shape not in ((batch, n_w), (batch, n_w, n_w)):
            raise QRNNValueError(
                f"state must be ({batch}, {n_w}) amplitudes or a ({batch}, {n_w}, {n_w}) density "
                f"matrix; got shape {tuple(state.shape)}"
            )
        rho = _as_density(state.to(write.dtype))
    # Kraus operators: W[x] = write[:, x, :], O_y = output[:, y, :] (row-vector states)
    writes = write.reshape(n_w, n_x, n_w).permute(1, 0, 2)
    kraus = output.reshape(n_w, n_y, n_w).permute(1, 0, 2)
    # q_y = tr(O_y^T rho O_y) = sum_ab rho_ab (O_y O_y^T)_ab
    gram = kraus @ kraus.transpose(1, 2)
    floor = torch.finfo(write.dtype).tiny
    no_skip = torch.zeros(batch, dtype=torch.bool, device=tokens.device)
    log_probs, log_success, log_chosen, outcomes = [], [], [], []
    for step in range(length):
        w = writes[tokens[step]]
        rho = w.transpose(1, 2) @ rho @ w
        # divide by the largest entry (a constant for every log-probability) against underflow
        top = rho.detach().abs().amax(dim=(1, 2)).clamp_min(floor)
        rho = rho / top.view(-1, 1, 1)
        skipped = skip[step] if skip is not None else no_skip
        q = torch.einsum("nab,yab->ny", rho, gram).clamp_min(0)
        # a skipped step reads nothing: its one branch is rho itself
        trace = torch.diagonal(rho, dim1=1, dim2=2).sum(-1)
        q = torch.where(skipped.unsqueeze(1), torch.zeros_like(q), q)
        q[:, 0] = torch.where(skipped, trace, q[:, 0])
        total = q.sum(-1)
        # log 0 = -inf without an infinite derivative (which torch.where would turn into NaN)
        positive = q > 0
        log_q = torch.where(positive, torch.where(positive, q, 1.0).log(), -math.inf)
        log_p = log_q - total.log().unsqueeze(1)
        log_success.append(total.log() + top.log())
        chosen = postselected[step] & ~skipped
        target = (targets[step] if targets is not None else torch.zeros_like(tokens[step])).clamp(
            0, n_y - 1
        )
        drawn = torch.multinomial(
            log_p.detach().exp().nan_to_num(0.0).clamp_min(0) + (total.detach() <= 0).unsqueeze(1),
            1,
            generator=generator,
        ).squeeze(1)
        outcome = torch.where(chosen, target, drawn)
        outcome = torch.where(skipped, torch.full_like(outcome, NOT_MEASURED), outcome)
        outcomes.append(outcome)
        log_chosen.append(torch.where(chosen, log_p.gather(1, target.unsqueeze(1)).squeeze(1), 0.0))
        log_probs.append(torch.where(skipped.unsqueeze(1), math.nan, log_p))
        # the next state: every branch (measured), the target's (postselected) or rho (skipped)
        weight = torch.where(
            chosen.unsqueeze(1),
            torch.nn.functional.one_hot(target, n_y).to(rho.dtype),
            torch.ones(batch, n_y, dtype=rho.dtype, device=rho.device),
        )
        branches = torch.einsum("yab,nbc,ycd->nyad", kraus.transpose(1, 2), rho, kraus)
        mixed = (weight.view(batch, n_y, 1, 1) * branches).sum(1)
        rho = torch.where(skipped.view(-1, 1, 1), rho, mixed)
        rho = rho / torch.diagonal(rho, dim1=1, dim2=2).sum(-1).view(-1, 1, 1)
    log_scale: float | torch.Tensor = 0.0
    if operators.log_write_scale is not None:
        log_scale = operators.log_write_scale[tokens]
    if operators.log_output_scale is not None:
        log_output = operators.log_output_scale
        if skip is not None:
            log_output = torch.where(skip, 0.0, log_output)
        log_scale = log_scale + log_output
    success = amplified_success(layout, torch.stack(log_success) + 2 * log_scale)
    chosen_log = torch.stack(log_chosen).detach()
    return SequenceResult(
        torch.stack(log_probs),
        rho,
        torch.stack(outcomes),
        success.detach().exp(),
        chosen_log.exp(),
        success.detach(),
        chosen_log,
    )
