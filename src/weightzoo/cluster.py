"""What a training job asks the cluster for, and a SLURM executor that survives controller outages.

Time and memory of a training chunk come from a throughput model fitted to measured numbers
(docs/benchmarks.md): a trial-sample costs a fixed ``overhead_us`` (step loop, batch gathering, Adam) plus
its useful FLOPs (6 MACs to train it, 2 MACs for each sample evaluated per trained one) at ``gflops``.
Requests are the model's time times ``SAFETY_FACTOR``, plus ``STARTUP_MINUTES``, and never more than the
partition's maximum (``WEIGHTZOO_SLURM_MAX_RUNTIME`` or the partition's MaxTime, read with ``sinfo``),
retries included. ``trials_per_job: auto`` picks the chunk size whose first attempt fits half that cap.

The Snakefile imports this module in every process; it imports torch (through weightzoo.models) to count
the networks' cost on the meta device.
"""

import asyncio
import dataclasses
import functools
import logging
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from weightzoo.data.specs import spec
from weightzoo.models import families, family

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Throughput:
    """Cost of one trial-sample: ``overhead_us`` + useful FLOPs / ``gflops``."""

    overhead_us: float
    gflops: float
    source: str

    def seconds_per_trial_sample(self, flops: float) -> float:
        return self.overhead_us * 1e-6 + flops / (self.gflops * 1e9)


class _Throughputs(Mapping):
    """Per model: its family's measured CPU throughput (``ModelFamily.cpu_throughput``), times ``speedup``."""

    def __init__(self, speedup: float = 1.0, note: str = ""):
        self.speedup, self.note = speedup, note

    def __getitem__(self, model: str) -> Throughput:
        overhead_us, gflops, source = family(model).cpu_throughput
        return Throughput(overhead_us / self.speedup, gflops * self.speedup, self.note + source)

    def __iter__(self):
        return (f.name for f in families())

    def __len__(self):
        return sum(1 for _ in self)


# One process, one CPU thread, vectorised trainer; "wz vec wall" (1t) of docs/benchmarks.md, measured on
# a loaded 2-core AMD EPYC (load ~5), so on the slow side; each family module says how well the fit
# reproduces its measured points.
CPU_THROUGHPUT = _Throughputs()
# NOT MEASURED YET: a GPU is assumed 10x faster than one CPU core until bench/gpu_check.sh has run on one
# (it prints the measured figures to put here). The goal of ~1.2e7 trial-samples/s (paper grid in one GPU
# hour) is 100-1000x one core, so this errs towards asking for too much time, never too little.
GPU_ASSUMED_SPEEDUP = 10.0
GPU_THROUGHPUT = _Throughputs(GPU_ASSUMED_SPEEDUP, f"assumed: {GPU_ASSUMED_SPEEDUP:g}x ")
# Time asked for = modelled time x SAFETY_FACTOR + STARTUP_MINUTES (Snakemake, torch and CUDA start-up,
# data onto the device, writing the chunk: 22 s measured on the 2-core test machine; slow shared
# filesystems take longer). Memory asked for = modelled peak x MEMORY_SAFETY_FACTOR.
SAFETY_FACTOR = 2.0
STARTUP_MINUTES = 5
MEMORY_SAFETY_FACTOR = 1.5
# Host memory of a training process besides its weights: Python, torch, xarray, the CUDA context.
BASE_MEMORY_MB = 2500
# Without a known partition maximum, `trials_per_job: auto` aims at chunks of this many minutes.
DEFAULT_CHUNK_MINUTES = 240
# ... and never more trials than this in one job (GPU memory: see gpu_memory_mb).
MAX_TRIALS_PER_JOB = 1000
GPU_MEMORY_MB = 40000

def input_shape(dataset: str) -> tuple[int, int, int]:
    return spec(dataset).input_shape


def network_size(model: str, arch: dict, dataset: str) -> tuple[int, int, int]:
    """(MACs per sample, parameters, activations per sample) of one network (``ModelFamily.cost``)."""
    return family(model).cost(arch, input_shape(dataset), spec(dataset).n_classes)


