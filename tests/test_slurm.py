"""End to end through a real SLURM: `snakemake --profile profiles/slurm` on a one-node cluster on localhost.

tests/slurm/start_cluster.sh installs and starts SLURM 22.05 (Debian packages) with count-only fake GPUs,
so training jobs go through the profile's real `--gpus=1` request and run on the CPU. One training job
is cancelled while it runs; the profile's retries must finish the work. Needs root (CI runs as root).
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLURM_SCRIPTS = ROOT / "tests" / "slurm"
STATE = Path(os.environ.get("WEIGHTZOO_SLURM_STATE", "/tmp/weightzoo-slurm"))
# Every snakemake call is bounded: a lost status check makes Snakemake wait forever.
RUN_TIMEOUT_S = 600
REPORT_TIMEOUT_S = 180

pytestmark = pytest.mark.slow


def _daemons_alive() -> bool:
    for name in ("munged", "slurmctld", "slurmd"):
        pidfile = STATE / f"{name}.pid"
        try:  # the PID must still be that daemon: PIDs of an earlier boot get reused
            if Path(f"/proc/{int(pidfile.read_text())}/comm").read_text().strip() != name:
                return False
        except (OSError, ValueError):
            return False
    return True


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node cluster; stopped by PID afterwards if this session started it."""
    if os.geteuid() != 0:
        pytest.skip("SLURM test needs root: its daemons run as root and read /etc/slurm/slurm.conf")
    started_here = not _daemons_alive()
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SLURM_SCRIPTS / "start_cluster.sh")], capture_output=True, text=True, timeout=900
    )
    if proc.returncode == 3:
        pytest.skip(f"apt cannot install SLURM on this machine: {proc.stderr.strip()[-500:]}")
    assert proc.returncode == 0, f"start_cluster.sh failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"cluster up in {time.monotonic() - t0:.1f}s: {proc.stderr.strip()}")
    yield
    if started_here:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "stop_cluster.sh")], timeout=120, check=False)


def slurm_config(path: Path) -> Path:
    """The tiny test config cut to one architecture and two trials, one trial per job.

    Two GPU jobs run side by side on the node's two fake GPUs; `trials_per_job: 1` is the shape users
    asked for. The full tiny config takes minutes on a 2-core machine even without SLURM.
    """
    cfg = yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text())
    exp = dict(cfg["experiments"][0])
    exp["arch"] = {k: (v[:1] if isinstance(v, list) else v) for k, v in exp["arch"].items()}
    exp["datasets"] = exp["datasets"][:1]
    exp.update(trials=2, trials_per_job=1)
    cfg["experiments"] = [exp]
    cfg["datasets"] = {d: cfg["datasets"][d] for d in exp["datasets"]}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A copy of the workflow, so runs never touch the repository's results/ and .snakemake/."""
    wd = tmp_path / "wf"
    wd.mkdir()
    for name in ("Snakefile", "workflow", "config", "profiles", "envs", "src"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, wd / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, wd / name)
    slurm_config(wd / "slurm.yaml")
    return wd


def run_env() -> dict:
    env = dict(os.environ)
    # The profile reads partition and account from these (documented in docs/cluster.md).
    env.update(WEIGHTZOO_SLURM_PARTITION="debug", WEIGHTZOO_SLURM_ACCOUNT="", PYTHONUNBUFFERED="1")
    return env


def snakemake_cmd(timeout_s: int, *args: str) -> list[str]:
    return ["timeout", "-k", "10", str(timeout_s), sys.executable, "-m", "snakemake", *args]


