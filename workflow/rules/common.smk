import functools
import json
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

# The package lives beside the Snakefile: import it here and in every job (venv, conda env or cluster
# node alike) without requiring an install into the environment that runs the job.
PACKAGE_SRC = str(Path(workflow.main_snakefile).resolve().parent / "src")
sys.path.insert(0, PACKAGE_SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [PACKAGE_SRC, os.environ.get("PYTHONPATH")])
    )
)

from weightzoo.io.atomic import moved_aside
from weightzoo.cluster import (
    analysis_cost,
    analysis_job,
    capped,
    chunk_cost,
    cluster_limits,
    harden_slurm_executor,
    jobs_left_by_an_outage,
    resolve_trials_per_job,
)
from weightzoo.config import ConfigError, dataset_settings
from weightzoo.models import MODELS
from weightzoo.config.schema import check_config, config_sources, with_location

# Numbers written `1e-3` are coerced (YAML 1.1 reads them as strings), then snakemake.utils.validate fills the
# schema's defaults; errors come back as one line with key, value, file and line instead of the whole schema.
# The sources of the config by precedence: --config (named as such in errors), --configfile, the Snakefile's own.
CONFIG_SOURCES = config_sources(
    workflow.overwrite_configfiles,
    workflow.configfiles,
    workflow.config_settings.config,
)
try:
    EXPERIMENTS = check_config(config, CONFIG_SOURCES)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
# A partition's time limit (WEIGHTZOO_SLURM_MAX_RUNTIME, else its MaxTime): caps every training job and
# sizes `trials_per_job: auto` (src/weightzoo/cluster.py).
MAX_RUNTIME, MAX_MEM_MB = cluster_limits()
EXPERIMENTS = resolve_trials_per_job(
    EXPERIMENTS, config["training"], MAX_RUNTIME, MAX_MEM_MB
)
EXPERIMENT_BY_ID = {e.id: e for e in EXPERIMENTS}
DATASETS = sorted({e.dataset for e in EXPERIMENTS})
TRAINING = config["training"]


wildcard_constraints:
    model="|".join(MODELS),
    dataset="[a-z0-9]+",
    arch="[^/]+",
    chunk=r"\d+",


onstart:
    # Known only now (not while the Snakefile is read): whether this machine runs the jobs. A local run with
    # training.device: cuda on a machine without a GPU would fail every training job: say it once, before any.
    if (
        TRAINING["device"] == "cuda"
        and workflow.local_exec
        and any(
            job.rule.name == "train_trials" for job in workflow.dag.needrun_jobs()
        )
    ):
        import torch
        from weightzoo.train import no_cuda_message

        if not torch.cuda.is_available():
            raise WorkflowError(
                "invalid config: "
                + with_location(no_cuda_message(local=True), CONFIG_SOURCES)
                + "; nothing was run"
            )


if workflow.is_main_process:
    # status queries that survive a controller outage; no account guessing (src/weightzoo/cluster.py)
    harden_slurm_executor()
    # jobs of a run that a SLURM outage stopped may still run: a rerun now would train their chunks twice
    OUTAGE_LEFT = jobs_left_by_an_outage()
    if OUTAGE_LEFT:
        raise WorkflowError(OUTAGE_LEFT)


def experiment(wildcards):
    return EXPERIMENT_BY_ID[f"{wildcards.model}/{wildcards.dataset}/{wildcards.arch}"]


def zoo_files():
    return [f"results/zoo/{e.id}.nc" for e in EXPERIMENTS]


def chunk_files(wildcards):
    exp = experiment(wildcards)
    return [f"results/train/{exp.id}/chunk{c}.nc" for c in range(exp.n_chunks)]


def raw_data(wildcards):
    """The download folder, when the dataset is to be downloaded; nothing otherwise."""
    if config["datasets"][wildcards.dataset].get("download"):
        return {"raw": f"resources/raw/{wildcards.dataset}"}
    return {}


