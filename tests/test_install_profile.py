"""`make install-profile` links the profiles into ~/.config/snakemake and never clobbers or nests."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def install(home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(home), MAKEFLAGS="")
    return subprocess.run(["make", "-s", "-C", str(ROOT), "install-profile"], env=env, capture_output=True,
                          text=True, timeout=60)


pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def test_links_both_profiles_and_is_idempotent(tmp_path):
    for _ in range(2):
        proc = install(tmp_path)
        assert proc.returncode == 0, proc.stderr
    profiles = tmp_path / ".config" / "snakemake"
    for name in ("slurm", "workstation"):
        assert (profiles / name).resolve() == ROOT / "profiles" / name
        assert (profiles / name / "config.yaml").is_file()
    assert not (ROOT / "profiles" / "slurm" / "slurm").exists()


def test_refuses_an_existing_profile(tmp_path):
    own = tmp_path / ".config" / "snakemake" / "slurm"
    own.mkdir(parents=True)
    (own / "config.yaml").write_text("executor: slurm\n")
    proc = install(tmp_path)
    assert proc.returncode != 0
    assert "exists and is not a link" in proc.stderr and "left as it is" in proc.stderr
    assert sorted(p.name for p in own.iterdir()) == ["config.yaml"]  # nothing nested, nothing replaced
    assert (own / "config.yaml").read_text() == "executor: slurm\n"
