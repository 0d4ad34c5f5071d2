"""bench/gpu_check.sh's steps on the CPU (`--cpu`): the script a GPU machine runs once, tested without one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(["timeout", "-k", "10", "900", "bash", str(ROOT / "bench" / "gpu_check.sh"), "--cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout
    assert "1 chunks trained on ['cpu']" in out
    assert "best K per model: dnn K=" in out and "cnn K=" in out
    assert "config/paper.yaml: projected" in out and 'Throughput(' in out
    bench = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert {r["case"] for r in bench["rows"]} == {"dnn:5", "cnn:4", "smallcnn:16"}
    assert "smallcnn 4 trials x 2 epochs on cpu: stacked" in out
    for row in bench["rows"]:
        assert row["vec"] > 0 and row["naive"] > 0 and row["best_k"] in (2, 4)
    assert bench["projection"]["hours"] > 0