def train_params(wildcards):
    exp = experiment(wildcards)
    return {
        "model": exp.model,
        "dataset": exp.dataset,
        "arch": exp.arch,
        "arch_params": exp.arch_params,
        "trials": exp.chunk_trials(int(wildcards.chunk)),
        "training": {**TRAINING, "epochs": exp.epochs or TRAINING["epochs"]},
        "hyperparameters": exp.hyperparameters,
        "config_block": config["experiments"][exp.block],
    }


@functools.cache
def _chunk_cost(exp_id, n_trials):
    exp = EXPERIMENT_BY_ID[exp_id]
    return chunk_cost(
        exp, n_trials, {**TRAINING, "epochs": exp.epochs or TRAINING["epochs"]}
    )


def chunk_request(wildcards):
    """Time (minutes) and memory (MB) of a training job's first attempt, from the throughput model."""
    exp = experiment(wildcards)
    return _chunk_cost(exp.id, len(exp.chunk_trials(int(wildcards.chunk))))


def train_runtime(wildcards, attempt):
    """SLURM time limit (minutes): modelled time x safety factor + start-up, x attempt, capped."""
    return capped(chunk_request(wildcards).minutes, attempt, MAX_RUNTIME)


def train_mem_mb(wildcards, attempt):
    """Host memory (MB): weight snapshots, dataset and process, x safety factor, x attempt, capped."""
    return capped(chunk_request(wildcards).mem_mb, attempt, MAX_MEM_MB)


def analysis_experiments(scope, wildcards):
    """The experiments one analysis job reads: its own (`experiment`), those of its (model, dataset) figure or
    claims scope (`scope`: all of them at the pooled scope or without a {scope} wildcard), or the grid's.
    """
    if scope == "experiment":
        return [experiment(wildcards)]
    if scope == "grid":
        return EXPERIMENTS
    chosen = wildcards.get("scope", POOLED)
    return [e for e in experiments_of(wildcards) if chosen in (POOLED, e.arch)]


@functools.cache
def _analysis_request(rule_name, experiment_ids, datasets):
    return analysis_cost(
        rule_name,
        analysis_job(
            [EXPERIMENT_BY_ID[i] for i in experiment_ids],
            len(set(TRAINING["snapshots"])),
            datasets,
        ),
    )


def analysis_request(rule_name, scope, wildcards, dataset=False):
    if scope == "dataset":  # prepare_dataset: the dataset alone
        return _analysis_request(rule_name, (), (wildcards.dataset,))
    chosen = analysis_experiments(scope, wildcards)
    datasets = tuple(sorted({e.dataset for e in chosen})) if dataset else ()
    return _analysis_request(rule_name, tuple(e.id for e in chosen), datasets)


def analysis_runtime(rule_name, scope="experiment", dataset=False):
    """SLURM time limit (minutes) of an analysis job (weightzoo.cluster.analysis_cost): modelled time x safety
    factor + start-up, x attempt, capped like training's."""

    def runtime(wildcards, attempt):
        request = analysis_request(rule_name, scope, wildcards, dataset)
        return capped(request.minutes, attempt, MAX_RUNTIME)

    return runtime


def analysis_mem_mb(rule_name, scope="experiment", dataset=False):
    """Memory (MB) of an analysis job: the process + a few blocks of one variable (+ per-trial tables, the
    dataset), x safety factor, x attempt, capped."""

    def mem_mb(wildcards, attempt):
        request = analysis_request(rule_name, scope, wildcards, dataset)
        return capped(request.mem_mb, attempt, MAX_MEM_MB)

    return mem_mb


def gpus_requested():
    return 1 if TRAINING["device"] == "cuda" else 0


