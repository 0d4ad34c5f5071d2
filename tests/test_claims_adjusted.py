"""Issue 21: recipe variables drawn per trial adjusted for, the confounder column a test, claim 2 within strata,
equivalence calibrated on small unequal strata, claims 4-5 intervals over few recipes. Known truths, few replicates
but deterministic (the calibration with >= 1,000 replicates: bench/claims_calibration.py)."""

import numpy as np
import pandas as pd
import pytest
from zoo_factory import make_drawn_features, make_recipe_features

from weightzoo.analysis.claims import claims_table
from weightzoo.analysis.claims.adjust import split_recipe
from weightzoo.analysis.claims.confounding import confounder_test
from weightzoo.analysis.claims.groupwise import more_alike, rank_association
from weightzoo.analysis.claims.out_of_fold import regression_scores
from weightzoo.analysis.claims.testing import correlation_interval, decide, permutation_p

FAST = dict(n_permutations=999, n_bootstrap=199, max_iter=20)


def row(table, claim, scope, statistic, layer="network"):
    rows = table[(table["claim"] == claim) & (table["scope"] == scope) & (table["layer"] == layer)
                 & (table["statistic"] == statistic)]
    return rows.iloc[0]


@pytest.fixture(scope="module")
def lr_confound():
    return claims_table(make_drawn_features(lr_effect=True, seed_effect=0.0, seed=1), **FAST)


@pytest.fixture(scope="module")
def lr_planted():
    return claims_table(make_drawn_features(lr_effect=True, seed_effect=2.0, seed=1), **FAST)


def test_a_per_trial_draw_counts_as_drawn_and_a_swept_list_as_grid():
    features = make_drawn_features(seed=0)
    assert split_recipe(features, ["arch", "lr"]) == (["arch"], ["lr"])
    assert split_recipe(make_recipe_features(seed=0), ["arch", "init_std"]) == (["arch", "init_std"], [])


def test_a_continuous_lr_confound_is_never_credited_to_accuracy_and_lr_is_named(lr_confound):
    """Issue 21's example: DNN h=20, lr log-uniform in [1e-4, 5e-2], 64 nets, weight std following log lr."""
    pooled = row(lr_confound, 1, "pooled", "spearman_std")
    assert pooled["verdict"] in ("supported", "contradicted") and abs(pooled["effect_size"]) > 0.5
    assert pooled["carried_by"] == "lr" and "lr: ρ" in pooled["confounder"]
    adjusted = lr_confound[(lr_confound["scope"] == "controlled") & lr_confound["claim"].isin([1, 2, 3])]
    assert not adjusted["verdict"].isin(["supported", "contradicted"]).any()
    answered = adjusted[adjusted["statistic"].str.startswith("spearman")]
    assert answered["effect_size"].notna().all(), answered["reason"]  # an adjusted answer, not "one trial per recipe"
    assert answered["strata"].str.contains("lr drawn per trial").all()
    network = row(lr_confound, 1, "controlled", "spearman_std")
    assert abs(network["effect_size"]) < 0.3 and network["ci_low"] < 0 < network["ci_high"]
    assert row(lr_confound, 1, "controlled", "cliffs_delta")["reason"].startswith("the recipe variables lr are drawn")
    seeds = row(lr_confound, 4, "seeds", "cv_r2", "all layers")
    assert np.isfinite(seeds["effect_size"]) and "recipe fit removed" in seeds["strata"]


def test_a_planted_within_recipe_effect_on_a_continuous_draw_zoo_is_found(lr_planted):
    for layer in ("fc1", "network"):
        found = row(lr_planted, 1, "controlled", "spearman_std", layer)
        assert found["verdict"] == "supported", found["reason"]
    assert row(lr_planted, 4, "seeds", "cv_r2", "all layers")["verdict"] == "supported"


