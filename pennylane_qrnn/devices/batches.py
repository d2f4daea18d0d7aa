"""Sending a run's sequences as a few submissions, with a ledger and a progress bar.

A :class:`BatchSubmitter` splits the programs of a run into submissions of ``batch_size``
sequences (default: all at once; :mod:`pennylane_qrnn.devices.submission` says what one
submission is on each provider), and for each:

1. looks it up in the run's :class:`~pennylane_qrnn.devices.ledger.SubmissionLedger` (if any):
   a finished one is read back from the folder, a cloud one accepted earlier is fetched by its
   ids; neither is sent or paid again;
2. otherwise asks the ``guard`` (a :class:`~pennylane_qrnn.devices.pricing.SubmissionGuard`) to
   charge it, sends it, writes its ids to the ledger at once, waits for its records and stores
   them.

Before the first submission is sent the guard sees everything that will be sent, and refuses
the run if the estimate exceeds the budget: nothing billable goes out first. A tqdm bar counts
the submissions (``progress=None``: shown on a terminal only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..validation import check_choice, check_int
from .capabilities import device_name
from .execution import check_capacity
from .ledger import SubmissionLedger, submission_key
from .submission import RUNTIME_MODES, Submission, open_runtime, retrieve, submit

__all__ = ["BatchSubmitter", "SubmissionStats", "backend_label"]


def backend_label(device) -> str:
    """The name submissions to ``device`` are recorded under: the device's short name, with
    the Qiskit backend's (``qiskit.remote:ibm_brisbane``) or Braket ARN where it has one."""
    name = device if isinstance(device, str) else device_name(device)
    inner = getattr(device, "backend", None) or getattr(device, "_device", None)
    inner = getattr(inner, "arn", None) or getattr(inner, "name", None)
    inner = inner() if callable(inner) else inner
    return f"{name}:{inner}" if isinstance(inner, str) and inner != name else str(name)


@dataclass
class SubmissionStats:
    """What a :meth:`BatchSubmitter.run` did.

    Attributes:
        sent: submissions sent to the provider (each one billable)
        reused: finished submissions read back from the ledger
        retrieved: cloud submissions fetched by their ids
        keys: the ledger key of every submission, in order
    """

    sent: int = 0
    reused: int = 0
    retrieved: int = 0
    keys: tuple = ()


class BatchSubmitter:
    """Runs programs as submissions (see the module docstring).

    Args:
        device: the device (or a zero-argument function that creates it, called only when
            something must be sent: a run read back whole from its ledger needs no device)
        backend (str): the device's name, for the ledger keys
        method: ``"native"``, ``"dynamic"`` or ``"deferred"``
        shots (int): shots per sequence
        seed: the simulator's seed (Qiskit), part of each submission's key
        ledger (SubmissionLedger, path or None): where submissions are recorded
        batch_size (int or None): sequences per submission (default: all)
        progress (bool or None): a progress bar over submissions (None: on a terminal)
        runtime (str): IBM only: ``"job"``, ``"batch"`` or ``"session"``
        guard: an object with ``check(sequences)`` and ``charge(sequences)``
            (:class:`~pennylane_qrnn.devices.pricing.SubmissionGuard`), or None
        execute: ``execute(program, shots) -> records`` replacing the provider (e.g. a noisy
            simulation run program by program; one submission still covers the batch)
    """

    def __init__(
        self,
        device,
        backend: str,
        method,
        shots: int,
        seed=None,
        ledger=None,
        batch_size=None,
        progress=None,
        runtime: str = "job",
        guard=None,
        execute: Callable | None = None,
    ) -> None:
        self._device = device
        self.backend, self.method, self.seed = str(backend), method, seed
        self.shots = check_int("shots", shots, 1)
        if batch_size is not None:
            check_int("batch_size", batch_size, 1)
        self.batch_size = batch_size
        self.runtime = check_choice("runtime", runtime, RUNTIME_MODES)
        if ledger is not None and not isinstance(ledger, SubmissionLedger):
            ledger = SubmissionLedger(ledger)
        self.ledger, self.progress, self.guard, self._execute = ledger, progress, guard, execute

    @property
    def device(self):
        if callable(self._device) and not hasattr(self._device, "execute"):
            self._device = self._device()
        return self._device

    def chunks(self, programs) -> list[list]:
        size = self.batch_size or max(len(programs), 1)
        return [programs[i : i + size] for i in range(0, len(programs), size)]

    def run(self, programs) -> tuple[list[np.ndarray], SubmissionStats]:
        """Every program's records, ``(shots, n_records)`` of 0/1, in order, and what was done.

        Raises:
            BudgetExceededError: from the guard, before anything is sent
        """
        chunks = self.chunks(list(programs))
        method = self.method or "custom"
        keys = [submission_key(c, self.backend, method, self.shots, self.seed) for c in chunks]
        entries = [None if self.ledger is None else self.ledger.get(k) for k in keys]
        to_send = [
            len(chunk)
            for chunk, entry in zip(chunks, entries, strict=True)
            if not self._readable(entry)
        ]
        if self.guard is not None:
            self.guard.check(sum(to_send))
        if to_send and self._execute is None:  # the device is made, and every width checked,
            for chunk, entry in zip(chunks, entries, strict=True):  # before anything is charged
                for program in [] if self._readable(entry) else chunk:
                    check_capacity(program, self.device, self.method)
        stats, records = SubmissionStats(keys=tuple(keys)), []
        from tqdm import tqdm

        bar = tqdm(
            total=len(chunks),
            desc=f"submissions to {self.backend}",
            unit="submission",
            disable=None if self.progress is None else not self.progress,
            dynamic_ncols=True,
        )
        runtime = None
        try:
            for chunk, key, entry in zip(chunks, keys, entries, strict=True):
                stored = None if self.ledger is None else self.ledger.results(key)
                if stored is not None and len(stored) == len(chunk):
                    stats.reused += 1
                elif entry is not None and self._retrievable(entry):
                    stored = retrieve(entry, self.device)
                    self.ledger.finished(key, stored)
                    stats.retrieved += 1
                else:
                    if runtime is None and self.runtime != "job" and self._execute is None:
                        runtime = open_runtime(self.device, self.runtime)
                    stored = self._send(chunk, key, runtime)
                    stats.sent += 1
                records.extend(stored)
                bar.update(1)
        finally:
            bar.close()
            if runtime is not None:
                runtime.close()
        return records, stats

    def _readable(self, entry) -> bool:
        """Whether a ledger entry gives its records without sending anything."""
        return entry is not None and (entry.get("status") == "done" or self._retrievable(entry))

    def _retrievable(self, entry) -> bool:
        return entry.get("status") == "submitted" and not entry.get("local") and bool(entry["ids"])

    def _send(self, chunk, key, runtime) -> list[np.ndarray]:
        device = None if self._execute is not None else self.device  # made before charging
        if self.guard is not None:
            self.guard.charge(len(chunk))  # submitted now: a run that fails midway stays charged
        if self._execute is not None:
            results = [self._execute(program, self.shots) for program in chunk]
            submission = Submission("custom", self.backend, [], True, "execute", lambda: results)
        else:
            submission = submit(chunk, device, self.method, self.shots, self.seed, runtime)
        if self.ledger is not None:
            self.ledger.submitted(
                key,
                submission.provider,
                submission.backend,
                submission.ids,
                len(chunk),
                self.shots,
                submission.local,
                submission.kind,
                submission.extra,
            )
        records = submission.results()
        if self.ledger is not None:
            self.ledger.finished(key, records)
        return records
