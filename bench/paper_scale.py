"""Rehearse the paper grid's analysis at its real size, without a GPU: synthetic chunks, the real workflow.

For the chosen experiments of ``config/paper.yaml`` (``--experiment``, globs over ``model/dataset/arch`` ids)
this writes, in a scratch folder ``--workdir``:

1. a prepared dataset per dataset at its real size (uint8 noise images, balanced labels, the official
   train/test sizes), through ``weightzoo.data.prepare.build_dataset`` and ``save_dataset``;
2. every training chunk the workflow plans (``trials_per_job`` of the paper config), through the training job's
   own writer ``weightzoo.jobs.train.write_chunk``: per-trial weights (initial N(0, init_std^2) plus a per-trial
   drift whose size follows the trial's accuracy, growing over the snapshots), curves over the epochs that end
   at a final train accuracy drawn over the Table 2 windows of the (model, dataset), and some diverged trials
   (NaN losses from a random epoch on, chance accuracy, inflated weights). The chunks' ``device`` attribute
   says ``synthetic (bench/paper_scale.py)``;
3. ``rehearsal.yaml``: the paper config cut to those experiments (``--trials``, ``--snapshots`` to cut disk;
   datasets without download, training on the CPU so nothing asks for a GPU).

The chunks are newer than the datasets and have no Snakemake metadata, so Snakemake counts them as done
(``--rerun-triggers mtime``: it never retrains a chunk it did not write), and the real workflow then runs from
``gather_zoo`` to the report (``snakemake --report report.zip``). Every rule has a ``benchmark:`` file; the
script collects them with the peak disk use of the folder (sampled every few seconds), the report's size and
build time into ``rehearsal.json`` and prints a table per rule. ``--clean`` deletes the chunks and zoos after.
``--chunks-only`` stops after writing the chunks; a later call keeps the chunks already there and goes on.

    .venv/bin/python bench/paper_scale.py --workdir /work/rehearsal/mnist --experiment 'dnn/mnist/*'
    nice -n 10 .venv/bin/python bench/paper_scale.py --workdir /work/rehearsal/cifar \\
        --experiment dnn/cifar10/h1000 --snapshots -1 --clean
    .venv/bin/python bench/paper_scale.py --workdir /tmp/r --experiment 'dnn/mnist/h[15]0' --trials 40

Results on this machine: docs/benchmarks.md ("Paper-scale rehearsal"); what they mean for a cluster:
docs/cluster.md.
"""

import argparse
import copy
import fnmatch
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SYNTHETIC_DEVICE = "synthetic (bench/paper_scale.py)"
DIVERGED_SHARE = 0.02  # share of trials that diverge
NON_SHARE = 0.03  # converged but at chance (the paper's "non" group besides the diverged)
DRIFT = 0.6  # final drift std relative to init_std, at the top of the accuracy range


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, required=True, help="scratch folder (outside any git worktree)")
    p.add_argument("--experiment", action="append", required=True,
                   help="glob over experiment ids model/dataset/arch of the config (repeatable)")
    p.add_argument("--config", type=Path, default=ROOT / "config/paper.yaml")
    p.add_argument("--trials", type=int, help="trials per experiment (default: the config's)")
    p.add_argument("--trials-per-job", type=int, help="default: the config's")
    p.add_argument("--snapshots", type=int, nargs="+", help="default: the config's training.snapshots")
    p.add_argument("--cores", type=int, default=1, help="snakemake --cores (1: clean per-job timings)")
    p.add_argument("--clean", action="store_true", help="delete chunks and zoos once measured")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--chunks-only", action="store_true", help="write datasets and chunks, then stop")
    p.add_argument("--table", action="store_true",
                   help="only print the benchmark files of --workdir so far as a markdown table (runs in progress too)")
    p.add_argument("--sample-seconds", type=float, default=5.0, help="disk sampling interval")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------- config