def test_too_few_nets_for_the_fit_says_so_and_what_would_answer():
    table = claims_table(make_drawn_features(n=14, seed=2), **FAST)
    answer = row(table, 1, "controlled", "spearman_std")
    assert answer["verdict"] == "inconclusive"
    assert "too few trials to adjust for the drawn recipe variables (lr)" in answer["reason"]
    assert "trials, or a grid of values with several seeds each, would answer it" in answer["reason"]


def _confounder_row(x, acc, variables, cells, rng):
    rho = float(pd.Series(x).corr(pd.Series(acc), method="spearman"))
    low, high = correlation_interval(rho, [x.size], 0.95)
    row = dict(effect_name="spearman_rho", effect_size=rho, ci_low=low, ci_high=high)
    return confounder_test(row, variables, x, acc, np.full(x.size, "high"), np.full(x.size, "a"), None, cells,
                           0.05, rng)


def test_a_random_noise_variable_is_rarely_named():
    """40 zoos with a real effect (so the pooled effect is large) and a noise recipe variable, drawn or grid:
    named at most alpha + 2 s.e. of the time (the calibration measures it at 1,000)."""
    rng = np.random.default_rng(11)
    named = 0
    for i in range(40):
        x = rng.normal(size=80)
        acc = 0.6 * x + rng.normal(size=80)
        noise = rng.uniform(size=80) if i % 2 else rng.integers(0, 4, 80).astype(float)
        result = _confounder_row(x, acc, {"noise": noise}, np.zeros(80, int), rng)
        named += "noise" in result["carried_by"]
    assert named / 40 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 40), named


def test_a_reversal_is_named_and_the_pooled_row_is_inconclusive():
    """Simpson: within each init_std, accuracy rises with x; the larger init raises x and lowers accuracy."""
    rng = np.random.default_rng(5)
    init = np.repeat([0.1, 1.0], 60)
    x = rng.normal(size=120) + 3 * (init == 1.0)
    acc = 0.5 * x + rng.normal(0, 0.5, 120) - 4 * (init == 1.0)
    result = _confounder_row(x, acc, {"init_std": init}, init.astype(str), rng)
    assert result["carried_by"] == "reversal by init_std", result["confounder"]
    assert result["recipes_disagree"]
    table = pd.DataFrame([dict(effect_name="spearman_rho", effect_size=-0.5, ci_low=-0.6, ci_high=-0.4,
                               eq_low=-0.6, eq_high=-0.4, p_value=0.001, expected_sign=-1, reason="", verdict="",
                               heterogeneity_p=np.nan, detectable=0.1, scope="pooled", claim=1,
                               recipes_disagree=result["recipes_disagree"])])
    decided = decide(table, 0.05).iloc[0]
    assert decided["verdict"] == "inconclusive" and decided["verdict_label"] == "inconclusive: the recipes disagree"


def test_claim_2_counts_a_stratum_only_with_two_trials_of_each_group_and_test_agrees_with_interval():
    rng = np.random.default_rng(3)
    labels = np.array(["high", "low", "low", "low"] + ["high", "high", "low", "low"] * 3)
    strata = np.array(["a"] * 4 + ["b"] * 12)
    d = rng.uniform(1, 2, (16, 16))
    d = (d + d.T) / 2
    np.fill_diagonal(d, np.nan)
    result = more_alike(d, labels, strata, 2, 99, 499, 0.05, rng)
    assert result["n_strata"] == 1 and result["n"] == 12  # stratum a holds one high trial: left out
    p, (low, high) = result["p_value"], result["ci"]
    assert (p < 0.05) == (high < 1 or low > 1)
    for _ in range(20):  # agreement on many draws, significant or not
        d2 = d * np.where((labels[:, None] == "high") & (labels[None, :] == "high"), rng.uniform(0.5, 1.2), 1.0)
        r = more_alike(d2, labels, strata, 2, 99, 199, 0.05, rng)
        assert (r["p_value"] < 0.05) == (r["ci"][1] < 1 or r["ci"][0] > 1), r


