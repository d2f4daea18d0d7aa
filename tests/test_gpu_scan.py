"""benchmarks/gpu_scan.py (issue 10, item 3) runs on the CPU where no GPU is lent, and reports
what it measured, one row per executor method."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_scan.py"


def test_runs_on_the_cpu_and_writes_its_table(tmp_path):
    out = tmp_path / "scan.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--widths", "2"]
        + ["--batches", "2", "--threads", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| H=2 B=2 |")]
    assert rows and all(" MiB |" in row for row in rows)  # measured, not refused or failed
    seconds = [float(row.split("|")[3]) for row in rows]
    assert all(0 < s < 60 for s in seconds)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible)")
def test_cuda_rows_run():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--device", "cuda", "--widths", "4"]
        + ["--batches", "8"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and "| H=4 B=8 |" in done.stdout, done.stderr
