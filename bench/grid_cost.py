"""The cost of a whole grid (default ``config/paper.yaml``) from the workflow's own cost models, per rule.

* CPU-hours and peak memory of every analysis rule from ``weightzoo.cluster.analysis_cost``, whose slopes were
  measured by the paper-scale rehearsal (``bench/paper_scale.py``; docs/benchmarks.md): the modelled seconds
  (without the safety factor and start-up that the time limits add), summed over the jobs the workflow plans.
  The per-architecture figures and t-SNE count every architecture (the workflow draws them only for
  architectures with two accuracy groups, so this is an upper bound).
* Disk by rule: chunks and zoos are float32 weights that zlib barely shrinks (trials x parameters x snapshots x
  4 B); the per-trial outputs (features, status, strengths, densities) from the rehearsal's bytes per trial.
* Training GPU-hours from the counted FLOPs (``weightzoo.cluster.chunk_cost``'s trial-samples and FLOPs per
  trial-sample) at a stated GPU throughput: an ESTIMATE until ``bench/gpu_check.sh`` has measured one.

    .venv/bin/python bench/grid_cost.py                      # config/paper.yaml
    .venv/bin/python bench/grid_cost.py --gpu-tflops 5 --json /tmp/grid.json
    .venv/bin/python bench/grid_cost.py --fit /work/rehearsal/*/rehearsal.json   # slopes for ANALYSIS_COSTS
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Bytes per trial of the small per-experiment outputs, measured on the rehearsal (MNIST DNN, 1,000 trials per
# width: features ~ quantile functions of every layer at two snapshots; the others a few numbers per unit).
PER_TRIAL_OUTPUT_BYTES = 60_000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "config/paper.yaml")
    p.add_argument("--gpu-tflops", type=float, default=5.0,
                   help="useful FP32 TFLOP/s of one GPU on these small nets (estimate; see docs/cluster.md)")
    p.add_argument("--json", type=Path)
    p.add_argument("--fit", type=Path, nargs="+", help="rehearsal.json files: fit each rule's CPU seconds")
    return p.parse_args(argv)


def fit(paths) -> pd.DataFrame:
    """Per rule, CPU seconds = fixed + per 1,000 trials + per 1e9 values read (non-negative least squares over the
    jobs of the rehearsals; values x snapshots for the rules that copy every snapshot), and the peak RSS."""
    from scipy.optimize import nnls

    from weightzoo import cluster

    frames = []
    for path in paths:
        summary = json.loads(Path(path).read_text())
        jobs = pd.DataFrame(summary["jobs"])
        jobs["snapshots"] = len(set(summary["snapshots"]))
        jobs["source"] = str(path)
        frames.append(jobs)
    jobs = pd.concat(frames)
    jobs["rule"] = jobs["rule"].where(~jobs["rule"].isin(PLOT_RULES), "plot")
    rows = []
    for rule, group in jobs.groupby("rule"):
        cost = cluster.ANALYSIS_COSTS.get(rule, cluster.AnalysisCost(0))
        values = pd.Series([cluster.values_read(cost, cluster.AnalysisJob(t, v, n)) for t, v, n in
                            zip(group["trials"], group["trial_parameters"], group["snapshots"])], index=group.index)
        reads_weights = rule in WEIGHT_READERS
        design = pd.DataFrame({"fixed_s": 1.0, "per_ktrial_s": group["trials"] / 1000,
                               "per_gvalue_s": values / 1e9 * reads_weights}).to_numpy()
        coef, _ = nnls(design, group["cpu_s"].to_numpy())
        rows.append({"rule": rule, "jobs": len(group), "max_trials": group["trials"].max(),
                     "fixed_s": coef[0], "per_ktrial_s": coef[1], "per_gvalue_s": coef[2],
                     "cpu_s_total": group["cpu_s"].sum(), "max_rss_mb": group["max_rss_mb"].max()})
    return pd.DataFrame(rows).set_index("rule")


WEIGHT_READERS = ("gather_zoo", "extract_features", "project_trials", "export_zoo", "train_weight_space_net")
PLOT_RULES = ("plot_convergence", "plot_metrics", "plot_weight_statistics", "plot_distributions",
              "plot_node_strength", "plot_strength_pairs")


def experiments_of(config_path):
    from snakemake.utils import validate

    from weightzoo.config import load_experiments

    config = yaml.safe_load(Path(config_path).read_text())
    filled = copy.deepcopy(config)
    validate(filled, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return filled, load_experiments(filled)


def analysis_jobs(config, experiments):
    """(rule, experiments read, datasets) of every analysis job the workflow plans (per-architecture figures for
    every architecture: an upper bound)."""
    scopes = sorted({(e.model, e.dataset) for e in experiments})
    jobs = [("prepare_dataset", [], (d,)) for d in sorted({e.dataset for e in experiments})]
    for e in experiments:
        jobs += [("gather_zoo", [e], ()), ("extract_features", [e], (e.dataset,)), ("project_trials", [e], ())]
        jobs += [("plot", [e], ())] * 6  # the per-architecture figures (all families but the statistics t-SNE)
    for model, dataset in scopes:
        members = [e for e in experiments if (e.model, e.dataset) == (model, dataset)]
        jobs += [("evaluate_claims", members, ()), ("plot_statistics_tsne", members, ())]
        jobs += [("plot", members, ())] * 6
    if config["analysis"]["benchmark"]["enabled"]:
        jobs.append(("benchmark_predictions", list(experiments), ()))
    return jobs


def main(argv=None):
    from weightzoo import cluster
    from weightzoo.data.specs import spec

    args = parse_args(argv)
    if args.fit:
        table = fit(args.fit)
        print(table.round(2).to_string())
        return table
    config, experiments = experiments_of(args.config)
    snapshots = len(set(config["training"]["snapshots"]))
    rows = []
    for rule, chosen, datasets in analysis_jobs(config, experiments):
        job = cluster.analysis_job(chosen, snapshots, datasets)
        cost = cluster.ANALYSIS_COSTS.get(rule) or cluster.ANALYSIS_COSTS["plot"]
        values = cluster.values_read(cost, job)
        seconds = cost.fixed_s + cost.per_ktrial_s * job.trials / 1000 + cost.per_gvalue_s * values / 1e9
        request = cluster.analysis_cost(rule, job)
        rows.append({"rule": rule, "cpu_h": seconds / 3600, "mem_mb": request.mem_mb, "limit_min": request.minutes})
    table = pd.DataFrame(rows).groupby("rule").agg(jobs=("rule", "size"), cpu_h=("cpu_h", "sum"),
                                                   max_mem_mb=("mem_mb", "max"), max_limit_min=("limit_min", "max"))
    zoo_gb = sum(e.trials * cluster.network_size(e.model, e.arch_params, e.dataset)[1] for e in experiments) \
        * snapshots * 4 / 1e9
    trials = sum(e.trials for e in experiments)
    disk = {"chunks (results/train)": zoo_gb, "zoos (results/zoo)": zoo_gb,
            "per-trial outputs (features, status, strengths, densities)": trials * PER_TRIAL_OUTPUT_BYTES / 1e9,
            "datasets": sum(spec(d).input_shape[0] * spec(d).input_shape[1] * spec(d).input_shape[2]
                            * sum(spec(d).split_sizes()) for d in {e.dataset for e in experiments}) / 1e9}
    training = {**config["training"]}
    flops = trial_samples = 0.0
    per_model = {}
    for e in experiments:
        macs, _, _ = cluster.network_size(e.model, e.arch_params, e.dataset)
        n_train, n_test = spec(e.dataset).split_sizes()
        samples = e.trials * n_train * (e.epochs or training["epochs"])
        f = samples * macs * (6 + 2 * (n_train + n_test) / n_train)
        flops += f
        trial_samples += samples
        per_model[e.model] = per_model.get(e.model, 0.0) + f
    gpu_h = flops / (args.gpu_tflops * 1e12) / 3600
    summary = {"experiments": len(experiments), "trials": trials, "snapshots": snapshots,
               "analysis_cpu_h": float(table["cpu_h"].sum()), "disk_gb": disk,
               "training": {"trial_samples": trial_samples, "flops": flops,
                            "flops_by_model": per_model, "gpu_tflops_assumed": args.gpu_tflops,
                            "gpu_hours_estimate": gpu_h},
               "rules": table.reset_index().to_dict("records")}
    print(table.round(2).to_string())
    print(json.dumps({k: v for k, v in summary.items() if k != "rules"}, indent=1, default=float))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=float))
    return summary


if __name__ == "__main__":
    main()
