"""Checking and laying out token sequences, shared by every sequence model of the package (the
QRNN and the classical baselines), so they take inputs the same way and fail the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.nn.utils.rnn import PackedSequence

from ..errors import QRNNTypeError, QRNNValueError

__all__ = ["SequenceInputs"]


class SequenceInputs:
    """Mixin for modules with ``io_bits``, ``vocabulary_size``, ``batch_first`` and a
    ``_input_device`` (where token tensors go)."""

    batch_first = False
    # provided by the class that mixes this in
    io_bits: int

    if TYPE_CHECKING:

        @property
        def vocabulary_size(self) -> int: ...

        @property
        def _input_device(self) -> torch.device: ...

    def _check_tokens(self, name: str, tokens: Any) -> torch.Tensor:
        if isinstance(tokens, PackedSequence):
            raise QRNNTypeError(
                f"{name} must be an integer tensor (L, N) or (N, L); got a PackedSequence: pad it "
                "(torch.nn.utils.rnn.pad_packed_sequence) and score only the real steps with "
                "loss(..., mask=...)"
            )
        if not isinstance(tokens, torch.Tensor):
            tokens = torch.as_tensor(tokens)
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise QRNNTypeError(f"{name} must be an integer tensor; got dtype {tokens.dtype}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocabulary_size):
            raise QRNNValueError(
                f"{name} must lie in [0, {self.vocabulary_size - 1}] for io_bits={self.io_bits}; "
                f"got values in [{int(tokens.min())}, {int(tokens.max())}]"
            )
        return tokens.long().to(self._input_device)

    def _to_time_major(self, name: str, tokens: Any) -> tuple[torch.Tensor, bool]:
        tokens = self._check_tokens(name, tokens)
        if tokens.dim() == 1:
            return tokens.unsqueeze(1), True
        if tokens.dim() != 2:
            layout = "(N, L)" if self.batch_first else "(L, N)"
            raise QRNNValueError(
                f"{name} must have shape {layout} or (L,); got {tuple(tokens.shape)}"
            )
        return (tokens.t() if self.batch_first else tokens), False

    def _sequence_inputs(
        self, tokens: Any, targets: Any = None, collapse: Any = None, postselected: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, bool]:
        """``(tokens, targets, postselected, unbatched)``, all time-major ``(L, N)``, checked
        (``collapse`` is the former name of ``postselected``; not both)."""
        if collapse is not None:
            if postselected is not None:
                raise QRNNValueError("pass postselected= (collapse= is its former name), not both")
            postselected = collapse
        collapse = postselected
        tokens, unbatched = self._to_time_major("tokens", tokens)
        if tokens.shape[0] == 0:
            raise QRNNValueError("tokens must hold at least one step; got length 0")
        if targets is not None:
            targets, _ = self._to_time_major("targets", targets)
            if targets.shape != tokens.shape:
                raise QRNNValueError(
                    f"targets must have the shape of tokens {tuple(tokens.shape)}; got "
                    f"{tuple(targets.shape)}"
                )
        collapse = self._step_mask("postselected", collapse, tokens, unbatched)
        return tokens, targets, collapse, unbatched

    def _step_mask(
        self, name: str, mask: Any, tokens: torch.Tensor, unbatched: bool
    ) -> torch.Tensor | None:
        """A per-step bool mask given like the tokens, as a time-major ``(L, N)`` tensor."""
        if mask is None:
            return None
        mask = torch.as_tensor(mask, device=tokens.device).bool()
        mask = mask.reshape(tokens.shape[0], -1) if unbatched else mask
        mask = mask.t() if (self.batch_first and not unbatched) else mask
        if mask.shape != tokens.shape:
            raise QRNNValueError(f"{name} must have the shape of tokens; got {tuple(mask.shape)}")
        return mask
