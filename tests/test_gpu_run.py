"""scripts/gpu_run.sh: without a GPU it stops after its environment check, says why, and
leaves that step's log in the folder it was given (the GPU steps themselves run only on a
GPU machine: README, "The Triton kernel and the GPU benchmark")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the script runs for minutes")
def test_gpu_run_without_a_gpu_says_why_and_keeps_its_log(tmp_path: Path):
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_run.sh"), str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert proc.returncode != 0
    assert "=== environment" in proc.stdout and "nothing else can run" in proc.stderr
    log = (tmp_path / "environment.log").read_text()
    assert "no CUDA device visible to torch" in log
    assert not (tmp_path / "cuda-tests.log").exists()