def workflow_files():
    """Every netCDF file of this config that a job reads: datasets, chunks, zoos, features, node strengths,
    density bins and training status."""
    per_experiment = [
        "results/zoo/{id}.nc",
        "results/analysis/features/{id}.nc",
        "results/analysis/node_strength/{id}.nc",
        "results/analysis/densities/{id}.nc",
        "results/analysis/training_status/{id}.nc",
    ]
    return [
        *(f"resources/datasets/{d}.nc" for d in DATASETS),
        *(
            f"results/train/{e.id}/chunk{c}.nc"
            for e in EXPERIMENTS
            for c in range(e.n_chunks)
        ),
        *(path.format(id=e.id) for e in EXPERIMENTS for path in per_experiment),
    ]


# A job that finds a damaged input moves it aside ({file}.damaged). Snakemake would not remake a missing file
# whose products exist ("Nothing to be done"): as targets, it is remade and, because its job then ran, so is
# everything made from it (weightzoo.io.atomic.moved_aside).
MOVED_ASIDE = moved_aside(workflow_files())
if MOVED_ASIDE and workflow.is_main_process:
    logger.warning(
        f"weightzoo: remaking {len(MOVED_ASIDE)} file(s) moved aside as damaged, and what was made from them: "
        + ", ".join(MOVED_ASIDE)
    )


def all_targets(wildcards):
    """The targets known before the checkpoint group_trials ran; the files moved aside among them, so that the
    first DAG already remakes them and what depends on them (``summarize_zoo`` waits for a zoo gathered again).
    """
    return [*MOVED_ASIDE, *zoo_files(), "results/zoo/summary.csv"]


def checkpoint_targets(wildcards):
    """The targets that depend on the groups (a separate input function: the checkpoint's wait leaves the other
    targets in the first DAG)."""
    return analysis_targets()


# ------------------------------------------------------------------------------------------ analysis

from weightzoo.selection import POOLED

ANALYSIS = config["analysis"]
SCOPES = sorted({(e.model, e.dataset) for e in EXPERIMENTS})
# Figure families drawn at every scope (rules plot_{family}); per architecture all but the statistics t-SNE,
# whose per-architecture counterpart is project_trials, the t-SNE of the weights themselves (raw; canonical and
# invariant come with it).
FAMILIES = (
    "convergence",
    "weight_statistics",
    "metrics",
    "distributions",
    "node_strength",
    "strength_pairs",
    "statistics_tsne",
)
PER_ARCH_FIGURES = [
    *(
        f"results/analysis/{family}/{{id}}.png"
        for family in FAMILIES
        if family != "statistics_tsne"
    ),
    "results/analysis/projection/{id}_raw.png",
]
if any(e.arch == POOLED for e in EXPERIMENTS):
    raise WorkflowError(
        f"an architecture is labelled {POOLED!r}, the name of the pooled scope of the figures: rename it"
    )


wildcard_constraints:
    scope="[^/]+",


def arch_label(model, dataset, arch):
    """An architecture name that sorts naturally as text in the report, which sorts labels as text (h32 before
    h8): its numbers padded with figure spaces (U+2007, as wide as a digit, sorted before digits) to the longest
    number among the architectures of the (model, dataset): h\u20072 < h\u20078 < h32.
    """
    digits = max(
        (
            len(number)
            for e in EXPERIMENTS
            if (e.model, e.dataset) == (model, dataset)
            for number in re.findall(r"\d+", e.arch)
        ),
        default=1,
    )
    return re.sub(r"\d+", lambda m: m.group().rjust(digits, "\u2007"), arch)


def verdict_labels(wildcards):
    """Report labels of a forest plot: listed before the findings table of the same subcategory ("at" < "f")."""
    return {"table": f"at a glance: {wildcards.model} on {wildcards.dataset}"}


def figure_labels(figure):
    """Report labels of an item: model, dataset, architecture ("all (pooled)" at the pooled scope) and what it
    shows."""

    def labels(wildcards):
        scope = wildcards.get("scope", wildcards.get("arch", POOLED))
        return {
            "model": wildcards.model,
            "dataset": wildcards.dataset,
            "arch": (
                "all (pooled)"
                if scope == POOLED
                else arch_label(wildcards.model, wildcards.dataset, scope)
            ),
            "figure": figure,
        }

    return labels


