import numpy as np
import pandas as pd
import pytest
import scipy.stats
from zoo_factory import make_zoo

from weightzoo.analysis.claims import COLUMNS, VERDICTS, holm
from weightzoo.analysis.claims import zoo_claims as claims_table
from weightzoo.analysis.groups import group_zoo

FAST = dict(n_permutations=999, n_bootstrap=199, max_iter=20)  # 999: the smallest two-sided p, 0.002, passes Holm over 8 rows


@pytest.fixture(scope="module")
def planted():
    ds = make_zoo(effect=1.5, n_trials=60)
    return ds, claims_table(ds, group_zoo(ds), **FAST)


@pytest.fixture(scope="module")
def null():
    ds = make_zoo(effect=0.0, n_trials=60)
    return ds, claims_table(ds, group_zoo(ds), **FAST)


def rows(table, claim, statistic=None, scope=None):
    scope = scope or ("seeds" if claim in (4, 5) else "pooled")
    selected = table[(table["claim"] == claim) & (table["scope"] == scope)]
    return selected if statistic is None else selected[selected["statistic"] == statistic]


def test_table_layout(planted):
    _, table = planted
    assert list(table.columns) == COLUMNS
    assert set(table["verdict"]) <= set(VERDICTS)
    assert set(table["claim"]) == {1, 2, 3, 4, 5, 6, 7, 8}  # 6-8: the spectral metrics' claims
    assert (table["model"] == "dnn").all() and (table["dataset"] == "synthetic").all()
    assert rows(table, 1, "cliffs_delta")["layer"].tolist() == ["fc1", "fc2", "fc3", "network"]
    assert rows(table, 1, "spearman_std")["layer"].tolist() == ["fc1", "fc2", "fc3", "network"]
    assert set(rows(table, 2)["statistic"]) == {"w1_ratio", "spearman_distance"}
    # spectral metrics are defined per weight matrix, not on the whole network
    assert rows(table, 7, "spearman_stable_rank")["layer"].tolist() == ["fc1", "fc2", "fc3"]


def test_planted_effect_supports_claim_1_and_prediction(planted):
    _, table = planted
    claim1 = rows(table, 1)
    assert (claim1["verdict"] == "supported").all(), claim1[["layer", "p_value", "reason"]]
    assert (rows(table, 1, "cliffs_delta")["effect_size"] < -0.5).all()
    assert (rows(table, 1, "spearman_std")["effect_size"] < -0.5).all()
    assert rows(table, 4, "cv_r2")["verdict"].item() == "supported"
    assert rows(table, 4, "cv_r2")["value"].item() > 0.5
    assert rows(table, 4, "kendall_tau")["verdict"].item() == "supported"
    assert rows(table, 5, "kendall_tau")["verdict"].item() == "supported"
    # one recipe: nothing to hold out across recipes, and the rows say so
    assert rows(table, 4, "cv_r2", "kfold")["reason"].item().startswith("1 recipes < 5")


def test_a_pure_scale_effect_is_not_credited_to_likeness(planted):
    # make_zoo only rescales weights with accuracy: scale-free distances see no "more alike"
    _, table = planted
    assert not rows(table, 2)["verdict"].isin(["supported", "contradicted"]).any()
    # and rescaling every trial's weights by one factor leaves the scale-free distances unchanged
    ds, _ = planted
    scaled = ds.copy(deep=True)
    for name in [n for n in scaled.data_vars if n.endswith("_weight")]:
        scaled[name] = scaled[name] * 10
    again = claims_table(scaled, group_zoo(scaled), **FAST)
    np.testing.assert_allclose(rows(again, 2, "w1_ratio")["effect_size"], rows(table, 2, "w1_ratio")["effect_size"],
                               rtol=1e-5)


def test_planted_effect_shrinks_strength_so_claim_3_is_contradicted(planted):
    # make_zoo scales weights down as accuracy rises: strength falls with accuracy, against the paper
    _, table = planted
    claim3 = rows(table, 3)
    assert claim3["layer"].tolist() == ["fc1", "fc2", "fc3"]
    assert (claim3["verdict"] == "contradicted").all()
    assert (claim3["ci_high"] < 0).all() and (claim3["value"] < 0).all()


def test_no_effect_supports_nothing(null):
    _, table = null
    assert not (rows(table, 1)["verdict"] == "supported").any()
    assert not (rows(table, 2)["verdict"] == "supported").any()
    assert not (rows(table, 3)["verdict"] == "supported").any()
    assert rows(table, 4, "cv_r2")["verdict"].item() != "supported"


