r"""``torch.nn`` modules of the QRNN: parameters, batching and recurrence.

The maths lives in :mod:`pennylane_qrnn.neuron` and :mod:`pennylane_qrnn.engine` (the exact engine)
or in the templates run as QNodes (:mod:`pennylane_qrnn.devices.circuit_path`); these modules own
only the weights, the shapes of the inputs and the loop over steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import engine, memory
from ..devices.capabilities import DeviceCapabilityError, device_name
from ..devices.circuit_path import CircuitRunner, make_device
from ..errors import QRNNTypeError, QRNNValueError
from ..templates import QRNNCell as _CellTemplate
from .inputs import SequenceInputs

__all__ = ["QRNN", "QRNNCell", "PostselectionStats", "sequence_nll"]

_WEIGHT_NAMES = ("input_weights", "rotation_weights", "stage_weights", "output_weights")


@dataclass
class PostselectionStats:
    """Postselection bookkeeping of one forward pass (all tensors detached).

    Attributes:
        neuron: ``(L, N)`` probability that all neuron postselections of a step succeed
        teacher_forcing: ``(L, N)`` probability of the target a step was postselected on (1 for
            steps that were measured instead)
        step: ``(L, N)`` their product, the success probability of one step on a QPU
        min_step: ``(N,)`` the smallest ``step`` over each sequence
        log_total: ``(N,)`` log of the whole sequence's success probability
        log_neuron: ``(N,)`` its part from the neurons' postselections
        log_teacher_forcing: ``(N,)`` its part from postselecting the i/o lanes on targets (the
            figure the reference implementation tracks)
        amplification_rounds: ``(N,)`` ``sum_t 1/sqrt(step_t)``, the rounds amplitude
            amplification would need (repeat-until-success needs ``sum_t 1/step_t`` tries)
    """

    neuron: torch.Tensor
    teacher_forcing: torch.Tensor
    step: torch.Tensor
    min_step: torch.Tensor
    log_total: torch.Tensor
    log_neuron: torch.Tensor
    log_teacher_forcing: torch.Tensor
    amplification_rounds: torch.Tensor

    @classmethod
    def from_probabilities(cls, neuron, outcome_probability, forced):
        """From per-step neuron success and outcome probabilities; only ``forced`` steps
        (postselected on a target) pay for their outcome, measured ones accept any."""
        neuron = neuron.detach()
        teacher_forcing = torch.where(forced, outcome_probability.detach(), torch.ones_like(neuron))
        step = neuron * teacher_forcing
        return cls(
            neuron=neuron,
            teacher_forcing=teacher_forcing,
            step=step,
            min_step=step.min(dim=0).values,
            log_total=step.log().sum(dim=0),
            log_neuron=neuron.log().sum(dim=0),
            log_teacher_forcing=teacher_forcing.log().sum(dim=0),
            amplification_rounds=step.rsqrt().sum(dim=0),
        )


def sequence_nll(log_probs, targets, mask=None, reduction="mean"):
    """Negative log-likelihood of ``targets`` under per-step ``log_probs``, over scored steps.

    Args:
        log_probs: ``(L, N, V)`` (or ``(N, L, V)`` together with ``(N, L)`` targets: only the
            last axis matters, the others must agree)
        targets: integer tensor of ``log_probs.shape[:-1]``
        mask: bool or float tensor of the same shape, 1 where a step is scored; ``None`` scores
            every step
        reduction: ``"mean"`` (per scored step), ``"sum"`` or ``"none"`` (per step, masked)
    """
    if targets.shape != log_probs.shape[:-1]:
        raise QRNNValueError(
            f"targets must have shape {tuple(log_probs.shape[:-1])} to match log_probs; "
            f"got {tuple(targets.shape)}"
        )
    picked = -log_probs.gather(-1, targets.unsqueeze(-1).long()).squeeze(-1)
    if mask is not None:
        if mask.shape != targets.shape:
            raise QRNNValueError(
                f"mask must have shape {tuple(targets.shape)}; got {tuple(mask.shape)}"
            )
        mask = mask.to(picked.dtype)
        picked = picked * mask
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    if reduction == "mean":
        count = mask.sum() if mask is not None else picked.new_tensor(picked.numel())
        return picked.sum() / count.clamp_min(1)
    raise QRNNValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise QRNNValueError(f"{name} must be an int >= {minimum}; got {value!r}")


class _QRNNBase(SequenceInputs, nn.Module):
    """Parameters and execution shared by :class:`QRNN` and :class:`QRNNCell`."""

    def __init__(
        self,
        io_bits,
        workspace,
        stages=1,
        degree=2,
        order=2,
        mode="postselect",
        backend=None,
        device=None,
        dtype=None,
        diff_method=None,
        backend_options=None,
        shots=None,
        execution=None,
        seed=None,
        budget=None,
        price_table=None,
        min_survivors=1,
        on_insufficient_shots="warn",
    ):
        super().__init__()
        _check_int("io_bits", io_bits, 1)
        _check_int("workspace", workspace, 1)
        _check_int("stages", stages, 0)
        self.layout = engine.CellLayout(io_bits, workspace, stages, degree, order, mode)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise QRNNTypeError(
                f"dtype must be a floating-point torch dtype or None; got {dtype!r}"
            )
        # refuse a size that cannot fit before allocating anything (pennylane_qrnn.memory)
        memory.check_model(
            io_bits,
            workspace,
            stages,
            degree,
            order,
            mode,
            None
            if backend is None
            else getattr(backend, "short_name", None) or getattr(backend, "name", backend),
            torch.empty((), dtype=dtype).element_size(),
            device=device,
        )
        factory = {"device": device, "dtype": dtype}
        for name, shape in _CellTemplate.shape(io_bits, workspace, stages, degree).items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        self._set_backend(backend, backend_options or {})
        self.diff_method = diff_method
        from ..devices.hardware import check_shot_policy
        from ..devices.resources import Budget

        self.spending = Budget(budget)  # validates: a finite number of USD >= 0, or None
        self.shots, self.seed, self.budget, self.price_table = (
            shots,
            seed,
            self.spending.limit,
            price_table,
        )
        check_shot_policy(min_survivors, on_insufficient_shots)
        self.min_survivors, self.on_insufficient_shots = int(min_survivors), on_insufficient_shots
        self._execution = execution
        if shots is not None and (
            isinstance(shots, bool) or not isinstance(shots, int) or shots < 1
        ):
            raise QRNNValueError(f"shots must be a positive int or None; got {shots!r}")
        if execution is not None and execution not in ("native", "dynamic", "deferred"):
            raise QRNNValueError(
                f"execution must be 'native', 'dynamic' or 'deferred'; got {execution!r}"
            )
        self.postselection: PostselectionStats | None = None
        self.last_outcomes: torch.Tensor | None = None
        self.reset_parameters()

    # -- configuration -------------------------------------------------------------------
    io_bits = property(lambda self: self.layout.io_bits)
    workspace = property(lambda self: self.layout.workspace)
    stages = property(lambda self: self.layout.stages)
    degree = property(lambda self: self.layout.degree)
    order = property(lambda self: self.layout.order)
    mode = property(lambda self: self.layout.mode)
    vocabulary_size = property(lambda self: 2**self.layout.io_bits)

    def _set_backend(self, backend, options):
        # Keep only a name and options: a live device (e.g. Lightning's C++ state) must not be
        # pickled or deep-copied; it is rebuilt on demand.
        if backend is None:
            self._backend_name, self._backend_options, self._device = None, {}, None
            return
        if isinstance(backend, str):
            from ..devices.catalogue import installed_devices

            installed = installed_devices()
            if backend not in installed:
                raise QRNNValueError(
                    "backend must be the name of an installed PennyLane device "
                    f"({', '.join(installed)}); got {backend!r}"
                )
            self._backend_name, self._backend_options, self._device = backend, dict(options), None
            return
        if not hasattr(backend, "execute"):
            raise QRNNTypeError(
                "backend must be None, a PennyLane device or its name; "
                f"got {type(backend).__name__}"
            )
        options = dict(options)
        shots = getattr(backend, "shots", None)
        if shots:
            options.setdefault(
                "shots", shots.total_shots if hasattr(shots, "total_shots") else shots
            )
        self._backend_name, self._backend_options, self._device = (
            device_name(backend),
            options,
            backend,
        )

    @property
    def backend(self) -> str | None:
        """The PennyLane device name of the circuit path, or ``None`` for the exact engine."""
        return self._backend_name

    def execution_plan(self) -> dict:
        """How this model runs on its backend: ``path`` ``"engine"`` (exact, differentiable),
        ``"circuits"`` (QNodes; the simulator postselects; differentiable) or ``"shots"`` (whole
        sequences as circuits, postselection by filtering shots; no gradient), and for shots
        the ``measurements`` realisation. Override with ``execution=`` at construction."""
        if self.backend is None:
            return {"backend": None, "path": "engine"}
        from ..devices.capabilities import capabilities

        caps = capabilities(self._device if self._device is not None else self._backend_name)
        path = "shots" if self._execution is not None else caps.path
        plan = {"backend": self.backend, "path": path}
        if path == "shots":
            plan["measurements"] = self._execution or caps.measurements
            plan["shots"] = self.shots or self._backend_options.get("shots") or 1024
        return plan

    def _check_budget(self, plan, tokens):
        """Price the run before it starts and refuse it if it would take this model's spending
        (:attr:`spending`, all runs together) past :attr:`budget` (USD). Returns the price, to
        be charged once the run is submitted; ``None`` without a budget."""
        from ..devices.resources import check_budget_value, run_price

        self.spending.limit = check_budget_value(self.budget)  # budget may have been reassigned
        if self.spending.limit is None:
            return None
        name = self._backend_options.get("device_arn") or self.backend
        device = self._device if plan["measurements"] == "dynamic" else None
        price = run_price(
            self,
            tokens[:, 0].tolist(),
            name,
            device,
            plan["measurements"],
            plan["shots"],
            tokens.shape[1],
            self.price_table,
        )
        self.spending.check(name, price, tokens.shape[1], plan["shots"])
        return price

    # The USD spent is part of the model's state (key ``budget_spent_usd``, present once a budget is
    # set or money spent), so checkpoints carry it; a checkpoint without it (older, or of a model
    # without budget) loads as before and leaves the spending as it is.
    _SPENT_KEY = "budget_spent_usd"

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.budget is not None or self.spending.spent:
            destination[prefix + self._SPENT_KEY] = torch.tensor(
                self.spending.spent, dtype=torch.float64
            )

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        spent = state_dict.pop(prefix + self._SPENT_KEY, None)
        if spent is not None:
            self.spending.restore(float(spent))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _live_device(self, n_wires):
        if self._device is None:
            self._device = make_device(self._backend_name, n_wires, **self._backend_options)
        return self._device

    def _shot_runner(self, plan, tokens_length):
        from ..devices.hardware import ShotRunner

        n_anc = self.order if self.mode == "postselect" else 0
        lanes = self.io_bits + self.workspace + n_anc
        n_wires = lanes
        if plan["measurements"] == "deferred":
            per_step = self.io_bits + (2**self.order - 1) * self.layout.n_neurons * (
                self.mode == "postselect"
            )
            n_wires = lanes + per_step * tokens_length
        if plan["measurements"] == "dynamic" and not (self.backend or "").startswith("qiskit."):
            raise QRNNValueError(
                "execution='dynamic' needs a Qiskit backend (qiskit.aer, qiskit.remote); "
                f"got backend={self.backend!r} (use 'native' or 'deferred')"
            )
        device = self._live_device(n_wires)
        return ShotRunner(
            device,
            self.io_bits,
            self.workspace,
            self.degree,
            self.order,
            self.mode,
            plan["measurements"],
            plan["shots"],
            seed=self.seed,
            min_survivors=self.min_survivors,
            on_insufficient_shots=self.on_insufficient_shots,
        )

    def _runner(self) -> CircuitRunner:
        n_wires = self.io_bits + self.workspace + (self.order if self.mode == "postselect" else 0)
        self._live_device(n_wires)
        return CircuitRunner(
            self._device,
            self.io_bits,
            self.workspace,
            self.degree,
            self.order,
            self.mode,
            diff_method=self.diff_method,
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_device"] = None
        return state

    def __deepcopy__(self, memo):
        import copy

        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = None if key == "_device" else copy.deepcopy(value, memo)
        return clone

    def reset_parameters(self) -> None:
        """The paper's initialisation (reference code, in this package's angle convention):
        biases ``pi/4 + N(0, 0.05)`` (the steepest point of the activation), all other
        monomial weights and the work-stage rotations ``N(0, 0.005)``."""
        with torch.no_grad():
            for name in ("input_weights", "stage_weights", "output_weights"):
                weights = getattr(self, name)
                weights.normal_(0.0, 0.005)
                weights[..., 0].normal_(math.pi / 4, 0.05)
            self.rotation_weights.normal_(0.0, 0.005)

    def weights(self) -> tuple:
        """The four weight tensors in the template's argument order."""
        return tuple(getattr(self, name) for name in _WEIGHT_NAMES)

    def operators(self) -> engine.CellOperators:
        """The cell's transfer matrices for the current weights (exact engine)."""
        return engine.build_operators(self.layout, *self.weights())

    @property
    def _input_device(self):
        return self.input_weights.device

    def extra_repr(self) -> str:
        parts = [f"io_bits={self.io_bits}", f"workspace={self.workspace}"]
        defaults = {"stages": 1, "degree": 2, "order": 2, "mode": "postselect"}
        for key, default in defaults.items():
            value = getattr(self, key)
            if value != default:
                parts.append(f"{key}={value!r}")
        if self.backend is not None:
            parts.append(f"backend={self.backend!r}")
        return ", ".join(parts)

    def _check_state(self, state, batch):
        if state is None:
            return None
        want = (batch, 2**self.workspace)
        if tuple(state.shape) != want:
            raise QRNNValueError(f"state must have shape {want}; got {tuple(state.shape)}")
        return state.to(self.input_weights.dtype)

    def _run(self, tokens, targets, state, generator, collapse=None):
        """Run ``(L, N)`` tokens on the configured backend; sets :attr:`postselection`."""
        if targets is None:
            forced = torch.zeros_like(tokens, dtype=torch.bool)
        else:
            forced = torch.ones_like(tokens, dtype=torch.bool) if collapse is None else collapse
        if self.backend is None:
            result = engine.run_sequence(
                self.operators(),
                tokens,
                targets,
                state=state,
                generator=generator,
                collapse=collapse,
            )
            stats = PostselectionStats.from_probabilities(
                result.neuron_success, result.outcome_probability, forced
            )
            # the sums of logs from the engine's logs: the probabilities underflow in float32 at
            # high order (a step of 1e-50 is 0 there), their logs do not
            log_neuron = result.log_neuron_success.detach()
            log_forced = torch.where(forced, result.log_outcome_probability.detach(), 0.0)
            stats.log_neuron, stats.log_teacher_forcing = log_neuron.sum(0), log_forced.sum(0)
            stats.log_total = stats.log_neuron + stats.log_teacher_forcing
            stats.amplification_rounds = torch.exp(-0.5 * (log_neuron + log_forced)).sum(0)
            self.postselection = stats
            return result.log_probs, result.state, result.outcomes
        if state is not None:
            raise QRNNValueError(
                f"state must be None on the circuit path (backend={self.backend!r}): circuits "
                "start from |0...0>"
            )
        plan = self.execution_plan()
        if plan["path"] == "shots":
            if self.diff_method is not None:
                raise DeviceCapabilityError(
                    f"diff_method must be None on the shot path ({self.backend!r} runs whole "
                    "sequences with shots and filters them: the estimates have no gradient); got "
                    f"{self.diff_method!r} (fine-tune with pennylane_qrnn.optim.SPSA, or train on "
                    "the exact engine and load the weights)"
                )
            price = self._check_budget(plan, tokens)
            runner = self._shot_runner(plan, tokens.shape[0])
            self.spending.charge(price)  # submitted now; a run that fails midway stays charged
            log_probs, outcomes, neuron, picked = runner.run(
                self.weights(),
                tokens.cpu(),
                None if targets is None else targets.cpu(),
                None if collapse is None else collapse.cpu(),
                generator,
            )
            self.last_shot_estimates = runner.last_estimates
            self.postselection = PostselectionStats.from_probabilities(neuron, picked, forced.cpu())
            dtype, device = self.input_weights.dtype, self.input_weights.device
            return log_probs.to(dtype=dtype, device=device), None, outcomes.to(device)
        if collapse is not None:
            raise QRNNValueError(
                "collapse is only supported by the exact engine and the shot path; "
                f"got a collapse mask with backend={self.backend!r} on the circuit path"
            )
        log_probs, outcomes = self._runner().run(self.weights(), tokens, targets, generator)
        picked = log_probs.detach().gather(2, outcomes.unsqueeze(2)).squeeze(2).exp()
        self.postselection = PostselectionStats.from_probabilities(
            torch.full_like(picked, float("nan")), picked, forced
        )
        return log_probs, None, outcomes