def squeue_jobs(workdir: Path) -> list[dict]:
    """Jobs of this workflow copy that slurmctld still knows (MinJobAge=600 keeps finished ones)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%Z"], capture_output=True, text=True, timeout=30
    ).stdout
    jobs = []
    for line in out.splitlines():
        jobid, comment, state, wd = line.split("|", 3)
        if Path(wd) == workdir:
            jobs.append({"id": jobid, "comment": comment, "state": state})
    return jobs


def job_field(jobid: str, field: str) -> str:
    out = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True).stdout
    match = re.search(rf"\b{field}=(\S+)", out)
    return match[1] if match else ""


def tres_per_job(jobid: str) -> str:
    return job_field(jobid, "TresPerJob")


def minutes(time_limit: str) -> int:
    """SLURM's [D-]HH:MM:SS as minutes."""
    days, _, hms = time_limit.rpartition("-")
    h, m, _ = (int(x) for x in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m


def cancel_one_running_training_job(workdir: Path, proc: subprocess.Popen, wait_s: float = 240) -> str:
    """scancel a training job once it has started training (its log exists); return its job id."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None:
        running = [j for j in squeue_jobs(workdir) if "train_trials" in j["comment"] and j["state"] == "RUNNING"]
        if running and list((workdir / "logs" / "train_trials").rglob("*.log")):
            jobid = running[0]["id"]
            subprocess.run(["scancel", jobid], check=True, timeout=30)
            return jobid
        time.sleep(0.5)
    pytest.fail("no training job was seen running to cancel")


def test_tiny_workflow_on_slurm(slurm_cluster, workdir):
    t0 = time.monotonic()
    log_path = workdir / "snakemake-slurm.log"
    args = [
        "--profile", "profiles/slurm",
        "--configfile", "slurm.yaml",
        # Test-only: no slurmdbd here, so sacct knows nothing; squeue does (MinJobAge=600).
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2",
    ]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            snakemake_cmd(RUN_TIMEOUT_S, *args), cwd=workdir, env=run_env(), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            cancelled = cancel_one_running_training_job(workdir, proc)
            rc = proc.wait(timeout=RUN_TIMEOUT_S + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
    run_s = time.monotonic() - t0
    output = log_path.read_text()
    print(f"workflow on SLURM: {run_s:.0f}s (cancelled job {cancelled})")
    assert rc == 0, f"snakemake exited {rc} after {run_s:.0f}s (124/137: timed out):\n{output[-6000:]}"

    # The cancelled job failed, was submitted again, and the rerun finished the work.
    assert re.search(rf"SLURM-job '{cancelled}' failed", output), output[-4000:]
    assert "Trying to restart job" in output
    summary = (workdir / "results" / "zoo" / "summary.csv").read_text()
    assert len(summary.strip().splitlines()) >= 2, summary
    zoos = list((workdir / "results" / "zoo").rglob("*.nc"))
    assert zoos, "no gathered zoo"
    chunks = sorted((workdir / "results" / "train").rglob("chunk*.nc"))
    assert [c.name for c in chunks] == ["chunk0.nc", "chunk1.nc"], chunks

    # Every training job went through SLURM with one GPU; the cancelled one is among them.
    jobs = squeue_jobs(workdir)
    train = [j for j in jobs if "train_trials" in j["comment"]]
    assert {j["state"] for j in train} == {"COMPLETED", "CANCELLED"}, train
    assert cancelled in {j["id"] for j in train if j["state"] == "CANCELLED"}
    assert len([j for j in train if j["state"] == "COMPLETED"]) == 2, train
    for job in train:
        assert tres_per_job(job["id"]) == "gres:gpu:1", (job, tres_per_job(job["id"]))
    assert not any("download_dataset" in j["comment"] for j in jobs), "download must run on the login node"

    # The retry of the cancelled chunk (attempt 2) asked for twice the memory and time.
    comment = next(j["comment"] for j in train if j["id"] == cancelled)
    retry = next(j["id"] for j in train if j["comment"] == comment and j["state"] == "COMPLETED")
    mem = {jid: int(job_field(jid, "MinMemoryNode").rstrip("M")) for jid in (cancelled, retry)}
    limit = {jid: minutes(job_field(jid, "TimeLimit")) for jid in (cancelled, retry)}
    assert mem[retry] == 2 * mem[cancelled] and limit[retry] == 2 * limit[cancelled], (mem, limit)

    # The report is built from this run's metadata, in the same working directory.
    t1 = time.monotonic()
    report = subprocess.run(
        snakemake_cmd(REPORT_TIMEOUT_S, *args[:4], "--report", "report.zip"),
        cwd=workdir, env=run_env(), capture_output=True, text=True,
    )
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert (workdir / "report.zip").stat().st_size > 10_000
    print(f"report: {time.monotonic() - t1:.0f}s")
