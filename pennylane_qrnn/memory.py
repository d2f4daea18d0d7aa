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
    "statevector_table_bytes",
    "statevector_sequence_bytes",
    "statevector_checkpoint_interval",
    "transfer_checkpoint_interval",
    "EXACT_METHODS",
    "exact_estimates",
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


#: the transfer-matrix engine keeps every step's intermediates for its backward pass while they
#: take at most this many bytes; beyond, it keeps every ``ceil(sqrt(L))``-th state and recomputes
#: one segment at a time (about a third more time per training step). 64 MiB keeps the paper's
#: tasks at L <= 100 (DNA, MNIST 0/1: 10-41 MiB) on the faster path.
TRANSFER_KEEP_ALL_BYTES = 64 * 2**20


def _transfer_step_bytes(io_bits: int, workspace: int, batch: int, itemsize: int) -> int:
    """One step's intermediates that the transfer-matrix engine keeps for its backward pass: the
    state and written state ``(N, 2**H)`` and the branches ``(N, 2**I, 2**H)``, and as many
    again for their gradients, plus the step's small per-sequence numbers (the branches' norms
    and log-probabilities ``(N, 2**I)`` each, and a few ``(N,)``)."""
    n_x, n_w = 2**io_bits, 2**workspace
    return batch * (2 * n_w + n_x * n_w + 3 * n_x + 4) * itemsize


def transfer_checkpoint_interval(
    io_bits: int, workspace: int, length: int, batch: int, itemsize: int = 4
) -> int:
    """How often the transfer-matrix engine (:mod:`pennylane_qrnn.engine.recurrence`) keeps the
    state for its backward pass: every step (``1``, all intermediates kept) while ``length``
    steps of them take at most :data:`TRANSFER_KEEP_ALL_BYTES`, else every
    ``ceil(sqrt(length))``-th step; the backward pass then recomputes each segment's steps from
    its kept state (with the forward pass's outcomes), so about ``2 sqrt(length)`` steps'
    intermediates are alive instead of ``length``."""
    if (
        length * _transfer_step_bytes(io_bits, workspace, batch, itemsize)
        <= TRANSFER_KEEP_ALL_BYTES
    ):
        return 1
    return math.isqrt(max(length - 1, 0)) + 1


def engine_sequence_bytes(
    io_bits: int, workspace: int, length: int, batch: int, itemsize: int = 4, grad: bool = True
) -> int:
    """:func:`pennylane_qrnn.engine.run_sequence` on ``(length, batch)`` tokens: per step the
    written states ``(N, 2**H)``, the branches ``(N, 2**I, 2**H)`` and one ``(N, 2**(I+H))``
    product; with gradients the steps' intermediates are kept (every step's, or a segment's and
    every :func:`transfer_checkpoint_interval`-th state), and the backward pass makes as many
    again plus a gradient of each transfer matrix."""
    n_x, n_w = 2**io_bits, 2**workspace
    per_step = _transfer_step_bytes(io_bits, workspace, batch, itemsize)
    product = batch * n_x * n_w * itemsize
    if not grad:
        tensors = 2 * per_step + 2 * product
    else:
        interval = transfer_checkpoint_interval(io_bits, workspace, length, batch, itemsize)
        if interval == 1:
            kept = length * per_step
        else:
            # the kept states, one segment's intermediates, and the small per-step outputs
            states = math.ceil(length / interval) * batch * n_w * itemsize
            kept = states + interval * per_step + length * batch * (3 * n_x + 4) * itemsize
        tensors = 2 * kept + 2 * product + 3 * n_x * n_w * n_w * itemsize
    # the allocator's rounding and the loss's own autograd temporaries: a process's peak grew by
    # up to 1.2x the tensors counted here (io 1, workspace 5, L 100, N 1000); keep a margin
    return int(1.5 * tensors)


def statevector_checkpoint_interval(io_bits: int, workspace: int, stages: int, length: int) -> int:
    """How often the statevector engine (:mod:`pennylane_qrnn.engine.statevector`) keeps the
    state for its backward pass: every step (``1``) while all ``length`` states together are no
    larger than one step's autograd graph, else every ``ceil(sqrt(length))``-th step (the backward
    pass then recomputes each segment's states once more: ``2 sqrt(length)`` states alive)."""
    if length * 2**workspace <= _statevector_step_elements(io_bits, workspace, stages):
        return 1
    return math.isqrt(max(length - 1, 0)) + 1


