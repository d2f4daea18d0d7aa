"""The tutorials run as a user runs them."""

import re
import subprocess
import sys
from pathlib import Path

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
