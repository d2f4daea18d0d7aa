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

    Args:
        backend (Any): ``None``, a PennyLane device or the name of an installed one
        diff_method (str or None): with ``backend=`` a device: the gradient method of
            :class:`~pennylane_qrnn.executors.Circuits`; ``None`` picks one that is right
        backend_options (dict or None): keyword arguments for ``qml.device`` when ``backend`` is
            a device name
        shots (int or None): :class:`~pennylane_qrnn.executors.Shots`: shots per sequence
        execution (str or None): :class:`~pennylane_qrnn.executors.Shots`' ``method``: how
            mid-circuit measurements are realised (``"native"``, ``"dynamic"``, ``"deferred"``)
        seed (int or None): :class:`~pennylane_qrnn.executors.Shots`: the simulator's seed
        budget (float or None): :class:`~pennylane_qrnn.executors.Shots`: a spending limit in USD
        price_table (dict or None): :class:`~pennylane_qrnn.executors.Shots`: prices replacing the
            default table for the budget check
        min_survivors (int): :class:`~pennylane_qrnn.executors.Shots`: the surviving shots a step
            needs to be estimated
        on_insufficient_shots (str): :class:`~pennylane_qrnn.executors.Shots`: ``"warn"`` or
            ``"raise"`` when a step has too few survivors

    Returns:
        Executor: the executor

    Raises:
        QRNNTypeError: an option of the wrong type
        QRNNValueError: an option out of range, an unknown device name, or a ``diff_method``
            that the chosen executor cannot honour

    **Example**

    >>> from pennylane_qrnn.executors import executor_for
    >>> type(executor_for()).__name__
    'Exact'
    >>> executor = executor_for("default.qubit", diff_method="backprop")
    >>> type(executor).__name__, executor.diff_method
    ('Circuits', 'backprop')
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
