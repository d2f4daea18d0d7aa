"""Checking and laying out token sequences, shared by every sequence model of the package (the
QRNN and the classical baselines), so they take inputs the same way and fail the same way.

A model that sets ``accepts_angles`` (the QRNN) also takes real-valued inputs: a floating tensor
``(L, N, I)`` (``(N, L, I)`` with ``batch_first``) of one angle per i/o lane and step
(:mod:`pennylane_qrnn.encoding`). Angles are always batched (``N = 1`` for one sequence), so a
floating ``(L, N)`` tensor is refused as before, never read as angles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.nn.utils.rnn import PackedSequence

from ..encoding import check_angles
from ..errors import QRNNTypeError, QRNNValueError

__all__ = ["SequenceInputs"]


class SequenceInputs:
    """Mixin for modules with ``io_bits``, ``vocabulary_size``, ``batch_first`` and a
    ``_input_device`` (where token tensors go)."""

    batch_first = False
    #: whether ``tokens`` may be real-valued inputs (a floating ``(L, N, I)`` tensor of angles)
    accepts_angles = False
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
            hint = ""
            if self.accepts_angles and name in ("tokens", "token"):
                hint = (
                    f" of shape {tuple(tokens.shape)} (real-valued inputs: a floating tensor "
                    f"{self._angle_layout(name)} of angles, I={self.io_bits})"
                )
            raise QRNNTypeError(f"{name} must be an integer tensor; got dtype {tokens.dtype}{hint}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocabulary_size):
            raise QRNNValueError(
                f"{name} must lie in [0, {self.vocabulary_size - 1}] for io_bits={self.io_bits}; "
                f"got values in [{int(tokens.min())}, {int(tokens.max())}]"
            )
        return tokens.long().to(self._input_device)

    def _angle_layout(self, name: str) -> str:
        if name == "token":
            return "(N, I)"
        return "(N, L, I)" if self.batch_first else "(L, N, I)"

    def _is_angles(self, name: str, tokens: Any, dims: int) -> bool:
        """Whether ``tokens`` are real-valued inputs: a floating tensor of ``dims`` axes given to
        a model that takes them."""
        return (
            self.accepts_angles
            and name in ("tokens", "token")
            and isinstance(tokens, torch.Tensor)
            and tokens.dtype.is_floating_point
            and tokens.dim() == dims
        )

    def _check_angles(self, name: str, angles: torch.Tensor) -> torch.Tensor:
        """Real-valued inputs, checked and moved to the parameters' device and dtype."""
        angles = check_angles(name, angles, self.io_bits, self._angle_layout(name))
        dtype = getattr(self, "input_weights", angles).dtype
        return angles.to(device=self._input_device, dtype=dtype)

    def _to_time_major(self, name: str, tokens: Any) -> tuple[torch.Tensor, bool]:
        if self.accepts_angles and not isinstance(tokens, (torch.Tensor, PackedSequence)):
            tokens = torch.as_tensor(tokens)
        if self._is_angles(name, tokens, 3):
            angles = self._check_angles(name, tokens)
            return (angles.transpose(0, 1) if self.batch_first else angles), False
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
        steps = self._steps(tokens)
        if targets is not None:
            targets, _ = self._to_time_major("targets", targets)
            if targets.shape != steps.shape:
                raise QRNNValueError(
                    f"targets must have the shape of tokens {tuple(steps.shape)}; got "
                    f"{tuple(targets.shape)}"
                )
        collapse = self._step_mask("postselected", collapse, steps, unbatched)
        return tokens, targets, collapse, unbatched

    @staticmethod
    def _steps(tokens: torch.Tensor) -> torch.Tensor:
        """``(L, N)``: the tokens, or the first lane of angles ``(L, N, I)`` (their shape)."""
        return tokens[..., 0] if tokens.is_floating_point() else tokens

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
