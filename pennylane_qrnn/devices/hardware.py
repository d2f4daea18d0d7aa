"""The shot path: a QRNN's sequences run as whole circuits on devices that cannot postselect.

Each sequence becomes one :class:`~pennylane_qrnn.devices.program.SequenceProgram`; its
measurements are realised natively, as IBM dynamic circuits, or deferred onto fresh qubits
(:mod:`pennylane_qrnn.devices.execution`), and the shots are filtered: the neurons' ancillas must
read 0 and, under teacher forcing, the i/o outcomes must equal the targets. What survives
estimates each step's distribution. This is what a QPU run of the model is; it has no gradient
(use :class:`pennylane_qrnn.optim.SPSA` to fine-tune on it).
"""

from __future__ import annotations

import numpy as np
import torch

from .execution import METHODS, analyse_shots, run_program
from .program import SequenceProgram
from ..errors import QRNNValueError

__all__ = ["ShotRunner"]


class ShotRunner:
    """Runs a QRNN's sequences with shots on ``device`` by ``method``.

    Args:
        device: a PennyLane device, or for ``method="dynamic"`` a Qiskit backend (a
            pennylane-qiskit device is unwrapped to its backend)
        method: ``"native"``, ``"dynamic"`` or ``"deferred"``
        shots: shots per sequence
        seed: simulator seed, where the backend takes one
    """

    def __init__(self, device, io_bits, workspace, degree, order, mode, method, shots, seed=None):
        if method not in METHODS:
            raise QRNNValueError(f"execution must be one of {METHODS}; got {method!r}")
        if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
            raise QRNNValueError(f"shots must be a positive int for a shot-based backend; got {shots!r}")
        self.device, self.method, self.shots, self.seed = device, method, int(shots), seed
        self.settings = (io_bits, workspace, degree, order, mode)
        self.last_estimates = []

    def program(self, weights, tokens) -> SequenceProgram:
        io_bits, workspace, degree, order, mode = self.settings
        return SequenceProgram.build(weights, tokens, io_bits, workspace, degree, order, mode)

    def run(self, weights, tokens, targets=None, collapse=None, generator=None):
        """Estimated log-probabilities ``(L, N, 2**I)``, outcomes ``(L, N)``, the neurons'
        per-step success fraction and the outcome frequency, all from shots."""
        length, batch = tokens.shape
        vocabulary = 2 ** self.settings[0]
        log_probs = torch.empty(length, batch, vocabulary, dtype=torch.float64)
        outcomes = torch.empty(length, batch, dtype=torch.long)
        neuron = torch.empty(length, batch, dtype=torch.float64)
        picked = torch.empty(length, batch, dtype=torch.float64)
        self.last_estimates = []
        for item in range(batch):
            program = self.program(weights, tokens[:, item].tolist())
            bits = run_program(program, self.device, self.method, self.shots, seed=self.seed)
            forced = None if collapse is None else collapse[:, item].tolist()
            item_targets = None if targets is None else targets[:, item].tolist()
            estimate = analyse_shots(program, bits, item_targets, forced)
            self.last_estimates.append(estimate)
            probs = torch.as_tensor(np.nan_to_num(estimate.probs, nan=1.0 / vocabulary))
            log_probs[:, item] = probs.clamp_min(torch.finfo(torch.float64).tiny).log()
            neuron[:, item] = torch.as_tensor(estimate.neuron_survivors / np.maximum(estimate.alive_before, 1))
            if item_targets is not None and forced is None:
                chosen = torch.tensor(item_targets)
            else:
                chosen = self._trajectory(estimate, generator)
            outcomes[:, item] = chosen
            picked[:, item] = probs[torch.arange(length), chosen]
        return log_probs, outcomes, neuron, picked

    @staticmethod
    def _trajectory(estimate, generator):
        """One surviving shot's outcomes (every postselection passed, targets where forced):
        the run a QPU would report. Any shot if none survived."""
        survivors = np.flatnonzero(estimate.alive)
        candidates = survivors if survivors.size else np.arange(estimate.shots)
        index = int(torch.randint(len(candidates), (1,), generator=generator))
        return torch.as_tensor(estimate.outcomes[candidates[index]])
