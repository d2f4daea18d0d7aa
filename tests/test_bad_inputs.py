"""Table-driven bad inputs for the Python API: every refusal is a project error
(:mod:`pennylane_qrnn.errors`) whose message reads "X must be Y; got Z"."""

import math

import numpy as np
import pytest
import torch

from pennylane_qrnn import QRNN, QuantumNeuron, memory, neuron
from pennylane_qrnn import QRNNCell as CellTemplate
from pennylane_qrnn.errors import ModelSizeError, NonFiniteError, QRNNTypeError, QRNNValueError
from pennylane_qrnn.executors import Exact
from pennylane_qrnn.nn import QRNNCell

LONG = torch.long


def _zeros(*shape):
    return np.zeros(shape)


def _cell_weights(io, ws, stages, degree):
    return {
        name: _zeros(*shape) for name, shape in CellTemplate.shape(io, ws, stages, degree).items()
    }


def _nan_weights():
    model = QRNN(2, 3)
    with torch.no_grad():
        model.output_weights[0, 0] = math.nan
    return model


CASES = [
    # QRNN construction
    ("io_bits str", lambda: QRNN("2", 3), QRNNTypeError, r"io_bits must be an int >= 1; got '2'"),
    ("workspace 0", lambda: QRNN(2, 0), QRNNValueError, r"workspace must be an int >= 1; got 0"),
    (
        "stages float",
        lambda: QRNN(2, 3, stages=1.0),
        QRNNTypeError,
        r"stages must be an int >= 0; got 1.0",
    ),
    (
        "degree 0",
        lambda: QRNN(2, 3, degree=0),
        QRNNValueError,
        r"degree must be an int >= 1; got 0",
    ),
    (
        "degree float",
        lambda: QRNN(2, 3, degree=1.0),
        QRNNTypeError,
        r"degree must be an int >= 1; got .* \(float\)",
    ),
    (
        "order bool",
        lambda: QRNN(2, 3, order=True),
        QRNNTypeError,
        r"order must be an int >= 1; got .* \(bool\)",
    ),
    (
        "order negative",
        lambda: QRNN(2, 3, order=-1),
        QRNNValueError,
        r"order must be an int >= 1; got -1",
    ),
    (
        "mode None",
        lambda: QRNN(2, 3, mode=None),
        QRNNValueError,
        r"mode must be one of \('postselect', 'amplified'\); got None",
    ),
    (
        "dtype int",
        lambda: QRNN(2, 3, dtype=torch.int64),
        QRNNTypeError,
        r"dtype must be a floating-point torch dtype or None; got torch.int64",
    ),
    (
        "execution",
        lambda: QRNN(2, 3, execution="fast"),
        QRNNValueError,
        r"execution must be one of \('native', 'dynamic', 'deferred'\); got 'fast'",
    ),
    # issue 10: QRNN(1, 16) and QRNN(1, 20) now run on the statevector engine; their transfer
    # matrices are still refused, and a workspace neither engine holds still is
    (
        "workspace 16 (16 GiB of matrices)",
        lambda: QRNN(1, 16, degree=1, executor=Exact("transfer-matrix")),
        ModelSizeError,
        r"memory for QRNN\(io_bits=1, workspace=16, stages=1, degree=1\) on the exact engine "
        r"\(method='transfer-matrix'\) must be at most .*; got an estimate of .*GiB "
        r"\(.*transfer matrices",
    ),
    (
        "workspace 20 (TiB)",
        lambda: QRNN(1, 20, executor=Exact("transfer-matrix")),
        ModelSizeError,
        r"workspace=20.* got an estimate of .*TiB",
    ),
    (
        "workspace 24 (fits neither engine)",
        lambda: QRNN(1, 24),
        ModelSizeError,
        r"workspace=24.* on the exact engine must be at most .*; got an estimate of .*GiB "
        r"\(.*statevector engine",
    ),
    (
        "workspace 40 (overflowed in the engine)",
        lambda: QRNN(1, 40),
        ModelSizeError,
        r"workspace=40.*got an estimate of .*PiB \(.*statevector engine",
    ),
    (
        "workspace 40 on the transfer matrices (2**83 bytes)",
        lambda: memory.check_model(1, 40, 1, 2, 2, method="transfer-matrix"),
        ModelSizeError,
        r"workspace=40.*\(method='transfer-matrix'\).*got an estimate of 2\*\*",
    ),
    ("io_bits 30", lambda: QRNN(30, 1), ModelSizeError, r"io_bits=30.*No workspace fits"),
    ("io_bits 64 (failed in numpy)", lambda: QRNN(64, 1), ModelSizeError, r"io_bits=64"),
    (
        "statevector 43 wires",
        lambda: QRNN(1, 40, backend="default.qubit"),
        ModelSizeError,
        r"on backend 'default.qubit' must be at most .*statevector",
    ),
    # QRNN forward
    (
        "tokens float",
        lambda: QRNN(2, 3)(np.zeros((2, 2))),
        QRNNTypeError,
        r"tokens must be an integer tensor; got dtype torch.float64",
    ),
    (
        "token out of range",
        lambda: QRNN(2, 3)(torch.tensor([[5]])),
        QRNNValueError,
        r"tokens must lie in \[0, 3\] for io_bits=2; got values in \[5, 5\]",
    ),
    (
        "targets float",
        lambda: QRNN(2, 3)(torch.zeros(2, 1, dtype=LONG), torch.zeros(2, 1)),
        QRNNTypeError,
        r"targets must be an integer tensor; got dtype torch.float32",
    ),
    (
        "state NaN",
        lambda: QRNN(2, 3)(torch.zeros(2, 1, dtype=LONG), state=torch.full((1, 8), math.nan)),
        NonFiniteError,
        r"state must be finite; got 8 NaN or infinite value\(s\) of 8",
    ),
    (
        "state zero",
        lambda: QRNN(2, 3)(torch.zeros(2, 1, dtype=LONG), state=torch.zeros(1, 8)),
        QRNNValueError,
        r"state must have a nonzero amplitude in every row; got 1 zero row\(s\)",
    ),
    (
        "state shape",
        lambda: QRNN(2, 3)(torch.zeros(2, 2, dtype=LONG), state=torch.zeros(2, 4)),
        QRNNValueError,
        r"state must have shape \(2, 8\); got \(2, 4\)",
    ),
    (
        "generator int",
        lambda: QRNN(2, 3)(torch.zeros(2, 1, dtype=LONG), generator=3),
        QRNNTypeError,
        r"generator must be a torch.Generator or None; got int",
    ),
    (
        "weights NaN",
        lambda: _nan_weights()(torch.zeros(2, 1, dtype=LONG)),
        NonFiniteError,
        r"output_weights must be finite; got 1 NaN or infinite value\(s\) of",
    ),
    (
        "collapse shape",
        lambda: QRNN(2, 3)(
            torch.zeros(2, 1, dtype=LONG),
            torch.zeros(2, 1, dtype=LONG),
            collapse=torch.ones(3, 1, dtype=torch.bool),
        ),
        QRNNValueError,
        r"postselected must have the shape of tokens; got \(3, 1\)",
    ),
    (
        "sample steps",
        lambda: QRNN(2, 3).sample(torch.zeros(2, 1, dtype=LONG), -1),
        QRNNValueError,
        r"steps must be an int >= 0; got -1",
    ),
    (
        "loss reduction",
        lambda: QRNN(2, 3).loss(
            torch.zeros(1, 1, 4), torch.zeros(1, 1, dtype=LONG), reduction="avg"
        ),
        QRNNValueError,
        r"reduction must be 'mean', 'sum' or 'none'; got 'avg'",
    ),
    # nn.QRNNCell forward
    (
        "cell token 2-d",
        lambda: QRNNCell(2, 3)(torch.zeros(2, 2, dtype=LONG)),
        QRNNValueError,
        r"token must have shape \(N,\) or \(\); got \(2, 2\)",
    ),
    (
        "cell target shape",
        lambda: QRNNCell(2, 3)(torch.zeros(2, dtype=LONG), torch.zeros(3, dtype=LONG)),
        QRNNValueError,
        r"target must have the shape of token \(2,\); got \(3,\)",
    ),
    (
        "cell token float",
        lambda: QRNNCell(2, 3)(torch.zeros(2)),
        QRNNTypeError,
        r"token must be an integer tensor; got dtype torch.float32",
    ),
    # QuantumNeuron template
    (
        "neuron weights shape",
        lambda: QuantumNeuron(
            _zeros(3), control_wires=[0, 1], target_wire=2, degree=2, order=1, mode="amplified"
        ),
        QRNNValueError,
        r"weights must have shape \(4,\) \(or \(batch, 4\)\) for 2 controls at degree 2; got "
        r"\(3,\)",
    ),
    (
        "neuron two targets",
        lambda: QuantumNeuron(
            _zeros(3), control_wires=[0, 1], target_wire=[2, 3], order=1, mode="amplified"
        ),
        QRNNValueError,
        r"target_wire must be a single wire; got \[2, 3\]",
    ),
    (
        "neuron ancillas missing",
        lambda: QuantumNeuron(_zeros(3), control_wires=[0, 1], target_wire=2, order=2),
        QRNNValueError,
        r"ancilla_wires must hold order=2 wires for mode='postselect'; got 0",
    ),
    (
        "neuron ancillas amplified",
        lambda: QuantumNeuron(
            _zeros(3),
            control_wires=[0, 1],
            target_wire=2,
            ancilla_wires=[3],
            order=1,
            mode="amplified",
        ),
        QRNNValueError,
        r"ancilla_wires must be empty for mode='amplified'; got \[3\]",
    ),
    (
        "neuron wires overlap",
        lambda: QuantumNeuron(
            _zeros(3), control_wires=[0, 1], target_wire=1, order=1, mode="amplified"
        ),
        QRNNValueError,
        r"control_wires, target_wire and ancilla_wires must be distinct",
    ),
    (
        "neuron degree str",
        lambda: QuantumNeuron(_zeros(3), control_wires=[0, 1], target_wire=2, degree="1"),
        QRNNTypeError,
        r"degree must be an int >= 1; got .* \(str\)",
    ),
    # QRNNCell template
    (
        "cell template token",
        lambda: CellTemplate(
            **_cell_weights(2, 1, 1, 1),
            token=4,
            io_wires=[0, 1],
            workspace_wires=[2],
            degree=1,
            order=1,
            mode="amplified",
        ),
        QRNNValueError,
        r"token must be in \[0, 3\] for 2 i/o lanes; got 4",
    ),
    (
        "cell template no io",
        lambda: CellTemplate(
            **_cell_weights(1, 1, 1, 1),
            token=0,
            io_wires=[],
            workspace_wires=[2],
            degree=1,
            order=1,
            mode="amplified",
        ),
        QRNNValueError,
        r"io_wires must hold at least one wire; got \[\]",
    ),
    (
        "cell template weights",
        lambda: CellTemplate(
            _zeros(1, 4),
            _zeros(1, 1),
            _zeros(1, 1, 3),
            _zeros(2, 3),
            token=0,
            io_wires=[0, 1],
            workspace_wires=[2],
            degree=1,
            order=1,
            mode="amplified",
        ),
        QRNNValueError,
        r"input_weights must have shape \(1, 3\) .* for I=2, H=1, stages=1, degree=1; got \(1, 4\)",
    ),
    # neuron functions
    (
        "eta_table weights",
        lambda: neuron.eta_table(np.zeros(5), 2, 1),
        QRNNValueError,
        r"weights must have shape \(\.\.\., 3\) for 2 controls at degree 1; got \(5,\)",
    ),
    (
        "activation order 0",
        lambda: neuron.activation(0.3, 0),
        QRNNValueError,
        r"order must be an int >= 1; got 0",
    ),
    (
        "activation order float",
        lambda: neuron.activation(0.3, 2.0),
        QRNNTypeError,
        r"order must be an int >= 1; got .* \(float\)",
    ),
    (
        "amplitudes order str",
        lambda: neuron.neuron_amplitudes(0.3, "2"),
        QRNNTypeError,
        r"order must be an int >= 1; got .* \(str\)",
    ),
    (
        "num_weights negative",
        lambda: neuron.num_weights(-1, 2),
        QRNNValueError,
        r"n_controls must be an int >= 0; got -1",
    ),
    (
        "monomials degree 0",
        lambda: neuron.monomials(3, 0),
        QRNNValueError,
        r"degree must be an int >= 1; got 0",
    ),
]


@pytest.mark.parametrize(
    "call, error, match", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_refused_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_memory_limit_variable_must_parse(monkeypatch):
    monkeypatch.setenv("QRNN_MEMORY_LIMIT", "lots")
    with pytest.raises(
        QRNNValueError,
        match=r"QRNN_MEMORY_LIMIT must be a number of bytes, optionally with "
        r"a K, M, G or T suffix \(e.g. 8G\), or 'off'; got 'lots'",
    ):
        QRNN(1, 2)


def test_memory_limit_variable_raises_and_lowers_the_limit(monkeypatch):
    monkeypatch.setenv("QRNN_MEMORY_LIMIT", "off")
    QRNN(1, 16, degree=1)  # constructing allocates only the weights: allowed when asked for
    monkeypatch.setenv("QRNN_MEMORY_LIMIT", "1M")
    with pytest.raises(
        ModelSizeError,
        match=r"must be at most 1.0 MiB \(QRNN_MEMORY_LIMIT\).*With workspace=9 \(the rest "
        r"unchanged\) it fits",
    ):
        QRNN(1, 10)  # (issue 10: the statevector engine fits up to 9, the matrices up to 7)
