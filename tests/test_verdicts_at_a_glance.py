"""The verdicts at a glance: the forest plot and the matrix drawn from a stored claims table, the findings rows'
two sentences, and remedies that never ask for more seeds where more seeds cannot answer."""

import re

import numpy as np
import pandas as pd
import pytest
from zoo_factory import make_recipe_features

from weightzoo.analysis.claims import claims_table
from weightzoo.analysis.findings import (
    findings_table,
    forest_table,
    recipe_group_spread,
    remedy,
    verdict_label,
    verdict_matrix,
)
from weightzoo.report.figures import save
from weightzoo.report.forest import verdict_forest
from weightzoo.report.html import findings_page

FAST = dict(n_permutations=999, n_bootstrap=199, max_iter=20)  # 999: the smallest two-sided p, 0.002, passes Holm over 8 rows


@pytest.fixture(scope="module")
def confound(tmp_path_factory):
    """A recipe confound (pooled claim 1 carried by init_std), written and read back as the workflow does."""
    table = claims_table(make_recipe_features(recipe_effect=True, seed_effect=0.0, seed=1), **FAST)
    path = tmp_path_factory.mktemp("claims") / "claims.csv"
    table.to_csv(path, index=False)
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_forest_rows_hold_both_sides_of_every_claim_and_layer(confound):
    forest = forest_table(confound)
    layers = confound[confound["claim"].isin([1, 2, 3])].groupby("claim")["layer"].nunique()
    for claim, n_layers in layers.items():
        rows = forest[forest["claim"] == claim]
        assert (rows["side"] == "recipe").sum() == n_layers and (rows["side"] == "pooled").sum() == n_layers
    recipe = forest[(forest["side"] == "recipe") & (forest["claim"] == 1) & (forest["layer"] == "network")].iloc[0]
    stored = confound[(confound["scope"] == "controlled") & (confound["statistic"] == "spearman_std")
                      & (confound["layer"] == "network")].iloc[0]
    assert recipe["effect"] == stored["effect_size"] and recipe["low"] == stored["ci_low"]
    assert recipe["band_high"] == stored["equivalence_bound"] == -recipe["band_low"]
    ratio = forest[(forest["side"] == "pooled") & (forest["claim"] == 2)].iloc[0]
    bound = confound[(confound["scope"] == "pooled") & (confound["statistic"] == "w1_ratio")]["equivalence_bound"].iloc[0]
    assert ratio["effect_name"].startswith("log2") and ratio["band_high"] == pytest.approx(np.log2(bound))


def test_the_forest_plot_is_drawn_and_an_empty_one_says_so(confound, tmp_path):
    forest = forest_table(confound)
    drawn, empty = tmp_path / "forest.png", tmp_path / "empty.png"
    save(verdict_forest(forest, "dnn on synthetic"), drawn)
    save(verdict_forest(forest.assign(effect=np.nan), "dnn on synthetic"), empty)
    # a drawn forest is tens of kB; a figure that only says why there is nothing is a few kB
    assert drawn.stat().st_size > 3 * empty.stat().st_size
    from PIL import Image

    width, height = Image.open(drawn).size
    assert width <= 760 and height <= 820


def test_a_long_forest_wraps_into_blocks_that_fit_the_window(confound, tmp_path):
    forest = forest_table(confound)
    many = pd.concat([forest.assign(layer=forest["layer"] + f"_{k}") for k in range(4)], ignore_index=True)
    fig = verdict_forest(many)
    assert fig.get_figheight() <= 8.0 and len(fig.axes) >= 6


def test_matrix_and_page_carry_recipe_and_pooled_verdicts(confound):
    matrix = verdict_matrix(confound)
    cell = matrix[(matrix["claim"] == 1)]
    assert set(cell["side"]) == {"recipe", "pooled"}
    assert (cell[cell["side"] == "pooled"]["verdict"] == "supported").all()
    findings = findings_table(confound)
    page = findings_page(findings, findings.iloc[:0], [], "t", matrix=matrix,
                         forests=[("dnn", "synthetic", "data:image/png;base64,AAAA")])
    assert page.index("Verdicts at a glance") < page.index('<img class="forest"') < page.index("<th>finding</th>")
    assert page.count('class="sq"') >= len(matrix)


def sentences(text: str) -> int:
    """Sentences of a finding: ends of sentence are '. ' followed by a capital (numbers like 0.05 do not end one)."""
    return len(re.findall(r"[.!?](?:\s+(?=[A-Z])|$)", text.strip()))


def test_findings_say_at_most_two_sentences_and_fold_the_rest(confound):
    findings = findings_table(confound)
    assert (findings["finding"].map(sentences) <= 2).all(), findings["finding"].tolist()
    claim1 = findings[(findings["claim"] == 1) & (findings["layer"] == "network")].iloc[0]
    assert "carried by the recipe (inseparable from init_std)" in claim1["finding"]
    assert claim1["detail"]
    page = findings_page(findings, findings.iloc[:0], [], "t")
    assert "<details><summary>more</summary>" in page


def test_kendall_tau_is_labelled_as_such_not_as_a_group_contrast(confound):
    findings = findings_table(confound)
    prediction = findings[findings["claim"] == 4].iloc[0]
    assert prediction["recipe_beside"].startswith("Kendall τ among seeds")
    assert findings[findings["claim"] == 1].iloc[0]["recipe_beside"].startswith("group contrast")


def test_no_more_seeds_where_no_recipe_fills_both_groups():
    reason = "fewer than 3 trials in a group (high 0, low 2)"
    assert "experiments[].trials" in remedy(reason, seeds_fill_groups=True)
    told = remedy(reason, seeds_fill_groups=False)
    assert "experiments[].trials" not in told and "continuous form" in told
    summary = pd.DataFrame({"model": "dnn", "dataset": "d", "experiment": ["dnn/d/h5"] * 4 + ["dnn/d/h50"] * 4,
                            "init_std": [1.0, 1.0, 0.05, 0.05] * 2,
                            "group": ["low", "mid", "high", "high", "mid", "mid", "high", "high"]})
    assert recipe_group_spread(summary) == {("dnn", "d"): False}
    summary.loc[1, "group"] = "high"
    assert recipe_group_spread(summary) == {("dnn", "d"): True}


def test_verdict_labels_are_used_where_the_table_has_them(confound):
    relabel = confound["verdict"] == "inconclusive"
    labelled = confound.assign(verdict_label=np.where(relabel, "negligible: |ρ| < 0.1", confound["verdict"]))
    row = labelled[relabel].iloc[0]
    assert verdict_label(row) == "negligible: |ρ| < 0.1"
    assert verdict_label(confound.iloc[0]) == confound.iloc[0]["verdict"]
    matrix = verdict_matrix(labelled)
    assert "negligible: |ρ| < 0.1" in set(matrix["label"])
