r"""The statevector engine: the same runs as :func:`~pennylane_qrnn.engine.run_sequence`, computed
neuron by neuron on the batched state instead of through transfer matrices.

The transfer matrices (:mod:`pennylane_qrnn.engine`) cost ``2**I * 4**H`` amplitudes to build, once
per forward pass: unbeatable for small workspaces, out of reach from ``H`` of about 13. Here the
state of each sequence is kept and every neuron is applied to it as its 2x2 map
``[[C, -S], [S, C]]`` broadcast over its control table (tables built once per forward pass from
:mod:`pennylane_qrnn.neuron` and laid out with :meth:`~pennylane_qrnn.layout.CellLayout.lay_out`;
the rotation by ``f(eta)`` in amplified mode):

* while the token is written and the input and work stages run, the i/o lanes hold the token's
  basis state (they are only controls), so the state is the workspace alone (``2**H`` amplitudes
  per sequence) and each sequence uses its tables sliced at its token; the X gates of the write
  and of the reset are this slicing;
* the output stage starts from ``|0>|phi>`` on all ``I + H`` lanes; its result is the branch
  amplitudes ``u[y]``, read out and collapsed as in the transfer-matrix engine
  (``p(y) = |u_y|^2 / sum |u|^2``, next state ``u_o / |u_o|``);
* a step that skips its output stage (:mod:`~pennylane_qrnn.engine.outcomes`) keeps the
  workspace state as it is after the reset (``u[0]`` only), and a step skipped by every sequence
  of the batch costs no output stage at all.

Cost ``O(N L neurons 2**(I+H))``, state memory ``O(N 2**(I+H))``. The neurons' renormalisations are
deferred (every probability and state returned is invariant under a positive factor per
sequence): the state is divided by its largest entry whenever the maps could have taken it out of
the dtype's range (constants for autograd, logs kept for the neurons' success).

Backward pass (:class:`~pennylane_qrnn.engine.sweep._Sweep`): the forward pass keeps no autograd
graph, only the state at every ``k``-th step (:func:`pennylane_qrnn.memory.
statevector_checkpoint_interval`: ``k = 1`` for short sequences, ``ceil(sqrt(L))`` for long ones);
the backward pass recomputes each segment's states and then each step with autograd, one step's
graph at a time. Peak memory of a training step therefore grows like ``sqrt(L)`` states.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import memory, neuron
from ..errors import QRNNTypeError, QRNNValueError
from ..layout import WEIGHT_NAMES, CellLayout
from .checks import check_finite
from .outcomes import check_skip_output
from .sequence import SequenceResult, amplified_success, initial_state
from .sweep import NeuronTables, SweepPlan, _Sweep
from .transforms import opaque

__all__ = ["run_statevector"]


@opaque
def _sweep(
    tables: NeuronTables,
    tokens: torch.Tensor,
    targets: torch.Tensor | None,
    collapse: torch.Tensor | None,
    generator: torch.Generator | None,
    skip_output: torch.Tensor | None,
    state: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The recurrence (:class:`~pennylane_qrnn.engine.sweep._Sweep`) without its saved
    intermediates; eager under :func:`torch.compile` (:mod:`~pennylane_qrnn.engine.transforms`)."""
    plan = SweepPlan(tables, tokens, targets, collapse, generator, skip_output)
    return _Sweep.apply(plan, state, *tables.tensors)[:5]


