"""Claims at every scope on zoos whose truth is known: width-only effects must not be credited to accuracy."""

import numpy as np
import pytest
from zoo_factory import make_features

from weightzoo.analysis.claims import claims_table
from weightzoo.analysis.claims.groupwise import lower_std
from weightzoo.analysis.claims.testing import stratum_indices

FAST = dict(n_permutations=199, n_bootstrap=199, max_iter=20)


def verdicts(table, claim, scope, layer="network"):
    rows = table[(table["claim"] == claim) & (table["scope"] == scope) & (table["layer"] == layer)]
    return rows["verdict"].item()


@pytest.fixture(scope="module")
def width_only():
    return claims_table(make_features(width_effect=True, within_effect=0.0, seed=1), **FAST)


@pytest.fixture(scope="module")
def planted_within():
    return claims_table(make_features(width_effect=False, within_effect=1.0, seed=2), **FAST)


@pytest.fixture(scope="module")
def no_effect():
    return claims_table(make_features(width_effect=False, within_effect=0.0, seed=3), **FAST)


def test_groups_of_the_factory_mix_inside_widths():
    features = make_features(seed=1)
    arch, group = features["arch"].values, features["group"].values
    mixed = [a for a in np.unique(arch) if {"high", "low"} <= set(group[arch == a])]
    assert len(mixed) >= 2


def test_width_only_effect_is_supported_pooled_but_not_controlled(width_only):
    for claim in (1, 2):
        assert verdicts(width_only, claim, "pooled") == "supported"
        assert verdicts(width_only, claim, "controlled") != "supported"


def test_width_only_strength_effect_is_not_credited_to_accuracy(width_only):
    # strength = std x width rises with width and so with pooled accuracy; inside a width it does not
    rows = width_only[(width_only["claim"] == 3)]
    assert (rows[rows["scope"] == "pooled"]["verdict"] == "supported").all()
    assert not (rows[rows["scope"] == "controlled"]["verdict"] == "supported").any()


def test_planted_within_width_effect_is_supported_pooled_and_controlled(planted_within):
    for claim in (1, 2):
        assert verdicts(planted_within, claim, "pooled") == "supported"
        assert verdicts(planted_within, claim, "controlled") == "supported"
    within = planted_within[(planted_within["claim"] == 1) & (planted_within["scope"] == "within")]
    assert set(within["arch"]) == {"h5", "h20", "h50", "h200"}
    assert (within["effect_size"].dropna() < 0).all()


def test_no_effect_supports_nothing_and_says_how_large_an_effect_is_ruled_out(no_effect):
    group_claims = no_effect[no_effect["claim"].isin([1, 2])]
    assert not (group_claims["verdict"] == "supported").any()
    controlled = group_claims[(group_claims["scope"] == "controlled") & (group_claims["claim"] == 1)]
    assert (controlled["detectable"] > 0).all() and (controlled["detectable"] < 1).all()
    decided = controlled[controlled["verdict"] == "no effect"]
    assert decided["reason"].str.contains("no effect larger than").all()


def test_ci_columns_belong_to_the_effect_size(planted_within):
    rows = planted_within.dropna(subset=["effect_size", "ci_low", "ci_high"])
    assert len(rows) > 10
    assert ((rows["ci_low"] <= rows["effect_size"] + 1e-9) & (rows["effect_size"] <= rows["ci_high"] + 1e-9)).mean() > 0.95


def test_prediction_verdict_follows_its_statistic():
    table = claims_table(make_features(width_effect=False, within_effect=0.0, seed=4), **FAST)
    r2 = table[(table["claim"] == 4) & (table["statistic"] == "cv_r2")]
    assert set(r2["scope"]) == {"kfold", "loao"}
    assert not ((r2["verdict"] == "supported") & (r2["effect_size"] <= 0)).any()
    assert (r2["effect_name"] == "r2").all()


def test_false_positive_rate_of_the_controlled_test_is_within_alpha():
    """200 label shuffles of a null zoo: the stratified test rejects at most alpha of them (+ 2 s.e.)."""
    features = make_features(width_effect=True, within_effect=0.0, seed=5, n_per_arch=24)
    std = features["statistic"].sel(layer="network", stat="std").values
    strata = features["arch"].values
    rng = np.random.default_rng(0)
    labels = features["group"].values
    rejections = 0
    n_shuffles, alpha = 200, 0.05
    for _ in range(n_shuffles):
        shuffled = labels.copy()
        for index in stratum_indices(strata):
            shuffled[index] = rng.permutation(labels[index])
        row = lower_std(std, shuffled, strata, 3, 199, 49, alpha, rng)
        rejections += row.get("p_value", 1.0) < alpha
    rate = rejections / n_shuffles
    assert rate <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / n_shuffles), rate
