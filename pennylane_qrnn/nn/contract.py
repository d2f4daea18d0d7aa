"""The contract every sequence model of the package follows (the QRNN and the classical
baselines), so that training, evaluation and the benchmarks take any of them.

:class:`SequenceModel` declares it; :class:`RememberedResults` carries the deprecated attributes
through which earlier versions returned results (``model.postselection``, ``model.last_outcomes``,
``model.last_shot_estimates``): they still work, with a :class:`FutureWarning`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from ..results import SequenceOutput

__all__ = ["SequenceModel", "RememberedResults"]


@runtime_checkable
class SequenceModel(Protocol):
    """A ``torch.nn.Module`` over token sequences.

    * ``forward(tokens, targets=None, state=None, generator=None, *, postselected=None,
      skip_output=None, mixed=False)`` (``skip_output``: steps not read, NaN log-probabilities;
      ``mixed``: measured steps kept as mixtures, exact marginals) returns a
      :class:`~pennylane_qrnn.results.SequenceOutput` (``log_probs`` of shape
      ``(L, N, 2**io_bits)``, or ``(N, L, ...)`` with ``batch_first``; ``outcomes`` shaped like
      ``tokens``; ``postselection``);
    * ``loss(log_probs, targets, mask=None, reduction="mean")``, the NLL over scored steps;
    * ``io_bits``, ``vocabulary_size``, ``batch_first`` and ``device`` (where inputs go).
    """

    io_bits: int
    batch_first: bool

    @property
    def vocabulary_size(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    def forward(
        self,
        tokens: Any,
        targets: Any = None,
        state: Any = None,
        generator: torch.Generator | None = None,
        *,
        postselected: Any = None,
        skip_output: Any = None,
        mixed: bool = False,
    ) -> SequenceOutput: ...

    def loss(
        self, log_probs: torch.Tensor, targets: Any, mask: Any = None, reduction: str = "mean"
    ) -> torch.Tensor: ...

    if TYPE_CHECKING:  # a torch.nn.Module's call runs forward (not a runtime-checked member)

        def __call__(self, *args: Any, **kwargs: Any) -> SequenceOutput: ...


#: the deprecated attributes that used to carry a forward's results, and where they are now
_DEPRECATED_RESULTS = {
    "postselection": "postselection",
    "last_outcomes": "outcomes",
    "last_shot_estimates": "shot_estimates",
}


class RememberedResults:
    """Mixin for ``nn.Module`` s: the deprecated result attributes, read from the last output."""

    def _remember(self, output: SequenceOutput) -> SequenceOutput:
        """Keep what the deprecated attributes read (detached: no autograd graph is held)."""
        self.__dict__["_last_output"] = SequenceOutput(
            output.log_probs.detach(),
            None,
            output.outcomes,
            output.postselection,
            output.shot_estimates,
            output.executor,
        )
        return output

    def __getattr__(self, name: str) -> Any:
        if name in _DEPRECATED_RESULTS:
            new = _DEPRECATED_RESULTS[name]
            warnings.warn(
                f"model.{name} is deprecated: the forward pass returns its results; read "
                f"output.{new} from `output = model(...)`",
                FutureWarning,
                stacklevel=2,
            )
            last = self.__dict__.get("_last_output")
            return None if last is None else getattr(last, new)
        # the next class in a model's MRO is torch.nn.Module, which defines __getattr__
        return super().__getattr__(name)  # type: ignore[misc]
