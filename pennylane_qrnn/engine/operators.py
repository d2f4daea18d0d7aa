"""The cell's transfer matrices: :func:`build_operators` runs the cell on basis states, with each
neuron's 2x2 maps (:func:`_maps`) and a :class:`_Rescaler` that keeps the amplitudes in the dtype's
range (see :mod:`pennylane_qrnn.engine`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import memory, neuron
from ..layout import WEIGHT_NAMES as _WEIGHT_NAMES
from ..layout import CellLayout
from .checks import check_finite
from .transforms import opaque


@dataclass
class CellOperators:
    """One forward pass's transfer matrices: what :func:`build_operators` returns and
    :func:`run_sequence` runs (see :mod:`pennylane_qrnn.engine`).

    Rows act on row-vector workspace states ``(N, 2**H)``. Both matrices are stored divided by
    constants that keep them in the dtype's range: the true ``W[x]`` is
    ``exp(log_write_scale[x])`` times the stored block, the true ``O`` is
    ``exp(log_output_scale)`` times the stored one.

    Attributes:
        write_stage (torch.Tensor): ``(2**H, 2**I * 2**H)``; ``psi @ write_stage`` gives
            ``W[x] psi`` for every token ``x`` (write, input and work stages, reset)
        output_stage (torch.Tensor): ``(2**H, 2**I * 2**H)``; ``v @ output_stage`` gives the
            branch ``u[y]`` for every reading ``y`` of the i/o lanes
        layout (CellLayout): the cell's sizes and neuron settings
        log_write_scale (torch.Tensor or None): ``(2**I,)`` the log of each token block's
            constant; ``None`` means 0
        log_output_scale (torch.Tensor or None): 0-d, the log of ``O``'s constant; ``None``
            means 0

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.engine import CellLayout, CellOperators, build_operators
    >>> layout = CellLayout(io_bits=1, workspace=2, stages=1)
    >>> weights = [torch.full(s, 0.3) for s in layout.weight_shapes().values()]
    >>> operators = build_operators(layout, *weights)
    >>> isinstance(operators, CellOperators), tuple(operators.write_stage.shape)
    (True, (4, 8))
    >>> CellOperators(operators.write_stage, operators.output_stage, layout).log_write_scale is None
    True
    """

    write_stage: torch.Tensor
    output_stage: torch.Tensor
    layout: CellLayout
    log_write_scale: torch.Tensor | None = None
    log_output_scale: torch.Tensor | None = None


def _maps(
    layout: CellLayout, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


def _inverse_top(state: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
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

    def __init__(
        self,
        layout: CellLayout,
        dtype: torch.dtype,
        log_scale: torch.Tensor,
        dims: tuple[int, ...],
    ) -> None:
        self.active = layout.mode == "postselect"
        self.bits_per_neuron = 2**layout.order / 2 + 0.5
        self.budget = -math.log2(torch.finfo(dtype).tiny) / 4
        self.spent = 0.0
        self.log_scale, self.dims = log_scale, dims

    def neuron(
        self, state: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, log_scale: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
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

    def rotation(self) -> None:
        self.spent += 0.5


def _rotate(state: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, axis: int) -> torch.Tensor:
    """Apply ``[[cos, -sin], [sin, cos]]`` (broadcast tables) to the qubit on ``axis``."""
    zero, one = state.unbind(axis)  # one backward stack, not two zero-filled selects
    cos, sin = cos.squeeze(axis), sin.squeeze(axis)
    return torch.stack((cos * zero - sin * one, sin * zero + cos * one), dim=axis)


@opaque
def _check_build(layout: CellLayout, weights: tuple[torch.Tensor, ...]) -> None:
    """:func:`build_operators`' checks (host-side, one graph break under :func:`torch.compile`),
    and the layout's table permutations and the monomial matrix computed eagerly (so that
    Dynamo finds them made)."""
    io, ws = layout.io_bits, layout.workspace
    input_weights = weights[0]
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
    layout.lay_out(input_weights.new_zeros(2**layout.n_controls), 0)
    neuron.monomial_tensor(
        layout.n_controls, layout.degree, input_weights.dtype, input_weights.device
    )


def build_operators(
    layout: CellLayout,
    input_weights: torch.Tensor,
    rotation_weights: torch.Tensor,
    stage_weights: torch.Tensor,
    output_weights: torch.Tensor,
) -> CellOperators:
    """Run the cell on basis states to get its transfer matrices (differentiable).

    Every neuron's 2x2 maps are computed once from the weights and applied to the ``2**H`` basis
    states of the workspace for each of the ``2**I`` tokens (the write, input and work stages),
    then to ``|0>|w>`` (the output stage). Traceable by :func:`torch.compile` as one graph after
    its checks (:mod:`~pennylane_qrnn.engine.transforms`).

    Args:
        layout (CellLayout): the cell's sizes and neuron settings
        input_weights (torch.Tensor): ``(H, n_weights)``, the input stage's neurons
        rotation_weights (torch.Tensor): ``(S, H)``, the work stages' rotation angles
        stage_weights (torch.Tensor): ``(S, H, n_weights)``, the work stages' neurons
        output_weights (torch.Tensor): ``(I, n_weights)``, the output stage's neurons

    Returns:
        CellOperators: the transfer matrices, in the weights' dtype and device

    Raises:
        NonFiniteError: a weight is NaN or infinite
        ModelSizeError: the matrices would not fit in memory (:mod:`pennylane_qrnn.memory`)

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.engine import CellLayout, build_operators
    >>> layout = CellLayout(io_bits=1, workspace=2, stages=1)
    >>> weights = [torch.full(s, 0.3, dtype=torch.float64) for s in layout.weight_shapes().values()]
    >>> operators = build_operators(layout, *weights)
    >>> tuple(operators.write_stage.shape), tuple(operators.output_stage.shape)
    ((4, 8), (4, 8))
    >>> operators.write_stage.dtype
    torch.float64
    """
    io, ws = layout.io_bits, layout.workspace
    _check_build(layout, (input_weights, rotation_weights, stage_weights, output_weights))
    n_x, n_w = 2**io, 2**ws
    dtype, device = input_weights.dtype, input_weights.device
    # each token's block W[x] keeps its own scale; O has one (package docstring)
    write_scale = _Rescaler(
        layout, dtype, torch.zeros(n_x, dtype=dtype, device=device), tuple(range(1, 2 + ws))
    )

    # Write, input and work stages. The i/o lanes are only controls here, so they stay in the
    # written basis state x: keep x as a batch axis, columns w as a second one, and simulate the
    # workspace axes. Tables are laid out on all lanes; their i/o axes become the x axis.
    state = torch.eye(n_w, dtype=dtype, device=device).reshape((1, n_w) + (2,) * ws)
    state = state.expand((n_x,) + state.shape[1:])

    def workspace_neuron(state: torch.Tensor, weights: torch.Tensor, lane: int) -> torch.Tensor:
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
