r"""Memory estimates of every execution path, checked before anything large is allocated.

A QRNN's cost grows like ``2**(io_bits + workspace)`` (and a neuron's angle count like
``C(controls, degree)``), so a typo in a size asks for terabytes. Each estimate here follows what
the code it describes allocates; :func:`check` compares it with the memory limit and raises
:class:`~pennylane_qrnn.errors.ModelSizeError` saying what is needed and what fits, before the
allocation is attempted.

The limit (:func:`memory_limit`) is, in order: the ``limit`` argument; the ``QRNN_MEMORY_LIMIT``
environment variable (bytes, or a number with a ``K``/``M``/``G``/``T`` suffix, powers of 1024;
``0``, ``none`` or ``off`` disable the check); 80 % of the device's memory (physical RAM for the
CPU, the card's memory for CUDA).

Estimates are upper bounds in the sense that matters (the largest live set, counting what
autograd keeps for the backward pass), not exact byte counts.
"""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING

from . import neuron
from .errors import ModelSizeError, QRNNValueError
from .validation import check_int

if TYPE_CHECKING:
    import torch

__all__ = [
    "ENV_VARIABLE",
    "memory_limit",
    "format_bytes",
    "parameter_bytes",
    "engine_operator_bytes",
    "engine_sequence_bytes",
    "statevector_bytes",
    "model_bytes",
    "check",
    "check_model",
]

