"""A run folder's record of its submissions to a provider, so that an interrupted run resumes
without paying twice.

Each submission (a batch of sequences sent to a provider at once,
:mod:`pennylane_qrnn.devices.batches`) is keyed by what it runs: the backend, the measurement
method, the shots, the seed and every gate and angle of its circuits
(:func:`submission_key`). The ledger, ``submissions.json`` in the run folder, says for each key
which job or task ids the provider gave it (written, atomically, as soon as the provider
accepts it, before its results are awaited) and whether it finished. A finished submission's
records are kept beside it (``submissions/KEY.json``, one per submission), so that a resumed run
reads them back instead of submitting again; a cloud job that was accepted but not finished is
fetched by its id (:func:`pennylane_qrnn.devices.submission.retrieve`). Local simulators' jobs
cannot be fetched later: their results are in the folder once they finish, and one interrupted
before that is run again (it costs nothing).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from pathlib import Path

import numpy as np

from ..checkpoints import atomic_write_text
from ..errors import QRNNTypeError, UnsafeFileError
from .program import Record

__all__ = ["SubmissionLedger", "submission_key", "LEDGER_NAME", "RESULTS_FOLDER"]

#: the ledger's file name in a run folder
LEDGER_NAME = "submissions.json"
#: the folder (in the run folder) that holds each finished submission's records
RESULTS_FOLDER = "submissions"
_VERSION = 1


def submission_key(programs, backend: str, method: str, shots: int, seed=None) -> str:
    """A name for what a submission runs: 32 hex digits of a SHA-256 over the backend, method,
    shots, seed and every operation (gate, wires, angles as exact float reprs) of ``programs``
    (:class:`~pennylane_qrnn.devices.program.SequenceProgram` s). The same weights, tokens and
    settings give the same key in any process."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(backend), str(method), int(shots), seed]).encode())
    for program in programs:
        digest.update(b"|program|")
        for op in program.operations:
            if isinstance(op, Record):
                digest.update(f"M{op.index}:{op.wire}:{op.kind};".encode())
            else:
                angles = ",".join(repr(float(x)) for x in op.data)
                digest.update(f"{op.name}{[int(w) for w in op.wires]}({angles});".encode())
    return digest.hexdigest()[:32]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _encode(bits: np.ndarray) -> dict:
    bits = np.asarray(bits, dtype=np.uint8)
    packed = np.packbits(bits.reshape(bits.shape[0], -1), axis=1)
    return {"shape": list(bits.shape), "bits": base64.b64encode(packed.tobytes()).decode("ascii")}


def _decode(item, path) -> np.ndarray:
    try:
        shots, records = (int(n) for n in item["shape"])
        packed = np.frombuffer(base64.b64decode(item["bits"], validate=True), dtype=np.uint8)
        width = (records + 7) // 8
        bits = np.unpackbits(packed.reshape(shots, width), axis=1, count=records)
    except (KeyError, TypeError, ValueError) as error:
        raise UnsafeFileError(
            f"submission results {str(path)!r} must hold the records a QRNN run wrote; {error}"
        ) from error
    return bits.astype(np.uint8)


class SubmissionLedger:
    """The submissions of a run, kept in ``folder`` (see the module docstring).

    Args:
        folder: the run folder (created if missing); the ledger is ``folder/submissions.json``

    Raises:
        QRNNTypeError: ``folder`` is not a path
        UnsafeFileError: an existing ledger that is not one this package wrote

    **Example**

    >>> import tempfile
    >>> ledger = SubmissionLedger(tempfile.mkdtemp())
    >>> ledger.submitted("abc", "qiskit", "aer_simulator", ["job-1"], sequences=2, shots=100,
    ...                  local=True)
    >>> ledger.finished("abc", [np.zeros((100, 3), dtype=np.uint8)] * 2)
    >>> ledger.get("abc")["status"], len(ledger.results("abc"))
    ('done', 2)
    """

    def __init__(self, folder) -> None:
        if not isinstance(folder, (str, Path)):
            raise QRNNTypeError(f"ledger must be a folder path; got {type(folder).__name__}")
        self.folder = Path(folder)
        self.path = self.folder / LEDGER_NAME
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
                entries = saved["submissions"]
                ok = saved.get("version") == _VERSION and isinstance(entries, dict)
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                ok = False
            if not ok or not all(isinstance(e, dict) for e in entries.values()):
                raise UnsafeFileError(
                    f"ledger {str(self.path)!r} must be a submissions ledger written by "
                    "pennylane_qrnn (version 1)"
                )
            self.entries = entries

    def __repr__(self) -> str:
        done = sum(e.get("status") == "done" for e in self.entries.values())
        count = len(self.entries)
        return f"SubmissionLedger({str(self.folder)!r}, {count} submissions, {done} done)"

    def get(self, key: str) -> dict | None:
        """The entry of submission ``key`` (``status``, ``provider``, ``ids``, ...), or None."""
        return self.entries.get(key)

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": _VERSION, "submissions": self.entries}, indent=1)
        atomic_write_text(self.path, text)

    def submitted(
        self, key, provider, backend, ids, sequences, shots, local, kind="job", extra=None
    ) -> None:
        """Record that the provider accepted submission ``key`` with job/task ``ids`` (written
        before its results are awaited)."""
        self.entries[key] = {
            "index": len(self.entries),
            "status": "submitted",
            "provider": str(provider),
            "backend": str(backend),
            "kind": str(kind),
            "ids": [str(i) for i in ids],
            "sequences": int(sequences),
            "shots": int(shots),
            "local": bool(local),
            "submitted_at": _now(),
            **(extra or {}),
        }
        self._write()

    def finished(self, key: str, results) -> None:
        """Store submission ``key``'s records (one ``(shots, n_records)`` 0/1 array per
        sequence) and mark it done."""
        entry = self.entries[key]
        name = f"{RESULTS_FOLDER}/{key}.json"
        (self.folder / RESULTS_FOLDER).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / name, json.dumps([_encode(bits) for bits in results]))
        entry.update(status="done", results=name, finished_at=_now())
        self._write()

    def results(self, key: str) -> list[np.ndarray] | None:
        """The stored records of a finished submission, or None if it has none here."""
        entry = self.entries.get(key)
        if entry is None or entry.get("status") != "done":
            return None
        if entry.get("results") != f"{RESULTS_FOLDER}/{key}.json":  # never a path from the file
            raise UnsafeFileError(
                f"ledger {str(self.path)!r} must name {RESULTS_FOLDER}/{key}.json as the results "
                f"of submission {key}; got {entry.get('results')!r}"
            )
        path = self.folder / RESULTS_FOLDER / f"{key}.json"
        if not path.is_file():
            return None
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise UnsafeFileError(f"submission results {str(path)!r} must be JSON") from error
        if not isinstance(items, list):
            raise UnsafeFileError(f"submission results {str(path)!r} must be a list")
        return [_decode(item, path) for item in items]