def rehearsal_config(config: dict, patterns, workdir: Path, trials=None, trials_per_job=None, snapshots=None) -> dict:
    """The config cut to the experiments matching ``patterns``: one block per experiment, its architecture
    fixed, its block's other keys kept; datasets prepared here (an empty ``data_dir``, never read: the prepared
    file exists and is older than the chunks); training on the CPU."""
    from weightzoo.config import load_experiments

    experiments = [e for e in load_experiments(_with_defaults(config))
                   if any(fnmatch.fnmatch(e.id, p) for p in patterns)]
    if not experiments:
        raise SystemExit(f"no experiment of the config matches {list(patterns)}")
    out = copy.deepcopy(config)
    blocks = []
    for e in experiments:
        block = {k: v for k, v in config["experiments"][e.block].items() if k not in ("datasets", "arch")}
        arch = config["experiments"][e.block]["arch"]
        # swept keys stay lists (of the one value), so the experiment keeps its label (h1000, ...)
        block.update(datasets=[e.dataset],
                     arch={k: [e.arch_params[k]] if isinstance(v, list) else v for k, v in arch.items()})
        if trials:
            block["trials"] = trials
            block["trials_per_job"] = min(block.get("trials_per_job", trials), trials)
        if trials_per_job:
            block["trials_per_job"] = trials_per_job
        blocks.append(block)
    out["experiments"] = blocks
    out["datasets"] = {e.dataset: {"data_dir": str(workdir / "resources/raw" / e.dataset)} for e in experiments}
    for settings in out["datasets"].values():
        Path(settings["data_dir"]).mkdir(parents=True, exist_ok=True)
    out.setdefault("training", {})["device"] = "cpu"
    if snapshots:
        out["training"]["snapshots"] = list(snapshots)
    return out


def _with_defaults(config):
    """The config with the schema's defaults, as the workflow sees it."""
    from snakemake.utils import validate

    filled = copy.deepcopy(config)
    validate(filled, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return filled


# ---------------------------------------------------------------------------------------------- datasets
def write_dataset(name: str, path: Path, seed: int = 0) -> None:
    """A prepared dataset of the real size and shape of ``name`` (noise images: only sizes matter here)."""
    from weightzoo.data.prepare import build_dataset
    from weightzoo.data.specs import spec
    from weightzoo.data.storage import save_dataset

    s = spec(name)
    n_train, n_test = s.split_sizes()
    n = n_train + n_test
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *s.input_shape), dtype=np.uint8)
    labels = np.arange(n) % s.n_classes
    split = np.repeat(np.array([0, 1], np.uint8), [n_train, n_test])
    ds = build_dataset(name, images, labels, split, source=SYNTHETIC_DEVICE, split_seed=-1,
                       split_method="official train and test files (synthetic stand-in)")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_dataset(ds, path)


# ------------------------------------------------------------------------------------------------ chunks
def synthetic_result(model, kwargs, trials, hp, per_trial, windows, n_classes, seed):
    """A ``TrainResult`` shaped exactly like the trainer's, with made-up but plausible numbers."""
    import dataclasses

    import torch

    from weightzoo.models import build_model, family
    from weightzoo.train import CURVES, PER_TRIAL, TrainResult

    trials = np.asarray(trials, np.int64)
    n = len(trials)
    rng = np.random.default_rng([seed, int(trials[0])])
    default_activation = family(model).nonlinearities[0]
    settings = [dataclasses.replace(hp, **p) for p in per_trial]
    settings = [s if s.activation else dataclasses.replace(s, activation=default_activation) for s in settings]
    epochs, snapshots = hp.epochs, hp.snapshot_epochs()
    chance = 1.0 / n_classes

    # final train accuracy: a window of Table 2 per trial, uniform inside it; a few at chance; a few diverged
    names = sorted(windows)
    window = rng.integers(0, len(names), n)
    low = np.array([windows[names[w]][0] for w in window])
    high = np.array([windows[names[w]][1] for w in window])
    final = rng.uniform(low, np.minimum(high, 0.999))
    non = rng.random(n) < NON_SHARE
    final[non] = chance + rng.uniform(0, 0.01, non.sum())
    diverged = rng.random(n) < DIVERGED_SHARE
    diverged_epoch = np.where(diverged, rng.integers(1, epochs + 1, n), 0)

    e = np.arange(1, epochs + 1)
    tau = rng.uniform(1.0, 4.0, (n, 1))
    train_acc = chance + (final[:, None] - chance) * (1 - np.exp(-e / tau))
    test_acc = np.clip(train_acc - rng.uniform(0, 0.03, (n, 1)), 0, 1)
    curves = {"train_accuracy": train_acc, "test_accuracy": test_acc,
              "train_loss": -np.log(np.clip(train_acc, 1e-3, None)) * 1.2,
              "test_loss": -np.log(np.clip(test_acc, 1e-3, None)) * 1.3}
    after = e[None, :] >= diverged_epoch[:, None]
    gone = diverged[:, None] & after
    for name in CURVES:
        values = curves[name]
        values[gone] = np.nan if name.endswith("loss") else chance
        curves[name] = values.astype(np.float32)

    # weights: initial N(0, init_std^2), a drift growing as sqrt(epoch/epochs) whose size follows the accuracy
    with torch.device("meta"):
        shapes = {k: tuple(p.shape) for k, p in build_model(model, **kwargs).named_parameters()}
    init_std = np.array([s.init_std for s in settings], np.float32)
    drift = init_std * DRIFT * (0.3 + final.astype(np.float32)) * np.where(diverged, 20.0, 1.0).astype(np.float32)
    weights = {}
    for name, shape in shapes.items():
        out = np.empty((n, len(snapshots), *shape), np.float32)
        for t in range(n):  # a trial at a time: the chunk's arrays and one trial's draw in memory, no more
            current = rng.standard_normal(shape, dtype=np.float32) * init_std[t]
            done = 0.0
            for i, epoch in enumerate(snapshots):
                share = epoch / epochs
                if share > done:
                    current += rng.standard_normal(shape, dtype=np.float32) * (drift[t] * np.float32(np.sqrt(share - done)))
                    done = share
                out[t, i] = current
        weights[name] = out
    return TrainResult(
        trials=trials, seeds=hp.base_seed + trials, diverged=diverged, diverged_epoch=diverged_epoch.astype(np.int32),
        snapshots=snapshots, weights=weights, vectorized=True, device=SYNTHETIC_DEVICE,
        hyperparameters={k: np.array([getattr(s, k) for s in settings]) for k in PER_TRIAL}, **curves)


