"""The jobs at every scope on two synthetic architectures: features, figures pooled and per architecture (a
selection of the pooled view), claims, findings page."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from zoo_factory import make_zoo

from weightzoo.analysis.groups import assign_groups
from weightzoo.analysis.kde import pooled_layer_density
from weightzoo.analysis.scope import ScopeView
from weightzoo.io.atomic import load_checked
from weightzoo.jobs.claims import collect_findings, evaluate_claims
from weightzoo.jobs.features import extract_features
from weightzoo.jobs.figures import draw_figure
from weightzoo.report.figures import FAMILIES
from weightzoo.selection import POOLED, figure_experiments


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
    features, strengths, densities = [], [], []
    for path, arch in zip(zoos, ("h4", "h8")):
        features.append(tmp / f"{arch}_features.nc")
        strengths.append(tmp / f"{arch}_strengths.nc")
        densities.append(tmp / f"{arch}_densities.nc")
        extract_features(path, tmp / "groups.csv", f"dnn/d/{arch}", features[-1], strengths[-1], max_values=200,
                         densities_path=densities[-1])
    return tmp, zoos, features, strengths, densities, summary


def test_features_and_node_strength_files(scope):
    tmp, zoos, features, strengths, _, _ = scope
    with xr.open_dataset(features[1]) as f, xr.open_dataset(strengths[1]) as s, xr.open_dataset(zoos[1]) as z:
        assert f["statistic"].dims == ("trial", "layer", "stat") and f.sizes["level"] == 200
        assert set(f["arch"].values) == {"h8"} and "early_statistic" in f
        assert s["fc1_strength"].dims == ("trial", "fc1_node") and s.sizes["fc1_node"] == 8
        by_hand = np.abs(z["fc1_weight"].isel(snapshot=-1).values.astype(float)).sum(axis=2)
        np.testing.assert_allclose(s["fc1_strength"].values, by_hand, rtol=1e-6)
        np.testing.assert_allclose(f["mean_strength"].sel(strength_layer="fc1").values, by_hand.mean(axis=1), rtol=1e-6)


def test_pooled_figures_claims_and_findings(scope):
    tmp, zoos, features, strengths, densities, summary = scope
    inputs = {"features": features, "strengths": strengths, "densities": densities}
    for figure in (*FAMILIES, "statistics_tsne"):
        for where in (POOLED, "h8"):
            out = tmp / f"{figure}_{where}.png"
            draw_figure(figure, where, inputs, out, "dnn on d", perplexity=5, scores_path=tmp / f"{where}.json")
            assert out.stat().st_size > 5000, (figure, where)
    scores = json.loads((tmp / f"{POOLED}.json").read_text())["statistics"][0]
    assert scores["n_trials"] == 32 and scores["arch_knn_accuracy"] is not None
    assert json.loads((tmp / "h8.json").read_text())["statistics"][0]["n_trials"] == 16

    evaluate_claims(features, tmp / "claims.csv", tmp / "claims.html",
                    {"n_permutations": 49, "n_bootstrap": 49, "cv_folds": 3}, "dnn on d")
    claims = pd.read_csv(tmp / "claims.csv")
    assert {"pooled", "controlled", "within", "seeds", "kfold", "loao"} == set(claims["scope"])
    assert set(claims.loc[claims["scope"] == "within", "arch"]) == {"h4", "h8"}

    collect_findings([tmp / "claims.csv"], tmp / "groups.csv", tmp / "all.csv", tmp / "all.html",
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
    extract_features(tmp_path / "zoo.nc", tmp_path / "groups.csv", "dnn/d/h8", tmp_path / "f.nc", tmp_path / "s.nc",
                     max_values=100)
    evaluate_claims([tmp_path / "f.nc"], tmp_path / "c.csv", tmp_path / "c.html",
                    {"n_permutations": 49, "n_bootstrap": 49, "cv_folds": 3}, "dnn on d",
                    status_paths=[tmp_path / "status.nc"])
    claims = pd.read_csv(tmp_path / "c.csv")
    fc2 = claims[claims["layer"] == "fc2"]
    assert (fc2["verdict"] == "never trained").all() and fc2["reason"].str.contains("fc2_weight").all()
    assert not (claims[claims["layer"] == "fc1"]["verdict"] == "never trained").any()


def test_an_architecture_is_the_pooled_view_selected(scope):
    """The figures of one architecture draw the pooled view's data of its trials: the same numbers as the view of
    its files alone, and as the experiment's own stored results."""
    tmp, zoos, features, strengths, densities, _ = scope
    stored = {"features": [load_checked(p) for p in features], "strengths": [load_checked(p) for p in strengths],
              "densities": [load_checked(p) for p in densities]}
    pooled = ScopeView(**stored)
    selected = ScopeView(**stored, arch="h8")
    alone = ScopeView(**{kind: files[1:] for kind, files in stored.items()}, arch="h8")
    rows = pooled.architectures == "h8"
    own = stored["features"][1]
    for view in (selected, alone):
        np.testing.assert_array_equal(view.labels, pooled.labels[rows])
        np.testing.assert_array_equal(view.labels, own["group"].values.astype(object))
        xr.testing.assert_equal(view.statistics.drop_vars(["trial", "n_weights"]),
                               pooled.statistics.isel(trial=rows).drop_vars("trial"))
        np.testing.assert_array_equal(view.features["train_loss"].values, own["train_loss"].values)
        np.testing.assert_array_equal(view.strength_pairs["spearman_rho"].values,
                                      alone.strength_pairs["spearman_rho"].values)
        for mine, pooled_layer in zip(view.strengths, pooled.strengths):
            width = mine.sizes["node"]
            np.testing.assert_array_equal(mine.values, pooled_layer.values[rows][:, :width])
        for mine, theirs in zip(view.densities, alone.densities):
            xr.testing.assert_equal(mine, theirs)
    assert list(selected.statistics["n_weights"].values) == list(own["n_weights"].values)
    assert selected.title("dnn on d") == "dnn on d, h8"
    assert pooled.title("dnn on d") == "dnn on d, 2 architecture(s) pooled"


def test_stored_density_bins_draw_the_pooled_density_of_the_zoos(scope):
    """Densities pooled from each experiment's stored bins equal those pooled straight from the zoos (same
    moments, bandwidths, grid and mass), per architecture as well."""
    tmp, zoos, features, strengths, densities, summary = scope
    stored = [load_checked(p) for p in densities]
    sources = []
    for path, arch in zip(zoos, ("h4", "h8")):
        ds = xr.open_dataset(path)
        rows = summary[summary["arch"] == arch]
        sources.append((ds, pd.Series(rows["group"].to_numpy(), index=rows["trial"].to_numpy())))
    pooled = ScopeView(densities=stored).densities
    for layer, density in zip(("fc1", "fc2", "fc3"), pooled):
        xr.testing.assert_allclose(density, pooled_layer_density(sources, f"{layer}_weight"), rtol=1e-12)
    h8 = ScopeView(densities=stored, arch="h8").densities[0]
    xr.testing.assert_allclose(h8, pooled_layer_density(sources[1:], "fc1_weight"), rtol=1e-12)
    for ds, _ in sources:
        ds.close()