class QRNN(_QRNNBase):
    r"""A recurrent quantum neural network over token sequences (Bausch, NeurIPS 2020).

    The workspace's quantum state is carried from step to step. Step ``t`` writes token
    ``tokens[t]`` onto the i/o lanes, applies a :class:`~pennylane_qrnn.QRNNCell` and reads the
    i/o lanes as the distribution of the next token. With ``targets`` (training, the paper's
    teacher forcing) the i/o lanes are then postselected on ``targets[t]``; without, an outcome is
    sampled and the state collapses on it, as a run on a QPU would. The i/o lanes are reset either
    way.

    Args:
        io_bits (int): ``I``, bits per token; the vocabulary has ``2**I`` tokens
        workspace (int): ``H``, workspace qubits (the hidden state)
        stages (int): work stages per cell
        degree (int): the neurons' degree
        order (int): the neurons' order
        mode (str): ``"postselect"`` or ``"amplified"`` (see :class:`~pennylane_qrnn.QuantumNeuron`)
        backend: ``None`` for the exact engine (differentiable, batched, CPU/CUDA), or a
            PennyLane device or device name: the circuit path, the templates run as QNodes
        batch_first (bool): inputs are ``(N, L)`` instead of ``(L, N)``
        device, dtype: torch factory arguments for the parameters
        diff_method (str or None): the QNodes' gradient method on the circuit path
        backend_options (dict or None): options for the device when ``backend`` is a name
        shots (int or None): shots per sequence on the shot path (default 1024)
        execution (str or None): force the shot path with this measurement realisation:
            ``"native"``, ``"dynamic"`` (Qiskit dynamic circuits) or ``"deferred"``; ``None``
            lets the device's capabilities decide (:meth:`execution_plan`)
        seed (int or None): simulator seed on the shot path
        budget (float or None): USD, a cumulative spending limit for this model: every shot run
            on a priced device (Braket QPU ARNs,
            :data:`~pennylane_qrnn.devices.resources.BRAKET_PRICES`; IBM backends with calibrated
            durations) is charged to :attr:`spending`, and a run whose estimate would take the
            spending past ``budget`` is refused before anything is sent. The amount spent is
            saved in ``state_dict`` (``budget_spent_usd``)
        price_table (dict or None): ``{name or ARN fragment: (USD per task, USD per shot)}`` for
            the budget check, replacing the default table
        min_survivors (int): on the shot path, the surviving shots a step needs to be estimated;
            a step with fewer is not measured and its log-probabilities are NaN (default 1)
        on_insufficient_shots (str): ``"warn"`` (default: NaN and an
            :class:`~pennylane_qrnn.errors.InsufficientShotsWarning`) or ``"raise"`` (an
            :class:`~pennylane_qrnn.errors.InsufficientShotsError`) when a step is not measured

    Where the backend cannot postselect mid-circuit measurements (``qiskit.aer``,
    ``qiskit.remote``, ``braket.*``), each sequence runs as one circuit with shots and the shots are
    filtered (:mod:`pennylane_qrnn.devices.hardware`): the outputs are estimates without gradient.

    Inputs: ``tokens, targets=None, state=None, generator=None``
        * **tokens**: ``(L, N)``, ``(N, L)`` with ``batch_first``, or ``(L,)`` unbatched; integers
          in ``[0, 2**I)``
        * **targets**: same shape as ``tokens``; ``targets[t]`` is what step ``t`` is postselected
          on (usually ``tokens[t + 1]``)
        * **state**: ``(N, 2**H)`` initial workspace amplitudes (``(2**H,)`` unbatched), default
          ``|0...0>``; exact engine only
        * **generator**: ``torch.Generator`` for the sampled outcomes

    Outputs: ``log_probs, state``
        * **log_probs**: ``(L, N, 2**I)`` (``(N, L, 2**I)`` with ``batch_first``, ``(L, 2**I)``
          unbatched), each step's log-probabilities of the next token
        * **state**: ``(N, 2**H)`` final workspace state (real amplitudes), or ``None`` on the
          circuit path

    After each forward, :attr:`postselection` holds a :class:`PostselectionStats` and
    :attr:`last_outcomes` the token each step collapsed on (shaped like ``tokens``).

    Example::

        >>> model = QRNN(io_bits=2, workspace=4, stages=1, degree=2)
        >>> tokens = torch.randint(0, 4, (10, 8))                # (L, N)
        >>> log_probs, state = model(tokens[:-1], tokens[1:])
        >>> loss = model.loss(log_probs, tokens[1:])
    """

    def __init__(
        self,
        io_bits,
        workspace,
        stages=1,
        degree=2,
        order=2,
        mode="postselect",
        backend=None,
        batch_first=False,
        device=None,
        dtype=None,
        diff_method=None,
        backend_options=None,
        shots=None,
        execution=None,
        seed=None,
        budget=None,
        price_table=None,
        min_survivors=1,
        on_insufficient_shots="warn",
    ):
        self.batch_first = bool(batch_first)
        super().__init__(
            io_bits,
            workspace,
            stages,
            degree,
            order,
            mode,
            backend,
            device,
            dtype,
            diff_method,
            backend_options,
            shots,
            execution,
            seed,
            budget,
            price_table,
            min_survivors,
            on_insufficient_shots,
        )

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (", batch_first=True" if self.batch_first else "")

    def forward(self, tokens, targets=None, state=None, generator=None, collapse=None):
        tokens, targets, collapse, unbatched = self._sequence_inputs(tokens, targets, collapse)
        if state is not None and unbatched:
            state = state.unsqueeze(0)
        state = self._check_state(state, tokens.shape[1])
        log_probs, final, outcomes = self._run(tokens, targets, state, generator, collapse)
        if unbatched:
            self.last_outcomes = outcomes.squeeze(1)
            return log_probs.squeeze(1), None if final is None else final.squeeze(0)
        if self.batch_first:
            log_probs, outcomes = log_probs.transpose(0, 1), outcomes.t()
        self.last_outcomes = outcomes
        return log_probs, final

    def loss(self, log_probs, targets, mask=None, reduction="mean"):
        """NLL of ``targets`` over the scored steps (``mask``); see :func:`sequence_nll`."""
        targets = torch.as_tensor(targets, device=log_probs.device)
        if mask is not None:
            mask = torch.as_tensor(mask, device=log_probs.device)
        return sequence_nll(log_probs, targets, mask, reduction)

    @torch.no_grad()
    def sample(self, prefix, steps, generator=None):
        """Generate ``steps`` tokens after ``prefix``.

        The prefix is fed with teacher forcing (each prefix token's successor postselected),
        then every sampled token is fed back as the next input.

        Args:
            prefix: ``(P, N)`` (``(N, P)`` with ``batch_first``) or ``(P,)``, ``P >= 1``
            steps (int): tokens to generate
            generator: ``torch.Generator``

        Returns:
            the prefix followed by the generated tokens, shaped like ``prefix`` with
            ``P + steps`` steps
        """
        _check_int("steps", steps, 0)
        tokens, unbatched = self._to_time_major("prefix", prefix)
        if tokens.shape[0] == 0:
            raise QRNNValueError("prefix must hold at least one token; got length 0")
        if self.backend is not None:
            raise QRNNValueError(
                f"sample needs the exact engine (backend=None); got backend={self.backend!r}"
            )
        operators = self.operators()
        state = None
        if tokens.shape[0] > 1:
            result = engine.run_sequence(operators, tokens[:-1], tokens[1:])
            state = result.state
        current = tokens[-1]
        generated = [tokens]
        for _ in range(steps):
            result = engine.run_sequence(operators, current.unsqueeze(0), None, state, generator)
            state, current = result.state, result.outcomes[0]
            generated.append(current.unsqueeze(0))
        out = torch.cat(generated)
        if unbatched:
            return out.squeeze(1)
        return out.t() if self.batch_first else out


