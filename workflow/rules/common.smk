import json
import math
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The package lives beside the Snakefile: import it here and in every job (venv, conda env or cluster
# node alike) without requiring an install into the environment that runs the job.
PACKAGE_SRC = str(Path(workflow.main_snakefile).resolve().parent / "src")
sys.path.insert(0, PACKAGE_SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [PACKAGE_SRC, os.environ.get("PYTHONPATH")])
    )
)

from weightzoo.config import ConfigError, dataset_settings
from weightzoo.schema import check_config, config_sources

# Numbers written `1e-3` are coerced (YAML 1.1 reads them as strings), then snakemake.utils.validate fills the
# schema's defaults; errors come back as one line with key, value, file and line instead of the whole schema.
try:
    EXPERIMENTS = check_config(
        config, config_sources(workflow.overwrite_configfiles, workflow.configfiles)
    )
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
EXPERIMENT_BY_ID = {e.id: e for e in EXPERIMENTS}
DATASETS = sorted({e.dataset for e in EXPERIMENTS})
TRAINING = config["training"]


wildcard_constraints:
    model="dnn|cnn|vit",
    dataset="[a-z0-9]+",
    arch="[^/]+",
    chunk=r"\d+",


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
        "training": TRAINING,
        "config_block": config["experiments"][exp.block],
    }


def trials_in_job(wildcards):
    return len(experiment(wildcards).chunk_trials(int(wildcards.chunk)))


# Minutes one trial-epoch may take on a GPU node (vectorised; calibrate from docs/benchmarks.md).
MINUTES_PER_TRIAL_EPOCH = 0.05


def train_runtime(wildcards, attempt):
    """SLURM time limit (minutes) of a training job: start-up plus its trial-epochs, times the attempt."""
    trial_epochs = trials_in_job(wildcards) * TRAINING["epochs"]
    return attempt * (10 + math.ceil(trial_epochs * MINUTES_PER_TRIAL_EPOCH))


def gpus_requested():
    return 1 if TRAINING["device"] == "cuda" else 0


def all_targets():
    return [*zoo_files(), "results/zoo/summary.csv", *analysis_targets()]


# ------------------------------------------------------------------------------------------ analysis

ANALYSIS = config["analysis"]
ANALYSIS_OUTPUTS = {
    "convergence": "results/analysis/convergence/{id}.png",
    "weight_statistics": "results/analysis/weight_statistics/{id}.png",
    "distributions": "results/analysis/distributions/{id}.png",
    "node_strength": "results/analysis/node_strength/{id}.png",
    "strength_pairs": "results/analysis/node_strength/{id}_pairs.png",
    "projection": "results/analysis/projection/{id}_raw.png",
    "claims": "results/analysis/claims/{id}.html",
}


def figure_labels(figure):
    """Report labels of a per-experiment item: model, dataset, architecture and what it shows."""
    return {
        "model": "{model}",
        "dataset": "{dataset}",
        "arch": "{arch}",
        "figure": figure,
    }


def projection_scores(wildcards, output):
    """t-SNE separation scores for the captions (read when the report is built; {} before the job ran).

    A function of `output` counts as derived, so it never triggers a rerun."""
    from weightzoo.analysis_jobs import read_scores

    return read_scores(output.scores)


def claims_tables():
    return [f"results/analysis/claims/{e.id}.csv" for e in EXPERIMENTS]


def analysis_targets():
    per_experiment = [
        path.format(id=e.id) for e in EXPERIMENTS for path in ANALYSIS_OUTPUTS.values()
    ]
    return [
        "results/analysis/table2.html",
        "results/analysis/claims.html",
        *per_experiment,
    ]
