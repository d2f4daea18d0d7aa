"""What the engines need for :mod:`torch.func` and :func:`torch.compile`.

* :func:`vmap_by_slices`: the ``vmap`` rule of the engines' custom autograd functions. The
  recurrences are sequential loops with host-side decisions (the outcome of each step, the
  grouping of tokens, the range warnings), which ``torch.func.vmap`` cannot batch on its own
  (``generate_vmap_rule`` would need every operation inside to be batchable); the rule runs the
  function once per slice of the mapped inputs and stacks the results, which is exact.
* :func:`opaque`: the recurrences run as eager code inside a compiled model (one graph break per
  run). Tracing them would unroll every step of the sequence into the graph (a new compilation
  for every length) and stop at their host synchronisations anyway; they are already fused by
  hand (two matrix products per step) with a hand-written backward pass, so what compilation can
  fuse is the rest: the weights' maps and transfer matrices or neuron tables, and the loss. The
  engines' host-side checks (memory, finite weights) are opaque too, so that each engine breaks
  the graph only around its checks and its recurrence.

``torch.func``: ``torch.func.grad`` works through both engines (the statevector engine's backward
pass differentiates its recomputed steps with ``torch.func.vjp`` under a transform);
``torch.func.vmap`` works through :func:`~pennylane_qrnn.engine.run_sequence` over stacked
operators and through the recurrences' functions, but not through the entry points' input checks
(a batched tensor has no truth value), and ``vmap`` of ``grad`` is not supported (the backward
passes write into preallocated buffers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from ..errors import QRNNValueError

_F = TypeVar("_F", bound=Callable[..., Any])


def opaque(function: _F) -> _F:
    """``function`` run eagerly under :func:`torch.compile`, and so is everything it calls: see
    the module docstring. (This imports ``torch._dynamo`` with the engine. Applying it lazily,
    once a compilation starts, does not work: Dynamo would then trace the lazy wrapper itself.)
    """
    return torch.compiler.disable(function, recursive=True)


def vmap_by_slices(
    function: type[torch.autograd.Function],
    info: Any,
    in_dims: tuple[int | None, ...],
    args: tuple[Any, ...],
    n_tensors: int | None = None,
) -> tuple[tuple[torch.Tensor, ...], tuple[int, ...]]:
    """A ``vmap`` staticmethod for ``function``: its ``apply`` on each slice of the mapped
    arguments (``in_dims`` not ``None``; other arguments passed as they are), outputs stacked on
    a new leading axis. ``n_tensors``: only the first ``n_tensors`` arguments may be mapped."""
    limit = len(args) if n_tensors is None else n_tensors
    mapped = [index for index, dim in enumerate(in_dims) if dim is not None]
    if any(index >= limit for index in mapped):
        raise QRNNValueError(
            f"in_dims must map only the first {limit} argument(s) of {function.__name__}; got "
            f"{in_dims}"
        )
    results = []
    for item in range(info.batch_size):
        sliced = [
            arg if dim is None else arg.select(dim, item)
            for arg, dim in zip(args, in_dims, strict=True)
        ]
        results.append(function.apply(*sliced))
    outputs = tuple(torch.stack(parts) for parts in zip(*results, strict=True))
    return outputs, (0,) * len(outputs)
