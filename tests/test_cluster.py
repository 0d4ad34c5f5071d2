"""Time, memory and chunk size of training jobs (weightzoo.cluster), and the SLURM status-outage guard."""

import asyncio
import dataclasses
import subprocess

import pytest

from weightzoo import cluster
from weightzoo.cluster import (
    CPU_THROUGHPUT,
    SlurmOutage,
    auto_trials_per_job,
    capped,
    chunk_cost,
    cluster_limits,
    network_size,
    outage_tolerant,
    parse_slurm_minutes,
    partition_max_minutes,
    resolve_trials_per_job,
)
from weightzoo.config import Experiment, load_experiments

TRAINING = {"epochs": 20, "batch_size": 100, "snapshots": [0, 1, -1], "device": "cuda"}


def exp(model="dnn", dataset="mnist", trials=1000, per_job=500, **arch):
    defaults = {"dnn": {"hidden": 50}, "cnn": {"channels": 4},
                "vit": {"patch_size": 7, "embed_dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "pool": "cls"}}
    return Experiment(model, dataset, "a", {**defaults[model], **arch}, trials, per_job)


def test_network_size_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from weightzoo.models import build_model, model_kwargs

    paper_vit = {"patch_size": 28, "embed_dim": 784, "depth": 1, "heads": 4, "mlp_ratio": 4.0, "pool": "mean"}
    for model, arch, dataset in [("dnn", {"hidden": 200}, "mnist"), ("dnn", {"hidden": 1000}, "cifar10"),
                                 ("cnn", {"channels": 16}, "fmnist"), ("cnn", {"channels": 32}, "cifar10"),
                                 ("vit", exp("vit").arch_params, "mnist"), ("vit", paper_vit, "mnist")]:
        shape = cluster.input_shape(dataset)
        net = build_model(model, **model_kwargs(model, arch, shape, 10))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(torch.zeros(1, *shape))
        macs, params, _ = network_size(model, arch, dataset)
        assert params == sum(p.numel() for p in net.parameters()), (model, arch)
        assert macs == pytest.approx(counter.get_total_flops() / 2, rel=0.02), (model, arch)


def test_throughput_model_reproduces_the_benchmarks():
    """docs/benchmarks.md, vectorised, 1 thread, wall: (case, MACs per sample, trial-samples/s)."""
    measured = [("dnn", 3995, 139_213), ("dnn", 42_200, 69_062), ("dnn", 198_800, 21_257),
                ("cnn", 51_376, 26_002), ("cnn", 205_000, 8_923), ("vit", 56_768, 6_999)]
    for model, macs, rate in measured:
        flops = macs * (6 + 2 * 3500 / 3000)
        modelled = 1 / CPU_THROUGHPUT[model].seconds_per_trial_sample(flops)
        assert modelled == pytest.approx(rate, rel=0.2), model


def test_chunk_cost_grows_with_trials_epochs_and_size():
    small, big = chunk_cost(exp(), 100, TRAINING), chunk_cost(exp(), 500, TRAINING)
    assert small.minutes < big.minutes and small.mem_mb <= big.mem_mb
    assert chunk_cost(exp(hidden=200), 100, TRAINING).minutes > small.minutes
    longer = chunk_cost(exp(), 100, {**TRAINING, "epochs": 40})
    assert longer.minutes > small.minutes
    cpu = chunk_cost(exp(), 100, {**TRAINING, "device": "cpu"})
    assert cpu.minutes > small.minutes  # the CPU is the slower device
    assert small.minutes >= cluster.STARTUP_MINUTES
    assert small.mem_mb % 1000 == 0 and small.mem_mb >= cluster.BASE_MEMORY_MB


def test_memory_covers_the_snapshots_of_the_largest_dnn():
    """100 trials of the CIFAR-10 DNN h=1000 hold 3 snapshots of 4.1 M parameters: 4.9 GB of float32."""
    cost = chunk_cost(exp(dataset="cifar10", hidden=1000), 100, TRAINING)
    assert cost.mem_mb >= 2 * 4900


def test_retries_never_exceed_the_cap():
    assert [capped(100, a, 250) for a in (1, 2, 3)] == [100, 200, 250]
    assert [capped(100, a, None) for a in (1, 2, 3)] == [100, 200, 300]


def test_auto_chunks_fit_half_the_cap_and_are_even():
    e = exp(model="cnn", dataset="cifar10", channels=32, per_job="auto")
    for cap in (60, 600, 2880):
        k = auto_trials_per_job(e, TRAINING, cap)
        assert chunk_cost(e, k, TRAINING).minutes <= cap / 2 or k == 1
        n_chunks = -(-e.trials // k)
        assert n_chunks * k - e.trials < n_chunks  # even chunks: the last is at most one short per chunk
    assert auto_trials_per_job(e, TRAINING, 60) < auto_trials_per_job(e, TRAINING, 2880)
    tiny = exp(dataset="digits", trials=4, per_job="auto")
    assert auto_trials_per_job(tiny, {**TRAINING, "epochs": 2}, None) == 4


def test_resolve_replaces_auto_and_warns_over_the_cap(caplog):
    fixed, auto = exp(model="cnn", dataset="cifar10", channels=32), exp(per_job="auto")
    resolved = resolve_trials_per_job([fixed, auto], TRAINING, 60)
    assert resolved[0] is fixed and isinstance(resolved[1].trials_per_job, int)
    assert "capped" in caplog.text and "trials_per_job: auto" in caplog.text


def test_config_accepts_auto():
    config = {"datasets": {"digits": {}}, "training": {"epochs": 2, "snapshots": [0, -1]},
              "experiments": [{"model": "dnn", "datasets": ["digits"], "arch": {"hidden": 4}, "trials": 5,
                               "trials_per_job": "auto"}]}
    (e,) = resolve_trials_per_job(load_experiments(config), {**TRAINING, **config["training"]}, None)
    assert e.trials_per_job == 5 and e.n_chunks == 1


@pytest.mark.parametrize("text, minutes", [("INFINITE", None), ("UNLIMITED", None), ("30:00", 30),
                                           ("1:00:00", 60), ("2-00:00:00", 2880), ("15", 15), ("1-12", 2160),
                                           ("0:30:30", 31)])
def test_parse_slurm_minutes(text, minutes):
    assert parse_slurm_minutes(text) == minutes


def test_partition_max_minutes_reads_sinfo(monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda name: "/usr/bin/sinfo")
    out = "debug*|1:00:00\ngpu|2-00:00:00\n"

    def run(cmd, **kwargs):
        rows = out if "-p" not in cmd else "\n".join(r for r in out.splitlines() if r.startswith(cmd[-1]))
        return dataclasses.make_dataclass("R", ["stdout"])(rows)

    assert partition_max_minutes(None, run=run) == 60
    assert partition_max_minutes("gpu", run=run) == 2880


def test_cluster_limits_detect_once_and_export():
    env, calls = {}, []
    assert cluster_limits(env, detect=lambda p: calls.append(p) or 45) == (45, None)
    assert env[cluster.MAX_RUNTIME_ENV] == "45"
    assert cluster_limits(env, detect=lambda p: 1 / 0) == (45, None)  # a job re-reads, never re-detects
    assert cluster_limits({cluster.MAX_RUNTIME_ENV: "none", cluster.MAX_MEM_ENV: "64000"}) == (None, 64000)
    env = {cluster.PARTITION_ENV: "gpu"}
    cluster_limits(env, detect=lambda p: calls.append(p))
    assert calls == [None, "gpu"] and env[cluster.MAX_RUNTIME_ENV] == "none"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.now += seconds


class Logger:
    def __init__(self):
        self.messages = []

    def warning(self, msg):
        self.messages.append(msg)

    debug = warning


def run_queries(answers, limit_s, clock):
    """answers: per call of the plugin's query, a dict (SLURM answered) or None (it failed)."""
    answers = iter(answers)

    async def query(command, logger):
        await clock.sleep(1)
        status = next(answers)
        return (status, 0.1) if status is not None else (None, None)

    return outage_tolerant(query, limit_s, clock=clock, sleep=clock.sleep)


def test_outage_shorter_than_the_limit_is_waited_out():
    clock, logger = FakeClock(), Logger()
    tolerant = run_queries([None] * 12 + [{"1": "COMPLETED"}], 900, clock)
    status, _ = asyncio.run(tolerant("sacct -X --name x", logger))
    assert status == {"1": "COMPLETED"}
    assert 300 < clock.now < 900  # 12 failures, back-off 5 s growing to 60 s
    assert any("retrying" in m for m in logger.messages) and "answers again" in logger.messages[-1]


def test_outage_longer_than_the_limit_ends_the_run_in_bounded_time(tmp_path, monkeypatch):
    from snakemake.scheduling import job_scheduler

    monkeypatch.setattr(cluster, "OUTAGE_MARKER", tmp_path / "outage")
    monkeypatch.setattr(job_scheduler, "_ERROR_MSG_FINAL", job_scheduler._ERROR_MSG_FINAL)  # the run's last line
    clock, logger = FakeClock(), Logger()
    tolerant = run_queries([None] * 10_000, 600, clock)
    with pytest.raises(SlurmOutage, match=r"failed for 10\.\d min.*run the same snakemake command") as info:
        asyncio.run(tolerant("squeue --name x", logger))
    # issue 14: it says an outage (not a failed job) stopped the run, and to wait for or cancel the jobs first
    message = str(info.value)
    assert "An outage stopped this run, no job failed" in message
    assert "wait until SLURM answers and `squeue --name x` lists none of them (or cancel them: `scancel --name x`)" \
           in message
    assert (tmp_path / "outage").read_text() == "x\n"  # the next start checks for the jobs of run x
    assert 600 <= clock.now <= 600 + 60
    assert len([m for m in logger.messages if "retrying" in m]) <= 11  # about one warning a minute


def test_outage_ends_without_traceback_or_job_failed(tmp_path, monkeypatch):
    """Issue 14, item 5: the outage message came with a 25-line traceback and the last line "Exiting because a job
    execution failed" although no job failed."""
    from snakemake.exceptions import format_exception_to_string
    from snakemake.scheduling import job_scheduler

    monkeypatch.setattr(cluster, "OUTAGE_MARKER", tmp_path / "outage")
    monkeypatch.setattr(job_scheduler, "_ERROR_MSG_FINAL", job_scheduler._ERROR_MSG_FINAL)
    assert "a job execution failed" in job_scheduler._ERROR_MSG_FINAL
    tolerant = run_queries([None] * 10_000, 60, FakeClock())
    with pytest.raises(SlurmOutage) as info:
        asyncio.run(tolerant("sacct -X --name x", Logger()))
    printed = format_exception_to_string(info.value, {})  # what Snakemake's scheduler prints for it
    assert printed == f"Error: {info.value}" and "Traceback" not in printed
    assert job_scheduler._ERROR_MSG_FINAL == cluster.OUTAGE_ENDING


def test_harden_patches_the_installed_plugin(monkeypatch):
    plugin = pytest.importorskip("snakemake_executor_plugin_slurm")
    monkeypatch.setattr(plugin, "query_job_status", plugin.query_job_status)
    monkeypatch.setattr(plugin.Executor, "get_account_arg", plugin.Executor.get_account_arg)
    message = cluster.harden_slurm_executor({cluster.OUTAGE_ENV: "12"})
    assert "12 min" in message and plugin.query_job_status.weightzoo
    assert cluster.harden_slurm_executor({}) == "already patched"

    job = dataclasses.make_dataclass("Job", ["resources"])({})
    assert list(plugin.Executor.get_account_arg(None, job)) == [""]  # no -A, no guessing, no warnings


def test_capped_runtime_reads_the_exported_cap():
    assert cluster.capped_runtime(120, 3, {cluster.MAX_RUNTIME_ENV: "300"}) == 300
    assert cluster.capped_runtime(120, 3, {cluster.MAX_RUNTIME_ENV: "none"}) == 360
    assert cluster.capped_runtime(30, 1, {}) == 30


def test_sacct_cancelled_by_counts_as_cancelled():
    """sacct says `CANCELLED by 0`; the plugin only knows `CANCELLED` and would wait for the job forever."""
    clock = FakeClock()
    tolerant = run_queries([{"3": "CANCELLED by 0", "4": "COMPLETED", "5": "RUNNING"}], 900, clock)
    status, _ = asyncio.run(tolerant("sacct -X --name x", Logger()))
    assert status == {"3": "CANCELLED", "4": "COMPLETED", "5": "RUNNING"}


def test_the_next_start_waits_for_the_jobs_an_outage_left_running(tmp_path, monkeypatch):
    """Issue 14, item 5: rerunning at once after the outage message resubmitted chunks whose jobs were still
    RUNNING (trained twice). The next start refuses while SLURM lists jobs of the stopped run, or does not answer."""
    marker = tmp_path / "outage"
    cluster.record_outage("run-7", marker)
    monkeypatch.setattr(cluster.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls = []

    def squeue(stdout="", returncode=0, stderr=""):
        def run(cmd, **kwargs):
            calls.append(cmd)
            return subprocess.CompletedProcess(cmd, returncode, stdout, stderr)

        return run

    message = cluster.jobs_left_by_an_outage(marker, run=squeue("41 RUNNING\n42 PENDING\n"))
    assert calls[-1] == ["squeue", "-h", "--name", "run-7", "-o", "%i %T"]
    assert message.startswith("2 job(s) of an earlier run (SLURM run ID run-7) that a SLURM outage stopped are still "
                              "in SLURM: 41 (RUNNING), 42 (PENDING). Before rerunning, wait")
    assert "`scancel --name run-7`" in message and marker.exists()
    message = cluster.jobs_left_by_an_outage(marker, run=squeue(returncode=1, stderr="Unable to contact slurm controller"))
    assert "SLURM does not answer yet (squeue: Unable to contact slurm controller)" in message and marker.exists()
    assert cluster.jobs_left_by_an_outage(marker, run=squeue("")) == ""  # all done: start, and forget the outage
    assert not marker.exists()
    assert cluster.jobs_left_by_an_outage(marker, run=squeue("41 RUNNING\n")) == ""  # no outage recorded


# ------------------------------------------------------------------------------------------- analysis jobs
def cifar_h1000(trials=1000):
    return exp(dataset="cifar10", hidden=1000, trials=trials, per_job=100)


def test_analysis_memory_is_blocks_and_process_not_the_zoo():
    """A streaming job's memory does not grow with the weights it reads: 1,000 or 100,000 trials of the CIFAR-10
    DNN h=1000 (49 GB or 4.9 TB of zoo) ask the same; only per-trial tables add a little."""
    for rule in ("gather_zoo", "export_zoo"):
        small = cluster.analysis_cost(rule, cluster.analysis_job([cifar_h1000(1000)], 3))
        huge = cluster.analysis_cost(rule, cluster.analysis_job([cifar_h1000(100_000)], 3))
        assert small.mem_mb == huge.mem_mb <= 4000, rule  # the target: no job above 4 GB
        block = cluster.block_mb(cluster.ANALYSIS_COSTS[rule].block)
        assert small.mem_mb >= cluster.ANALYSIS_PROCESS_MB + 2 * block, rule
    # t-SNE's PCA holds a trials x trials Gram matrix: it grows with the trials, never with the parameters
    for trials in (1000, 10_000):
        narrow, wide = (cluster.analysis_cost("project_trials", cluster.analysis_job([e], 3))
                        for e in (exp(hidden=5, trials=trials), cifar_h1000(trials)))
        assert narrow.mem_mb == wide.mem_mb, trials
    assert cluster.analysis_cost("project_trials", cluster.analysis_job([cifar_h1000()], 3)).mem_mb <= 4000
    features = [cluster.analysis_cost("extract_features", cluster.analysis_job([cifar_h1000(n)], 3, ["cifar10"]))
                for n in (1000, 10_000)]
    assert features[0].mem_mb <= 4000 and features[1].mem_mb <= 2 * features[0].mem_mb


def test_analysis_time_is_linear_in_trials_and_parameters():
    def seconds(rule, job):
        return (cluster.analysis_cost(rule, job).minutes - cluster.ANALYSIS_STARTUP_MINUTES) * 60 / cluster.SAFETY_FACTOR

    for rule in ("gather_zoo", "extract_features"):
        times = [seconds(rule, cluster.analysis_job([cifar_h1000(n)], 3)) for n in (1000, 2000, 4000)]
        assert times[0] < times[1] < times[2], rule
        assert times[2] - times[1] == pytest.approx(2 * (times[1] - times[0]), rel=0.1), rule
    # the Gram matrix of t-SNE's PCA reads a layer of b blocks (b + 1) / 2 times: more than linear once b > 1
    times = [seconds("project_trials", cluster.analysis_job([cifar_h1000(n)], 3)) for n in (1000, 2000, 4000)]
    assert times[2] - times[1] > 2 * (times[1] - times[0]) > 0
    narrow = cluster.analysis_cost("gather_zoo", cluster.analysis_job([exp(hidden=5)], 3))
    wide = cluster.analysis_cost("gather_zoo", cluster.analysis_job([exp(hidden=200)], 3))
    assert narrow.minutes < wide.minutes
    # gather copies every snapshot, the analyses read the final weights (their slopes include the others)
    one = cluster.analysis_cost("gather_zoo", cluster.analysis_job([cifar_h1000()], 1))
    three = cluster.analysis_cost("gather_zoo", cluster.analysis_job([cifar_h1000()], 3))
    assert three.values == 3 * one.values


def test_analysis_requests_grow_with_the_attempt_and_stop_at_the_cap():
    request = cluster.analysis_cost("gather_zoo", cluster.analysis_job([cifar_h1000()], 3))
    assert [capped(request.minutes, a, None) for a in (1, 2, 3)] == [request.minutes * a for a in (1, 2, 3)]
    assert max(capped(request.minutes, a, 45) for a in (1, 2, 3)) == 45


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory):
    """`snakemake -n` of config/paper.yaml under a partition limit of 60 minutes (the jobs up to the checkpoint)."""
    import os
    import sys

    from conftest import ROOT

    env = {**os.environ, cluster.MAX_RUNTIME_ENV: "60", cluster.MAX_MEM_ENV: "64000"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
                           str(ROOT), "-n", "--configfile", "config/paper.yaml"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def dry_run_jobs(text, rule):
    """(wildcards, resources) of every job of ``rule`` in a dry run's listing."""
    jobs = []
    for block in text.split(f"rule {rule}:")[1:]:
        fields = dict(line.strip().split(": ", 1) for line in block.splitlines()[1:12] if ": " in line)
        wildcards = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if kv)
        resources = dict(kv.split("=", 1) for kv in fields["resources"].split(", "))
        jobs.append((wildcards, resources))
    return jobs


def test_paper_dry_run_asks_what_the_cost_model_says(paper_dry_run):
    import yaml

    from conftest import ROOT

    by_id = {e.id: e for e in load_experiments(_filled(yaml.safe_load((ROOT / "config/paper.yaml").read_text())))}
    gathers = dry_run_jobs(paper_dry_run, "gather_zoo")
    assert len(gathers) == len(by_id)
    capped_any = False
    for wildcards, resources in gathers:
        e = by_id[f"{wildcards['model']}/{wildcards['dataset']}/{wildcards['arch']}"]
        modelled = cluster.analysis_cost("gather_zoo", cluster.analysis_job([e], 3))
        assert int(resources["runtime"]) == min(modelled.minutes, 60), e.id
        assert int(resources["mem_mb"]) == modelled.mem_mb, e.id
        capped_any |= modelled.minutes > 60
    assert capped_any  # the CIFAR-10 DNN h=1000 zoo needs more than the partition's hour: capped, not above
    prepares = dry_run_jobs(paper_dry_run, "prepare_dataset")
    assert {w["dataset"] for w, _ in prepares} == {"mnist", "fmnist", "cifar10"}
    for wildcards, resources in prepares:
        modelled = cluster.analysis_cost("prepare_dataset", cluster.analysis_job([], 1, [wildcards["dataset"]]))
        assert (int(resources["runtime"]), int(resources["mem_mb"])) == (modelled.minutes, modelled.mem_mb)
    for _, resources in dry_run_jobs(paper_dry_run, "train_trials"):
        assert int(resources["runtime"]) <= 60


def _filled(config):
    from snakemake.utils import validate

    from conftest import ROOT

    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return config
