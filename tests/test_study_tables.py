"""The study tables of docs/findings.md are written from a run's results: same results, same tables."""

import numpy as np
import pandas as pd
import pytest

from weightzoo.report.study_tables import main, markdown, replace_block

DOC = "# Findings\n\ntext before\n\n<!-- study:tiny:begin -->\nold table\n<!-- study:tiny:end -->\n\ntext after\n"


def test_replace_block_keeps_everything_around_it():
    out = replace_block(DOC, "tiny", "| a |\n|---|\n| 1 |")
    assert out.startswith("# Findings\n\ntext before\n\n<!-- study:tiny:begin -->\n| a |")
    assert out.endswith("<!-- study:tiny:end -->\n\ntext after\n") and "old table" not in out
    assert replace_block(out, "tiny", "| a |\n|---|\n| 1 |") == out
    with pytest.raises(ValueError, match="study:other:begin"):
        replace_block(DOC, "other", "x")


def test_markdown_escapes_bars_and_aligns_numbers():
    text = markdown(pd.DataFrame({"name": ["a|b"], "n": [3]}), numeric=("n",))
    assert text.splitlines() == ["| name | n |", "|---|---:|", "| a\\|b | 3 |"]


@pytest.mark.slow
def test_tables_from_a_tiny_run_match_its_results_and_reproduce(tiny_run, tmp_path):
    doc = tmp_path / "findings.md"
    doc.write_text(DOC, encoding="utf-8")
    assert main([str(tiny_run), "--name", "tiny", "--docs", str(doc)]) == 0
    first = doc.read_text(encoding="utf-8")
    assert main([str(tiny_run), "--name", "tiny", "--docs", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == first, "the same results must give the same tables"
    block = first.split("<!-- study:tiny:begin -->")[1].split("<!-- study:tiny:end -->")[0]
    assert "#### dnn on digits" in block and "#### cnn on digits" in block and "ran at code revision" in block
    # every recipe's accuracy row is the summary's, recomputed here
    summary = pd.read_csv(tiny_run / "results/zoo/summary.csv")
    h8 = summary[(summary["model"] == "dnn") & (summary["arch"] == "h8")]["final_train_accuracy"] * 100
    row = next(line for line in block.splitlines() if line.startswith("| h8 |"))
    expected = " / ".join(f"{v:.1f}" for v in (h8.min(), np.median(h8), h8.max()))
    assert f"| {len(h8)} | {expected} |" in row, (row, expected)
    # the verdicts are claims.csv's
    claims = pd.read_csv(tiny_run / "results/analysis/claims.csv", keep_default_na=False, na_values=[""])
    pooled = claims[(claims["model"] == "dnn") & (claims["scope"] == "pooled") & (claims["claim"] == 1)
                    & (claims["statistic"] == "cliffs_delta") & (claims["layer"] == "fc1")].iloc[0]
    line = next(line for line in block.splitlines() if line.startswith("| 1 lower_std, fc1 |"))
    assert line.split(" | ")[1].startswith(str(pooled["verdict"]))


def test_crossfamily_block_pairs_labels_with_models_by_name(tmp_path):
    from test_crossfamily import controlled_rows

    rng = np.random.default_rng(0)
    studies = {"DNN": tmp_path / "dnn", "ViT,CNN": tmp_path / "cnn_vit"}
    tables = {"DNN": controlled_rows("dnn", -0.3, 128, rng),
              "ViT,CNN": pd.concat([controlled_rows("cnn", -0.3, 64, rng), controlled_rows("vit", 0.6, 48, rng)])}
    for label, folder in studies.items():
        (folder / "results/analysis").mkdir(parents=True)
        tables[label].to_csv(folder / "results/analysis/claims.csv", index=False)
    from weightzoo.report.study_tables import crossfamily_block

    block = crossfamily_block(studies)
    row = next(line for line in block.splitlines() if line.startswith("| 1 lower_std"))
    assert "ViT +0.5" in row or "ViT +0.6" in row or "ViT +0.7" in row, row  # the vit rows, not the cnn ones
    assert row.rstrip(" |").endswith("differ"), row


def test_a_zoo_of_drawn_recipes_gets_one_row_per_grid_stratum_not_per_net():
    from zoo_factory import make_drawn_features

    from weightzoo.report.study_tables import recipe_correlations, recipe_table

    features = make_drawn_features(n=64)
    table, correlations = recipe_table(features), recipe_correlations(features)
    assert list(table["n"]) == [64] and list(correlations["n"]) == [64]
    assert "lr 0.0001" in table["recipe"].iloc[0]  # the drawn variable's range, not one value per row
