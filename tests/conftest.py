"""One tiny end-to-end workflow run (training, analysis, report) shared by the workflow and report tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def snakemake(workdir, *args, timeout=1500):
    """Run snakemake on the project's Snakefile in ``workdir`` (configs passed as absolute paths)."""
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Working directory of a complete run of tests/config/tiny.yaml."""
    workdir = tmp_path_factory.mktemp("tiny")
    shutil.copy(ROOT / "tests/config/tiny.yaml", workdir / "tiny.yaml")
    proc = snakemake(workdir, "--configfile", str(workdir / "tiny.yaml"), "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir


@pytest.fixture(scope="session")
def tiny_report(tiny_run):
    """(working directory, HTML text) of the report built from the tiny run."""
    proc = snakemake(tiny_run, "--configfile", str(tiny_run / "tiny.yaml"), "--report", str(tiny_run / "report.html"),
                     timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return tiny_run, (tiny_run / "report.html").read_text(encoding="utf-8")