def projection_scores(wildcards, output):
    """t-SNE separation scores for the captions (read when the report is built; {} before the job ran).

    A function of `output` counts as derived, so it never triggers a rerun."""
    from weightzoo.selection import read_scores

    return read_scores(output.scores)


def experiments_of(wildcards):
    return [
        e
        for e in EXPERIMENTS
        if (e.model, e.dataset) == (wildcards.model, wildcards.dataset)
    ]


STORED = {
    "features": "results/analysis/features/{id}.nc",
    "strengths": "results/analysis/node_strength/{id}.nc",
    "densities": "results/analysis/densities/{id}.nc",
    "status": "results/analysis/training_status/{id}.nc",
    "zoo": "results/zoo/{id}.nc",
}


def scope_inputs(kind):
    """Input function: one file per experiment of the (model, dataset) in `wildcards`."""

    def inputs(wildcards):
        return [STORED[kind].format(id=e.id) for e in experiments_of(wildcards)]

    return inputs


def scope_files(*kinds):
    """Input function of a figure: the stored files of each kind of the experiments in the figure's scope (all of
    the (model, dataset) when pooled, else the architecture's)."""

    def inputs(wildcards):
        chosen = [
            e for e in experiments_of(wildcards) if wildcards.scope in (POOLED, e.arch)
        ]
        return {kind: [STORED[kind].format(id=e.id) for e in chosen] for kind in kinds}

    return inputs


def figure_experiments():
    """Experiments with two or more accuracy groups (known once the checkpoint group_trials ran)."""
    from weightzoo.selection import figure_experiments as chosen

    path = checkpoints.group_trials.get().output.summary
    return chosen(path, ANALYSIS["claims"]["min_group"])


def analysis_targets():
    pooled = [
        f"results/analysis/{family}/{model}/{dataset}/{POOLED}.png"
        for model, dataset in SCOPES
        for family in FAMILIES
    ]
    per_arch = [
        path.format(id=experiment)
        for experiment in figure_experiments()
        for path in PER_ARCH_FIGURES
    ]
    return [
        "results/analysis/table2.html",
        "results/analysis/findings.html",
        "results/analysis/claims.html",
        *benchmark_targets(),  # benchmark.smk
        *pooled,
        *per_arch,
    ]


# Exports and the weight-space network (export.smk), the prediction benchmark (benchmark.smk)
def weight_space_scopes():
    """(model, dataset) pairs whose model is a chain of Linear/Conv2d layers (ModelFamily.weight_space_chain)."""
    from weightzoo.models import family

    return [(m, d) for m, d in SCOPES if family(m).weight_space_chain]


def export_targets(order="raw"):
    """Every experiment's export folder (its weights.npy stands for the folder)."""
    return [f"results/export/{e.id}/{order}/weights.npy" for e in EXPERIMENTS]


def weight_space_targets():
    """Method (e)'s predictions per chain (model, dataset), when analysis.weight_space_net.enabled."""
    if not ANALYSIS["weight_space_net"]["enabled"]:
        return []
    return [
        f"results/analysis/benchmark/{model}/{dataset}/weight_space_net.csv"
        for model, dataset in weight_space_scopes()
    ]


BENCHMARK = ANALYSIS["benchmark"]


def weight_space_net_enabled():
    return bool(ANALYSIS.get("weight_space_net", {}).get("enabled", False))


def weight_space_net_predictions(wildcards):
    """Method (e): the weight-space network's out-of-fold predictions of each (model, dataset) it covers, when
    analysis.weight_space_net.enabled; none otherwise (its rows then say how to enable it).
    """
    if not weight_space_net_enabled():
        return []
    # export.smk, train_weight_space_net: the (model, dataset)s whose model has a weight-space chain
    return weight_space_targets()


def benchmark_targets():
    """The benchmark's report table, when analysis.benchmark.enabled."""
    return ["results/analysis/benchmark/benchmark.html"] if BENCHMARK["enabled"] else []
