"""End to end through a real SLURM: the shipped profile, unmodified, on a one-node cluster on localhost.

tests/slurm/start_cluster.sh installs and starts SLURM 22.05 (Debian packages) with accounting (MariaDB +
slurmdbd, so the profile's `sacct` status checks work as on production clusters) and count-only fake
GPUs, so training jobs go through the profile's real `--gpus=1` request and run on the CPU. The partition
gets a 10-minute MaxTime. One training job is cancelled while it runs and the controller and accounting
daemons are then stopped for longer than the executor tolerates on its own; the run must finish without
a rerun. A second run fans out one trial per job as a SLURM job array, through `make install-profile`
and `--profile slurm` as the README says. Needs root (CI runs as root).
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
# Every snakemake call is bounded: a lost status check used to make Snakemake wait forever.
RUN_TIMEOUT_S = 900
REPORT_TIMEOUT_S = 180
# The partition's time limit during the tests (minutes): retries must stay within it.
MAX_TIME = 10
# The executor alone drops every job after 5 failed status queries in a row (~1 s with the accounting
# daemon down, ~45 s with the controller down); weightzoo.cluster waits outages out.
OUTAGE_S = 75
ACCOUNT = "weightzoo"  # created by start_cluster.sh

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
    partition = run_env()["WEIGHTZOO_SLURM_PARTITION"]
    before = subprocess.run(["sinfo", "-h", "-p", partition, "-o", "%l"], capture_output=True, text=True).stdout.strip()
    set_max_time(MAX_TIME)
    yield
    if started_here:
        subprocess.run(["bash", str(SLURM_SCRIPTS / "stop_cluster.sh")], timeout=120, check=False)
    else:
        set_max_time(before)


def set_max_time(limit) -> None:
    """The test partition's MaxTime, live (a controller restart reads slurm.conf's again)."""
    partition = run_env()["WEIGHTZOO_SLURM_PARTITION"]
    subprocess.run(["scontrol", "update", f"PartitionName={partition}", f"MaxTime={limit}"], check=True, timeout=30)


def slurm_config(path: Path, trials: int = 2) -> Path:
    """The tiny test config cut to one architecture and ``trials`` trials, one trial per job.

    Two GPU jobs run side by side on the node's two fake GPUs; `trials_per_job: 1` is the shape users
    asked for. The full tiny config takes minutes on a 2-core machine even without SLURM.
    """
    cfg = yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text())
    exp = dict(cfg["experiments"][0])
    exp["arch"] = {k: (v[:1] if isinstance(v, list) else v) for k, v in exp["arch"].items()}
    exp["datasets"] = exp["datasets"][:1]
    exp.update(trials=trials, trials_per_job=1)
    cfg["experiments"] = [exp]
    cfg["datasets"] = {d: cfg["datasets"][d] for d in exp["datasets"]}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A copy of the workflow, so runs never touch the repository's results/ and .snakemake/."""
    wd = tmp_path / "wf"
    wd.mkdir()
    for name in ("Snakefile", "workflow", "config", "profiles", "envs", "src", "Makefile", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, wd / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, wd / name)
    slurm_config(wd / "slurm.yaml")
    return wd


