"""Executors: where and how a :class:`~pennylane_qrnn.QRNN` runs its sequences.

A QRNN owns its parameters, its layout and the recurrence contract; it is handed an executor:

* :class:`Exact`: the exact transfer-matrix engine (torch, batched, differentiable; the default);
* :class:`Circuits`: the templates as QNodes on a PennyLane device that postselects
  (``default.qubit``, ``lightning.*``), differentiable with the QNode's ``diff_method``;
* :class:`Shots`: whole sequences as circuits with shots, postselection by filtering shots, as on
  a QPU (``qiskit.aer``, ``qiskit.remote``, ``braket.*``), with a spending limit.

Each returns a :class:`~pennylane_qrnn.results.SequenceOutput`. ``QRNN(..., backend=...)`` still
builds one of them (:func:`executor_for`).

Example::

    >>> import torch
    >>> from pennylane_qrnn import QRNN
    >>> from pennylane_qrnn.executors import Circuits, Exact
    >>> model = QRNN(1, 2, dtype=torch.float64)                      # Exact()
    >>> twin = QRNN(1, 2, dtype=torch.float64, executor=Circuits("default.qubit"))
    >>> _ = twin.load_state_dict(model.state_dict())
    >>> tokens, targets = torch.tensor([[1], [0]]), torch.tensor([[0], [1]])
    >>> bool(torch.allclose(model(tokens, targets).log_probs, twin(tokens, targets).log_probs))
    True
"""

from .base import Executor
from .circuits import Circuits
from .device import DeviceSpec
from .exact import Exact
from .select import executor_for
from .shots import Shots

__all__ = ["Executor", "Exact", "Circuits", "Shots", "DeviceSpec", "executor_for"]
