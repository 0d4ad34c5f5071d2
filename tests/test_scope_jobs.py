"""The paper-scope jobs on two synthetic architectures: features, pooled figures, claims, findings page."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from zoo_factory import make_zoo

from weightzoo import scope_jobs
from weightzoo.selection import figure_experiments
from weightzoo.analysis.groups import assign_groups


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scope")
    rows, zoos = [], []
    for hidden, seed in ((4, 0), (8, 1)):
        ds = make_zoo(n_trials=16, hidden=hidden, seed=seed, dataset="d")
        ds.attrs["arch"] = f"h{hidden}"
        path = tmp / f"h{hidden}.nc"
        ds.to_netcdf(path)
        zoos.append(path)
        accuracy = ds["train_accuracy"].isel(epoch=-1).values
        rows.append(pd.DataFrame({"experiment": f"dnn/d/h{hidden}", "model": "dnn", "dataset": "d", "arch": f"h{hidden}",
                                  "trial": ds["trial"].values, "acc": accuracy}))
    summary = pd.concat(rows, ignore_index=True)
    summary["group"] = assign_groups(summary["acc"], n_classes=10, method="bins", bins=(0.4, 0.7))
    summary.loc[summary["experiment"] == "dnn/d/h4", "group"] = "low"  # h4: one group only
    summary.to_csv(tmp / "groups.csv", index=False)
    features, strengths = [], []
    for path, arch in zip(zoos, ("h4", "h8")):
        features.append(tmp / f"{arch}_features.nc")
        strengths.append(tmp / f"{arch}_strengths.nc")
        scope_jobs.extract_features(path, tmp / "groups.csv", f"dnn/d/{arch}", features[-1], strengths[-1],
                                    max_values=200)
    return tmp, zoos, features, strengths, summary


def test_features_and_node_strength_files(scope):
    tmp, zoos, features, strengths, _ = scope
    with xr.open_dataset(features[1]) as f, xr.open_dataset(strengths[1]) as s, xr.open_dataset(zoos[1]) as z:
        assert f["statistic"].dims == ("trial", "layer", "stat") and f.sizes["level"] == 200
        assert set(f["arch"].values) == {"h8"} and "early_statistic" in f
        assert s["fc1_strength"].dims == ("trial", "fc1_node") and s.sizes["fc1_node"] == 8
        by_hand = np.abs(z["fc1_weight"].isel(snapshot=-1).values.astype(float)).sum(axis=2)
        np.testing.assert_allclose(s["fc1_strength"].values, by_hand, rtol=1e-6)
        np.testing.assert_allclose(f["mean_strength"].sel(strength_layer="fc1").values, by_hand.mean(axis=1), rtol=1e-6)


def test_pooled_figures_claims_and_findings(scope):
    tmp, zoos, features, strengths, summary = scope
    outputs = {name: tmp / f"{name}.png" for name in
               ("convergence", "weight_statistics", "distributions", "node_strength", "strength_pairs", "projection")}
    outputs["scores"] = tmp / "scores.json"
    scope_jobs.characterize_scope(features, zoos, strengths, outputs, "dnn on d", perplexity=5)
    assert all(p.stat().st_size > 5000 for k, p in outputs.items() if k != "scores")
    scores = json.loads(outputs["scores"].read_text())["statistics"][0]
    assert scores["n_trials"] == 32 and scores["arch_knn_accuracy"] is not None

    scope_jobs.evaluate_claims(features, tmp / "claims.csv", tmp / "claims.html",
                               {"n_permutations": 49, "n_bootstrap": 49, "cv_folds": 3}, "dnn on d")
    claims = pd.read_csv(tmp / "claims.csv")
    assert {"pooled", "controlled", "within", "seeds", "kfold", "loao"} == set(claims["scope"])
    assert set(claims.loc[claims["scope"] == "within", "arch"]) == {"h4", "h8"}

    scope_jobs.collect_findings([tmp / "claims.csv"], tmp / "groups.csv", tmp / "all.csv", tmp / "all.html",
                                tmp / "findings.html")
    page = (tmp / "findings.html").read_text()
    assert "dnn on d" in page and "controlled" in page
    assert "dnn/d/h4: no per-architecture figures" in page and "dnn/d/h8: no per-architecture" not in page
    assert figure_experiments(tmp / "groups.csv", 3) == ["dnn/d/h8"]


def test_claims_on_a_layer_that_never_trained_say_so(tmp_path):
    from weightzoo.analysis.trained import training_status

    ds = make_zoo(n_trials=24, hidden=8, seed=3, dataset="d")
    ds["fc2_weight"][:, 1:] = ds["fc2_weight"][:, :1].values  # fc2 never moves from its initial draw
    ds.to_netcdf(tmp_path / "zoo.nc")
    training_status(ds).to_netcdf(tmp_path / "status.nc")
    accuracy = ds["train_accuracy"].isel(epoch=-1).values
    pd.DataFrame({"experiment": "dnn/d/h8", "trial": ds["trial"].values,
                  "group": assign_groups(accuracy, n_classes=10, method="bins", bins=(0.4, 0.7))}).to_csv(
        tmp_path / "groups.csv", index=False)
    scope_jobs.extract_features(tmp_path / "zoo.nc", tmp_path / "groups.csv", "dnn/d/h8", tmp_path / "f.nc",
                                tmp_path / "s.nc", max_values=100)
    scope_jobs.evaluate_claims([tmp_path / "f.nc"], tmp_path / "c.csv", tmp_path / "c.html",
                               {"n_permutations": 49, "n_bootstrap": 49, "cv_folds": 3}, "dnn on d",
                               status_paths=[tmp_path / "status.nc"])
    claims = pd.read_csv(tmp_path / "c.csv")
    fc2 = claims[claims["layer"] == "fc2"]
    assert (fc2["verdict"] == "never trained").all() and fc2["reason"].str.contains("fc2_weight").all()
    assert not (claims[claims["layer"] == "fc1"]["verdict"] == "never trained").any()