def _statevector_step_elements(io_bits: int, workspace: int, stages: int) -> int:
    """Per sequence, the elements one step's autograd graph keeps: about three states per
    workspace neuron or rotation (the sliced tables and the result), three full states per
    output neuron and four for the readout."""
    n_w, n_full = 2**workspace, 2 ** (io_bits + workspace)
    workspace_operations = workspace * (1 + 2 * stages)
    return 3 * (workspace_operations * n_w + io_bits * n_full) + 4 * n_full


def statevector_table_bytes(
    io_bits: int, workspace: int, stages: int, degree: int, itemsize: int = 4, grad: bool = True
) -> int:
    """The statevector engine's neuron tables for one forward pass: every neuron's pre-activation
    and map over its ``2**(I+H-1)`` control states and the tables laid out on the lanes (about
    ten tables per neuron alive with gradients, four without), plus the monomial matrix in the
    weights' dtype (two of them with gradients: the workspace and the output neurons')."""
    n_controls = io_bits + workspace - 1
    n_neurons = workspace * (1 + stages) + io_bits
    tables = n_neurons * 2**n_controls * itemsize * (10 if grad else 4)
    matrix = 2**n_controls * neuron.num_weights(n_controls, degree) * itemsize
    return tables + matrix * (2 if grad else 1)


def statevector_sequence_bytes(
    io_bits: int,
    workspace: int,
    stages: int,
    length: int,
    batch: int,
    itemsize: int = 4,
    grad: bool = True,
) -> int:
    """The statevector engine on ``(length, batch)`` tokens, without its tables: the outputs
    (``(L, N, 2**I)`` log-probabilities and four ``(L, N)`` tensors) and the live states (six full
    ``2**(I+H)`` states at a time); with gradients also the kept states (every
    :func:`statevector_checkpoint_interval`-th, and one segment's during the backward pass) and one
    step's autograd graph, twice (the graph and its gradients)."""
    n_w, n_full = 2**workspace, 2 ** (io_bits + workspace)
    outputs = length * batch * (2**io_bits + 4) * itemsize * (2 if grad else 1)
    live = 6 * batch * n_full * itemsize
    if not grad:
        return int(1.5 * (outputs + live))
    interval = statevector_checkpoint_interval(io_bits, workspace, stages, length)
    kept = (math.ceil(length / interval) + interval) * batch * n_w * itemsize
    graph = 2 * batch * _statevector_step_elements(io_bits, workspace, stages) * itemsize
    return int(1.5 * (outputs + live + kept + graph))


#: the exact executor's methods: the transfer-matrix engine and the statevector engine
EXACT_METHODS = ("transfer-matrix", "statevector")

# Seconds per multiply-add (or per amplitude touched) of a training step (forward + backward),
# and per operation call, of each method: fitted by hand on this project's CI machine type
# (2 cores, torch 2.13 CPU, one thread) to the output of
#   .venv/bin/python benchmarks/bench_executors.py --only h --max-h 10 --repeats 1
# (docs/scaling.md): at io 2, one stage, batch 8, L 20 the measured crossover is H = 8 (0.174 s
# transfer matrices, 0.166 s statevector) and these estimates put it at H = 9; DNA (H5, N 128,
# L 100) and MNIST 0/1 (H8 S2, N 100, L 100) stay on the transfer matrices.
_TM_BUILD = 2.5e-8  # per amplitude per operation while building W and O
_TM_PRODUCT = 4e-10  # per multiply-add of the recurrence's matrix products
_TM_STEP = 1e-3  # per step (python and kernel launches)
_SV_AMPLITUDE = 3e-8  # per amplitude per operation applied to the state
_SV_OPERATION = 4e-4  # per operation per step (python, autograd, kernel launches)


