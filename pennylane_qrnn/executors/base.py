"""What every executor is: an object that runs a QRNN's sequences and returns a
:class:`~pennylane_qrnn.results.SequenceOutput`.

A :class:`~pennylane_qrnn.QRNN` owns its parameters, its :class:`~pennylane_qrnn.layout.CellLayout`
and the recurrence contract (shapes, batching, ``batch_first``); it is *handed* an executor that
decides where and how the sequences run, as qiskit-machine-learning's ``TorchConnector`` is handed
a QNN. Executors keep no result of a run on themselves: everything comes back in the output.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ..results import SequenceOutput

if TYPE_CHECKING:
    from ..engine import CellOperators
    from ..layout import CellLayout

__all__ = ["Executor", "RunnableModel"]


class RunnableModel(Protocol):
    """What an executor reads from the model it runs (a :class:`~pennylane_qrnn.QRNN` or
    :class:`~pennylane_qrnn.QRNNCell`); for type checkers only."""

    @property
    def layout(self) -> CellLayout: ...

    @property
    def input_weights(self) -> torch.Tensor: ...

    def weights(self) -> tuple[torch.Tensor, ...]: ...

    def operators(self) -> CellOperators: ...


class Executor(abc.ABC):
    """Runs whole sequences of a QRNN.

    Subclasses implement :meth:`run` and :meth:`plan`. Executors hold configuration (and, for a
    device, a live device object that is rebuilt on demand: it is never pickled or deep-copied).

    **Example**

    The executors of this package (:class:`~pennylane_qrnn.executors.Exact`,
    :class:`~pennylane_qrnn.executors.Circuits`, :class:`~pennylane_qrnn.executors.Shots`)
    say what they can do through class attributes; a model is handed one:

    >>> from pennylane_qrnn import QRNN
    >>> from pennylane_qrnn.executors import Circuits, Exact, Executor
    >>> isinstance(Exact(), Executor)
    True
    >>> Exact.supports_state, Circuits.supports_state  # only the exact engine takes state=
    (True, False)
    >>> model = QRNN(io_bits=1, workspace=2, executor=Exact())
    >>> type(model.executor).__name__
    'Exact'
    """

    #: whether :meth:`run` can give ``state`` (an initial workspace state) and return the final one
    supports_state: bool = False
    #: whether :meth:`run` can sample some steps while postselecting others (a ``postselected``
    #: mask that is neither all ``True`` nor absent)
    supports_mixed_protocols: bool = False
    #: whether the outputs carry gradients with respect to the weights
    differentiable: bool = False
    #: whether :meth:`run` takes ``skip_output=`` (steps that skip their output stage, as the
    #: ``qpu`` protocol asks: :mod:`pennylane_qrnn.protocols`)
    supports_skip_output: bool = False
    #: whether :meth:`run` takes ``mixed=True``: measured steps kept as the mixture over their
    #: outcomes (exact marginal log-probabilities; :mod:`pennylane_qrnn.engine.mixed`)
    supports_mixed_state: bool = False
    #: whether :meth:`run` takes real-valued inputs: ``tokens`` a floating ``(L, N, I)`` tensor of
    #: angles (:mod:`pennylane_qrnn.encoding`)
    supports_angles: bool = False

    @abc.abstractmethod
    def run(
        self,
        model: RunnableModel,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        postselected: torch.Tensor | None,
        state: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> SequenceOutput:
        """Run ``(L, N)`` ``tokens`` through ``model`` (its ``layout`` and ``weights()``).

        Args:
            targets: ``(L, N)`` the tokens postselected on, or ``None``: every step sampled
            postselected: ``(L, N)`` bool, the steps postselected on their target (where
                ``False``, the step is sampled); ``None`` with targets: every step
            state: ``(N, 2**H)`` initial workspace state, or ``None`` for ``|0...0>``
            generator: for the sampled outcomes

        Returns:
            a time-major :class:`~pennylane_qrnn.results.SequenceOutput`
        """

    @abc.abstractmethod
    def plan(self) -> dict[str, Any]:
        """How sequences run: at least ``backend`` (device name or ``None``) and ``path``
        (``"engine"``, ``"circuits"`` or ``"shots"``)."""

    def bind(self, model: RunnableModel) -> Executor:
        """An executor for many runs of ``model`` in a row (e.g. generating token by token),
        which may prepare once what depends only on the weights. Default: this executor."""
        return self

    def check_model(self, model: RunnableModel) -> None:  # noqa: B027 - optional hook
        """Refuse, at construction, a model this executor cannot run (default: accept)."""

    @property
    def backend(self) -> str | None:
        """The PennyLane device name, or ``None`` for a simulation without device."""
        return self.plan()["backend"]

    def describe(self) -> str:
        """A short label for logs and reprs, e.g. ``"exact"`` or ``"shots: qiskit.aer"``."""
        plan = self.plan()
        return plan["path"] if plan["backend"] is None else f"{plan['path']}: {plan['backend']}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def postselection_mask(
    tokens: torch.Tensor, targets: torch.Tensor | None, postselected: torch.Tensor | None
) -> torch.Tensor:
    """``(L, N)`` bool: the steps a run postselects on their targets (none without targets,
    every step with targets and no mask)."""
    if targets is None:
        return torch.zeros_like(tokens, dtype=torch.bool)
    if postselected is None:
        return torch.ones_like(tokens, dtype=torch.bool)
    return postselected.bool()
