"""The tutorials run as a user runs them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"XOR bits right: ([\d.]+) % \(argmax\)", result.stdout).group(1))
    assert accuracy >= 99.0
    difference = float(
        re.search(
            r"largest difference of the step probabilities: ([\d.e+-]+)", result.stdout
        ).group(1)
    )
    assert difference < 1e-5


def test_templates_in_your_qnode(tmp_path):
    """Tutorial (a): the neuron's circuit agrees with its closed-form activation, the drawings
    and the training curve are written, and the TorchLayer fit converges."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "templates_in_your_qnode.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QRNN_TUTORIAL_FAST": "1", "QRNN_TUTORIAL_OUT": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    worst = float(re.search(r"closed form: ([\d.e+-]+)", result.stdout).group(1))
    assert worst < 1e-8
    start, end = map(
        float, re.search(r"KL divergence: ([\d.]+) at the start, ([\d.]+)", result.stdout).groups()
    )
    assert end < 0.01 < start
    assert "QRNNCell" in result.stdout and "'MidMeasureMP'" in result.stdout
    for name in ("activation.png", "cell.png", "torchlayer-training.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_hybrid_model(tmp_path):
    """Tutorial (b): encoder -> QRNN (state=) -> head trains end to end on Elman XOR."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "hybrid_model.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QRNN_TUTORIAL_FAST": "1", "QRNN_TUTORIAL_OUT": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"XOR bits right: ([\d.]+) %", result.stdout).group(1))
    assert accuracy >= 90  # chance is 50 %
    gradient = float(re.search(r"largest encoder gradient .*: ([\d.e+-]+)", result.stdout).group(1))
    assert gradient > 0  # the encoder is trained through the QRNN's initial state
    assert (tmp_path / "hybrid-training.png").stat().st_size > 1000


def test_simulator_to_hardware(tmp_path):
    """Tutorial (d): resources and price, a noisy fake IBM backend, Braket's local simulator
    within shot noise of the exact engine, and the budget refusing a billed run unsent."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "simulator_to_hardware.py")],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "QRNN_TUTORIAL_FAST": "1", "QRNN_TUTORIAL_OUT": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "two-qubit gates" in result.stdout and "estimated price" in result.stdout
    braket = float(re.search(r"Braket local: .* from exact ([\d.]+)", result.stdout).group(1))
    # 1000 shots, about 1000 survivors per step: 4 standard errors of a probability are <= 0.064
    assert braket <= 0.064
    noisy = float(
        re.search(r"FakeManila \(noisy\): .* from exact ([\d.]+)", result.stdout).group(1)
    )
    assert 0 < noisy < 0.5
    assert "refused: estimated price" in result.stdout and "spent so far: 0.00 USD" in result.stdout
    assert (tmp_path / "hardware-comparison.png").stat().st_size > 1000


def test_generating_digits(tmp_path, mnist):
    """Tutorial (c): a QRNN trained with teacher forcing on mnist-gen samples digits; the
    measured protocol postselects nothing, teacher forcing pays for every pixel."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "generating_digits.py")],
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **os.environ,
            "QRNN_TUTORIAL_FAST": "1",
            "QRNN_TUTORIAL_OUT": str(tmp_path),
            "QRNN_MNIST_DIR": str(mnist),
        },
    )
    assert result.returncode == 0, result.stderr
    forced = re.search(
        r"teacher-forced: NLL per pixel ([\d.]+),.*per image \(median\) ([\d.e+-]+)", result.stdout
    )
    measured = re.search(r"measured: NLL .* per image \(median\) ([\d.e+-]+)", result.stdout)
    assert float(forced.group(1)) < 1.3  # below log(4) = 1.386, a uniform guess
    assert float(forced.group(2)) < -10  # teacher forcing postselects 99 pixels per image
    assert float(measured.group(1)) == 0.0  # the measured protocol discards nothing
    inks = [float(v) for v in re.findall(r"samples ([\d.]+)", result.stdout)]
    assert len(inks) == 2 and all(0 < ink < 1 for ink in inks)
    for name in ("digits-real.png", "digits-generated.png", "digits-training.png"):
        assert (tmp_path / name).stat().st_size > 1000


PAPER_DATA = ROOT.parent / "shared" / "reference" / "paper-data"


def _paper_figure(tmp_path, *arguments, **env):
    return subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "paper_figure.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "QRNN_TUTORIAL_FAST": "1", "QRNN_TUTORIAL_OUT": str(tmp_path), **env},
    )


def test_paper_figure(tmp_path):
    """Tutorial (e): our DNA steps-to-learn beside the paper's raw data, read from the folder
    in $QRNN_PAPER_DATA at run time."""
    if not (PAPER_DATA / "experiment-5-dna-pool.csv").is_file():
        pytest.skip(f"needs the paper's raw data in {PAPER_DATA}")
    result = _paper_figure(tmp_path, QRNN_PAPER_DATA=str(PAPER_DATA))
    assert result.returncode == 0, result.stderr
    assert re.search(r"ours L=5 seed 0: learned after \d+ steps", result.stdout)
    # the paper's medians, from its CSV files (checked by hand against the files)
    assert "paper QRNN (paper): median epochs L=5: 80, L=10: 180," in result.stdout
    assert "L=100: 880.5," in result.stdout and "L=20: 15999," in result.stdout
    assert (tmp_path / "paper-figure-dna.png").stat().st_size > 1000


@pytest.mark.slow
def test_paper_figure_without_the_data(tmp_path):
    """Without the paper's data the tutorial says so and plots ours alone."""
    result = _paper_figure(tmp_path, str(tmp_path / "nowhere"))
    assert result.returncode == 0, result.stderr
    assert "does not hold experiment-5-dna-pool.csv" in result.stdout
    assert "paper QRNN" not in result.stdout
    assert (tmp_path / "paper-figure-dna.png").stat().st_size > 1000


def test_real_valued_series(tmp_path):
    """Tutorial (issue 11 item 4): a noisy sine fed as angles through AngleEncoder into a QRNN;
    the up/down forecast beats the majority baseline, gradients reach the encoder, and the
    circuit path agrees with the engine."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "real_valued_series.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QRNN_TUTORIAL_FAST": "1", "QRNN_TUTORIAL_OUT": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    qrnn, persistence, majority = map(
        float,
        re.search(
            r"test accuracy: ([\d.]+) % \(QRNN\), ([\d.]+) % \(persistence\), ([\d.]+) % "
            r"\(majority\)",
            result.stdout,
        ).groups(),
    )
    assert majority < 60 and qrnn >= majority + 15
    gradient = float(re.search(r"encoder weight gradient .*: ([\d.e+-]+)", result.stdout).group(1))
    assert gradient > 0
    difference = float(re.search(r"log-probabilities: ([\d.e+-]+)", result.stdout).group(1))
    assert difference < 1e-8
    assert (tmp_path / "real-valued-series.png").stat().st_size > 1000
