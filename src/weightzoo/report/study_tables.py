"""The study tables of docs/findings.md, written from a run's stored results, so that a rerun reproduces them.

    python -m weightzoo.report.study_tables STUDY_DIR --name fmnist --docs docs/findings.md
    python -m weightzoo.report.study_tables --crossfamily DNN=/work/studies/fmnist \
        CNN,ViT=/work/studies/cnn_vit_fmnist --docs docs/findings.md

``STUDY_DIR`` is the working directory of a finished ``snakemake`` run (``results/`` inside it). The block
between ``<!-- study:NAME:begin -->`` and ``<!-- study:NAME:end -->`` of ``--docs`` is replaced (without
``--docs`` the Markdown is printed). Every number comes from the run's files: accuracies and weight std from the
features (``results/analysis/features``), groups from ``results/analysis/summary_groups.csv``, verdicts from
``results/analysis/claims.csv``; the block names the code revision that trained the zoo (the zoos' attributes)
and the one that tabulated it. The cross-family block is ``analysis.crossfamily`` on the studies' claims tables.
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr

from weightzoo.analysis.claims import CONTINUOUS, STATISTICS, VERDICTS, recipe_keys
from weightzoo.analysis.claims.confounding import is_drawn
from weightzoo.analysis.crossfamily import cross_family
from weightzoo.analysis.findings import effect_text, verdict_label
from weightzoo.io.atomic import load_checked
from weightzoo.io.provenance import code_revision

GROUP_ORDER = ("non", "low", "mid", "high", "")


def markdown(table: pd.DataFrame, numeric: tuple[str, ...] = ()) -> str:
    """``table`` as a Markdown table (cells as they are; ``numeric`` columns right-aligned)."""
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---:" if c in numeric else "---" for c in table.columns) + "|"
    rows = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def read_features(study: Path) -> dict[tuple[str, str], xr.Dataset]:
    """The study's features per (model, dataset), architectures stacked along ``trial``."""
    from weightzoo.analysis.features import pool

    out: dict[tuple[str, str], list] = {}
    for path in sorted((study / "results/analysis/features").glob("*/*/*.nc")):
        model, dataset = path.parts[-3], path.parts[-2]
        out.setdefault((model, dataset), []).append(load_checked(path))
    return {key: pool(parts) for key, parts in out.items()}


def _recipe_label(keys, values) -> str:
    return ", ".join(str(v) if k == "arch" else f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                     for k, v in zip(keys, values))


def grid_keys(features: xr.Dataset) -> tuple[list[str], list[str]]:
    """The recipe keys split into grid keys (the tables' rows) and drawn ones (every net its own value: a row per
    value would be a row per net; ``claims.confounding.is_drawn``, the rule the claims adjust by)."""
    keys = recipe_keys(features)
    drawn = [k for k in keys if k != "arch" and is_drawn(features[k].values)]
    return [k for k in keys if k not in drawn], drawn


def _drawn_note(features: xr.Dataset, drawn: list[str], members) -> str:
    return "".join(f"; {k} {np.min(features[k].values[members]):.2g}–{np.max(features[k].values[members]):.2g}"
                   for k in drawn)


def _layers(features: xr.Dataset) -> list[str]:
    return [str(layer) for layer in features["layer"].values]