class QRNNCell(_QRNNBase):
    r"""One QRNN step as a ``torch.nn`` module (the counterpart of ``nn.RNNCell``).

    Same arguments as :class:`QRNN` (without ``batch_first``).

    Inputs: ``token, target=None, state=None, generator=None``
        * **token**: ``(N,)`` or scalar, the input token
        * **target**: like ``token``: postselect the i/o lanes on it; ``None`` samples
        * **state**: ``(N, 2**H)`` (``(2**H,)`` for a scalar token), default ``|0...0>``

    Outputs: ``log_probs, state``: ``(N, 2**I)`` and the next workspace state ``(N, 2**H)``
    (``None`` on the circuit path).
    """

    def forward(self, token, target=None, state=None, generator=None):
        token = self._check_tokens("token", token)
        scalar = token.dim() == 0
        if token.dim() > 1:
            raise QRNNValueError(f"token must have shape (N,) or (); got {tuple(token.shape)}")
        tokens = token.reshape(1, -1)
        if target is not None:
            target = self._check_tokens("target", target)
            if target.shape != token.shape:
                raise QRNNValueError(
                    f"target must have the shape of token {tuple(token.shape)}; "
                    f"got {tuple(target.shape)}"
                )
            target = target.reshape(1, -1)
        if state is not None and scalar:
            state = state.unsqueeze(0)
        state = self._check_state(state, tokens.shape[1])
        log_probs, final, _ = self._run(tokens, target, state, generator)
        log_probs = log_probs[0]
        if scalar:
            return log_probs[0], None if final is None else final[0]
        return log_probs, final
