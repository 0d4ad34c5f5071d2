"""The prediction benchmark on zoos whose truth is known: a planted effect scores, no effect and a recipe-only
effect do not, the folds never split a recipe, and the weight-space network's predictions are read and checked."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from weightzoo.analysis.benchmark import (
    FOLD_COLUMNS,
    Cell,
    anchor_columns,
    assign_folds,
    benchmark_table,
    read_folds,
    recipes,
)
from weightzoo.analysis.benchmark.folds import target
from weightzoo.analysis.benchmark.methods import unterthiner_features
from weightzoo.analysis.claims.out_of_fold import cross_val_predict, r2
from zoo_factory import make_benchmark_features

SETTINGS = dict(max_iter=30, max_bins=63, n_bootstrap=199, alpha=0.05, seed=0)
FEATURE_METHODS = ("a", "b", "c", "d")


def table_of(features, dataset="synthetic", predictions=None, weight_space_net=False, methods="abcde"):
    cell = Cell("smallcnn", dataset, features, assign_folds(features, 5, 0), predictions)
    return benchmark_table([cell], weight_space_net=weight_space_net, methods=methods, **SETTINGS)


def row(table, method, model="smallcnn"):
    return table[(table["method"] == method) & (table["model"] == model)].iloc[0]


@pytest.fixture(scope="module")
def planted():
    return make_benchmark_features("planted", n_recipes=80, diverged=(3, 7))


def test_folds_contract(planted, tmp_path):
    from weightzoo.io.atomic import write_csv_atomic

    folds = assign_folds(planted, 5, seed=0)
    assert tuple(folds.columns) == FOLD_COLUMNS
    assert len(folds) == planted.sizes["trial"] - 2 and not folds["trial"].isin([3, 7]).any()  # diverged left out
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (folds["experiment"] == "smallcnn/synthetic/base").all()
    assert folds["recipe"].nunique() == len(folds)  # per-trial random draws: every trial its own recipe
    assert assign_folds(planted, 5, seed=0).equals(folds) and not assign_folds(planted, 5, seed=1).equals(folds)
    write_csv_atomic(folds, tmp_path / "folds.csv")
    assert read_folds(tmp_path / "folds.csv").equals(folds)


def test_seeds_of_one_recipe_never_sit_on_both_sides():
    features = make_benchmark_features("recipe", n_recipes=12, seeds=6)
    folds = assign_folds(features, 5, seed=0)
    assert folds.groupby("recipe")["fold"].nunique().max() == 1
    assert folds["recipe"].nunique() == 12 and (folds.groupby("recipe").size() == 6).all()
    assert set(folds["recipe"]) == set(recipes(features))


def test_planted_effect_scores_with_intervals_above_zero(planted):
    table = table_of(planted, dataset="mnist5k")
    for method in FEATURE_METHODS:
        r = row(table, method)
        assert r["reason"] == "" and r["n"] == 78 and r["n_recipes"] == 78 and r["cv_folds"] == 5
        assert 0 < r["tau_low"] < r["tau"] < r["tau_high"] and 0 < r["r2_low"] < r["r2"] < r["r2_high"]
    assert row(table, "a")["n_features"] == 4 * 7 * 2  # 4 layers, kernel and bias, 7 statistics each
    assert row(table, "a")["anchor_r2"] == 0.993 and "30,000 nets" in row(table, "a")["anchor_zoo"]
    assert "2 diverged" in row(table, "a")["excluded"]
    cell = table[table["model"] == "smallcnn"]
    assert (cell["best"] != "").sum() == 1 and "highest τ" in cell.loc[cell["best"] != "", "best"].iloc[0]
    assert "not run: set analysis.weight_space_net.enabled: true" in row(table, "e")["reason"]
    assert "pooling over cells needs two or more" in row(table, "a", model="all")["reason"]


def test_no_effect_scores_nothing():
    table = table_of(make_benchmark_features("null", n_recipes=80, seed=1))
    for method in FEATURE_METHODS:
        r = row(table, method)
        assert r["tau_low"] < 0 < r["tau_high"], method
        assert r["r2"] <= 0.05 and r["r2_low"] < 0, method


def test_a_recipe_only_effect_does_not_score_on_folds_grouped_by_recipe():
    features = make_benchmark_features("recipe", n_recipes=20, seeds=6, seed=2)
    y = target(features)
    X = unterthiner_features(features, False)[0]
    # the leak the grouped folds close: seed siblings in the training fold let ungrouped K-fold "predict"
    with threadpool_limits(limits=1, user_api="openmp"):
        leaky = cross_val_predict(HistGradientBoostingRegressor(max_iter=100, min_samples_leaf=3), X, y,
                                  KFold(5, shuffle=True, random_state=0))
    assert r2(y, leaky) > 0.6
    table = table_of(features)
    for method in FEATURE_METHODS:
        r = row(table, method)
        assert r["n_recipes"] == 20 and r["tau_low"] < 0 and r["r2"] < 0.1, method


def test_too_few_recipes_say_so_and_what_answers_it():
    table = table_of(make_benchmark_features("planted", n_recipes=4, seeds=10))
    for method in FEATURE_METHODS:
        r = row(table, method)
        assert r["reason"].startswith("4 recipes < 5") and "what answers it: more recipes" in r["reason"]
        assert np.isnan(r["tau"]) and r["n"] == 40 and r["cv_folds"] == 4


def weight_space_net_file(features, tmp_path, noise=0.01, seed=0):
    folds = assign_folds(features, 5, 0)
    y = target(features)[np.isin(features["trial_in_experiment"].values, folds["trial"])]
    frame = folds[["experiment", "trial", "fold"]].assign(
        target=y, predicted=y + noise * np.random.default_rng(seed).normal(size=y.size))
    path = tmp_path / "weight_space_net.csv"
    frame.to_csv(path, index=False)
    return path


def test_weight_space_net_predictions_are_read_and_checked(planted, tmp_path):
    from weightzoo.analysis.benchmark import read_predictions

    path = weight_space_net_file(planted, tmp_path)
    good = read_predictions(path)

    def reason(predictions):
        return row(table_of(planted, predictions=predictions, weight_space_net=True, methods="e"), "e")["reason"]

    r = row(table_of(planted, predictions=good, weight_space_net=True, methods="e"), "e")
    assert r["reason"] == "" and r["n"] == 78 and r["tau_low"] > 0.8 and r["r2_low"] > 0.9
    assert "another fold" in reason(good.assign(fold=(good["fold"] + 1) % 5))
    assert "5 of the 78 trials" in reason(good.iloc[5:])
    assert "target" in reason(good.assign(target=good["target"] + 0.1))
    assert "no weight_space_net.csv" in reason(None)
    with pytest.raises(ValueError, match="no column predicted"):
        good.drop(columns="predicted").to_csv(tmp_path / "bad.csv", index=False)
        read_predictions(tmp_path / "bad.csv")


def test_pooled_rows_align_cells_with_different_layers():
    cnn = make_benchmark_features("planted", n_recipes=40, seed=3, dataset="mnist")
    dnn = make_benchmark_features("planted", n_recipes=40, seed=4, model="dnn", layers=("fc1", "fc2", "fc3"),
                                  dataset="mnist")
    cells = [Cell("smallcnn", "mnist", cnn, assign_folds(cnn, 5, 0)),
             Cell("dnn", "mnist", dnn, assign_folds(dnn, 5, 0))]
    table = benchmark_table(cells, **SETTINGS)
    pooled = table[table["model"] == "all"]
    assert len(pooled) == 5 and (pooled["n"] == 80).all()
    a = row(table, "a", model="all")
    assert a["n_features"] == 14 and a["tau_low"] > 0 and a["n_recipes"] == 80  # network-layer moments, both cells
    assert "not applicable" in row(table, "e", model="all")["reason"]
    assert (table["model"] == "dnn").sum() == 5


def test_stale_folds_are_refused(planted):
    folds = assign_folds(planted, 5, 0).iloc[1:]
    with pytest.raises(ValueError, match="rerun benchmark_folds"):
        benchmark_table([Cell("smallcnn", "synthetic", planted, folds)], **SETTINGS)


def test_anchor_beside_the_same_method():
    assert anchor_columns("a", "mnist5k")["anchor_r2"] == 0.993
    cifar = anchor_columns("a", "cifar10")
    assert (cifar["anchor_r2"], cifar["anchor_tau"]) == (0.984, 0.915) and "grayscale" in cifar["anchor_zoo"]
    nfn = anchor_columns("e", "svhn")
    assert np.isnan(nfn["anchor_tau"]) and "NFN_NP τ 0.856" in nfn["anchor"] and "NFN_HNP τ 0.931" in nfn["anchor"]
    assert anchor_columns("b", "cifar10")["anchor"] == "none published for this method"
    assert "not a Small CNN Zoo dataset" in anchor_columns("a", "digits")["anchor"]
    assert "not a Small CNN Zoo dataset" in anchor_columns("a", "cifar100")["anchor"]
    fmnist = anchor_columns("a", "fmnist")
    assert fmnist["anchor_r2"] == 0.993 and np.isnan(fmnist["anchor_tau"])  # not read as MNIST
    assert "on other datasets, not comparable: StatNN τ 0.915 (Small CNN Zoo CIFAR-10-GS" in fmnist["anchor"]
    nfn_fmnist = anchor_columns("e", "fmnist")  # the weight-space networks were published on CIFAR-10/SVHN only
    assert np.isnan(nfn_fmnist["anchor_tau"]) and nfn_fmnist["anchor"].startswith("none published on fmnist; on other")
    assert "NFN_HNP τ 0.934" in nfn_fmnist["anchor"]


def test_jobs_write_folds_and_table_from_real_features(tmp_path):
    """trial_features of a small zoo (kernel and bias statistics, node-strength moments) through both jobs."""
    from weightzoo.analysis.features import trial_features
    from weightzoo.io.atomic import write_netcdf_atomic
    from weightzoo.jobs.benchmark import evaluate_benchmark, write_folds
    from zoo_factory import make_zoo

    zoo = make_zoo(n_trials=30, model="dnn", dataset="mnist5k")
    zoo = zoo.assign_coords(init_std=("trial", np.exp(np.random.default_rng(0).uniform(-4, 0, 30))))
    features = trial_features(zoo, n_quantiles=16, experiment="dnn/mnist5k/h8")
    assert {"bias_statistic", "strength_statistic"} <= set(features.data_vars)
    write_netcdf_atomic(features, tmp_path / "h8.nc")
    folds_path = tmp_path / "benchmark/dnn/mnist5k/folds.csv"
    write_folds([tmp_path / "h8.nc"], folds_path, cv_folds=3, seed=0)
    folds = pd.read_csv(folds_path)
    assert len(folds) == 30 and folds["fold"].nunique() == 3
    evaluate_benchmark([tmp_path / "h8.nc"], [folds_path], tmp_path / "benchmark.csv", tmp_path / "benchmark.html",
                       dict(max_iter=20, max_bins=63, n_bootstrap=99))
    table = pd.read_csv(tmp_path / "benchmark.csv", keep_default_na=False, na_values=[""])
    a = table[(table["model"] == "dnn") & (table["method"] == "a")].iloc[0]
    assert a["n"] == 30 and a["n_recipes"] == 30 and a["cv_folds"] == 3 and np.isfinite(a["tau"])
    assert a["n_features"] == 3 * 7  # the kernel statistics; this zoo's biases are all 0: constant, left out
    html = (tmp_path / "benchmark.html").read_text()
    assert "Kendall τ [95%]" in html and "(a) per-layer statistics" in html


@pytest.mark.slow
def test_rules_make_the_folds_of_every_cell_then_the_table(tmp_path):
    """A dry run of the tiny config: one folds job per (model, dataset), one table job, and no weight-space
    network input while analysis.weight_space_net is not enabled."""
    import shutil

    from conftest import ROOT, snakemake

    shutil.copy(ROOT / "tests/config/tiny.yaml", tmp_path / "tiny.yaml")
    proc = snakemake(tmp_path, "results/analysis/benchmark/benchmark.html", "--configfile", str(tmp_path / "tiny.yaml"),
                     "-n", "--quiet", "rules", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = dict(line.split()[:2] for line in proc.stdout.splitlines() if line.startswith("benchmark_"))
    assert counts == {"benchmark_folds": "3", "benchmark_predictions": "1"}
    assert "weight_space_net.csv" not in proc.stdout
