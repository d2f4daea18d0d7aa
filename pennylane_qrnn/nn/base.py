"""What :class:`~pennylane_qrnn.QRNN` and :class:`~pennylane_qrnn.QRNNCell` share: the
parameters, the layout, the executor they are handed, and the bookkeeping that travels with them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .. import engine, memory
from ..devices.resources import Budget, check_budget_value
from ..errors import QRNNTypeError, QRNNValueError
from ..executors import Executor, executor_for
from ..executors.select import LEGACY_OPTIONS
from ..layout import WEIGHT_NAMES, CellLayout
from ..results import SequenceOutput
from .contract import RememberedResults
from .inputs import SequenceInputs

__all__ = ["QRNNBase"]


class QRNNBase(RememberedResults, SequenceInputs, nn.Module):
    """Parameters, layout and executor shared by :class:`QRNN` and :class:`QRNNCell`."""

    #: tokens may be real-valued inputs (angles; :mod:`pennylane_qrnn.nn.inputs`)
    accepts_angles = True
    # registered in __init__ (layout.weight_shapes()); declared for type checkers
    input_weights: nn.Parameter
    rotation_weights: nn.Parameter
    stage_weights: nn.Parameter
    output_weights: nn.Parameter

    def __init__(
        self,
        io_bits: int,
        workspace: int,
        stages: int = 1,
        degree: int = 2,
        order: int = 2,
        mode: str = "postselect",
        backend: Any = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        diff_method: str | None = None,
        backend_options: dict | None = None,
        shots: int | None = None,
        execution: str | None = None,
        seed: int | None = None,
        budget: float | None = None,
        price_table: dict | None = None,
        min_survivors: int = 1,
        on_insufficient_shots: str = "warn",
        executor: Executor | None = None,
    ) -> None:
        super().__init__()
        self.layout = CellLayout(io_bits, workspace, stages, degree, order, mode)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise QRNNTypeError(
                f"dtype must be a floating-point torch dtype or None; got {dtype!r}"
            )
        legacy = {
            "backend": backend,
            "diff_method": diff_method,
            "backend_options": backend_options,
            "shots": shots,
            "execution": execution,
            "seed": seed,
            "budget": budget,
            "price_table": price_table,
            "min_survivors": min_survivors,
            "on_insufficient_shots": on_insufficient_shots,
        }
        if executor is not None:
            if not isinstance(executor, Executor):
                raise QRNNTypeError(
                    "executor must be an Executor (Exact(), Circuits(...), Shots(...)) or None; "
                    f"got {type(executor).__name__}"
                )
            given = [k for k, v in legacy.items() if v != LEGACY_OPTIONS[k] and v != {}]
            if given:
                raise QRNNValueError(
                    "pass either executor= or the backend options, not both; got executor="
                    f"{executor!r} and {', '.join(given)} (give those to the executor)"
                )
        # refuse a size that cannot fit before allocating anything (pennylane_qrnn.memory)
        if executor is None:
            executor = executor_for(**legacy)  # validates the options; allocates nothing
        memory.check_model(
            io_bits,
            workspace,
            stages,
            degree,
            order,
            mode,
            executor.backend,
            torch.empty((), dtype=dtype).element_size(),
            device=device,
        )
        self.executor: Executor = executor
        self.executor.check_model(self)
        # a spending limit for executors that do not bill (kept so that checkpoints carry it)
        self._spending = None if hasattr(self.executor, "spending") else Budget(budget)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        for name, shape in self.layout.weight_shapes().items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        self.reset_parameters()

    # -- configuration -------------------------------------------------------------------
    io_bits = property(lambda self: self.layout.io_bits)
    workspace = property(lambda self: self.layout.workspace)
    stages = property(lambda self: self.layout.stages)
    degree = property(lambda self: self.layout.degree)
    order = property(lambda self: self.layout.order)
    mode = property(lambda self: self.layout.mode)
    vocabulary_size = property(lambda self: self.layout.vocabulary_size)

    @property
    def backend(self) -> str | None:
        """The executor's PennyLane device name, or ``None`` for the exact engine."""
        return self.executor.backend

    @property
    def diff_method(self) -> str | None:
        """The circuit executor's gradient method (``None`` elsewhere)."""
        return getattr(self.executor, "diff_method", None)

    def execution_plan(self, batch: int | None = None, length: int | None = None) -> dict[str, Any]:
        """How this model runs (the executor's :meth:`~pennylane_qrnn.executors.Executor.plan`):
        ``path`` ``"engine"`` (exact, differentiable), ``"circuits"`` (QNodes; the simulator
        postselects; differentiable) or ``"shots"`` (whole sequences as circuits, postselection
        by filtering shots; no gradient), and on shots the ``measurements`` realisation and the
        ``shots``. On the engine, the ``method``; given ``batch`` and ``length``, also the method a
        run of that size uses (``chosen``) and the ``estimates`` (:meth:`Exact.plan`)."""
        plan = self.executor.plan()
        if "method" in plan and (batch is not None or length is not None):
            plan = self.executor.plan(batch, length, self.layout)  # type: ignore[call-arg]
        return plan

    # -- spending ------------------------------------------------------------------------
    @property
    def spending(self) -> Budget:
        """What this model's runs have cost (USD) and the limit (:class:`Budget`)."""
        if self._spending is None:
            # only an executor that bills (Shots) has a Budget, and then _spending is None
            return self.executor.spending  # type: ignore[attr-defined]
        return self._spending

    @property
    def budget(self) -> float | None:
        """The cumulative spending limit in USD (settable), or ``None``."""
        return self.spending.limit

    @budget.setter
    def budget(self, value: float | None) -> None:
        self.spending.limit = check_budget_value(value)

    # The USD spent is part of the model's state (key ``budget_spent_usd``, present once a budget is
    # set or money spent), so checkpoints carry it; a checkpoint without it (older, or of a model
    # without budget) loads as before and leaves the spending as it is.
    _SPENT_KEY = "budget_spent_usd"

    def _save_to_state_dict(
        self, destination: dict[str, Any], prefix: str, keep_vars: bool
    ) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.budget is not None or self.spending.spent:
            destination[prefix + self._SPENT_KEY] = torch.tensor(
                self.spending.spent, dtype=torch.float64
            )

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        spent = state_dict.pop(prefix + self._SPENT_KEY, None)
        if spent is not None:
            self.spending.restore(float(spent))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    # -- parameters ----------------------------------------------------------------------
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

    def weights(self) -> tuple[torch.Tensor, ...]:
        """The four weight tensors in the template's argument order."""
        return tuple(getattr(self, name) for name in WEIGHT_NAMES)

    def operators(self) -> engine.CellOperators:
        """The cell's transfer matrices for the current weights (exact engine)."""
        return engine.build_operators(self.layout, *self.weights())

    @property
    def device(self) -> torch.device:
        """Where the parameters live (and where inputs are moved)."""
        return self.input_weights.device

    _input_device = device

    def extra_repr(self) -> str:
        parts = [f"io_bits={self.io_bits}", f"workspace={self.workspace}"]
        defaults = {"stages": 1, "degree": 2, "order": 2, "mode": "postselect"}
        for key, default in defaults.items():
            value = getattr(self, key)
            if value != default:
                parts.append(f"{key}={value!r}")
        if self.backend is not None:
            parts.append(f"executor={self.executor!r}")
        return ", ".join(parts)

    # -- running -------------------------------------------------------------------------
    def _check_state(self, state: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if state is None:
            return None
        want = (batch, 2**self.workspace)
        if tuple(state.shape) != want:
            raise QRNNValueError(f"state must have shape {want}; got {tuple(state.shape)}")
        return state.to(self.input_weights.dtype)

    def _run(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor | None,
        state: torch.Tensor | None,
        generator: torch.Generator | None,
        postselected: torch.Tensor | None = None,
        skip_output: torch.Tensor | None = None,
        mixed: bool = False,
    ) -> SequenceOutput:
        """Run time-major ``(L, N)`` tokens on the executor (``skip_output``: the steps that
        skip their output stage, and ``mixed``: measured steps kept as mixtures, on executors
        that can); ``tokens`` may be angles ``(L, N, I)`` on executors that take them)."""
        if tokens.is_floating_point() and not self.executor.supports_angles:
            raise QRNNValueError(
                f"tokens must be integer tokens on {self.executor!r}; got real-valued inputs "
                f"(angles of shape {tuple(tokens.shape)}): they run on Exact() and Circuits(...)"
            )
        if mixed:
            if not self.executor.supports_mixed_state:
                raise QRNNValueError(
                    "mixed=True (measured steps kept as the mixture over their outcomes) needs "
                    f"an executor that simulates mixed states (Exact); got {self.executor!r}"
                )
            return self.executor.run(  # type: ignore[call-arg]  # checked just above
                self,
                tokens,
                targets,
                postselected,
                state,
                generator,
                skip_output=skip_output,
                mixed=True,
            )
        if skip_output is None or not bool(skip_output.any()):
            return self.executor.run(self, tokens, targets, postselected, state, generator)
        if not self.executor.supports_skip_output:
            raise QRNNValueError(
                "skip_output (a protocol whose output stage runs only at some steps, such as "
                f"'qpu') needs an executor that can skip output stages (Exact, Shots); got "
                f"{self.executor!r}"
            )
        return self.executor.run(  # type: ignore[call-arg]  # checked just above
            self, tokens, targets, postselected, state, generator, skip_output=skip_output
        )