def test_claim_1_statistics_by_hand(planted):
    ds, table = planted
    groups = group_zoo(ds).values
    std = ds["fc3_weight"].isel(snapshot=-1).values.reshape(60, -1).astype(float).std(axis=1)
    high, low = std[groups == "high"], std[groups == "low"]
    row = rows(table, 1, "cliffs_delta").set_index("layer").loc["fc3"]
    u = scipy.stats.mannwhitneyu(high, low, alternative="less")
    cliff = (np.sign(high[:, None] - low[None, :])).mean()
    assert row["value"] == pytest.approx(cliff) and row["effect_size"] == pytest.approx(cliff)
    assert cliff == pytest.approx(2 * u.statistic / (high.size * low.size) - 1)
    assert row["ci_low"] <= cliff <= row["ci_high"]
    assert row["n"] == high.size + low.size


@pytest.mark.parametrize(
    "case",
    ["small_groups", "all_equal", "all_diverged", "single_trial", "no_early_snapshot"],
)
def test_degenerate_zoos_give_inconclusive_rows(case):
    ds = make_zoo(n_trials=8, effect=1.0)
    groups = None
    if case == "small_groups":
        groups = np.array(["high", "high", "low", "low", "mid", "mid", "mid", "non"])
    elif case == "all_equal":
        ds["train_accuracy"][:] = 0.8
    elif case == "all_diverged":
        ds = make_zoo(n_trials=6, diverged=range(6))
        for name in ds.data_vars:
            if name.endswith("_weight"):
                ds[name][:, 1:] = np.nan
    elif case == "single_trial":
        with np.errstate(invalid="ignore"):  # the factory's accuracy z-score of one trial is 0/0
            ds = make_zoo(n_trials=1)
    elif case == "no_early_snapshot":
        ds = ds.sel(snapshot=[0, 3])
    table = claims_table(ds, groups, **FAST)
    assert list(table.columns) == COLUMNS
    inconclusive = table[table["verdict"] == "inconclusive"]
    assert (inconclusive["reason"].str.len() > 0).all()
    if case == "no_early_snapshot":
        assert rows(table, 5)["reason"].str.contains("no snapshot").all()
    if case == "small_groups":
        # two trials per group cannot be contrasted; the continuous form over 7 converged trials can answer
        assert (rows(table, 1, "cliffs_delta")["verdict"] == "inconclusive").all()
        assert (rows(table, 2, "w1_ratio")["verdict"] == "inconclusive").all()
    elif case != "no_early_snapshot":  # that one is the planted zoo of 8 trials, less one snapshot
        assert not (table["verdict"] == "supported").any()
    if case in ("all_equal", "all_diverged", "single_trial"):
        assert (rows(table, 1)["verdict"] == "inconclusive").all()


def test_vit_attention_expects_falling_strength():
    ds = make_zoo(n_trials=30, effect=1.5, model="vit")
    ds = ds.rename({name: name.replace("fc2", "attn_qkv") for name in ds.variables if "fc2" in name})
    table = claims_table(ds, **FAST)
    claim3 = rows(table, 3).set_index("layer")
    assert claim3.loc["attn_qkv", "verdict"] == "supported"
    assert claim3.loc["fc1", "verdict"] == "inconclusive"
    assert claim3.loc["fc1", "reason"].endswith("the paper makes no claim for this layer")


def test_holm():
    np.testing.assert_allclose(holm([0.01, 0.04, np.nan, 0.03]), [0.03, 0.06, np.nan, 0.06])
    assert np.isnan(holm([np.nan])).all()


def test_spectral_claims_see_scale_only_through_the_norm(planted):
    """The planted zoo shrinks the weights of accurate trials by a scalar: the spectral norm must find it; the
    stable rank and alpha are scale-free and must not credit it to accuracy."""
    _, table = planted
    norm = rows(table, 8, "spearman_spectral_norm_sq")
    assert (norm["verdict"] == "supported").all(), norm[["layer", "effect_size", "reason"]]
    scale_free = pd.concat([rows(table, 7), rows(table, 6)])
    assert not scale_free["verdict"].isin(["supported", "contradicted"]).any(), \
        scale_free[["claim", "layer", "statistic", "effect_size", "verdict"]]
