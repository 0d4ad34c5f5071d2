"""The paper-scale rehearsal (bench/paper_scale.py): its chunks are the trainer's, and the real workflow runs on them."""

import importlib.util
import json

import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import ROOT
from helpers import tiny_dataset

spec = importlib.util.spec_from_file_location("paper_scale", ROOT / "bench/paper_scale.py")
paper_scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paper_scale)


def paper_config():
    return yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def test_config_cut_to_the_chosen_experiments_keeps_their_labels_and_chunks(tmp_path):
    from weightzoo.config import load_experiments

    config = paper_scale.rehearsal_config(paper_config(), ["dnn/cifar10/h1000", "dnn/mnist/h5*"], tmp_path,
                                          snapshots=[-1])
    experiments = load_experiments(paper_scale._with_defaults(config))
    assert sorted(e.id for e in experiments) == ["dnn/cifar10/h1000", "dnn/mnist/h5", "dnn/mnist/h50"]
    big = next(e for e in experiments if e.arch == "h1000")
    assert (big.trials, big.trials_per_job, big.n_chunks) == (1000, 100, 10)  # as config/paper.yaml plans them
    assert config["training"]["snapshots"] == [-1] and config["training"]["device"] == "cpu"
    assert all((tmp_path / "resources/raw" / name).is_dir() for name in config["datasets"])
    small = paper_scale.rehearsal_config(paper_config(), ["dnn/mnist/h5"], tmp_path, trials=40)
    (block,) = small["experiments"]
    assert (block["trials"], block["trials_per_job"]) == (40, 40)
    with pytest.raises(SystemExit, match="no experiment"):
        paper_scale.rehearsal_config(paper_config(), ["dnn/svhn/*"], tmp_path)


def test_synthetic_result_has_the_trainers_layout():
    """Same variables, dims, dtypes and per-trial coordinates as a zoo that was really trained."""
    from weightzoo.analysis.groups import paper_windows
    from weightzoo.io.store import result_to_dataset
    from weightzoo.models import model_kwargs
    from weightzoo.train import Hyperparameters, TensorData, train_trials

    data = TensorData.from_dataset(tiny_dataset(side=8))
    kwargs = model_kwargs("dnn", {"hidden": 6}, data.input_shape, 10)
    hp = Hyperparameters(epochs=3, batch_size=50, snapshots=(0, 1, -1))
    trials = np.arange(4, 64)
    real = train_trials("dnn", kwargs, data, trials[:2], hp)
    fake = paper_scale.synthetic_result("dnn", kwargs, trials, hp, [{}] * len(trials),
                                        paper_windows("dnn", "mnist"), 10, seed=0)

    def as_zoo(result):
        return result_to_dataset(result, model="dnn", dataset="tiny", arch="h6", model_kwargs=kwargs,
                                 hyperparameters={}, input_shape=data.input_shape, n_classes=10)

    real_zoo, fake_zoo = as_zoo(real), as_zoo(fake)
    assert set(real_zoo.variables) == set(fake_zoo.variables)
    for name in real_zoo.variables:
        assert real_zoo[name].dims == fake_zoo[name].dims, name
        assert real_zoo[name].dtype == fake_zoo[name].dtype, name
        assert real_zoo[name].shape[1:] == fake_zoo[name].shape[1:], name
    # a spread: accuracies over the paper's windows, some diverged, weights differing per trial and moving
    final = fake.train_accuracy[:, -1]
    assert np.nanstd(final) > 0.1 and fake_zoo["fc1_weight"].isel(snapshot=-1).std("trial").min() > 0
    moved = np.abs(fake.weights["fc1.weight"][:, -1] - fake.weights["fc1.weight"][:, 0]).mean()
    assert moved > 0.01
    big = paper_scale.synthetic_result("dnn", kwargs, np.arange(2000), hp, [{}] * 2000,
                                       paper_windows("dnn", "mnist"), 10, seed=0)
    assert 0 < big.diverged.sum() < 100
    gone = big.diverged_epoch[big.diverged]
    assert np.isnan(big.train_loss[big.diverged, -1]).all() and (gone >= 1).all()


@pytest.mark.slow
def test_rehearsal_runs_the_workflow_on_synthetic_chunks_without_training(tmp_path):
    workdir = tmp_path / "rehearsal"
    summary = paper_scale.main(["--workdir", str(workdir), "--experiment", "dnn/mnist/h5", "--trials", "40",
                                "--trials-per-job", "20", "--cores", "2"])
    # the chunks were written, never trained; the workflow gathered them and analysed them to the report
    assert not (workdir / "benchmarks/train_trials").exists()
    chunk = xr.open_dataset(workdir / "results/train/dnn/mnist/h5/chunk1.nc")
    assert chunk.attrs["device"] == paper_scale.SYNTHETIC_DEVICE and chunk.sizes["trial"] == 20
    with xr.open_dataset(workdir / "results/zoo/dnn/mnist/h5.nc") as zoo:
        assert zoo.sizes["trial"] == 40 and zoo.sizes["snapshot"] == 3
    claims = (workdir / "results/analysis/claims/dnn/mnist.csv").read_text()
    assert len(claims.splitlines()) > 1
    assert summary["report_bytes"] > 0 and (workdir / "report.zip").exists()
    rules = {r["rule"]: r for r in json.loads((workdir / "rehearsal.json").read_text())["rules"]}
    for rule in ("gather_zoo", "extract_features", "project_trials", "evaluate_claims", "collect_claims"):
        assert rules[rule]["jobs"] >= 1 and rules[rule]["max_rss_mb"] > 0, rule
    assert summary["peak_disk_bytes"] >= summary["chunks_bytes"] + summary["zoo_bytes"]
    # every job after the checkpoint asks SLURM for what the analysis cost model says (test_cluster checks the rest)
    from test_cluster import dry_run_jobs

    from weightzoo import cluster
    from weightzoo.config import load_experiments

    proc = paper_scale.subprocess.run(
        [paper_scale.sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
         str(workdir), "--configfile", str(workdir / "rehearsal.yaml"), "-n", "--rerun-triggers", "mtime",
         "--forcerun", "extract_features", "project_trials"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (e,) = experiments = load_experiments(paper_scale._with_defaults(yaml.safe_load((workdir / "rehearsal.yaml").read_text())))
    expected = {rule: cluster.analysis_cost(rule, cluster.analysis_job(experiments, 3, [e.dataset] if dataset else []))
                for rule, dataset in [("extract_features", True), ("project_trials", False),
                                      ("evaluate_claims", False), ("plot", False)]}
    for rule, model in [("extract_features", "extract_features"), ("project_trials", "project_trials"),
                        ("evaluate_claims", "evaluate_claims"), ("plot_convergence", "plot")]:
        jobs = dry_run_jobs(proc.stdout, rule)
        assert jobs, rule
        for _, resources in jobs:
            assert int(resources["mem_mb"]) == expected[model].mem_mb, rule
            assert int(resources["runtime"]) == expected[model].minutes, rule
