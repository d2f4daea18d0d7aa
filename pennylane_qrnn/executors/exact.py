"""The exact executor: the transfer-matrix engine (:mod:`pennylane_qrnn.engine`) or the statevector
engine (:mod:`pennylane_qrnn.engine.statevector`), chosen per call."""

from __future__ import annotations

from typing import Any, cast

import torch

from .. import encoding, engine, memory
from ..engine.mixed import run_mixed
from ..engine.statevector import run_statevector
from ..errors import QRNNTypeError, QRNNValueError
from ..layout import CellLayout
from ..results import PostselectionStats, SequenceOutput
from ..validation import check_choice, check_int
from .base import Executor, RunnableModel, postselection_mask

__all__ = ["Exact", "METHODS"]

#: the methods :class:`Exact` takes: ``"auto"`` and :data:`pennylane_qrnn.memory.EXACT_METHODS`
METHODS = ("auto",) + memory.EXACT_METHODS


class Exact(Executor):
    """Runs sequences exactly in torch: batched, differentiable (forward and backward), on CPU
    or CUDA tensors, with any protocol and an initial ``state``.

    Two engines compute the same numbers (to rounding; tests pin them together):

    * ``"transfer-matrix"``: builds the cell's ``2**H x 2**(I+H)`` matrices once per forward
      pass (cost and memory ``~ 4**H``), then two small products per step: fastest for small
      workspaces and long, wide batches;
    * ``"statevector"``: applies each neuron to the batched state (cost ``~ N L 2**(I+H)``,
      memory ``~ N 2**(I+H)``, backward by checkpointing): the only one from ``H`` of about 13;
    * ``"auto"`` (default): per call, the faster of the two by
      :func:`pennylane_qrnn.memory.exact_estimates` among those that fit in memory; for
      real-valued inputs (angles, :mod:`pennylane_qrnn.encoding`) always the transfer-matrix
      engine, the only one that takes them.

    Args:
        method (str): ``"auto"``, ``"transfer-matrix"`` or ``"statevector"``

    Example::

        >>> import torch
        >>> from pennylane_qrnn import QRNN
        >>> model = QRNN(2, 3, executor=Exact())
        >>> tokens = torch.randint(0, 4, (5, 8))
        >>> log_probs, state = model(tokens[:-1], tokens[1:])
        >>> tuple(log_probs.shape), tuple(state.shape)
        ((4, 8, 4), (8, 8))
        >>> model.executor.plan(batch=8, length=4, layout=model.layout)["chosen"]
        'transfer-matrix'
    """

    supports_state = True
    supports_mixed_protocols = True
    differentiable = True
    #: whether :meth:`run` takes ``skip_output`` (steps that skip their output stage, e.g. under
    #: :data:`~pennylane_qrnn.protocols.QPU`); no other executor does yet
    supports_skip_output = True
    #: :meth:`run` takes ``mixed=True`` (:mod:`pennylane_qrnn.engine.mixed`)
    supports_mixed_state = True
    #: :meth:`run` takes real-valued inputs: ``tokens`` a floating ``(L, N, I)`` tensor of angles
    supports_angles = True

    def __init__(self, method: str = "auto") -> None:
        self.method = check_choice("method", method, METHODS)

    def check_model(self, model: RunnableModel) -> None:
        """Refuse, at construction, a model the chosen method cannot hold (``"auto"``: one that
        neither can; the model's constructor checks that)."""
        if self.method == "auto":
            return
        # called before the model registers its weights: their dtype, where known, else float32
        layout, weights = model.layout, getattr(model, "input_weights", None)
        memory.check_model(
            layout.io_bits,
            layout.workspace,
            layout.stages,
            layout.degree,
            layout.order,
            layout.mode,
            None,
            weights.element_size() if isinstance(weights, torch.Tensor) else 4,
            device=weights.device if isinstance(weights, torch.Tensor) else None,
            method=self.method,
        )

    def choose(
        self,
        layout: CellLayout,
        batch: int,
        length: int,
        itemsize: int = 4,
        grad: bool = True,
        device: torch.device | str | None = None,
    ) -> tuple[str, dict[str, dict[str, float]]]:
        """The method a run of ``batch`` sequences of ``length`` steps uses, and the estimates
        (:func:`pennylane_qrnn.memory.exact_estimates`) it was chosen by: the given method, or
        for ``"auto"`` the faster of those that fit the memory limit.

        Raises:
            ModelSizeError: ``"auto"`` and neither method fits (the message gives both)
        """
        estimates = memory.exact_estimates(
            layout.io_bits,
            layout.workspace,
            layout.stages,
            layout.degree,
            length,
            batch,
            itemsize,
            grad,
        )
        if self.method != "auto":
            return self.method, estimates
        allowed = memory.memory_limit(device=device)
        fits = [m for m, e in estimates.items() if allowed is None or e["bytes"] <= allowed]
        if fits:
            return min(fits, key=lambda m: estimates[m]["seconds"]), estimates
        memory.check(
            int(min(e["bytes"] for e in estimates.values())),
            f"the exact engine on {batch} sequence(s) of length {length} (io_bits="
            f"{layout.io_bits}, workspace={layout.workspace}{', with gradients' if grad else ''})",
            device=device,
            detail=", ".join(
                f"{method} {memory.format_bytes(e['bytes'])}" for method, e in estimates.items()
            ),
        )
        return min(estimates, key=lambda m: estimates[m]["bytes"]), estimates

    def bind(self, model: RunnableModel) -> Executor:
        """This executor with the transfer matrices of ``model``'s current weights built once
        (rebuilt if a weight changes in place), for many short runs in a row."""
        return _BoundExact(self.method, model)

    def _operators(self, model: RunnableModel) -> engine.CellOperators:
        return model.operators()

    def run(
        self,
        model: RunnableModel,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        postselected: torch.Tensor | None,
        state: torch.Tensor | None,
        generator: torch.Generator | None,
        *,
        skip_output: torch.Tensor | None = None,
        mixed: bool = False,
    ) -> SequenceOutput:
        """:meth:`Executor.run <pennylane_qrnn.executors.Executor.run>`, and ``skip_output``:
        ``(L, N)`` bool, the steps that skip their output stage
        (:meth:`~pennylane_qrnn.protocols.Protocol.skips_output`): nothing is measured there
        (``log_probs`` NaN, outcome :data:`~pennylane_qrnn.engine.outcomes.NOT_MEASURED`,
        nothing postselected or paid) and the workspace state continues pure; ``mixed``: keep
        measured steps as mixtures (:func:`~pennylane_qrnn.engine.mixed.run_mixed`, on the
        transfer matrices whatever the method; ``state`` comes back as density matrices).

        ``tokens`` may be a floating ``(L, N, I)`` tensor of angles (real-valued inputs,
        :mod:`pennylane_qrnn.encoding`): they run on the transfer-matrix engine, differentiable
        with respect to the angles, and the unwrite's success joins the postselection stats."""
        weights = model.weights()
        collapse = None if targets is None else postselected
        if tokens.is_floating_point():
            return self._run_angles(
                model, tokens, targets, postselected, state, generator, skip_output, mixed
            )
        if mixed:
            result = run_mixed(
                self._operators(model), tokens, targets, collapse, state, generator, skip_output
            )
            return self._output(result, tokens, targets, postselected, skip_output)
        grad = torch.is_grad_enabled() and (
            any(w.requires_grad for w in weights) or (state is not None and state.requires_grad)
        )
        method, _ = self.choose(
            model.layout,
            tokens.shape[1],
            tokens.shape[0],
            weights[0].element_size(),
            grad,
            weights[0].device,
        )
        if method == "statevector":
            result = run_statevector(
                model.layout, weights, tokens, targets, state, generator, collapse, skip_output
            )
        else:
            result = engine.run_sequence(
                self._operators(model), tokens, targets, state, generator, collapse, skip_output
            )
        return self._output(result, tokens, targets, postselected, skip_output)

    def _run_angles(
        self,
        model: RunnableModel,
        angles: torch.Tensor,
        targets: torch.Tensor | None,
        postselected: torch.Tensor | None,
        state: torch.Tensor | None,
        generator: torch.Generator | None,
        skip_output: torch.Tensor | None,
        mixed: bool,
    ) -> SequenceOutput:
        """Real-valued inputs: the angles' token weights on the transfer-matrix engine."""
        if mixed:
            raise QRNNValueError(
                "mixed=True needs integer tokens; got real-valued inputs (angles): the mixed-state "
                "engine does not take them"
            )
        if self.method == "statevector":
            raise QRNNTypeError(
                "tokens must be integer tokens for Exact(method='statevector'); got angles of "
                f"shape {tuple(angles.shape)}: real-valued inputs run on the transfer-matrix "
                "engine (Exact() or Exact(method='transfer-matrix'))"
            )
        angles = encoding.check_angles("tokens", angles, model.layout.io_bits)
        weights = encoding.token_weights(angles.to(model.weights()[0].dtype))
        collapse = None if targets is None else postselected
        result = engine.run_sequence(
            self._operators(model), weights, targets, state, generator, collapse, skip_output
        )
        return self._output(
            result, angles[..., 0], targets, postselected, skip_output, result.log_unwrite_success
        )

    @staticmethod
    def _output(
        result: engine.SequenceResult,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        postselected: torch.Tensor | None,
        skip_output: torch.Tensor | None,
        log_unwrite: torch.Tensor | None = None,
    ) -> SequenceOutput:
        paid = postselection_mask(tokens, targets, postselected)
        if skip_output is not None:
            # a skipped step reads nothing, so it postselects nothing
            paid = paid & ~skip_output.to(paid.device)
        # both engines always fill both logs (their None default is for older constructors)
        stats = PostselectionStats.from_logs(
            cast(torch.Tensor, result.log_neuron_success),
            cast(torch.Tensor, result.log_outcome_probability),
            paid,
            log_unwrite,
        )
        return SequenceOutput(result.log_probs, result.state, result.outcomes, stats, None, "exact")

    def plan(
        self,
        batch: int | None = None,
        length: int | None = None,
        layout: CellLayout | None = None,
    ) -> dict[str, Any]:
        """``backend`` ``None``, ``path`` ``"engine"`` and the ``method``; given ``batch``,
        ``length`` and the model's ``layout``, also the method a run of that size uses
        (``chosen``) and the ``estimates`` per method (``seconds`` of a training step and
        ``bytes``)."""
        plan: dict[str, Any] = {"backend": None, "path": "engine", "method": self.method}
        if batch is None and length is None:
            return plan
        if batch is None or length is None or layout is None:
            raise QRNNValueError(
                "plan needs batch, length and layout together (or none of them); got "
                f"batch={batch!r}, length={length!r}, layout={layout!r}"
            )
        batch, length = check_int("batch", batch, 1), check_int("length", length, 1)
        plan["chosen"], plan["estimates"] = self.choose(layout, batch, length)
        return plan

    def __repr__(self) -> str:
        return "Exact()" if self.method == "auto" else f"Exact(method={self.method!r})"


class _BoundExact(Exact):
    """:meth:`Exact.bind`: keeps the operators of one model's weights while they stay the same
    tensors at the same in-place version (``Tensor._version``) and grad mode."""

    def __init__(self, method: str, model: RunnableModel) -> None:
        super().__init__(method)
        self._model = model
        self._key: tuple | None = None
        self._cached: engine.CellOperators | None = None

    def _operators(self, model: RunnableModel) -> engine.CellOperators:
        if model is not self._model:
            return model.operators()
        key = (torch.is_grad_enabled(),) + tuple(
            (id(w), w._version, w.data_ptr()) for w in model.weights()
        )
        if self._cached is None or key != self._key:
            self._cached, self._key = model.operators(), key
        return self._cached
