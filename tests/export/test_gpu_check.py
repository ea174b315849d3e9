"""benchmarks/gpu_check.sh parses, and without CUDA stops at once saying so (it is run on GPU machines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"


def test_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check would really run on this GPU")
def test_without_cuda_it_fails_fast_and_says_why(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PY": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "gpu_check: no CUDA device (torch.cuda.is_available() is False" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []  # no step ran