def exact_estimates(
    io_bits: int,
    workspace: int,
    stages: int,
    degree: int,
    length: int,
    batch: int,
    itemsize: int = 4,
    grad: bool = True,
) -> dict[str, dict[str, float]]:
    """Per method of :data:`EXACT_METHODS`: ``{"seconds": ..., "bytes": ...,
    "checkpoint_every": ...}``, the estimated time of a training step (forward and backward; a
    forward pass alone takes about a third), the memory of a run on ``(length, batch)`` tokens,
    known before anything is allocated, and how often its backward pass keeps the state
    (:func:`transfer_checkpoint_interval`, :func:`statevector_checkpoint_interval`; 1: every
    step).
    The times are a model fitted on one machine type (the constants above): good for choosing,
    not for promising."""
    n_x, n_w = 2**io_bits, 2**workspace
    operations = workspace * (1 + stages) + io_bits + stages * workspace
    columns = n_w if n_w >= 64 else n_x * n_w  # the engine's grouped or one-hot token write
    transfer = (
        _TM_BUILD * operations * n_x * n_w * n_w
        + _TM_PRODUCT * length * batch * n_w * (columns + n_x * n_w)
        + _TM_STEP * length
    )
    amplitudes = workspace * (1 + 2 * stages) * n_w + (io_bits + 1) * n_x * n_w
    calls = workspace * (1 + 2 * stages) + io_bits + 1
    state = _SV_AMPLITUDE * length * batch * amplitudes + _SV_OPERATION * length * calls
    scale = 1.0 if grad else 1 / 3
    return {
        "transfer-matrix": {
            "seconds": scale * transfer,
            "bytes": engine_operator_bytes(io_bits, workspace, stages, itemsize, grad)
            + engine_sequence_bytes(io_bits, workspace, length, batch, itemsize, grad),
            "checkpoint_every": transfer_checkpoint_interval(
                io_bits, workspace, length, batch, itemsize
            ),
        },
        "statevector": {
            "seconds": scale * state,
            "bytes": statevector_table_bytes(io_bits, workspace, stages, degree, itemsize, grad)
            + statevector_sequence_bytes(io_bits, workspace, stages, length, batch, itemsize, grad),
            "checkpoint_every": statevector_checkpoint_interval(io_bits, workspace, stages, length),
        },
    }


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
    method: str = "auto",
) -> dict[str, int]:
    """What a model needs before it sees any data, by part (bytes): ``"weights"`` always; on
    the exact engine (``backend=None``) the least it can run with (without gradients, one
    sequence of one step): ``"transfer matrices"`` (``method="transfer-matrix"``), ``"statevector
    engine"`` (``method="statevector"``), or the smaller of the two (``method="auto"``);
    ``"statevector"`` on a local statevector simulator (``backend`` a name such as
    ``"default.qubit"``; ``io_bits + workspace (+ order ancillas in postselect mode)`` wires).
    Other backends (hardware, cloud) add nothing here."""
    parts = {
        "weights and angle tables": parameter_bytes(io_bits, workspace, stages, degree, itemsize)
    }
    if backend is None:
        options = {
            "transfer matrices": engine_operator_bytes(
                io_bits, workspace, stages, itemsize, grad=False
            ),
            "statevector engine": statevector_table_bytes(
                io_bits, workspace, stages, degree, itemsize, grad=False
            )
            + statevector_sequence_bytes(io_bits, workspace, stages, 1, 1, itemsize, grad=False),
        }
        if method != "auto":
            name = {"transfer-matrix": "transfer matrices", "statevector": "statevector engine"}
            options = {name[method]: options[name[method]]}
        smallest = min(options, key=options.__getitem__)
        parts[smallest] = options[smallest]
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
    method: str = "auto",
) -> dict[str, int]:
    """:func:`check` the sum of :func:`model_bytes`; returns the parts. The message names the
    largest workspace that would fit."""
    parts = model_bytes(io_bits, workspace, stages, degree, order, mode, backend, itemsize, method)
    allowed = memory_limit(limit, device)
    if allowed is None or sum(parts.values()) <= allowed:
        return parts
    where = "the exact engine" if backend is None else f"backend {backend!r}"
    if backend is None and method != "auto":
        where += f" (method={method!r})"
    detail = ", ".join(f"{name} {format_bytes(size)}" for name, size in parts.items())
    fits = [
        h
        for h in range(workspace - 1, 0, -1)
        if sum(
            model_bytes(io_bits, h, stages, degree, order, mode, backend, itemsize, method).values()
        )
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
        limit (int or None): the limit in bytes, as for :func:`memory_limit`
        device (torch.device, str or None): the device sized, as for :func:`memory_limit`
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