ENV_VARIABLE = "QRNN_MEMORY_LIMIT"
DEFAULT_FRACTION = 0.8
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def _parse_limit(text: str) -> int | None:
    value = text.strip().lower()
    if value in ("0", "none", "off", "inf", "unlimited"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?", value)
    if match is None:
        raise QRNNValueError(
            f"{ENV_VARIABLE} must be a number of bytes, optionally with a K, M, G or T suffix "
            f"(e.g. 8G), or 'off'; got {text!r}"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no default limit
        return None


def memory_limit(limit: int | None = None, device: torch.device | str | None = None) -> int | None:
    """The memory limit in bytes (``None``: unlimited); see the module docstring.

    Args:
        limit (int or None): explicit limit in bytes; overrides everything else
        device: a ``torch.device`` (or its string) whose memory sets the default; CPU if ``None``
    """
    if limit is not None:
        return check_int("limit", limit, 1)
    text = os.environ.get(ENV_VARIABLE)
    if text is not None and text.strip():
        return _parse_limit(text)
    total = None
    if device is not None and str(device).startswith("cuda"):
        import torch

        try:
            index = torch.device(device).index
            index = torch.cuda.current_device() if index is None else index
            total = torch.cuda.get_device_properties(index).total_memory
        except (RuntimeError, AssertionError, ValueError):  # no CUDA here: torch will say so
            total = _physical_memory()
    else:
        total = _physical_memory()
    return None if total is None else int(total * DEFAULT_FRACTION)


def format_bytes(count: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; exact for huge counts (Python ints)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if count < 1024 or unit == "EiB":
            break
        count /= 1024
    if unit == "EiB" and count >= 1024:
        return f"2**{math.log2(count) + 60:.0f} B"
    return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"


def parameter_bytes(
    io_bits: int, workspace: int, stages: int, degree: int, itemsize: int = 4
) -> int:
    """The weights of a cell (and their gradients and two optimizer moments: four copies), plus
    the monomial matrix the neurons' tables are computed with (float64, ``2**controls`` rows)."""
    n_controls = io_bits + workspace - 1
    per_neuron = neuron.num_weights(n_controls, degree)
    n_neurons = workspace * (1 + stages) + io_bits
    weights = (n_neurons * per_neuron + stages * workspace) * itemsize
    # eta tables: one float per control state per neuron; monomial matrix: float64, cached
    tables = n_neurons * 2**n_controls * itemsize * 3
    return 4 * weights + 2**n_controls * per_neuron * 8 + tables


def engine_operator_bytes(
    io_bits: int, workspace: int, stages: int, itemsize: int = 4, grad: bool = True
) -> int:
    """:func:`pennylane_qrnn.engine.build_operators`: the cell run on ``2**H`` basis states for
    every token, ``2**I * 4**H`` amplitudes per state. With gradients each neuron or rotation
    keeps about four such states alive until the backward pass (measured: 3.1 to 4.0 per
    operation on CPU, float32, H = 10 and 11); without, about six are alive at once (the last
    two, the write and output stages, are the result)."""
    state = 2**io_bits * 4**workspace * itemsize
    operations = workspace * (1 + stages) + io_bits + stages * workspace
    return state * (4 * operations + 4 if grad else 6)


def engine_sequence_bytes(
    io_bits: int, workspace: int, length: int, batch: int, itemsize: int = 4, grad: bool = True
) -> int:
    """:func:`pennylane_qrnn.engine.run_sequence` on ``(length, batch)`` tokens: per step the
    written states ``(N, 2**H)``, the branches ``(N, 2**I, 2**H)`` and one ``(N, 2**(I+H))``
    product; with gradients every step's are kept, and the backward pass makes as many again
    plus a gradient of each transfer matrix."""
    n_x, n_w = 2**io_bits, 2**workspace
    per_step = batch * (2 * n_w + n_x * n_w + 2 * n_x + 4) * itemsize
    product = batch * n_x * n_w * itemsize
    if not grad:
        tensors = 2 * per_step + 2 * product
    else:
        tensors = 2 * length * per_step + 2 * product + 3 * n_x * n_w * n_w * itemsize
    # the allocator's rounding and the loss's own autograd temporaries: a process's peak grew by
    # up to 1.2x the tensors counted here (io 1, workspace 5, L 100, N 1000); keep a margin
    return int(1.5 * tensors)


def statevector_bytes(n_wires: int, itemsize: int = 16, copies: int = 4) -> int:
    """A statevector simulator's memory for ``n_wires`` qubits: ``2**n_wires`` complex amplitudes
    (``itemsize`` 16 for complex128), times the copies a gate application and a backward pass
    keep (``copies``)."""
    return copies * 2**n_wires * itemsize


# local simulators that hold a state of 2**wires amplitudes (default.mixed: 4**wires)
_STATEVECTOR_PREFIXES = ("default.qubit", "lightning.", "qiskit.aer", "braket.local")


def model_bytes(
    io_bits: int,
    workspace: int,
    stages: int,
    degree: int,
    order: int,
    mode: str = "postselect",
    backend: str | None = None,
    itemsize: int = 4,
) -> dict[str, int]:
    """What a model needs before it sees any data, by part (bytes): ``"weights"`` always;
    ``"transfer matrices"`` on the exact engine (``backend=None``; without gradients, the least
    it can run with); ``"statevector"`` on a local statevector simulator (``backend`` a name such
    as ``"default.qubit"``; ``io_bits + workspace (+ order ancillas in postselect mode)`` wires).
    Other backends (hardware, cloud) add nothing here."""
    parts = {
        "weights and angle tables": parameter_bytes(io_bits, workspace, stages, degree, itemsize)
    }
    if backend is None:
        parts["transfer matrices"] = engine_operator_bytes(
            io_bits, workspace, stages, itemsize, grad=False
        )
    elif str(backend).startswith(_STATEVECTOR_PREFIXES + ("default.mixed",)):
        wires = io_bits + workspace + (order if mode == "postselect" else 0)
        if str(backend).startswith("default.mixed"):
            wires *= 2
        parts["statevector"] = statevector_bytes(wires)
    return parts


def check_model(
    io_bits: int,
    workspace: int,
    stages: int,
    degree: int,
    order: int,
    mode: str = "postselect",
    backend: str | None = None,
    itemsize: int = 4,
    limit: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, int]:
    """:func:`check` the sum of :func:`model_bytes`; returns the parts. The message names the
    largest workspace that would fit."""
    parts = model_bytes(io_bits, workspace, stages, degree, order, mode, backend, itemsize)
    allowed = memory_limit(limit, device)
    if allowed is None or sum(parts.values()) <= allowed:
        return parts
    where = "the exact engine" if backend is None else f"backend {backend!r}"
    detail = ", ".join(f"{name} {format_bytes(size)}" for name, size in parts.items())
    fits = [
        h
        for h in range(workspace - 1, 0, -1)
        if sum(model_bytes(io_bits, h, stages, degree, order, mode, backend, itemsize).values())
        <= allowed
    ]
    advice = (
        f"with workspace={fits[0]} (the rest unchanged) it fits"
        if fits
        else "no workspace fits with these io_bits, stages and degree"
    )
    check(
        sum(parts.values()),
        f"QRNN(io_bits={io_bits}, workspace={workspace}, stages={stages}, degree={degree}) on "
        f"{where}",
        limit,
        device,
        detail=detail,
        advice=advice,
    )
    return parts


def check(
    needed: int,
    what: str,
    limit: int | None = None,
    device: torch.device | str | None = None,
    detail: str | None = None,
    advice: str = "use fewer workspace or i/o qubits, or a smaller batch",
) -> None:
    """Raise :class:`ModelSizeError` if ``needed`` bytes exceed the memory limit.

    Args:
        needed (int): the estimate, in bytes
        what (str): what is being sized, for the message (e.g. ``"QRNN(io_bits=1, workspace=16)
            on the exact engine"``)
        limit, device: as for :func:`memory_limit`
        detail (str or None): the estimate's parts, for the message
        advice (str): what to change, for the message
    """
    allowed = memory_limit(limit, device)
    if allowed is None or needed <= allowed:
        return
    source = (
        "the limit argument"
        if limit is not None
        else f"{ENV_VARIABLE}"
        if os.environ.get(ENV_VARIABLE, "").strip()
        else f"{DEFAULT_FRACTION:.0%} of "
        f"{'the GPU' if str(device).startswith('cuda') else 'physical'} memory"
    )
    raise ModelSizeError(
        f"memory for {what} must be at most {format_bytes(allowed)} ({source}); got an estimate "
        f"of {format_bytes(needed)}{f' ({detail})' if detail else ''}. {advice[:1].upper()}"
        f"{advice[1:]}; to allow more, set {ENV_VARIABLE} (e.g. {ENV_VARIABLE}=64G, or 'off')"
    )
