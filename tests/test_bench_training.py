"""benchmarks/bench_training.py's command line: refusals before anything is timed."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"


def _run(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_reference_code_must_be_a_checkout_of_the_reference(tmp_path):
    result = _run("--configs", "dna10", "--reference-code", str(tmp_path))
    assert result.returncode == 2
    assert "--reference-code must be a checkout of github.com/CLEconomides/RVQE" in result.stderr
    assert str(tmp_path) in result.stderr


def test_reference_json_and_reference_code_exclude_each_other(tmp_path):
    result = _run("--reference-json", "x.json", "--reference-code", str(tmp_path))
    assert result.returncode == 2
    assert "exclude each other" in result.stderr


def test_threads_must_be_positive():
    result = _run("--configs", "dna10", "--threads", "0")
    assert result.returncode == 2
    assert "--threads must be an int >= 1; got 0" in result.stderr