def recipe_table(features: xr.Dataset, accuracy: str = "train") -> pd.DataFrame:
    """Per recipe: n, final accuracy % min / median / max, the groups it holds, median weight std per layer;
    and ``recipe_correlations``' columns come from the same recipes."""
    from weightzoo.analysis.features import accuracy as final_accuracy

    keys, drawn = grid_keys(features)
    acc = final_accuracy(features, accuracy) * 100
    frame = pd.DataFrame({k: features[k].values for k in keys})
    frame["acc"], frame["group"] = acc, features["group"].values.astype(str)
    std = features["statistic"].sel(stat="std")
    layers = _layers(features)
    rows = []
    for values, members in frame.groupby(keys, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        idx = members.index.to_numpy()  # frame has a RangeIndex: labels are positions
        a = frame["acc"].to_numpy()[idx]
        counts = pd.Series(frame["group"].to_numpy()[idx]).replace("", "ungrouped").value_counts()
        groups = ", ".join(f"{g} {counts[g]}" for g in (*GROUP_ORDER[:-1], "ungrouped") if g in counts)
        medians = [np.nanmedian(std.isel(trial=idx).sel(layer=layer).values) for layer in layers]
        rows.append({"recipe": _recipe_label(keys, values) + _drawn_note(features, drawn, idx), "n": idx.size,
                     f"{accuracy} accuracy % min / median / max": " / ".join(f"{v:.1f}" for v in
                                                                           (a.min(), np.median(a), a.max())),
                     "groups": groups,
                     f"median weight std {' / '.join(layers)}": " / ".join(f"{m:.3f}" for m in medians)})
    return pd.DataFrame(rows)


def recipe_correlations(features: xr.Dataset, accuracy: str = "train") -> pd.DataFrame:
    """Per recipe: Spearman ρ of final accuracy with each layer's weight std and each layer's mean node strength
    (the continuous forms of claims 1 and 3 inside one recipe, before pooling over recipes)."""
    from weightzoo.analysis.features import accuracy as final_accuracy

    keys, drawn = grid_keys(features)
    acc = final_accuracy(features, accuracy)
    frame = pd.DataFrame({k: features[k].values for k in keys})
    layers = _layers(features)
    strength_layers = [str(s) for s in features["strength_layer"].values] if "strength_layer" in features.coords \
        else []
    rows = []
    for values, members in frame.groupby(keys, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        idx = members.index.to_numpy()

        def rho(y):
            ok = np.isfinite(acc[idx]) & np.isfinite(y)
            return scipy.stats.spearmanr(acc[idx][ok], y[ok])[0] if ok.sum() > 2 and np.ptp(y[ok]) > 0 else np.nan

        std = [rho(features["statistic"].sel(stat="std", layer=layer).values[idx]) for layer in layers]
        row = {"recipe": _recipe_label(keys, values) + _drawn_note(features, drawn, idx), "n": idx.size,
               f"ρ(acc, std) {' / '.join(layers)}": " / ".join(_signed(r) for r in std)}
        if strength_layers:
            strength = [rho(features["mean_strength"].sel(strength_layer=s).values[idx]) for s in strength_layers]
            row[f"ρ(acc, node strength) {' / '.join(strength_layers)}"] = " / ".join(_signed(r) for r in strength)
        rows.append(row)
    return pd.DataFrame(rows)


def _signed(x) -> str:
    return "–" if not np.isfinite(x) else f"{x:+.2f}"


def _cell(row) -> str:
    if row is None:
        return "not tested"
    effect = effect_text(row)
    n = f" (n {int(row['n'])})" if np.isfinite(float(row["n"])) else ""
    return f"{verdict_label(row)}" + (f", {effect}{n}" if effect else "")


def claims_rows(claims: pd.DataFrame, claims_shown=(1, 2, 3)) -> pd.DataFrame:
    """Claims 1–3 per layer: pooled as the paper (the group contrast), at a fixed recipe (the ``controlled`` row of
    the continuous form, recipe-adjusted), and what carries the pooled result."""
    rows = []
    for claim in claims_shown:
        subset = claims[claims["claim"] == claim]
        for layer in dict.fromkeys(subset["layer"]):
            here = subset[subset["layer"] == layer]

            def one(scope, statistic):
                found = here[(here["scope"] == scope) & (here["statistic"] == statistic)]
                return None if found.empty else found.iloc[0]

            pooled, recipe = one("pooled", STATISTICS[claim][0]), one("controlled", CONTINUOUS[claim])
            carried = "" if pooled is None or pd.isna(pooled.get("carried_by")) else str(pooled["carried_by"])
            rows.append({"claim, layer": f"{claim} {here['claim_name'].iloc[0]}, {layer}",
                         "pooled, as the paper": _cell(pooled), "at a fixed recipe (recipe-adjusted)": _cell(recipe),
                         "carried by": carried})
    return pd.DataFrame(rows)


def prediction_rows(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims 4–5: R² and Kendall τ among seeds of one recipe, and on folds grouped by recipe."""
    rows = []
    for claim in (4, 5):
        for scope in ("seeds", "kfold", "loao"):
            here = claims[(claims["claim"] == claim) & (claims["scope"] == scope)]
            cells = {}
            for statistic in ("cv_r2", "kendall_tau"):
                found = here[here["statistic"] == statistic]
                cells[statistic] = _cell(None if found.empty else found.iloc[0])
            if not here.empty:
                rows.append({"claim": f"{claim} {here['claim_name'].iloc[0]}", "scope": scope,
                             "R²": cells["cv_r2"], "Kendall τ": cells["kendall_tau"]})
    return pd.DataFrame(rows)


def verdict_summary(claims: pd.DataFrame) -> pd.DataFrame:
    """Per claim, how many (model, dataset, layer) rows got each verdict pooled as the paper (the group contrast,
    or claim 3's correlation) and at a fixed recipe (the recipe-adjusted continuous form)."""
    rows = []
    for claim in sorted(CONTINUOUS):
        here = claims[claims["claim"] == claim]
        if here.empty:
            continue
        for scope, statistic, label in (("pooled", STATISTICS[claim][0], "pooled, as the paper"),
                                        ("controlled", CONTINUOUS[claim], "at a fixed recipe")):
            found = here[(here["scope"] == scope) & (here["statistic"] == statistic)]
            counts = found["verdict"].value_counts()
            rows.append({"claim": f"{claim} {here['claim_name'].iloc[0]}", "scope": label, "rows": len(found),
                         **{v: int(counts.get(v, 0)) for v in VERDICTS}})
    return pd.DataFrame(rows)


def training_revisions(study: Path) -> list[str]:
    revisions = set()
    for path in (study / "results/zoo").glob("*/*/*.nc"):
        with xr.open_dataset(path) as ds:
            revisions |= {r for r in str(ds.attrs.get("code_revision", "")).split(",") if r}
    return sorted(revisions)


def study_block(study: Path, accuracy: str = "train") -> str:
    """The Markdown of one study: provenance, then per (model, dataset) its recipes, per-recipe correlations,
    claims 1–3 and claims 4–5."""
    study = Path(study)
    claims = pd.read_csv(study / "results/analysis/claims.csv", keep_default_na=False, na_values=[""])
    features = read_features(study)
    n = sum(f.sizes["trial"] for f in features.values())
    trained = ", ".join(r[:7] + ("-dirty" if r.endswith("-dirty") else "") for r in training_revisions(study))
    tabulated = code_revision()
    parts = [f"Written by `python -m weightzoo.report.study_tables {study} ...` from that run's results "
             f"({n} trials); its training jobs ran at code revision {trained or 'unknown'} (the zoos' "
             f"`code_revision`), the tables at {tabulated[:7] + ('-dirty' if tabulated.endswith('-dirty') else '') or 'unknown'}."]
    parts.append("\nVerdicts of claims 1–3 and the metric claims over every (model, dataset, layer) row of claims.csv "
                 "(the continuous form at a fixed recipe is recipe-adjusted):\n")
    parts.append(markdown(verdict_summary(claims), numeric=("rows", *VERDICTS)))
    for (model, dataset), f in features.items():
        parts.append(f"\n#### {model} on {dataset}\n")
        parts.append(markdown(recipe_table(f, accuracy), numeric=("n",)))
        drawn = grid_keys(f)[1]
        parts.append("\nRank correlation of final accuracy with the property inside each recipe (Spearman"
                     + (f"; {', '.join(drawn)} drawn per net vary inside each row, so these are not recipe-adjusted: "
                        "the claims' fixed-recipe column is" if drawn else "") + "):\n")
        parts.append(markdown(recipe_correlations(f, accuracy), numeric=("n",)))
        here = claims[(claims["model"] == model) & (claims["dataset"] == dataset)]
        parts.append("\nClaims 1–3 (claims.csv; verdict, effect [95 % interval], n):\n")
        parts.append(markdown(claims_rows(here)))
        prediction = prediction_rows(here)
        if not prediction.empty:
            parts.append("\nClaims 4–5 (seeds: among seeds of one recipe; kfold: held-out recipes; loao: held-out "
                         "architectures):\n")
            parts.append(markdown(prediction))
    return "\n".join(parts)


def crossfamily_block(studies: dict[str, Path], alpha: float = 0.05) -> str:
    """The cross-family table (``analysis.crossfamily``) of the studies' claims tables; keys name the families
    of each study in the order of its models (``"CNN,ViT"``) or one family (``"DNN"``)."""
    tables = {}
    for labels, study in studies.items():
        claims = pd.read_csv(Path(study) / "results/analysis/claims.csv", keep_default_na=False, na_values=[""])
        names = labels.split(",")
        models = list(dict.fromkeys(claims["model"]))
        if len(names) != len(models):
            raise ValueError(f"{study}: {len(models)} models ({', '.join(models)}) but labels {labels!r}")
        if {n.lower() for n in names} == set(models):  # labels that name the models pair by name, else by order
            models = [n.lower() for n in names]
        for name, model in zip(names, models):
            tables[name] = claims[claims["model"] == model]
    table = cross_family(tables, alpha)
    shown = pd.DataFrame({
        "claim": [f"{c} {n}" for c, n in zip(table["claim"], table["claim_name"])],
        "recipe-adjusted ρ per family [95 %] (layer)": table["effects"],
        "common ρ [95 %]": [f"{r:+.2f} [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(r) else "–"
                            for r, lo, hi in zip(table["common_rho"], table["common_low"], table["common_high"])],
        "Cochran's Q (df), p": [f"{q:.2f} ({d:.0f}), {p:.3g}" if np.isfinite(q) else "–"
                                for q, d, p in zip(table["q"], table["df"], table["p_value"])],
        "I² [95 %]": [f"{i:.0%} [{lo:.0%}, {hi:.0%}]" if np.isfinite(i) else "–"
                      for i, lo, hi in zip(table["i2"], table["i2_low"], table["i2_high"])],
        "verdict": table["verdict"],
    })
    source = " ".join(f"{k}={v}" for k, v in studies.items())
    return (f"Written by `python -m weightzoo.report.study_tables --crossfamily {source}` at code revision "
            f"{code_revision() or 'unknown'}.\n\n" + markdown(shown))


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with the block between ``<!-- study:NAME:begin -->`` and ``<!-- study:NAME:end -->`` replaced."""
    begin, end = f"<!-- study:{name}:begin -->", f"<!-- study:{name}:end -->"
    pattern = re.compile(re.escape(begin) + r"\n.*?\n?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"no block {begin} ... {end} in the document")
    return pattern.sub(lambda _: f"{begin}\n{content}\n{end}", text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", nargs="?", type=Path, help="working directory of a finished run")
    parser.add_argument("--name", help="block name in the document (default: the study directory's name)")
    parser.add_argument("--accuracy", default="train", choices=("train", "test"))
    parser.add_argument("--crossfamily", nargs="+", metavar="LABELS=DIR",
                        help="the cross-family block from these studies (LABELS: one per model, comma-separated)")
    parser.add_argument("--docs", type=Path, help="replace the block in this Markdown file instead of printing")
    args = parser.parse_args(argv)
    if args.crossfamily:
        studies = dict(item.split("=", 1) for item in args.crossfamily)
        content, name = crossfamily_block({k: Path(v) for k, v in studies.items()}), args.name or "crossfamily"
    elif args.study:
        content, name = study_block(args.study, args.accuracy), args.name or args.study.resolve().name
    else:
        parser.error("give a study directory or --crossfamily")
    if args.docs:
        args.docs.write_text(replace_block(args.docs.read_text(encoding="utf-8"), name, content), encoding="utf-8")
    else:
        sys.stdout.write(content + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
