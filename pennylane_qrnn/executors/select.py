"""Building an executor from the ``backend=`` convenience arguments of a QRNN."""

from __future__ import annotations

from typing import Any

from ..devices.capabilities import capabilities
from ..validation import check_choice, check_int
from .base import Executor
from .circuits import Circuits
from .device import DeviceSpec
from .exact import Exact
from .shots import Shots, refuse_diff_method

__all__ = ["executor_for", "LEGACY_OPTIONS"]

#: the QRNN constructor's execution options, with their defaults: all of them together describe
#: one executor (``executor_for``); they cannot be combined with ``executor=``
LEGACY_OPTIONS: dict[str, Any] = {
    "backend": None,
    "diff_method": None,
    "backend_options": None,
    "shots": None,
    "execution": None,
    "seed": None,
    "budget": None,
    "price_table": None,
    "min_survivors": 1,
    "on_insufficient_shots": "warn",
}


def executor_for(
    backend: Any = None,
    diff_method: str | None = None,
    backend_options: dict | None = None,
    shots: int | None = None,
    execution: str | None = None,
    seed: int | None = None,
    budget: float | None = None,
    price_table: dict | None = None,
    min_survivors: int = 1,
    on_insufficient_shots: str = "warn",
) -> Executor:
    """The executor that ``QRNN(..., backend=..., ...)`` runs on.

    * ``backend=None``: :class:`Exact` (the other options must keep their defaults, except
      ``budget``, a limit with nothing to spend);
    * a device that postselects mid-circuit measurements (``default.qubit``, ``lightning.*``)
      and no ``execution=``: :class:`Circuits`;
    * any other device, or ``execution=`` given: :class:`Shots`.
    """
    if shots is not None:
        check_int("shots", shots, 1)
    if execution is not None:
        check_choice("execution", execution, ("native", "dynamic", "deferred"))
    if backend is None:
        return Exact()
    spec = DeviceSpec(backend, backend_options)
    if execution is None and capabilities(spec.given).path == "circuits":
        return Circuits(backend, diff_method=diff_method, device_options=backend_options)
    refuse_diff_method(spec.name, diff_method)
    return Shots(
        backend,
        shots=shots,
        method=execution,
        seed=seed,
        budget=budget,
        price_table=price_table,
        min_survivors=min_survivors,
        on_insufficient_shots=on_insufficient_shots,
        device_options=backend_options,
    )
