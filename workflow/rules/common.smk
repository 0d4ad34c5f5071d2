import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package lives beside the Snakefile: import it here and in every job (venv, conda env or cluster
# node alike) without requiring an install into the environment that runs the job.
PACKAGE_SRC = str(Path(workflow.main_snakefile).resolve().parent / "src")
sys.path.insert(0, PACKAGE_SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [PACKAGE_SRC, os.environ.get("PYTHONPATH")])
    )
)

from weightzoo.config import ConfigError, dataset_settings, load_experiments

validate(config, schema="../schemas/config.schema.yaml")
try:
    EXPERIMENTS = load_experiments(config)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from err
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


def gpus_requested():
    return 1 if TRAINING["device"] == "cuda" else 0


def all_targets():
    return [*zoo_files(), "results/zoo/summary.csv"]
