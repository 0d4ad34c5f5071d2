import numpy as np
import pytest
from zoo_factory import make_zoo

from weightzoo.analysis.groups import GROUP_COLORS, GROUPS, assign_groups, chance_level, group_zoo


def test_every_group_has_one_distinct_colour():
    assert set(GROUP_COLORS) == set(GROUPS)
    assert len(set(GROUP_COLORS.values())) == len(GROUPS)


def test_chance_is_the_larger_of_uniform_and_majority_share():
    assert chance_level(10) == pytest.approx(0.1)
    assert chance_level(10, majority_share=0.1135) == pytest.approx(0.1135)
    assert chance_level(2, majority_share=0.3) == pytest.approx(0.5)


def test_delta_groups_on_handcrafted_accuracies():
    accuracy = [0.11, 0.30, 0.35, 0.50, 0.60, 0.90, 0.97, 0.99, 0.95]
    diverged = [0, 0, 0, 0, 0, 0, 0, 0, 1]
    labels = assign_groups(accuracy, diverged, n_classes=10, delta=0.1, margin=0.02)
    assert labels.tolist() == ["non", "low", "low", "mid", "mid", "high", "high", "high", "non"]


def test_majority_share_moves_the_non_threshold():
    labels = assign_groups([0.12, 0.14, 0.9], n_classes=10, majority_share=0.1135, margin=0.02, delta=0.05)
    assert labels.tolist() == ["non", "low", "high"]


def test_nan_accuracy_is_non():
    assert assign_groups([np.nan, 0.5, 0.9], n_classes=10).tolist() == ["non", "low", "high"]


def test_all_equal_accuracy_is_all_high_and_all_diverged_is_all_non():
    assert set(assign_groups([0.8] * 5, n_classes=10)) == {"high"}
    assert set(assign_groups([0.8] * 5, n_classes=10, method="kmeans")) == {"high"}
    assert set(assign_groups([0.8] * 3, [1, 1, 1], n_classes=10)) == {"non"}
    assert assign_groups([], n_classes=10).size == 0


def test_bins():
    labels = assign_groups([0.3, 0.55, 0.8, 0.95, 1.0], n_classes=10, method="bins", bins=(0.5, 0.95))
    assert labels.tolist() == ["low", "mid", "mid", "high", "high"]
    with pytest.raises(ValueError):
        assign_groups([0.3], n_classes=10, method="bins")


def test_kmeans_finds_three_clusters_in_order():
    rng = np.random.default_rng(1)
    accuracy = np.concatenate([rng.normal(c, 0.01, 10) for c in (0.3, 0.6, 0.95)])
    labels = assign_groups(accuracy, n_classes=10, method="kmeans")
    assert labels.tolist() == ["low"] * 10 + ["mid"] * 10 + ["high"] * 10
    assert assign_groups([0.4, 0.4, 0.9], n_classes=10, method="kmeans").tolist() == ["low", "low", "high"]


def test_unknown_method():
    with pytest.raises(ValueError):
        assign_groups([0.5], method="quantiles")


def test_group_zoo_uses_dataset_attributes_and_per_dataset_bins():
    ds = make_zoo(n_trials=12, diverged=[0, 1])
    groups = group_zoo(ds)
    assert groups.dims == ("trial",) and groups.sizes["trial"] == 12
    assert groups.values[:2].tolist() == ["non", "non"]
    assert set(groups.values) <= set(GROUPS)
    binned = group_zoo(ds, method="bins", bins={"synthetic": (0.4, 0.8)}, accuracy="test")
    acc = ds["test_accuracy"].isel(epoch=-1).values[2:]
    expected = np.where(acc >= 0.8, "high", np.where(acc >= 0.4, "mid", "low"))
    converged = binned.values[2:] != "non"
    assert (binned.values[2:][converged] == expected[converged]).all()
    with pytest.raises(ValueError):
        group_zoo(ds, method="bins", bins={"mnist": (0.4, 0.8)})


def test_windows_are_the_papers_table_2():
    from weightzoo.analysis.groups import UNGROUPED, paper_windows

    windows = paper_windows("dnn", "fmnist")
    assert windows == {"low": (0.30, 0.75), "mid": (0.835, 0.84), "high": (0.95, 1.0)}
    labels = assign_groups([0.1, 0.5, 0.80, 0.838, 0.96, 0.90], [0, 0, 0, 0, 0, 1], n_classes=10,
                           method="windows", windows=windows)
    assert labels.tolist() == ["non", "low", UNGROUPED, "mid", "high", "non"]
    # touching windows: the better group wins
    assert assign_groups([0.85], n_classes=10, method="windows", windows=paper_windows("vit", "mnist")).tolist() == ["high"]
    with pytest.raises(ValueError, match="no accuracy windows"):
        paper_windows("dnn", "digits")
