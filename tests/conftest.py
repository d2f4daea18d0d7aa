"""Shared test fixtures and helpers."""

import importlib.util

import numpy as np
import pytest
import torch


def has_module(name):
    return importlib.util.find_spec(name) is not None


requires_qiskit = pytest.mark.skipif(
    not has_module("pennylane_qiskit"), reason="pennylane-qiskit not installed (extra 'ibm')"
)
requires_braket = pytest.mark.skipif(
    not has_module("braket.pennylane_plugin"),
    reason="amazon-braket-pennylane-plugin not installed (extra 'braket')",
)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(1234)
