r"""Gradient-free optimisation for training on a QPU, where every loss evaluation costs shots.

On hardware a gradient by the parameter-shift rule costs two circuits per parameter (more for
gates that share a parameter, as the neurons' multiplexed rotations do), each run for many shots.
Simultaneous-perturbation stochastic approximation (SPSA; Spall 1992, 1998) estimates the whole
gradient from two loss evaluations, whatever the number of parameters, and tolerates noisy
losses: it is the usual choice for fine-tuning a model, trained on the exact engine, on the
device it will run on.
"""

from __future__ import annotations

import math

import torch

from .errors import QRNNTypeError, QRNNValueError
from .validation import check_float, check_int

__all__ = ["SPSA"]


def _check_positive(name, value):
    if not check_float(name, value) > 0:
        raise QRNNValueError(f"{name} must be positive; got {value!r}")


def _check_non_negative(name, value):
    if not check_float(name, value) >= 0:
        raise QRNNValueError(f"{name} must be non-negative; got {value!r}")


class SPSA(torch.optim.Optimizer):
    r"""Simultaneous-perturbation stochastic approximation (Spall 1992, 1998).

    Step :math:`k` (counted from 0) draws a Rademacher vector :math:`\Delta` (entries
    :math:`\pm 1`, one per parameter entry, all parameters jointly), evaluates the loss at
    :math:`\theta \pm c_k \Delta` and moves along the estimate

    .. math::

        \hat g_k = \frac{L(\theta + c_k\Delta) - L(\theta - c_k\Delta)}{2 c_k}\,\Delta,
        \qquad \theta \leftarrow \theta - a_k \hat g_k,

    (:math:`1/\Delta_i = \Delta_i` for :math:`\pm 1` entries) with the gain sequences

    .. math:: a_k = \frac{\text{lr}}{(k + 1 + A)^{\alpha}}, \qquad
              c_k = \frac{\text{perturbation}}{(k + 1)^{\gamma}}.

    ``resamplings`` averages the estimate over that many independent :math:`\Delta`. A step
    costs ``2 * resamplings`` loss evaluations, independent of the number of parameters; none of
    them needs ``backward``.

    Args:
        params: iterable of parameters or of parameter-group dicts (as for any torch optimizer;
            each group may set its own ``lr``, ``perturbation``, ``alpha``, ``gamma``,
            ``stability``); parameters with ``requires_grad=False`` are left alone
        lr (float): ``a``, the numerator of the step size :math:`a_k`
        perturbation (float): ``c``, the numerator of the perturbation size :math:`c_k`; take it
            around the standard deviation of the loss's noise (shot noise on a QPU), so that the
            difference of two evaluations is signal rather than noise
        alpha (float): decay exponent of :math:`a_k` (Spall's asymptotically optimal 0.602)
        gamma (float): decay exponent of :math:`c_k` (Spall's 0.101)
        stability (float): ``A`` in :math:`a_k`; Spall suggests about 10% of the number of
            steps planned, so that early steps are not too large; default 0 (no damping)
        resamplings (int): independent perturbations averaged per step
        generator (torch.Generator or None): source of :math:`\Delta`, for reproducible runs;
            ``None`` uses torch's global generator

    Raises:
        ValueError: for a non-positive ``lr``, ``perturbation`` or ``resamplings``, a negative
            ``alpha``, ``gamma`` or ``stability``
        TypeError: for a ``generator`` that is not a ``torch.Generator``

    The step count lives in the optimizer state (``state[p]["step"]`` for every parameter, also
    :attr:`step_count`), so ``state_dict``/``load_state_dict`` resume the gain schedules where
    they stopped. The generator is not part of the state; pass one in the same state to replay a
    run.

    Example (the exact engine, so that it runs in a second; on a QPU give the model a shot
    device, e.g. ``backend=qml.device("qiskit.aer", wires=20, shots=1000)``, and take
    ``perturbation`` around the loss's shot noise)::

        >>> import torch
        >>> from pennylane_qrnn import QRNN
        >>> from pennylane_qrnn.optim import SPSA
        >>> _ = torch.manual_seed(0)
        >>> model = QRNN(io_bits=1, workspace=2, dtype=torch.float64)
        >>> tokens = torch.tensor([[0], [1], [0], [1]])   # (L, N): one sequence 0101
        >>> targets = torch.tensor([[1], [0], [1], [0]])  # each step predicts the next token
        >>> optimizer = SPSA(model.parameters(), lr=0.05, perturbation=0.1,
        ...                  generator=torch.Generator().manual_seed(0))
        >>> def closure():
        ...     log_probs, _ = model(tokens, targets)
        ...     return model.loss(log_probs, targets)
        >>> for _ in range(100):
        ...     loss = optimizer.step(closure)   # 2 loss evaluations, no backward
        >>> optimizer.step_count
        100
        >>> closure().item() < 0.1   # from about 0.7 (log 2) at initialisation
        True
    """

    def __init__(
        self,
        params,
        lr=0.1,
        perturbation=0.1,
        alpha=0.602,
        gamma=0.101,
        stability=0.0,
        resamplings=1,
        generator=None,
    ):
        _check_positive("lr", lr)
        _check_positive("perturbation", perturbation)
        _check_non_negative("alpha", alpha)
        _check_non_negative("gamma", gamma)
        _check_non_negative("stability", stability)
        check_int("resamplings", resamplings, 1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise QRNNTypeError(
                f"generator must be a torch.Generator or None; got {type(generator).__name__}"
            )
        defaults = dict(
            lr=lr, perturbation=perturbation, alpha=alpha, gamma=gamma, stability=stability
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for name in ("lr", "perturbation"):
                _check_positive(name, group[name])
            for name in ("alpha", "gamma", "stability"):
                _check_non_negative(name, group[name])
        self.resamplings = resamplings
        self.generator = generator

    def _trainable(self):
        return [
            (group, p) for group in self.param_groups for p in group["params"] if p.requires_grad
        ]

    @property
    def step_count(self) -> int:
        """Steps taken so far (``k`` of the next step)."""
        for _, p in self._trainable():
            return int(self.state[p].get("step", 0))
        return 0

    def gains(self, group, step=None):
        """``(a_k, c_k)`` of ``group`` at ``step`` (default: the next step)."""
        k = self.step_count if step is None else step
        a_k = group["lr"] / (k + 1 + group["stability"]) ** group["alpha"]
        c_k = group["perturbation"] / (k + 1) ** group["gamma"]
        return a_k, c_k

    def _rademacher(self, p):
        device = self.generator.device if self.generator is not None else torch.device("cpu")
        draw = torch.randint(0, 2, p.shape, generator=self.generator, device=device)
        return (2 * draw - 1).to(device=p.device, dtype=p.dtype)

    @staticmethod
    def _evaluate(closure):
        loss = closure()
        value = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        if not math.isfinite(value):
            raise QRNNValueError(f"closure must return a finite loss; got {value}")
        return value

    @torch.no_grad()
    def step(self, closure=None):
        """One SPSA step.

        Args:
            closure (callable): re-evaluates the model and returns the loss (a tensor with one
                element, or a float). It runs under ``torch.no_grad()`` and must not call
                ``backward``.

        Returns:
            float: the mean of the ``2 * resamplings`` perturbed losses, an estimate of the loss
            before the update (biased by :math:`O(c_k^2)` curvature; it costs no extra
            evaluation)
        """
        if closure is None:
            raise QRNNValueError("closure must be given: SPSA evaluates the loss itself; got None")
        trainable = self._trainable()
        if not trainable:
            return self._evaluate(closure)
        k = self.step_count
        gains = [self.gains(group, k) for group, _ in trainable]
        origin = [p.detach().clone() for _, p in trainable]
        estimate = [torch.zeros_like(p) for _, p in trainable]
        losses = []
        try:
            for _ in range(self.resamplings):
                deltas = [self._rademacher(p) for _, p in trainable]
                values = []
                for sign in (1.0, -1.0):
                    for (_, p), theta, delta, (_, c_k) in zip(
                        trainable, origin, deltas, gains, strict=True
                    ):
                        p.copy_(theta).add_(delta, alpha=sign * c_k)
                    values.append(self._evaluate(closure))
                losses.extend(values)
                difference = values[0] - values[1]
                for g, delta, (_, c_k) in zip(estimate, deltas, gains, strict=True):
                    g.add_(delta, alpha=difference / (2 * c_k * self.resamplings))
        finally:
            # Restore exactly (not by subtracting the perturbation: no rounding drift), also
            # when the closure raised.
            for (_, p), theta in zip(trainable, origin, strict=True):
                p.copy_(theta)
        for (_, p), g, (a_k, _) in zip(trainable, estimate, gains, strict=True):
            p.add_(g, alpha=-a_k)
            self.state[p]["step"] = k + 1
        return sum(losses) / len(losses)