@dataclass(frozen=True)
class ChunkCost:
    minutes: int  # time limit of the first attempt
    mem_mb: int
    trial_samples: float


def chunk_cost(exp, n_trials: int, training: dict) -> ChunkCost:
    """Time limit and host memory of one training job of ``n_trials`` trials of experiment ``exp``."""
    macs, params, _ = network_size(exp.model, exp.arch_params, exp.dataset)
    n_train, n_test = spec(exp.dataset).split_sizes()  # the default split: the config's test_fraction is not seen
    flops = macs * (6 + 2 * (n_train + n_test) / n_train)
    table = GPU_THROUGHPUT if training.get("device") == "cuda" else CPU_THROUGHPUT
    trial_samples = n_trials * n_train * training["epochs"]
    seconds = trial_samples * table[exp.model].seconds_per_trial_sample(flops)
    minutes = STARTUP_MINUTES + math.ceil(SAFETY_FACTOR * seconds / 60)
    n_snapshots = len(set(training["snapshots"]))
    snapshot_mb = n_trials * n_snapshots * params * 4 / 1e6
    c, h, w = input_shape(exp.dataset)
    dataset_mb = (n_train + n_test) * c * h * w / 1e6
    # the snapshots are held as an array and again while netCDF encodes them; the dataset as read and as
    # prepared for the device
    mem = (BASE_MEMORY_MB + 2 * snapshot_mb + 3 * dataset_mb) * MEMORY_SAFETY_FACTOR
    return ChunkCost(minutes, int(math.ceil(mem / 1000) * 1000), trial_samples)


def gpu_memory_mb(exp, n_trials: int, batch_size: int) -> float:
    """Device memory of a stacked chunk: parameters, gradients, two Adam moments, activations of a batch."""
    _, params, activations = network_size(exp.model, exp.arch_params, exp.dataset)
    return n_trials * (16 * params + 3 * 4 * batch_size * activations) / 1e6 * MEMORY_SAFETY_FACTOR


def capped(value: int, attempt: int, cap: int | None) -> int:
    """``value`` grown with the attempt, never above ``cap`` (a partition's maximum)."""
    grown = value * attempt
    return grown if cap is None else min(grown, cap)