def write_chunks(config: dict, workdir: Path, seed: int = 0) -> dict:
    """Every chunk of every experiment of ``config`` into ``workdir/results/train``; seconds per experiment."""
    from weightzoo.analysis.groups import paper_windows
    from weightzoo.config import load_experiments, resolved_model_arch, trial_hyperparameters
    from weightzoo.data import load_dataset
    from weightzoo.jobs.train import base_hyperparameters, write_chunk
    from weightzoo.models import model_kwargs

    config = _with_defaults(config)
    seconds = {}
    for exp in load_experiments(config):
        start = time.perf_counter()
        dataset_path = workdir / f"resources/datasets/{exp.dataset}.nc"
        prepared = load_dataset(dataset_path)
        input_shape = tuple(prepared["images"].shape[1:])
        n_classes = int(prepared.attrs["n_classes"])
        training = {**config["training"], "epochs": exp.epochs or config["training"]["epochs"]}
        hp = base_hyperparameters(training)
        kwargs = model_kwargs(exp.model, resolved_model_arch(exp.arch_params, input_shape[-1]), input_shape, n_classes)
        paper_dataset = config["analysis"]["paper_datasets"].get(exp.dataset, exp.dataset)
        windows = paper_windows(exp.model, paper_dataset)
        for c in range(exp.n_chunks):
            trials = exp.chunk_trials(c)
            per_trial = [trial_hyperparameters(exp.hyperparameters, t, hp.base_seed + t) for t in trials]
            result = synthetic_result(exp.model, kwargs, trials, hp, per_trial, windows, n_classes, seed)
            out = workdir / f"results/train/{exp.id}/chunk{c}.nc"
            if out.exists():  # written by an earlier (interrupted) call: written atomically, so complete
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            write_chunk(result, out, prepared, dataset_path, model=exp.model, dataset=exp.dataset, arch=exp.arch,
                        kwargs=kwargs, hp=hp, hyperparameters=exp.hyperparameters,
                        config_block=config["experiments"][exp.block])
            del result
        seconds[exp.id] = time.perf_counter() - start
        print(f"  {exp.id}: {exp.n_chunks} chunk(s) of {exp.trials} trials in {seconds[exp.id]:.0f} s", flush=True)
    return seconds


# ------------------------------------------------------------------------------------------ measurement
class DiskPeak:
    """Largest size of a folder (bytes) and least free space of its filesystem, sampled in a thread."""

    def __init__(self, folder: Path, interval: float):
        self.folder, self.interval = folder, interval
        self.peak, self.least_free = 0, shutil.disk_usage(folder).free
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def size(self) -> int:
        total, seen = 0, set()
        for dirpath, _, files in os.walk(self.folder):
            for f in files:
                try:
                    stat = os.lstat(os.path.join(dirpath, f))
                except OSError:
                    continue
                if (stat.st_dev, stat.st_ino) not in seen:  # a published zoo is a hard link of its gathered file
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_blocks * 512
        return total

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        self.peak = max(self.peak, self.size())
        self.least_free = min(self.least_free, shutil.disk_usage(self.folder).free)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()


def benchmarks(workdir: Path) -> pd.DataFrame:
    """One row per benchmarked job: rule, wildcards, wall s, CPU s, max RSS MB."""
    rows = []
    for tsv in sorted((workdir / "benchmarks").rglob("*.tsv")):
        rule, *wildcards = tsv.relative_to(workdir / "benchmarks").with_suffix("").parts
        table = pd.read_csv(tsv, sep="\t")
        row = table.iloc[-1]
        rows.append({"rule": rule, "job": "/".join(wildcards), "wall_s": float(row["s"]),
                     "cpu_s": float(row.get("cpu_time", float("nan"))), "max_rss_mb": float(row["max_rss"])})
    return pd.DataFrame(rows, columns=["rule", "job", "wall_s", "cpu_s", "max_rss_mb"])