def test_equivalence_at_the_bound_on_small_unequal_strata_is_rare():
    """Strata of 6, 10, 30 and 60 seeds, true rho at the bound 0.3: "no effect" at most alpha (+ 2 s.e.) in 300."""
    rng = np.random.default_rng(2)
    sizes = [6, 10, 30, 60]
    labels = np.repeat(np.arange(4).astype(str), sizes)
    r = 2 * np.sin(np.pi * 0.3 / 6)
    rows = []
    for i in range(300):
        x = rng.normal(size=labels.size)
        y = r * x + np.sqrt(1 - r**2) * rng.normal(size=labels.size)
        res = rank_association(x, y, np.full(x.size, "high"), labels, 1, 19, 0.05, rng, "x")
        rows.append({**res, "ci_low": res["ci"][0], "ci_high": res["ci"][1], "eq_low": res["eq"][0],
                     "eq_high": res["eq"][1], "reason": "", "verdict": "", "scope": i, "claim": 1})
    verdicts = decide(pd.DataFrame(rows), 0.05, {"spearman_rho": 0.3})
    rate = (verdicts["verdict"] == "no effect").mean()
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 300), rate
    labelled = verdicts[verdicts["verdict"] == "no effect"]["verdict_label"]
    assert (labelled == "negligible: |ρ| < 0.3").all()


def test_no_effect_never_beside_an_interval_that_excludes_the_null():
    table = pd.DataFrame([dict(effect_name="spearman_rho", effect_size=0.03, ci_low=0.002, ci_high=0.06,
                               eq_low=0.01, eq_high=0.05, p_value=0.2, expected_sign=1, reason="", verdict="",
                               heterogeneity_p=np.nan, detectable=0.1, scope="s", claim=1)])
    decided = decide(table, 0.05).iloc[0]
    assert decided["verdict"] == "inconclusive" and "excludes 0" in decided["reason"]
    table.loc[0, ["ci_low", "eq_low"]] = [-0.01, -0.005]
    decided = decide(table, 0.05).iloc[0]
    assert decided["verdict"] == "no effect" and decided["verdict_label"] == "negligible: |ρ| < 0.1"


def test_the_permutation_tail_is_empirical():
    null = np.random.default_rng(0).normal(size=999)
    assert permutation_p(null, 10.0) == pytest.approx(2 / 1000)  # nothing below what 999 permutations resolve
    assert permutation_p(null, -10.0) == pytest.approx(2 / 1000)


def test_prediction_intervals_over_few_recipes_agree_with_their_p_and_stay_sane():
    rng = np.random.default_rng(1)
    recipes = np.repeat(np.arange(6).astype(str), 10)
    y = rng.normal(size=60) + np.repeat(rng.normal(size=6), 10)
    predicted = 0.3 * y + rng.normal(size=60)
    scores = regression_scores(y, predicted, recipes, 199, 0.05, rng)
    low, high = scores["r2_ci"]
    assert low > -3 and high <= 1  # a bootstrap of 6 recipes with fixed predictions gave bounds near -7
    assert (scores["r2_p"] < 0.05) == (low > 0 or high < 0)
    assert (scores["tau_p"] < 0.05) == (scores["tau_ci"][0] > 0 or scores["tau_ci"][1] < 0)


def test_an_r2_below_zero_is_no_prediction_not_the_opposite_claim():
    table = pd.DataFrame([dict(effect_name="r2", effect_size=-0.2, ci_low=-0.35, ci_high=-0.05, eq_low=-0.3,
                               eq_high=-0.08, p_value=0.001, expected_sign=1, reason="", verdict="",
                               heterogeneity_p=np.nan, detectable=0.1, scope="seeds", claim=4)])
    decided = decide(table, 0.05).iloc[0]
    assert decided["verdict"] == "inconclusive" and "no prediction" in decided["reason"]
