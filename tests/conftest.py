"""Shared test fixtures and helpers."""

import importlib.util
import os
from pathlib import Path

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


#: the paper's preprocessed MNIST files beside a checkout (see ../shared/data/mnist/README.md)
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"

# The package has no default data folder: tests (and the command lines they start, which inherit
# the environment) find the shared copy through the variable a user sets, unless one is set.
if SHARED_MNIST.is_dir():
    os.environ.setdefault("QRNN_MNIST_DIR", str(SHARED_MNIST))


@pytest.fixture(scope="session")
def mnist():
    """The folder of the paper's MNIST files; skips the test where a checkout lacks them."""
    if not (SHARED_MNIST / "mnist-simple-0-test.csv.gz").is_file():
        pytest.skip(f"needs the paper's preprocessed MNIST files in {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(1234)


def pytest_collection_modifyitems(config, items):
    """Slow reproduction runs take as long as they take: no pytest-timeout limit unless the test
    sets its own (the default run's limit is ``timeout`` in pyproject.toml)."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(0))