PER_EXPERIMENT = ("gather_zoo", "extract_features", "project_trials", "export_zoo")
GRID = ("summarize_zoo", "group_trials", "tabulate_groups", "collect_claims", "benchmark_predictions")


def job_sizes(table: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Each benchmarked job with what it read: trials and trial-parameters (trials x parameters of one snapshot)."""
    from weightzoo.cluster import network_size
    from weightzoo.config import load_experiments
    from weightzoo.selection import POOLED

    experiments = load_experiments(_with_defaults(config))

    def read_by(rule, job):
        parts = job.split("/")
        if rule in GRID or rule == "prepare_dataset":
            return experiments if rule in GRID else []
        if rule in PER_EXPERIMENT:
            return [e for e in experiments if e.id == "/".join(parts[:3])]
        scope = parts[2] if len(parts) > 2 else POOLED  # figures: model/dataset/scope; claims, folds: model/dataset
        return [e for e in experiments if (e.model, e.dataset) == tuple(parts[:2]) and scope in (POOLED, e.arch)]

    sizes = [read_by(r, j) for r, j in zip(table["rule"], table["job"])]
    table = table.copy()
    table["trials"] = [sum(e.trials for e in chosen) for chosen in sizes]
    table["trial_parameters"] = [sum(e.trials * network_size(e.model, e.arch_params, e.dataset)[1] for e in chosen)
                                 for chosen in sizes]
    return table


def snakemake(workdir: Path, *args) -> float:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "rehearsal.yaml"), *args]
    print("  $", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with open(workdir / "rehearsal.log", "a") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"snakemake failed (exit {proc.returncode}): see {workdir / 'rehearsal.log'}")
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    if args.table:
        config = yaml.safe_load((workdir / "rehearsal.yaml").read_text())
        table = job_sizes(benchmarks(workdir), config)
        print(table.to_markdown(index=False, floatfmt=".1f"))
        return table
    if (ROOT / ".git").exists() and workdir.is_relative_to(ROOT):
        raise SystemExit(f"--workdir {workdir} is inside the repository: use a scratch folder")
    workdir.mkdir(parents=True, exist_ok=True)
    with open(args.config) as f:
        config = rehearsal_config(yaml.safe_load(f), args.experiment, workdir, args.trials, args.trials_per_job,
                                  args.snapshots)
    (workdir / "rehearsal.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    summary = {"experiments": args.experiment, "trials": args.trials, "snapshots": config["training"]["snapshots"],
               "machine": f"{platform.node()} {os.cpu_count()} CPUs", "load_before": os.getloadavg()}
    with DiskPeak(workdir, args.sample_seconds) as disk:
        start = time.perf_counter()
        for name in config["datasets"]:
            path = workdir / f"resources/datasets/{name}.nc"
            if not path.exists():
                write_dataset(name, path)
        summary["datasets_s"] = time.perf_counter() - start
        print("writing synthetic chunks", flush=True)
        summary["chunks_s"] = write_chunks(config, workdir)
        summary["chunks_bytes"] = sum(p.stat().st_size for p in (workdir / "results/train").rglob("*.nc"))
        if args.chunks_only:
            print(json.dumps(summary, indent=1, default=float))
            return summary
        summary["workflow_s"] = snakemake(workdir, "--cores", str(args.cores), "--rerun-triggers", "mtime")
        summary["zoo_bytes"] = sum(p.stat().st_size for p in (workdir / "results/zoo").rglob("*.nc"))
        if not args.no_report:
            report = workdir / "report.zip"
            summary["report_s"] = snakemake(workdir, "--report", str(report))
            summary["report_bytes"] = report.stat().st_size
    summary.update(peak_disk_bytes=disk.peak, least_free_bytes=disk.least_free, load_after=os.getloadavg())
    table = job_sizes(benchmarks(workdir), config)
    summary["jobs"] = table.to_dict("records")
    per_rule = table.groupby("rule").agg(jobs=("job", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"),
                                         max_wall_s=("wall_s", "max"), max_rss_mb=("max_rss_mb", "max"))
    summary["rules"] = per_rule.reset_index().to_dict("records")
    (workdir / "rehearsal.json").write_text(json.dumps(summary, indent=1, default=float))
    print(per_rule.round(1).to_string())
    print(json.dumps({k: v for k, v in summary.items() if k not in ("jobs", "rules")}, indent=1, default=float))
    if args.clean:
        for folder in ("results/train", "results/zoo", "results/export"):
            shutil.rmtree(workdir / folder, ignore_errors=True)
    return summary


if __name__ == "__main__":
    main()
