"""End to end: snakemake on a tiny config in a temporary directory, and a dry run of the paper's grid."""

import json
import subprocess
import time

import pandas as pd
import pytest
import xarray as xr

from conftest import ROOT, SNAKEMAKE, snakemake

pytestmark = pytest.mark.slow


def test_gathered_zoo_dims_coords_attrs(tiny_run):
    path = tiny_run / "results/zoo/dnn/digits/h8.nc"
    with xr.open_dataset(path) as zoo:
        assert (zoo.sizes["trial"], zoo.sizes["epoch"], zoo.sizes["snapshot"]) == (6, 2, 3)
        assert zoo["trial"].values.tolist() == list(range(6)) and zoo["seed"].values.tolist() == list(range(6))
        assert zoo["fc1_weight"].dims == ("trial", "snapshot", "fc1_out", "fc1_in")
        assert zoo.sizes["fc1_out"] == 8 and zoo.sizes["fc1_in"] == 64
        assert zoo["snapshot"].values.tolist() == [0, 1, 2]
        assert zoo.attrs["model"] == "dnn" and zoo.attrs["dataset"] == "digits" and zoo.attrs["arch"] == "h8"
        assert json.loads(zoo.attrs["model_kwargs"]) == {"in_features": 64, "hidden": 8, "n_classes": 10}
        assert json.loads(zoo.attrs["hyperparameters"])["epochs"] == 2
        assert json.loads(zoo.attrs["config"])["trials_per_job"] == 3
        assert len(json.loads(zoo.attrs["gathered_from"])) == 2
        assert zoo["test_accuracy"].attrs["units"] == "1"
    with xr.open_dataset(tiny_run / "results/zoo/vit/digits/base.nc") as vit:
        assert "blocks_0_attn_qkv_weight" in vit and vit["blocks_0_attn_qkv_weight"].attrs["layer"] == "blocks.0.attn.qkv"


def test_summary_covers_every_trial(tiny_run):
    table = pd.read_csv(tiny_run / "results/zoo/summary.csv")
    assert sorted(table["experiment"].unique()) == ["cnn/digits/base", "dnn/digits/h2", "dnn/digits/h8",
                                                    "vit/digits/base"]
    assert len(table) == 6 + 6 + 3 + 3
    assert table["final_test_accuracy"].between(0, 1).all()


def test_every_job_logged_and_benchmarked(tiny_run):
    log = (tiny_run / "logs/train_trials/dnn/digits/h8/chunk1.log").read_text()
    assert "epoch 2/2 loss min/median/max" in log and "trial-samples/s" in log
    assert (tiny_run / "benchmarks/train_trials/dnn/digits/h8/chunk1.tsv").exists()


def test_rerun_has_nothing_to_do(tiny_run):
    proc = snakemake(tiny_run, "--configfile", str(tiny_run / "tiny.yaml"), "--cores", "2", "-n")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


def test_bad_config_fails_before_any_job(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "datasets: {digits: {}}\nexperiments:\n  - {model: vit, datasets: [digits], arch: {heads: 3, embed_dim: 8}}\n")
    proc = snakemake(tmp_path, "--configfile", str(tmp_path / "bad.yaml"), "--cores", "1")
    assert proc.returncode != 0
    assert "experiments[0].arch.heads: 3 does not divide embed_dim 8" in proc.stderr
    assert not (tmp_path / "resources").exists()


def test_paper_grid_dry_run():
    start = time.perf_counter()
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(ROOT), "-n", "--configfile", "config/paper.yaml"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train_trials" in proc.stdout
    assert time.perf_counter() - start < 120


FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not __import__("os").path.isdir(FMNIST), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_data_study_in_small(tmp_path):
    """tests/config/fmnist_tiny.yaml, the shape of config/fmnist.yaml: the paper's windows group real trials,
    the sweep gives accuracy variation inside an architecture, and the findings page is written."""
    proc = snakemake(tmp_path, "--configfile", str(ROOT / "tests/config/fmnist_tiny.yaml"), "--cores", "2",
                     "--until", "collect_claims")
    assert proc.returncode == 0, proc.stderr[-5000:]
    groups = pd.read_csv(tmp_path / "results/analysis/summary_groups.csv", keep_default_na=False)
    dnn = groups[groups["model"] == "dnn"]
    assert set(dnn["init_std"]) == {0.05, 1.0} and set(dnn["train_fraction"]) == {1.0, 0.02}
    h5 = dnn[dnn["arch"] == "h5"]["final_train_accuracy"]
    assert h5.max() - h5.min() > 0.2  # the sweep spreads accuracy inside one architecture
    assert set(groups["group"]) <= {"non", "low", "mid", "high", ""} and (groups["group"] == "low").any()
    claims = pd.read_csv(tmp_path / "results/analysis/claims.csv")
    assert {"pooled", "controlled", "within", "kfold", "loao"} <= set(claims["scope"])
    assert "dnn on fmnist" in (tmp_path / "results/analysis/findings.html").read_text()