def run_env(account: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIGHTZOO_SLURM_")}
    # The profile reads partition and account from these (documented in docs/cluster.md).
    env.update(WEIGHTZOO_SLURM_PARTITION="debug", WEIGHTZOO_SLURM_ACCOUNT=account, PYTHONUNBUFFERED="1")
    return env


def snakemake_cmd(timeout_s: int, *args: str) -> list[str]:
    return ["timeout", "-k", "10", str(timeout_s), sys.executable, "-m", "snakemake", *args]


def squeue_jobs(workdir: Path) -> list[dict]:
    """Jobs of this workflow copy that slurmctld still knows (MinJobAge=600 keeps finished ones)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%r|%Z"], capture_output=True, text=True, timeout=30
    ).stdout
    jobs = []
    for line in out.splitlines():
        jobid, comment, state, reason, wd = line.split("|", 4)
        if Path(wd) == workdir:
            jobs.append({"id": jobid, "comment": comment, "state": state, "reason": reason})
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


def stop_daemons_for(seconds: float) -> None:
    """Stop slurmctld and slurmdbd (by their PIDs), wait, start them again keeping the controller's jobs."""
    for name in ("slurmctld", "slurmdbd"):
        pid = int((STATE / f"{name}.pid").read_text())
        os.kill(pid, 15)
    time.sleep(seconds)
    proc = subprocess.run(["bash", str(SLURM_SCRIPTS / "start_cluster.sh"), "--keep-jobs"], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    set_max_time(MAX_TIME)


def job_steps() -> set[str]:
    """Job ids with a launched ``srun`` step (``ID.0``, ``ID.1``, ...; not the ``batch`` or ``extern`` steps that
    exist from the start): its allocation was confirmed by the controller."""
    out = subprocess.run(["squeue", "-h", "--steps", "-o", "%i"], capture_output=True, text=True, timeout=30).stdout
    return {step.split(".")[0] for step in out.split() if step.partition(".")[2].isdigit()}


def wait_for_retry(workdir: Path, cancelled: str, proc: subprocess.Popen, wait_s: float = 240) -> None:
    """Until the cancelled chunk was submitted again (Snakemake saw the failure) and the retry's ``srun`` step
    runs: an outage before that makes the step's ``srun`` fail ("Unable to confirm allocation"), a second
    failure of the same chunk that this test is not about (it only happened under load)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None:
        jobs = squeue_jobs(workdir)
        comment = next((j["comment"] for j in jobs if j["id"] == cancelled), None)
        retries = [j for j in jobs if comment and j["comment"] == comment and j["id"] != cancelled]
        if any(j["state"] == "COMPLETED" for j in retries) or (
                any(j["state"] == "RUNNING" for j in retries) and {j["id"] for j in retries} & job_steps()):
            return
        time.sleep(0.5)
    pytest.fail("the cancelled training job was not submitted again and started")


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


def check_time_limits(jobs: list[dict]) -> None:
    """Nothing asked for more than the partition allows, so nothing pends on PartitionTimeLimit."""
    for job in jobs:
        assert job["reason"] != "PartitionTimeLimit", job
        assert minutes(job_field(job["id"], "TimeLimit")) <= MAX_TIME, (job, job_field(job["id"], "TimeLimit"))


def test_tiny_workflow_on_slurm(slurm_cluster, workdir):
    t0 = time.monotonic()
    log_path = workdir / "snakemake-slurm.log"
    # The profile as shipped; the flag only makes the first status check come sooner (default 40 s).
    args = ["--profile", "profiles/slurm", "--configfile", "slurm.yaml", "--slurm-init-seconds-before-status-checks", "2"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            snakemake_cmd(RUN_TIMEOUT_S, *args), cwd=workdir, env=run_env(ACCOUNT), stdout=log,
            stderr=subprocess.STDOUT
        )
        try:
            cancelled = cancel_one_running_training_job(workdir, proc)
            wait_for_retry(workdir, cancelled, proc)
            t_outage = time.monotonic()
            stop_daemons_for(OUTAGE_S)
            outage_s = time.monotonic() - t_outage
            rc = proc.wait(timeout=RUN_TIMEOUT_S + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
    run_s = time.monotonic() - t0
    output = log_path.read_text()
    print(f"workflow on SLURM: {run_s:.0f}s (cancelled job {cancelled}; controller and slurmdbd down {outage_s:.0f}s)")
    assert rc == 0, f"snakemake exited {rc} after {run_s:.0f}s (124/137: timed out):\n{output[-6000:]}"

    # The outage was noticed, waited out, and the run went on without a rerun.
    assert "SLURM status query (sacct) failed; retrying" in output, output[-4000:]
    assert "SLURM answers again" in output
    # The cancelled job failed, was submitted again, and the rerun finished the work.
    assert re.search(rf"SLURM-job '{cancelled}' failed", output), output[-4000:]
    assert "Trying to restart job" in output
    summary = (workdir / "results" / "zoo" / "summary.csv").read_text()
    assert len(summary.strip().splitlines()) >= 2, summary
    zoos = list((workdir / "results" / "zoo").rglob("*.nc"))
    assert zoos, "no gathered zoo"
    chunks = sorted((workdir / "results" / "train").rglob("chunk*.nc"))
    assert [c.name for c in chunks] == ["chunk0.nc", "chunk1.nc"], chunks

    # Every training job went through SLURM with one GPU and the account; the cancelled one is among them.
    jobs = squeue_jobs(workdir)
    train = [j for j in jobs if "train_trials" in j["comment"]]
    assert {j["state"] for j in train} == {"COMPLETED", "CANCELLED"}, train
    assert cancelled in {j["id"] for j in train if j["state"] == "CANCELLED"}
    assert len([j for j in train if j["state"] == "COMPLETED"]) == 2, train
    for job in train:
        assert tres_per_job(job["id"]) == "gres:gpu:1", (job, tres_per_job(job["id"]))
    assert {job_field(j["id"], "Account") for j in jobs} == {ACCOUNT}
    assert not any("download_dataset" in j["comment"] for j in jobs), "download must run on the login node"
    check_time_limits(jobs)

    # The retry of the cancelled chunk (attempt 2) asked for twice the memory and time, the time capped
    # at the partition's MaxTime.
    comment = next(j["comment"] for j in train if j["id"] == cancelled)
    retry = next(j["id"] for j in train if j["comment"] == comment and j["state"] == "COMPLETED")
    mem = {jid: int(job_field(jid, "MinMemoryNode").rstrip("M")) for jid in (cancelled, retry)}
    limit = {jid: minutes(job_field(jid, "TimeLimit")) for jid in (cancelled, retry)}
    assert mem[retry] == 2 * mem[cancelled], mem
    assert limit[retry] == min(2 * limit[cancelled], MAX_TIME) and limit[cancelled] < MAX_TIME, limit

    # The report is built from this run's metadata, in the same working directory.
    t1 = time.monotonic()
    report = subprocess.run(
        snakemake_cmd(REPORT_TIMEOUT_S, *args[:4], "--report", "report.zip"),
        cwd=workdir, env=run_env(ACCOUNT), capture_output=True, text=True,
    )
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert (workdir / "report.zip").stat().st_size > 10_000
    print(f"report: {time.monotonic() - t1:.0f}s")


def readme_watch_command() -> str:
    """The squeue line of the README's cluster section."""
    readme = (ROOT / "README.md").read_text()
    line = next(l for l in readme.splitlines() if l.startswith("squeue --me"))
    return line.split(";")[0]


def test_per_trial_job_array_through_the_readme_path(slurm_cluster, workdir, tmp_path):
    """`make install-profile`, `--profile slurm`, no account, one trial per job as one SLURM job array."""
    slurm_config(workdir / "slurm.yaml", trials=4)
    home = tmp_path / "home"
    home.mkdir()
    env = {**run_env(account=""), "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    make = subprocess.run(["make", "-s", "install-profile"], cwd=workdir, env={**env, "MAKEFLAGS": ""},
                          capture_output=True, text=True, timeout=60)
    assert make.returncode == 0, make.stderr
    t0 = time.monotonic()
    proc = subprocess.run(
        snakemake_cmd(RUN_TIMEOUT_S, "--profile", "slurm", "--configfile", "slurm.yaml", "--until", "gather_zoo",
                      "--slurm-array-jobs", "train_trials", "--slurm-init-seconds-before-status-checks", "2"),
        cwd=workdir, env=env, capture_output=True, text=True,
    )
    output = proc.stdout + proc.stderr
    print(f"4 trials as a job array: {time.monotonic() - t0:.0f}s")
    assert proc.returncode == 0, output[-6000:]
    noise = [l for l in output.splitlines() if "account" in l.lower() and "slurm_account=" not in l]
    assert not noise, noise  # no guessing, no warnings without an account

    chunks = sorted((workdir / "results" / "train").rglob("chunk*.nc"))
    assert [c.name for c in chunks] == [f"chunk{i}.nc" for i in range(4)]
    jobs = squeue_jobs(workdir)
    train = [j for j in jobs if "train_trials" in j["comment"]]
    assert len(train) == 4 and {j["state"] for j in train} == {"COMPLETED"}, train
    assert len({j["id"].split("_")[0] for j in train}) == 1 and all("_" in j["id"] for j in train), train
    check_time_limits(jobs)

    # The README's watch command shows each job's whole rule and wildcards.
    watch = subprocess.run(readme_watch_command(), shell=True, capture_output=True, text=True, timeout=30).stdout
    for job in jobs:
        if job["state"] in ("RUNNING", "PENDING", "COMPLETED"):
            assert job["comment"] in watch or job["state"] == "COMPLETED", (job, watch)
    wide = subprocess.run(readme_watch_command().replace("--me", "--me -t all"), shell=True, capture_output=True,
                          text=True, timeout=30).stdout
    for job in train:
        assert job["comment"] in wide, (job["comment"], wide)


def test_outage_longer_than_the_limit_ends_the_run(slurm_cluster, workdir):
    """With WEIGHTZOO_SLURM_OUTAGE_MINUTES=0.5 and the daemons down for longer, the run stops by itself."""
    slurm_config(workdir / "slurm.yaml", trials=1)
    env = {**run_env(), "WEIGHTZOO_SLURM_OUTAGE_MINUTES": "0.5"}
    args = ["--profile", "profiles/slurm", "--configfile", "slurm.yaml", "--slurm-init-seconds-before-status-checks", "2"]
    log_path = workdir / "snakemake-slurm.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(snakemake_cmd(RUN_TIMEOUT_S, *args), cwd=workdir, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not any(j["state"] == "RUNNING" and "train_trials" in j["comment"] for j in squeue_jobs(workdir)):
                assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()[-3000:]
                time.sleep(0.5)
            for name in ("slurmctld", "slurmdbd"):
                os.kill(int((STATE / f"{name}.pid").read_text()), 15)
            t_down = time.monotonic()
            rc = proc.wait(timeout=300)
            ended_s = time.monotonic() - t_down
        finally:
            if proc.poll() is None:
                proc.kill()
            restart = subprocess.run(["bash", str(SLURM_SCRIPTS / "start_cluster.sh"), "--keep-jobs"],
                                     capture_output=True, text=True, timeout=180)
            set_max_time(MAX_TIME)
    output = log_path.read_text()
    print(f"outage over the limit: snakemake ended {ended_s:.0f}s after the daemons stopped, exit {rc}")
    assert restart.returncode == 0, restart.stderr
    assert rc not in (0, 124, 137), output[-4000:]
    assert "SLURM status queries (sacct) have failed for" in output and "run the same snakemake command" in output
    # issue 14: no traceback, the last word is the outage's, and the next start will wait for the jobs of this run
    assert "Traceback" not in output and "An outage stopped this run, no job failed" in output
    assert "Exiting because a SLURM outage stopped the run (no job failed)" in output
    assert "Exiting because a job execution failed" not in output
    assert (workdir / ".snakemake/weightzoo/slurm-outage").exists()
    assert ended_s < 30 + 60 + 120, output[-4000:]  # the limit, one back-off step, shutdown
