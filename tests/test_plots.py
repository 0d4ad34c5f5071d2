"""Every report figure draws from synthetic zoos, including the degenerate ones, and the figure jobs glue."""

import json

import numpy as np
import pandas as pd
import pytest

from weightzoo.analysis.groups import GROUP_COLORS, assign_groups, group_summary
from weightzoo.analysis.kde import layer_density
from weightzoo.analysis.projection import project
from weightzoo.analysis.metrics import weight_statistics
from weightzoo.selection import read_scores
from weightzoo.analysis.strength import node_strength, pairwise_strength, strength_layers
from weightzoo.analysis.zoo import final_accuracy, layer_names
from weightzoo.jobs.figures import project_trials
from weightzoo.report import figures as plots
from zoo_factory import make_zoo


def groups_of(ds):
    return assign_groups(final_accuracy(ds), ds["diverged"].values, n_classes=10)


def all_figures(ds, labels, path):
    """Draw every figure of one experiment; return the files written."""
    figures = {
        "convergence": plots.convergence(ds, labels, "test"),
        "statistics": plots.weight_statistics(weight_statistics(ds), labels, "test"),
        "distributions": plots.distributions(
            [layer_density(ds, f"{layer}_weight", groups=labels, n_points=128) for layer in layer_names(ds)], "test"),
        "strength": plots.node_strength([node_strength(ds, layer) for layer in strength_layers(ds)], labels, "test"),
        "pairs": plots.strength_pairs(pairwise_strength(ds, groups=labels), "test"),
        "tsne": plots.projection([project(ds, groups=labels, layer=layer, max_iter=250) for layer in (None, "fc1")],
                                 "test"),
    }
    files = []
    for name, fig in figures.items():
        files.append(path / f"{name}.png")
        plots.save(fig, files[-1], dpi=40)
    return files


def accuracy_curves(ds, value):
    return ds.assign(train_accuracy=ds["train_accuracy"] * 0 + value, test_accuracy=ds["test_accuracy"] * 0 + value)


ZOOS = {
    "planted": lambda: make_zoo(n_trials=24),
    "all_equal": lambda: accuracy_curves(make_zoo(n_trials=8), 0.8),
    "all_diverged": lambda: make_zoo(n_trials=6, diverged=range(6)),
    "one_trial": lambda: make_zoo(n_trials=1),
    "small_groups": lambda: make_zoo(n_trials=5, diverged=[0]),
}


@pytest.mark.parametrize("name", ZOOS)
def test_every_figure_is_drawn(name, tmp_path):
    ds = ZOOS[name]()
    labels = groups_of(ds)
    for path in all_figures(ds, labels, tmp_path):
        assert path.stat().st_size > 2000, path


def test_group_colours_are_the_shared_ones(tmp_path):
    ds = make_zoo(n_trials=24)
    labels = groups_of(ds)
    fig = plots.weight_statistics(weight_statistics(ds), labels)
    colours = {tuple(np.round(c.get_facecolor()[0][:3], 3)) for ax in fig.axes for c in ax.collections if len(c.get_offsets())}
    expected = {tuple(np.round(np.array([int(GROUP_COLORS[g][i:i + 2], 16) for i in (1, 3, 5)]) / 255, 3))
                for g in set(labels)}
    assert colours == expected
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes if ax.get_visible())
    plots.save(fig, tmp_path / "stats.svg")


def test_projection_title_carries_scores_or_reason():
    ds = make_zoo(n_trials=24)
    labels = groups_of(ds)
    fig = plots.projection([project(ds, groups=labels, max_iter=250), project(ds.isel(trial=[0, 1]), groups=labels[:2])])
    titles = [ax.get_title() for ax in fig.axes]
    assert "NN acc" in titles[0] and "silhouette" in titles[0]
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert any("at least 4 trials" in t for t in texts)


def test_group_summary_pools_architectures_and_uses_majority_class():
    summary = pd.DataFrame({
        "experiment": ["dnn/d/h1"] * 3 + ["dnn/d/h8"] * 3,
        "model": "dnn", "dataset": "d", "arch": ["h1"] * 3 + ["h8"] * 3, "trial": [0, 1, 2] * 2,
        "final_train_accuracy": [0.30, 0.31, 0.60, 0.95, 0.97, 0.99], "diverged": [0, 0, 0, 0, 0, 1],
    })
    pooled = group_summary(summary, {"d": (10, 0.305)}, delta=0.1, margin=0.02)
    assert pooled["group"].tolist() == ["non", "non", "low", "high", "high", "non"]
    assert pooled["chance"].eq(0.305).all()
    per_experiment = group_summary(summary, {"d": (10, 0.1)}, scope="experiment")
    assert per_experiment["group"].tolist() == ["low", "low", "high", "high", "high", "non"]
    with pytest.raises(ValueError, match="no entry for 'd'"):
        group_summary(summary, {"d": (10, 0.1)}, method="bins", bins={})


def test_claims_and_scores_files(tmp_path):
    ds = make_zoo(n_trials=12, dataset="d")
    path = tmp_path / "zoo.nc"
    ds.to_netcdf(path)
    labels = groups_of(ds)
    summary = pd.DataFrame({"experiment": "dnn/d/h8", "trial": ds["trial"].values, "group": labels})
    summary.to_csv(tmp_path / "groups.csv", index=False)
    figures = {f: tmp_path / f"{f}.png" for f in ("raw", "canonical", "invariant")}
    project_trials(path, tmp_path / "groups.csv", "dnn/d/h8", figures, tmp_path / "s.json", perplexity=5,
                   per_layer=False)
    scores = json.loads((tmp_path / "s.json").read_text())
    assert set(scores) == set(figures) and all(p.exists() for p in figures.values())
    assert scores["raw"][0]["layer"] == "all weights" and "text" in scores["raw"][0]
    assert read_scores(tmp_path / "missing.json") == {}


def test_figures_fit_the_report_pane_as_palette_pngs(tmp_path):
    """At the report's DPI every figure fits the content pane beside the menu at 1280 px (about 760 px) and a
    1280 x 1000 window's height, so it is shown unshrunk with text >= MIN_FONT pt; PNGs are palette images."""
    from PIL import Image

    ds = make_zoo(n_trials=24)
    labels = groups_of(ds)
    figures = {
        "convergence": plots.convergence(ds, labels, "a long title " * 6),
        "statistics": plots.weight_statistics(weight_statistics(ds), labels, "t", arch=np.array(["h2", "h8"] * 12)),
        "strength": plots.node_strength([node_strength(ds, layer) for layer in strength_layers(ds)], labels, "t"),
        "pairs": plots.strength_pairs(pairwise_strength(ds, groups=labels), "t", arch=np.array(["h2", "h8"] * 12)),
    }
    for name, fig in figures.items():
        path = tmp_path / f"{name}.png"
        plots.save(fig, path)
        with Image.open(path) as image:
            assert image.mode == "P", name
            assert image.width <= 760 and image.height <= 830, (name, image.size)
