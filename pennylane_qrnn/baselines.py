r"""Classical recurrent baselines that run in the same harness as :class:`~pennylane_qrnn.QRNN`.

The paper compares the QRNN on its DNA long-memory task with an LSTM of about the same number of
parameters (888 against the QRNN's 837). These modules make that comparison reproducible: tokens
enter one-hot (no learned embedding, so every parameter sits in the recurrence or the readout),
pass one ``torch.nn.RNN`` (tanh) or ``torch.nn.LSTM`` layer of ``H`` units and leave through
``nn.Linear(H, 2**I)`` and a log-softmax.

They implement the package's sequence-model contract
(:class:`~pennylane_qrnn.nn.contract.SequenceModel`), so :class:`~pennylane_qrnn.training.Trainer`
and :func:`~pennylane_qrnn.evaluation.evaluate` take them as they take a QRNN:
``forward(tokens, targets=None, state=None, generator=None, *, postselected=None)`` returns a
:class:`~pennylane_qrnn.results.SequenceOutput` that unpacks as ``(log_probs, final_state)``,
with the outcome of each step (the target where it is postselected, a sample from the predicted
distribution where it is measured) and :class:`~pennylane_qrnn.PostselectionStats` whose
probabilities are all 1: a classical model reads its own output and pays no postselection.

A classical model is given its inputs, so teacher forcing costs nothing and a sampled outcome does
not change the hidden state: ``targets`` and ``postselected`` decide only the ``outcomes``.

Parameter counts (vocabulary ``V = 2**I``, hidden size ``H``)::

    rnn:   H*V + H*H + 2*H  (recurrence)  +  H*V + V  (readout)  =  H**2 + 2*H*V + 2*H + V
    lstm:  4*(H*V + H*H + 2*H)            +  H*V + V             =  4*H**2 + 5*H*V + 8*H + V

For ``I = 3`` the LSTM matched to the QRNN's 837 parameters has ``H = 10`` and 888 parameters,
the paper's LSTM.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from .errors import QRNNValueError
from .nn.contract import RememberedResults
from .nn.inputs import SequenceInputs
from .nn.losses import sequence_nll
from .results import PostselectionStats, SequenceOutput
from .validation import check_choice, check_int

__all__ = [
    "KINDS",
    "ClassicalSequenceModel",
    "RNNBaseline",
    "LSTMBaseline",
    "parameter_count",
    "hidden_size_for",
    "make_baseline",
]

#: the recurrent layers a baseline can use
KINDS = ("rnn", "lstm")

# gates per recurrent layer: tanh RNN 1, LSTM 4 (input, forget, cell, output)
_GATES = {"rnn": 1, "lstm": 4}


def _check_kind(kind: str) -> str:
    return check_choice("kind", kind, KINDS)


def parameter_count(kind: str, io_bits: int, hidden: int) -> int:
    """Trainable parameters of a baseline, in closed form (see the module docstring).

    Args:
        kind (str): ``"rnn"`` or ``"lstm"``
        io_bits (int): ``I``, bits per token (vocabulary ``2**I``)
        hidden (int): ``H``, hidden units

    Returns:
        int: the number of parameters

    Raises:
        ValueError: for an unknown ``kind`` or a non-positive ``io_bits``/``hidden``

    **Example**

    >>> from pennylane_qrnn.baselines import parameter_count
    >>> parameter_count("rnn", io_bits=2, hidden=4), parameter_count("lstm", io_bits=2, hidden=4)
    (60, 180)
    """
    gates = _GATES[_check_kind(kind)]
    check_int("io_bits", io_bits, 1)
    check_int("hidden", hidden, 1)
    vocab = 2**io_bits
    recurrence = gates * (hidden * vocab + hidden * hidden + 2 * hidden)
    readout = hidden * vocab + vocab
    return recurrence + readout


def hidden_size_for(kind: str, io_bits: int, target_parameters: int) -> int:
    """The hidden size whose :func:`parameter_count` is closest to ``target_parameters``.

    Ties go to the smaller model. ``H = 1`` is the floor, however small the target.

    Args:
        kind (str): ``"rnn"`` or ``"lstm"``
        io_bits (int): ``I``, bits per token (vocabulary ``2**I``)
        target_parameters (int): the parameter count to match (e.g. a QRNN's)

    Returns:
        int: the hidden size

    Raises:
        ValueError: for an unknown ``kind`` or a non-positive ``io_bits``/``target_parameters``

    **Example**

    The classical counterpart of the paper's DNA QRNN (837 parameters):

    >>> from pennylane_qrnn.baselines import hidden_size_for, parameter_count
    >>> hidden_size_for("lstm", 3, 837), parameter_count("lstm", 3, 10)
    (10, 888)
    """
    _check_kind(kind)
    check_int("io_bits", io_bits, 1)
    check_int("target_parameters", target_parameters, 1)
    # the count grows strictly with H: walk up until it passes the target
    hidden = 1
    while parameter_count(kind, io_bits, hidden + 1) <= target_parameters:
        hidden += 1
    below = abs(target_parameters - parameter_count(kind, io_bits, hidden))
    above = abs(parameter_count(kind, io_bits, hidden + 1) - target_parameters)
    return hidden + 1 if above < below else hidden


class ClassicalSequenceModel(RememberedResults, SequenceInputs, nn.Module):
    r"""A one-layer classical RNN or LSTM over token sequences, with the QRNN's contract.

    Args:
        kind (str): ``"rnn"`` (``torch.nn.RNN``, tanh) or ``"lstm"`` (``torch.nn.LSTM``)
        io_bits (int): ``I``, bits per token; the vocabulary has ``2**I`` tokens
        hidden_size (int): ``H``, hidden units
        batch_first (bool): inputs are ``(N, L)`` instead of ``(L, N)``
        device (torch.device, str or None): torch factory argument: where the parameters live
        dtype (torch.dtype or None): torch factory argument: the parameters' floating dtype

    Inputs: ``tokens, targets=None, state=None, generator=None, collapse=None``
        * **tokens**: ``(L, N)``, ``(N, L)`` with ``batch_first``, or ``(L,)`` unbatched; integers
          in ``[0, 2**I)``
        * **targets**: same shape as ``tokens``; only checked and used for :attr:`last_outcomes`
        * **state**: the torch layer's hidden state: ``h`` of shape ``(1, N, H)`` for ``"rnn"``,
          ``(h, c)`` for ``"lstm"`` (``(1, H)`` each unbatched); default zeros
        * **generator**: ``torch.Generator`` for the sampled outcomes
        * **collapse**: bool, shaped like ``tokens``; with ``targets``, the steps whose outcome is
          the target (``True``) rather than a sample (``False``). Default: all targets

    Outputs: ``log_probs, state``
        * **log_probs**: ``(L, N, 2**I)`` (``(N, L, 2**I)`` with ``batch_first``, ``(L, 2**I)``
          unbatched), each step's log-probabilities of the next token
        * **state**: the final hidden state, shaped like the ``state`` input

    Raises:
        ValueError: for an unknown ``kind``, bad sizes, tokens outside the vocabulary or shapes
            that do not match
        TypeError: for non-integer tokens

    Example::

        >>> model = ClassicalSequenceModel("lstm", io_bits=3, hidden_size=10)
        >>> sum(p.numel() for p in model.parameters())
        888
        >>> tokens = torch.randint(0, 8, (10, 4))                # (L, N)
        >>> log_probs, (h, c) = model(tokens, tokens)
        >>> log_probs.shape, h.shape
        (torch.Size([10, 4, 8]), torch.Size([1, 4, 10]))
    """

    def __init__(
        self,
        kind: str,
        io_bits: int,
        hidden_size: int,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.kind = _check_kind(kind)
        self.io_bits = check_int("io_bits", io_bits, 1)
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.batch_first = bool(batch_first)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        layer = nn.LSTM if kind == "lstm" else nn.RNN
        # always time-major inside; batch_first only transposes at the boundary
        self.recurrent = layer(self.vocabulary_size, hidden_size, num_layers=1, **factory)
        self.readout = nn.Linear(hidden_size, self.vocabulary_size, **factory)
        self.reset_parameters()

    vocabulary_size = property(lambda self: 2**self.io_bits)

    @property
    def input_weights(self) -> torch.Tensor:
        """Deprecated: the recurrent layer's input weights (``recurrent.weight_ih_l0``); it
        existed only for the harness, which now reads :attr:`device`."""
        warnings.warn(
            "ClassicalSequenceModel.input_weights is deprecated: read model.device for where the "
            "parameters live, model.recurrent.weight_ih_l0 for the weights",
            FutureWarning,
            stacklevel=2,
        )
        return cast(torch.Tensor, self.recurrent.weight_ih_l0)

    @property
    def _input_device(self) -> torch.device:
        return self.device

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return cast(torch.Tensor, self.recurrent.weight_ih_l0).device

    @property
    def _dtype(self) -> torch.dtype:
        return cast(torch.Tensor, self.recurrent.weight_ih_l0).dtype

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation of both layers."""
        self.recurrent.reset_parameters()
        self.readout.reset_parameters()

    def extra_repr(self) -> str:
        text = f"{self.kind!r}, io_bits={self.io_bits}, hidden_size={self.hidden_size}"
        return text + (", batch_first=True" if self.batch_first else "")

    # -- inputs ----------------------------------------------------------------------------
    def _check_state(self, state: Any, batch: int, unbatched: bool) -> Any:
        if state is None:
            return None
        want = (1, self.hidden_size) if unbatched else (1, batch, self.hidden_size)
        parts = state if self.kind == "lstm" else (state,)
        if self.kind == "lstm" and not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise QRNNValueError(
                f"state must be a pair (h, c) for kind 'lstm'; got {type(state).__name__}"
            )
        for part in parts:
            if not isinstance(part, torch.Tensor) or tuple(part.shape) != want:
                got = tuple(part.shape) if isinstance(part, torch.Tensor) else type(part).__name__
                raise QRNNValueError(f"state must have shape {want}; got {got}")
        parts = tuple(p.to(device=self.device, dtype=self._dtype) for p in parts)
        if unbatched:
            parts = tuple(p.unsqueeze(1) for p in parts)
        return parts if self.kind == "lstm" else parts[0]

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self,
        tokens: Any,
        targets: Any = None,
        state: Any = None,
        generator: torch.Generator | None = None,
        collapse: Any = None,
        *,
        postselected: Any = None,
        skip_output: Any = None,
        mixed: bool = False,
    ) -> SequenceOutput:
        # mixed: accepted for the contract; a classical network's readout does not change its
        # state, so its log-probabilities are the same either way (sampled outcomes are drawn
        # from them as always)
        tokens, targets, postselected, unbatched = self._sequence_inputs(
            tokens, targets, collapse, postselected
        )
        state = self._check_state(state, tokens.shape[1], unbatched)

        inputs = F.one_hot(tokens, self.vocabulary_size).to(self._dtype)
        hidden, final = self.recurrent(inputs, state)
        log_probs = torch.log_softmax(self.readout(hidden), dim=-1)

        outcomes, forced = self._outcomes(log_probs, targets, postselected, generator)
        skip = self._step_mask("skip_output", skip_output, tokens, unbatched)
        if skip is not None:  # not read at those steps, as the QRNN under the qpu protocol
            log_probs = log_probs.masked_fill(skip.unsqueeze(-1), float("nan"))
            outcomes = outcomes.masked_fill(skip, -1)
        stats = PostselectionStats.certain(forced, log_probs.dtype)
        output = SequenceOutput(log_probs, final, outcomes, stats, None, self.kind)
        if unbatched:
            if self.kind == "lstm":
                final = tuple(part.squeeze(1) for part in final)
            else:
                final = final.squeeze(1)
            output = dataclasses.replace(
                output, log_probs=log_probs.squeeze(1), state=final, outcomes=outcomes.squeeze(1)
            )
        elif self.batch_first:
            output = dataclasses.replace(
                output, log_probs=log_probs.transpose(0, 1), outcomes=outcomes.t()
            )
        return self._remember(output)

    @staticmethod
    def _outcomes(
        log_probs: torch.Tensor,
        targets: torch.Tensor | None,
        collapse: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each step's outcome and whether it was forced, as in the QRNN's exact engine: the
        target where forced, else a sample (which, unlike on a QPU, leaves the state alone)."""
        length, batch, vocab = log_probs.shape
        if targets is None:
            forced = torch.zeros((length, batch), dtype=torch.bool, device=log_probs.device)
        elif collapse is None:
            forced = torch.ones((length, batch), dtype=torch.bool, device=log_probs.device)
        else:
            forced = collapse
        if targets is not None and bool(forced.all()):
            return targets, forced
        probs = log_probs.detach().exp().reshape(-1, vocab)
        sampled = torch.multinomial(probs, 1, generator=generator).reshape(length, batch)
        if targets is None:
            return sampled, forced
        return torch.where(forced, targets, sampled), forced

    def loss(
        self, log_probs: torch.Tensor, targets: Any, mask: Any = None, reduction: str = "mean"
    ) -> torch.Tensor:
        """NLL of ``targets`` over the scored steps (``mask``); see
        :func:`~pennylane_qrnn.sequence_nll`."""
        targets = torch.as_tensor(targets, device=log_probs.device)
        if mask is not None:
            mask = torch.as_tensor(mask, device=log_probs.device)
        return sequence_nll(log_probs, targets, mask, reduction)


class RNNBaseline(ClassicalSequenceModel):
    """:class:`ClassicalSequenceModel` with a tanh ``torch.nn.RNN`` layer.

    Args:
        io_bits (int): ``I``, bits per token; the vocabulary has ``2**I`` tokens
        hidden_size (int): ``H``, hidden units
        batch_first (bool): inputs are ``(N, L)`` instead of ``(L, N)``
        device (torch.device, str or None): torch factory argument: where the parameters live
        dtype (torch.dtype or None): torch factory argument: the parameters' floating dtype

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.baselines import RNNBaseline, parameter_count
    >>> model = RNNBaseline(io_bits=2, hidden_size=4)
    >>> sum(p.numel() for p in model.parameters()) == parameter_count("rnn", 2, 4)
    True
    >>> log_probs, h = model(torch.tensor([[0], [1], [2]]))  # (L, N) = (3, 1)
    >>> tuple(log_probs.shape), tuple(h.shape)
    ((3, 1, 4), (1, 1, 4))
    """

    def __init__(
        self,
        io_bits: int,
        hidden_size: int,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__("rnn", io_bits, hidden_size, batch_first, device, dtype)

    def extra_repr(self) -> str:
        return super().extra_repr().split(", ", 1)[1]


class LSTMBaseline(ClassicalSequenceModel):
    """:class:`ClassicalSequenceModel` with a ``torch.nn.LSTM`` layer.

    Args:
        io_bits (int): ``I``, bits per token; the vocabulary has ``2**I`` tokens
        hidden_size (int): ``H``, hidden units
        batch_first (bool): inputs are ``(N, L)`` instead of ``(L, N)``
        device (torch.device, str or None): torch factory argument: where the parameters live
        dtype (torch.dtype or None): torch factory argument: the parameters' floating dtype

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.baselines import LSTMBaseline
    >>> model = LSTMBaseline(io_bits=2, hidden_size=4, batch_first=True)
    >>> log_probs, (h, c) = model(torch.tensor([[0, 1, 2]]))  # (N, L) = (1, 3)
    >>> tuple(log_probs.shape), tuple(h.shape), tuple(c.shape)
    ((1, 3, 4), (1, 1, 4), (1, 1, 4))
    """

    def __init__(
        self,
        io_bits: int,
        hidden_size: int,
        batch_first: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__("lstm", io_bits, hidden_size, batch_first, device, dtype)

    def extra_repr(self) -> str:
        return super().extra_repr().split(", ", 1)[1]


def make_baseline(
    kind: str,
    io_bits: int,
    hidden: int | None = None,
    match_parameters: int | None = None,
    **factory: Any,
) -> ClassicalSequenceModel:
    """A baseline of ``kind`` with ``hidden`` units, or sized to ``match_parameters``.

    Args:
        kind (str): ``"rnn"`` or ``"lstm"``
        io_bits (int): bits per token
        hidden (int or None): hidden units
        match_parameters (int or None): a parameter budget (e.g. a QRNN's
            ``sum(p.numel() for p in qrnn.parameters())``); the hidden size comes from
            :func:`hidden_size_for`
        **factory: ``batch_first``, ``device``, ``dtype``

    Exactly one of ``hidden`` and ``match_parameters`` must be given.

    >>> model = make_baseline("lstm", 3, match_parameters=837)
    >>> model.hidden_size, sum(p.numel() for p in model.parameters())
    (10, 888)
    """
    _check_kind(kind)
    if (hidden is None) == (match_parameters is None):
        raise QRNNValueError(
            "make_baseline needs exactly one of hidden and match_parameters; "
            f"got hidden={hidden!r}, match_parameters={match_parameters!r}"
        )
    if hidden is None:
        # exactly one of the two is given (checked above): match_parameters is an int here
        hidden = hidden_size_for(kind, io_bits, match_parameters)  # type: ignore[arg-type]
    cls = LSTMBaseline if kind == "lstm" else RNNBaseline
    return cls(io_bits, hidden, **factory)