def auto_trials_per_job(exp, training: dict, max_minutes: int | None, max_mem_mb: int | None = None) -> int:
    """Trials per job so that every chunk's first attempt fits half the cap (a retry has room to double).

    Chunks are then evened out: 1000 trials with room for 400 become 3 chunks of 334, not 400/400/200.
    """
    target = max_minutes / 2 if max_minutes else DEFAULT_CHUNK_MINUTES

    def fits(k):
        cost = chunk_cost(exp, k, training)
        return (cost.minutes <= target and (not max_mem_mb or cost.mem_mb <= max_mem_mb / 2)
                and gpu_memory_mb(exp, k, training["batch_size"]) <= GPU_MEMORY_MB)

    low, high = 1, min(exp.trials, MAX_TRIALS_PER_JOB)
    if not fits(low):
        return 1
    while low < high:  # largest k that fits (cost grows with k)
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    n_chunks = -(-exp.trials // low)
    return -(-exp.trials // n_chunks)


def resolve_trials_per_job(experiments, training: dict, max_minutes: int | None, max_mem_mb: int | None = None):
    """Experiments with ``trials_per_job: auto`` resolved to a number; warnings for chunks over the cap."""
    resolved = []
    for exp in experiments:
        if exp.trials_per_job == "auto":
            exp = dataclasses.replace(exp, trials_per_job=auto_trials_per_job(exp, training, max_minutes, max_mem_mb))
        elif max_minutes:
            cost = chunk_cost(exp, min(exp.trials_per_job, exp.trials), training)
            if cost.minutes > max_minutes:
                log.warning(
                    "experiments[%d] (%s): a chunk of %d trials needs ~%d min by the throughput model, more than "
                    "the partition's %d: its time limit is capped there and it may time out; set "
                    "trials_per_job: auto (or fewer trials per job)",
                    exp.block, exp.id, exp.trials_per_job, cost.minutes, max_minutes)
        resolved.append(exp)
    return resolved


# ---------------------------------------------------------------------------------------- partition limits
MAX_RUNTIME_ENV = "WEIGHTZOO_SLURM_MAX_RUNTIME"
MAX_MEM_ENV = "WEIGHTZOO_SLURM_MAX_MEM_MB"
PARTITION_ENV = "WEIGHTZOO_SLURM_PARTITION"


def parse_slurm_minutes(text: str) -> int | None:
    """SLURM's time format ([D-]HH:MM:SS, MM:SS, MM, D-HH) as minutes; None for UNLIMITED/INFINITE."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "N/A", "NONE"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        h, m, s = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        h, m, s = parts
    elif len(parts) == 2:
        h, (m, s) = 0, parts
    else:
        h, m, s = 0, parts[0], 0
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


def partition_max_minutes(partition: str | None, run=subprocess.run) -> int | None:
    """MaxTime of ``partition`` (the default partition when empty) from ``sinfo``; None if unlimited or unknown."""
    if shutil.which("sinfo") is None:
        return None
    cmd = ["sinfo", "-h", "-o", "%P|%l"] + (["-p", partition] if partition else [])
    try:
        out = run(cmd, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [line.split("|", 1) for line in out.splitlines() if "|" in line]
    if not partition:  # sinfo marks the default partition with a trailing '*'
        rows = [r for r in rows if r[0].endswith("*")] or rows[:1]
    limits = [parse_slurm_minutes(r[1]) for r in rows]
    if not limits or None in limits:
        return None
    return min(limits)


def cluster_limits(environ=os.environ, detect=partition_max_minutes) -> tuple[int | None, int | None]:
    """(max minutes, max MB) for a training job: the environment, else the partition's MaxTime.

    The main Snakemake process detects the limit once and exports it, so the jobs (``sbatch --export=ALL``)
    re-read exactly the value the chunks were planned with.
    """
    minutes = environ.get(MAX_RUNTIME_ENV, "").strip()
    if minutes.lower() in ("none", "unlimited", "infinite"):
        minutes_value = None
    elif minutes:
        minutes_value = int(minutes)
    else:
        minutes_value = detect(environ.get(PARTITION_ENV, "").strip() or None)
        environ[MAX_RUNTIME_ENV] = str(minutes_value) if minutes_value else "none"
    mem = environ.get(MAX_MEM_ENV, "").strip()
    return minutes_value, int(mem) if mem else None


# ------------------------------------------------------------------------ SLURM executor plugin hardening
OUTAGE_ENV = "WEIGHTZOO_SLURM_OUTAGE_MINUTES"
DEFAULT_OUTAGE_MINUTES = 15.0
OUTAGE_BACKOFF_S = (5, 10, 20, 30, 60)
# The run ID of a run that an outage stopped (relative to the working directory): the next start waits for its jobs
OUTAGE_MARKER = Path(".snakemake") / "weightzoo" / "slurm-outage"
PATCHED_PLUGIN_VERSIONS = ("2.8.",)


try:  # Snakemake prints an ApiError as "Error: <message>", without the traceback it gives other exceptions
    from snakemake_interface_common.exceptions import ApiError as _QuietError
except ImportError:  # pragma: no cover - Snakemake is a dependency
    _QuietError = Exception


class SlurmOutage(_QuietError):
    """SLURM's status queries have failed for longer than the configured tolerance."""


OUTAGE_ENDING = "Exiting because a SLURM outage stopped the run (no job failed): see the message above."


def end_with_outage_message() -> None:
    """Make Snakemake's last line say that an outage, not a failed job, stopped the run: its scheduler ends every
    stop for an executor error with "Exiting because a job execution failed" (a module constant in 9.x)."""
    try:
        from snakemake.scheduling import job_scheduler
    except ImportError:
        return
    if isinstance(getattr(job_scheduler, "_ERROR_MSG_FINAL", None), str):
        job_scheduler._ERROR_MSG_FINAL = OUTAGE_ENDING


def slurm_run_name(command: str) -> str:
    """The job name (the executor's run ID) that the plugin's status query filters on (``--name``)."""
    found = re.search(r"--name[= ](\S+)", command or "")
    return found.group(1) if found else ""


def wait_advice(run_name: str) -> str:
    """What to do before rerunning after an outage: a rerun while those jobs still run would train them twice."""
    if run_name:
        listing, cancel = f"`squeue --name {run_name}`", f"`scancel --name {run_name}`"
    else:
        listing, cancel = "`squeue --me`", "`scancel` them"
    return (f"Before rerunning, wait until SLURM answers and {listing} lists none of them (or cancel them: "
            f"{cancel}); then run the same snakemake command: finished outputs are kept and unfinished ones are "
            "redone. Until then the workflow refuses to start, so that no chunk is trained twice.")


def record_outage(run_name: str, marker=None) -> None:
    """Remember the run ID of a run an outage stopped, for ``jobs_left_by_an_outage`` at the next start."""
    if not run_name:
        return
    marker = OUTAGE_MARKER if marker is None else marker
    try:
        Path(marker).parent.mkdir(parents=True, exist_ok=True)
        Path(marker).write_text(run_name + "\n")
    except OSError as err:
        log.warning("could not record the outage in %s: %s", marker, err)


def jobs_left_by_an_outage(marker=None, run=subprocess.run) -> str:
    """Why the workflow must not start yet ("" when it may): jobs of a run that an outage stopped are still in
    SLURM's queue (pending or running), or SLURM does not answer. A rerun would submit their chunks again and
    train them twice. The record is removed once none of them is queued any more."""
    marker = Path(OUTAGE_MARKER if marker is None else marker)
    try:
        run_name = marker.read_text().strip()
    except OSError:
        return ""
    if not run_name or shutil.which("squeue") is None:
        return ""
    try:
        proc = run(["squeue", "-h", "--name", run_name, "-o", "%i %T"], capture_output=True, text=True, timeout=30)
        answered = proc.returncode == 0
        reason = (proc.stderr or "").strip()
    except (OSError, subprocess.SubprocessError) as err:
        answered, reason = False, str(err)
    if not answered:
        return (f"an earlier run (SLURM run ID {run_name}) was stopped by a SLURM outage, and SLURM does not answer "
                f"yet (squeue: {reason or 'failed'}). {wait_advice(run_name)}")
    jobs = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    if jobs:
        listed = ", ".join(f"{job[0]} ({job[1] if len(job) > 1 else '?'})" for job in jobs[:10])
        more = f" and {len(jobs) - 10} more" if len(jobs) > 10 else ""
        return (f"{len(jobs)} job(s) of an earlier run (SLURM run ID {run_name}) that a SLURM outage stopped are "
                f"still in SLURM: {listed}{more}. {wait_advice(run_name)}")
    try:
        marker.unlink()
    except OSError:
        pass
    return ""


def outage_tolerant(query, limit_s: float, clock=time.monotonic, sleep=asyncio.sleep, backoff=OUTAGE_BACKOFF_S,
                    marker=None):
    """Wrap the plugin's ``query_job_status(command, logger)`` so that a failed query is retried, not lost.

    The plugin (2.8.0) gives up after ``slurm-status-attempts`` quick failures in a row and silently drops
    every running job from tracking: Snakemake then waits forever. Here a failed query is retried with a
    bounded back-off until it answers; after ``limit_s`` seconds of failures in a row it raises, which ends
    the run with that message and a non-zero exit (jobs already submitted keep running in SLURM).

    States are cut to their first word: sacct reports a cancelled job as ``CANCELLED by <uid>``, which the
    plugin does not recognise as failed, so it would wait for a scancel'ed job forever.
    """
    state = {"since": None, "warned": -math.inf}

    async def query_job_status(command, logger):
        attempt = 0
        while True:
            status, duration = await query(command, logger)
            if status is not None:
                if state["since"] is not None:
                    logger.warning(f"SLURM answers again after {clock() - state['since']:.0f} s of failed status "
                                   "queries; jobs are tracked as before.")
                state["since"] = None
                return {job: state_.split(" ", 1)[0] for job, state_ in status.items()}, duration
            now = clock()
            if state["since"] is None:
                state["since"] = now
            down = now - state["since"]
            tool = command.split()[0] if command else "status query"
            if down >= limit_s:
                run_name = slurm_run_name(command)
                record_outage(run_name, marker)
                end_with_outage_message()
                raise SlurmOutage(
                    f"SLURM status queries ({tool}) have failed for {down / 60:.1f} min in a row: the controller "
                    f"(slurmctld) or the accounting database (slurmdbd) is down. Giving up after "
                    f"{OUTAGE_ENV}={limit_s / 60:g} min. An outage stopped this run, no job failed: the jobs "
                    f"already submitted keep running in SLURM. {wait_advice(run_name)}")
            if now - state["warned"] >= 60:
                state["warned"] = now
                logger.warning(f"SLURM status query ({tool}) failed; retrying for up to "
                               f"{(limit_s - down) / 60:.1f} more min (down for {down:.0f} s so far).")
            await sleep(min(backoff[min(attempt, len(backoff) - 1)], max(limit_s - down, 1)))
            attempt += 1

    return query_job_status


def harden_slurm_executor(environ=os.environ) -> str:
    """Patch snakemake-executor-plugin-slurm (2.8.x) in this process; returns what was done, for the log.

    1. Status queries survive outages of up to ``WEIGHTZOO_SLURM_OUTAGE_MINUTES`` (default 15), then end
       the run with a clear message; sacct's ``CANCELLED by <uid>`` counts as failed (``outage_tolerant``).
    2. Without an account (``slurm_account`` empty), submit without ``-A`` (SLURM's default account)
       instead of the plugin's guess, which fails in 2.8.0 (``sacct: invalid option -- '1'``) with
       three warnings per run.
    """
    try:
        import snakemake_executor_plugin_slurm as plugin
        from importlib.metadata import version
    except ImportError:
        return "SLURM executor plugin not installed"
    plugin_version = version("snakemake-executor-plugin-slurm")
    if not plugin_version.startswith(PATCHED_PLUGIN_VERSIONS) or not hasattr(plugin, "query_job_status"):
        return f"SLURM executor plugin {plugin_version} not patched (written for {PATCHED_PLUGIN_VERSIONS})"
    if getattr(plugin.query_job_status, "weightzoo", False):
        return "already patched"
    limit_s = 60 * float(environ.get(OUTAGE_ENV) or DEFAULT_OUTAGE_MINUTES)
    tolerant = outage_tolerant(plugin.query_job_status, limit_s)
    tolerant.weightzoo = True
    plugin.query_job_status = tolerant

    guessing = plugin.Executor.get_account_arg

    def get_account_arg(self, job):
        if job.resources.get("slurm_account"):
            yield from guessing(self, job)
        else:
            yield ""

    plugin.Executor.get_account_arg = get_account_arg
    return f"SLURM executor plugin {plugin_version}: status outages tolerated for {limit_s / 60:g} min"


def capped_runtime(minutes: int, attempt: int, environ=os.environ) -> int:
    """``minutes x attempt``, capped at the partition maximum the workflow exported (profile expressions)."""
    cap = environ.get(MAX_RUNTIME_ENV, "").strip()
    return capped(minutes, attempt, int(cap) if cap.isdigit() else None)


# --------------------------------------------------------------------------------------------- analysis jobs
# Every job after training streams the weights a block of trials of one variable at a time (issue 22), so its
# memory is the process plus a few blocks, whatever the zoo; its time grows with the trials and the weight values
# it reads. The block sizes are the streaming code's own constants, read here (not copied): the analyses'
# (weightzoo.analysis.zoo.CHUNK_VALUES float64 values), gather's (io.store.GATHER_BLOCK_BYTES) and the PCA before
# t-SNE's (analysis.projection.BLOCK_VALUES float32 values; it holds two).
@functools.cache
def block_mb(kind: str = "analysis") -> float:
    """MB of one block of one variable as the streaming code of ``kind`` reads it (analysis, gather, projection)."""
    if kind == "gather":
        from weightzoo.io.store import GATHER_BLOCK_BYTES

        return GATHER_BLOCK_BYTES / 1e6
    if kind == "projection":
        from weightzoo.analysis.projection import BLOCK_VALUES

        return BLOCK_VALUES * 4 / 1e6
    from weightzoo.analysis.zoo import CHUNK_VALUES

    return CHUNK_VALUES * 8 / 1e6


# Python, numpy, xarray, netCDF4, matplotlib and torch imported: the smallest analysis jobs of the rehearsal peak
# at 0.8-1.1 GB (docs/benchmarks.md, "Paper-scale rehearsal").
ANALYSIS_PROCESS_MB = 1200
ANALYSIS_STARTUP_MINUTES = 2


@dataclass(frozen=True)
class AnalysisCost:
    """Cost of one job of an analysis rule, linear in what it reads.

    Seconds = ``fixed_s`` + ``per_ktrial_s`` x trials / 1000 + ``per_gvalue_s`` x weight values read / 1e9, where
    values = trials x parameters (x snapshots when ``all_snapshots``: gather and export copy every snapshot;
    the analyses read the final one, plus the early and initial ones, which the slope includes). Memory =
    ``ANALYSIS_PROCESS_MB`` + ``blocks`` x ``block_mb(block)`` + ``per_ktrial_mb`` x trials / 1000 (tables with
    a row per trial: features, quantile functions) + ``dataset_copies`` x the dataset's uint8 images.
    """

    fixed_s: float
    per_ktrial_s: float = 0.0
    per_gvalue_s: float = 0.0
    blocks: float = 4.0
    per_ktrial_mb: float = 0.0
    dataset_copies: float = 0.0
    all_snapshots: bool = False
    block: str = "analysis"
    # the PCA before t-SNE: a trials x trials Gram matrix (float64, held with its centred copy and eigh's workspace:
    # 24 bytes per pair of trials), summed over pairs of trial blocks, so a layer of b blocks is read (b + 1) / 2 times
    gram: bool = False


# CPU seconds per job, fitted (bench/grid_cost.py --fit) to the paper-scale rehearsal (bench/paper_scale.py;
# docs/benchmarks.md, "Paper-scale rehearsal": MNIST DNN block 6 widths x 1,000 trials, CIFAR-10 DNN h=1000 at
# 200 trials, 80 trials in small), on the shared 2-core AMD EPYC under load 11-20, so CPU times are on the slow
# side. Marked "not rehearsed": from the earlier benchmarks of docs/benchmarks.md or like a measured rule. The
# request is SAFETY_FACTOR x that + ANALYSIS_STARTUP_MINUTES, like training's.
ANALYSIS_COSTS = {
    # not rehearsed (the rehearsal writes its datasets itself): CIFAR-10's 60,000 images are read, converted and
    # written in well under a minute
    "prepare_dataset": AnalysisCost(fixed_s=120, dataset_copies=4),
    "gather_zoo": AnalysisCost(fixed_s=2, per_ktrial_s=3, per_gvalue_s=150, blocks=3, all_snapshots=True,
                               block="gather"),
    # statistics, quantile functions, node strengths, spectral metrics at two snapshots, training status at three,
    # the dead-unit forward pass over 10,000 training images (its MACs grow with the parameters too)
    "extract_features": AnalysisCost(fixed_s=4, per_ktrial_s=1.8, per_gvalue_s=780, blocks=6, per_ktrial_mb=100,
                                     dataset_copies=3),
    "project_trials": AnalysisCost(fixed_s=2, per_ktrial_s=75, per_gvalue_s=107, blocks=2.5, block="projection",
                                   gram=True),
    # not rehearsed: reads every snapshot like gather, writes one .npy
    "export_zoo": AnalysisCost(fixed_s=2, per_ktrial_s=3, per_gvalue_s=150, all_snapshots=True),
    # not rehearsed (off in config/paper.yaml): docs/benchmarks.md, the Small CNN Zoo run
    "train_weight_space_net": AnalysisCost(fixed_s=60, per_ktrial_s=60, per_gvalue_s=300, blocks=8),
    "plot": AnalysisCost(fixed_s=3, per_ktrial_s=0.5, per_ktrial_mb=60),
    # the pooled t-SNE of the statistics (sklearn Barnes-Hut, n log n; ~20 s per 1,000 trials in
    # bench/analysis_speed.py)
    "plot_statistics_tsne": AnalysisCost(fixed_s=3, per_ktrial_s=20, per_ktrial_mb=60),
    # claims at every scope with permutations and bootstraps (bench/analysis_speed.py: 13.9 s CPU, 956 MB per 1,000)
    "evaluate_claims": AnalysisCost(fixed_s=4, per_ktrial_s=15, per_ktrial_mb=150),
    "benchmark_predictions": AnalysisCost(fixed_s=3, per_ktrial_s=5, per_ktrial_mb=100),
}


@dataclass(frozen=True)
class AnalysisJob:
    """What one analysis job reads: trials, trial-parameters of one snapshot, snapshots stored, dataset MB."""

    trials: int
    trial_parameters: float
    snapshots: int = 1
    dataset_mb: float = 0.0


def analysis_job(experiments, snapshots: int, datasets=()) -> AnalysisJob:
    """The size of a job that reads ``experiments`` (each with ``trials``, ``model``, ``arch_params``, ``dataset``)."""
    trials = sum(e.trials for e in experiments)
    values = sum(e.trials * network_size(e.model, e.arch_params, e.dataset)[1] for e in experiments)
    dataset_mb = sum(math.prod(input_shape(d)) * sum(spec(d).split_sizes()) / 1e6 for d in datasets)
    return AnalysisJob(trials, values, snapshots, dataset_mb)


@dataclass(frozen=True)
class AnalysisRequest:
    minutes: int  # time limit of the first attempt
    mem_mb: int
    values: float  # weight values read


def values_read(cost: AnalysisCost, job: AnalysisJob) -> float:
    """Weight values a job reads: trial-parameters, x snapshots (gather, export), x (blocks + 1) / 2 (Gram)."""
    values = job.trial_parameters * (job.snapshots if cost.all_snapshots else 1)
    if cost.gram:
        values *= (math.ceil(job.trial_parameters * 4 / (block_mb(cost.block) * 1e6)) + 1) / 2
    return values


def analysis_cost(rule: str, job: AnalysisJob) -> AnalysisRequest:
    """Time limit (minutes, first attempt) and memory (MB) of one job of ``rule`` (plot rules share ``plot``)."""
    cost = ANALYSIS_COSTS.get(rule) or ANALYSIS_COSTS["plot"]
    values = values_read(cost, job)
    pairs_mb = 24 * job.trials**2 / 1e6 if cost.gram else 0.0
    seconds = cost.fixed_s + cost.per_ktrial_s * job.trials / 1000 + cost.per_gvalue_s * values / 1e9
    minutes = ANALYSIS_STARTUP_MINUTES + math.ceil(SAFETY_FACTOR * seconds / 60)
    mem = (ANALYSIS_PROCESS_MB + cost.blocks * block_mb(cost.block) + cost.per_ktrial_mb * job.trials / 1000
           + cost.dataset_copies * job.dataset_mb + pairs_mb) * MEMORY_SAFETY_FACTOR
    return AnalysisRequest(minutes, int(math.ceil(mem / 1000) * 1000), values)