@opaque
def _check_run(
    layout: CellLayout,
    weights: tuple[torch.Tensor, ...],
    tokens: torch.Tensor,
    state: torch.Tensor | None,
    generator: torch.Generator | None,
    skip_output: torch.Tensor | None,
) -> torch.Tensor | None:
    """:func:`run_statevector`'s checks (host-side, one graph break under
    :func:`torch.compile`) and the checked ``skip_output``; the layout's table permutations
    and the monomial matrix are computed eagerly (so that Dynamo finds them made)."""
    if tokens.is_floating_point():
        raise QRNNTypeError(
            "tokens must be an integer tensor (L, N) on the statevector engine; got token "
            f"weights of dtype {tokens.dtype} and shape {tuple(tokens.shape)}: real-valued inputs "
            "run on the transfer-matrix engine (run_sequence, Exact(method='transfer-matrix'))"
        )
    if len(weights) != len(WEIGHT_NAMES):
        raise QRNNValueError(
            f"weights must be the {len(WEIGHT_NAMES)} tensors {', '.join(WEIGHT_NAMES)}; got "
            f"{len(weights)}"
        )
    for name, tensor in zip(WEIGHT_NAMES, weights, strict=True):
        want = layout.weight_shapes()[name]
        if tuple(tensor.shape) != want:
            raise QRNNValueError(f"{name} must have shape {want}; got {tuple(tensor.shape)}")
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
    reference = weights[0]
    length, batch = tokens.shape
    io, ws = layout.io_bits, layout.workspace
    grad = torch.is_grad_enabled() and (
        any(w.requires_grad for w in weights) or (state is not None and state.requires_grad)
    )
    memory.check(
        memory.statevector_table_bytes(
            io, ws, layout.stages, layout.degree, reference.element_size(), grad
        )
        + memory.statevector_sequence_bytes(
            io, ws, layout.stages, length, batch, reference.element_size(), grad
        ),
        f"the statevector engine on {batch} sequence(s) of length {length} (io_bits={io}, "
        f"workspace={ws}{', with gradients' if grad else ''})",
        device=reference.device,
    )
    check_finite(
        "restore the last good checkpoint, or lower the learning rate",
        **dict(zip(WEIGHT_NAMES, weights, strict=True)),
    )
    layout.lay_out(reference.new_zeros(2**layout.n_controls), 0)
    neuron.monomial_tensor(layout.n_controls, layout.degree, reference.dtype, reference.device)
    return check_skip_output(skip_output, tokens)


def run_statevector(
    layout: CellLayout,
    weights: Sequence[torch.Tensor],
    tokens: torch.Tensor,
    targets: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    collapse: torch.Tensor | None = None,
    skip_output: torch.Tensor | None = None,
) -> SequenceResult:
    """Run a batch of sequences through the cell, neuron by neuron (module docstring).

    The same result, semantics, validation and errors as
    :func:`~pennylane_qrnn.engine.run_sequence` (given the operators of the same weights), to
    rounding; sampling draws from ``generator`` as it does (one ``torch.multinomial`` call per
    sampled step), so the same seed gives the same outcomes. Differentiable with respect to the
    weights and the initial state.

    Args:
        layout: the cell's :class:`~pennylane_qrnn.layout.CellLayout`
        weights: the four weight tensors (:data:`~pennylane_qrnn.layout.WEIGHT_NAMES` order)
        tokens: ``(L, N)`` long, the input token of each step (real-valued inputs are refused:
            they run on :func:`~pennylane_qrnn.engine.run_sequence`)
        targets: ``(L, N)`` long or ``None`` (sample every step)
        state: ``(N, 2**H)`` initial workspace state, default ``|0...0>``
        generator: random generator for sampling
        collapse: ``(L, N)`` bool, optional; where ``False`` and ``targets`` is given, that step
            samples instead of postselecting
        skip_output: ``(L, N)`` bool, optional; where ``True`` the step skips its output stage
            (as in :func:`~pennylane_qrnn.engine.run_sequence`)

    Raises:
        QRNNTypeError: ``tokens`` are token weights (real-valued inputs)
        NonFiniteError: a weight or the state is NaN or infinite
        ModelSizeError: the run would not fit in memory (:mod:`pennylane_qrnn.memory`)
    """
    weights = tuple(weights)
    skip_output = _check_run(layout, weights, tokens, state, generator, skip_output)
    reference = weights[0]
    batch = tokens.shape[1]
    if state is None:
        state = initial_state(layout, batch, reference.dtype, reference.device)
    tables = NeuronTables.build(layout, weights)
    log_probs, final, outcomes, log_success, log_chosen = _sweep(
        tables, tokens, targets, collapse, generator, skip_output, state
    )
    log_success = amplified_success(layout, log_success)
    return SequenceResult(
        log_probs, final, outcomes, log_success.exp(), log_chosen.exp(), log_success, log_chosen
    )
