"""The findings page: for each paper claim and (model, dataset), what the zoo says at a fixed recipe and pooled.

One row per claim, (model, dataset) and layer (claims 1–3), or per claim (4–5: R² among the seeds of each recipe
with Kendall tau beside it, then held-out recipes pooled, held-out architectures in the sentence). It leads
with the **recipe-controlled** verdict (seeds of one recipe compared: claims 1–2 by their continuous form,
rank correlation with accuracy, since seeds of one recipe rarely fill two accuracy groups; the recipe-level
group contrast beside it), then the **pooled** verdict as the paper does it (group contrast over all
architectures and recipes), the recipe variable that carries the pooled result where the two disagree, n,
and at most two sentences answering: does it hold among seeds of one recipe; does the claim reproduce pooled,
and if only there, what carries the pooled result. The rest (``detail``) folds away on the page: where the zoo
cannot answer, why and which config change would answer it (never "more seeds" where no recipe's seeds can fill
both groups). ``forest_table`` and ``verdict_matrix`` are the same verdicts at a glance.
"""

import numpy as np
import pandas as pd

from weightzoo.analysis.claims import CLAIMS, CONTINUOUS, METRIC_CLAIMS, STATISTICS
from weightzoo.analysis.metrics import direction_word

EFFECT_TEXT = {
    "cliffs_delta": "Cliff's δ",
    "w1_ratio_high_low": "W1 ratio high/low",
    "spearman_rho": "ρ",
    "r2": "R²",
    "kendall_tau": "Kendall τ",
    "above_chance": "balanced accuracy − chance",
}
PLAIN = {
    **{c: f"high-accuracy nets have {direction_word(m)} {m.text} than low-accuracy nets" for c, m in METRIC_CLAIMS.items()},
    2: "high-accuracy nets are more alike than low-accuracy nets",
    3: "node strength follows accuracy in the paper's direction",
    4: "final weight statistics predict accuracy",
    5: "epoch-1 weight statistics predict the final accuracy",
}
AT_RECIPE = {
    **{c: f"among seeds of one recipe, accuracy {direction_word(m, 'rises', 'falls')} with {m.text}"
       for c, m in METRIC_CLAIMS.items()},
    2: "among seeds of one recipe, the better seeds sit closer to the others",
    3: "among seeds of one recipe, node strength follows accuracy in the paper's direction",
}
COLUMNS = ["model", "dataset", "claim", "claim_name", "layer", "recipe", "recipe_effect", "recipe_beside",
           "pooled", "pooled_effect", "carried_by", "n", "finding", "detail"]
"""``recipe_beside``: what stands beside the recipe verdict, labelled (claims 1–2: the paper's group contrast at a
fixed recipe; claims 4–5: Kendall τ among seeds); ``finding``: at most two sentences; ``detail``: the rest."""


def effect_text(row) -> str:
    """'Cliff's δ −0.82 [−0.95, −0.69]' or '' when there is no effect."""
    if row is None or not np.isfinite(row["effect_size"]):
        return ""
    text = f"{EFFECT_TEXT.get(row['effect_name'], row['effect_name'])} {row['effect_size']:.2f}"
    if np.isfinite(row["ci_low"]):
        text += f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    return text


def remedy(reason: str, seeds_fill_groups: bool | None = None) -> str:
    """The config change that would answer a question the zoo cannot answer. ``seeds_fill_groups``: whether any
    recipe of the (model, dataset) holds both a high and a low trial (``recipe_group_spread``); None when not
    known."""
    if "no stratum holds both" in reason:
        return ("seeds of one recipe fall in one accuracy group: read the continuous form (recipe column), or "
                "choose a recipe whose seeds spread accuracy (e.g. init_std: 1.0, the literal N(0, 1))")
    if "fewer than" in reason and "group" in reason:
        if seeds_fill_groups is False:
            return ("more seeds would not fill both groups: no recipe's seeds spread accuracy across the gap between "
                    "the high and the low group (analysis.groups.delta is wider than the seed spread); read the "
                    "continuous form (rank correlation among seeds, the recipe column), or choose a recipe whose seeds "
                    "spread accuracy (e.g. init_std: 1.0)")
        return "more seeds per recipe (experiments[].trials), sized by a power calculation (config/fmnist.yaml)"
    if "underpowered" in reason or "neither a difference nor equivalence" in reason:
        return "more seeds per recipe (experiments[].trials), sized by a power calculation (config/fmnist.yaml)"
    if "recipes <" in reason:
        return "more recipes (sweep a hyperparameter or architecture key in experiments[]) to cross-validate across"
    if "architectures <" in reason:
        return "sweep an architecture key over 3 or more values (experiments[].arch)"
    if "cannot be trusted" in reason and "eigenvalues" in reason:
        return "wider layers: a power-law fit needs a spectrum of 50 or more eigenvalues (min(out, in) per matrix)"
    if "no snapshot" in reason:
        return "add the epoch to training.snapshots"
    if "never trained" in reason or "never moved" in reason:
        return "a reading of the architecture in which these parameters get gradients (config/README.md, ViT)"
    if "same within every" in reason or "same in every" in reason or "no stratum with" in reason:
        return "more seeds per recipe, or a recipe whose seeds spread accuracy (e.g. init_std: 1.0)"
    return ""


def recipe_group_spread(summary: pd.DataFrame) -> dict[tuple[str, str], bool]:
    """Per (model, dataset): does any recipe (experiment and every per-trial hyperparameter that varies) hold
    both a high and a low trial? From the trial summary with groups (``results/analysis/summary_groups.csv``)."""
    from weightzoo.config import HYPERPARAMETERS

    if summary.empty or "group" not in summary:
        return {}
    out = {}
    for (model, dataset), rows in summary.groupby(["model", "dataset"], sort=False):
        keys = ["experiment"] + [h for h in HYPERPARAMETERS if h in rows and rows[h].astype(str).nunique() > 1]
        groups = rows.groupby(keys)["group"].agg(lambda g: {"high", "low"} <= set(g))
        out[(str(model), str(dataset))] = bool(groups.any())
    return out


def _text(value) -> str:
    """A CSV cell as text: '' for a missing value (pandas reads empty cells as NaN)."""
    return "" if value is None or (isinstance(value, float) and not np.isfinite(value)) else str(value)


def _verdict_text(row) -> str:
    return verdict_label(row)


def _cannot(row, seeds_fill_groups=None) -> str:
    fix = remedy(str(row["reason"]), seeds_fill_groups)
    return f"cannot answer ({row['reason']})" + (f"; to answer it: {fix}" if fix else "")


def _n(row) -> str:
    return f"n={int(row['n'])}" if np.isfinite(float(row["n"])) else ""


def _short(where: str, statement: str, row) -> str:
    """One sentence: the scope's verdict (its label) and effect; why it cannot answer goes to the details."""
    if row is None:
        return f"{where}: not tested."
    verdict, effect = row["verdict"], ", ".join(t for t in (effect_text(row), _n(row)) if t)
    effect = f" ({effect})" if effect else ""
    if verdict == "supported":
        return f"{where}: yes, {statement}{effect}."
    if verdict == "contradicted":
        return f"{where}: reversed, the opposite holds{effect}."
    return f"{where}: {verdict_label(row)}{effect}."


def _long(where: str, row, seeds_fill_groups=None) -> str:
    """What the short sentence leaves out: the bound of a no-effect row, why a row cannot answer and what would."""
    if row is None:
        return ""
    if row["verdict"] == "no effect":
        return f"{where}: inside the equivalence bound ±{row['equivalence_bound']:g}."
    if row["verdict"] in ("supported", "contradicted"):
        return ""
    return f"{where}: {_cannot(row, seeds_fill_groups)}."


def _group_sentence(claim, recipe, contrast, pooled, seeds_fill_groups=None) -> tuple[str, str]:
    """(at most two sentences: the verdict at a fixed recipe, then pooled with what carries it; the rest)."""
    pooled_short = _short("Pooled, as the paper does", PLAIN[claim], pooled)
    rest = [_long("Among seeds of one recipe", recipe, seeds_fill_groups),
            _long("Pooled", pooled, seeds_fill_groups)]
    if pooled is not None and recipe is not None and pooled["verdict"] in ("supported", "contradicted") \
            and recipe["verdict"] != pooled["verdict"]:
        carried = _text(pooled.get("carried_by"))
        if carried:
            pooled_short = pooled_short[:-1] + (f", carried by the recipe ({carried}), not by accuracy "
                                                "among seeds.")
            rest.append(f"What each recipe variable does to the pooled effect: {_text(pooled.get('confounder'))}.")
        else:
            pooled_short = pooled_short[:-1] + ": it reflects differences between recipes."
    if contrast is not None:
        rest.append(f"The paper's group contrast at a fixed recipe: {verdict_label(contrast)}"
                    + (f" ({effect_text(contrast)})." if effect_text(contrast) else "."))
    short = " ".join([_short("Among seeds of one recipe", AT_RECIPE[claim], recipe), pooled_short])
    return short, " ".join(t for t in rest if t)


def _prediction_sentence(claim, seeds, kfold, loao, tau=None) -> tuple[str, str]:
    statement = PLAIN[claim]
    short = " ".join([_short("Among seeds of one recipe (recipe means removed)", statement, seeds),
                      _short("Held-out recipes (folds grouped by recipe)", statement, kfold)])
    rest = [_long("Among seeds of one recipe", seeds), _long("Held-out recipes", kfold),
            _short("Held-out architectures", statement, loao), _long("Held-out architectures", loao)]
    if tau is not None and effect_text(tau):
        rest.insert(0, f"Rank agreement among seeds: {verdict_label(tau)} ({effect_text(tau)}).")
    return short, " ".join(t for t in rest if t)


def findings_table(claims: pd.DataFrame, seeds_fill_groups: dict | None = None) -> pd.DataFrame:
    """One finding per claim × (model, dataset) × layer (claims 1–3) or one per claim (4–5).
    ``seeds_fill_groups``: ``recipe_group_spread`` of the zoo, so that a remedy never asks for more seeds where
    more seeds cannot fill the groups."""
    seeds_fill_groups = seeds_fill_groups or {}
    rows = []
    if claims.empty:
        return pd.DataFrame(columns=COLUMNS)
    for (model, dataset), table in claims.groupby(["model", "dataset"], sort=False):
        for claim in sorted(table["claim"].unique()):
            subset = table[table["claim"] == claim]
            if claim in STATISTICS:
                for layer in dict.fromkeys(subset["layer"]):
                    here = subset[subset["layer"] == layer]
                    pooled = _one(here, "pooled", STATISTICS[claim][0])
                    recipe = _one(here, "controlled", CONTINUOUS[claim])
                    contrast = (_one(here, "controlled", STATISTICS[claim][0])
                                if STATISTICS[claim][0] != CONTINUOUS[claim] else None)
                    fill = seeds_fill_groups.get((str(model), str(dataset)))
                    rows.append(_finding(model, dataset, claim, layer, recipe, ("group contrast", contrast), pooled,
                                         _group_sentence(claim, recipe, contrast, pooled, fill)))
            else:
                seeds, kfold, loao = (_one(subset, scope, "cv_r2") for scope in ("seeds", "kfold", "loao"))
                tau = _one(subset, "seeds", "kendall_tau")
                rows.append(_finding(model, dataset, claim, "all layers", seeds, ("Kendall τ among seeds", tau), kfold,
                                     _prediction_sentence(claim, seeds, kfold, loao, tau)))
    return pd.DataFrame(rows, columns=COLUMNS)


def _one(table, scope, statistic):
    rows = table[(table["scope"] == scope) & (table["statistic"] == statistic)]
    return None if rows.empty else rows.iloc[0]


def _finding(model, dataset, claim, layer, recipe, beside, pooled, sentences):
    def n_text(row):
        if row is None:
            return ""
        strata = int(row["n_strata"]) if "n_strata" in row and np.isfinite(row["n_strata"]) else 0
        return f"n={int(row['n'])}" + (f" in {strata} strata" if strata > 1 else "")

    carried = "" if pooled is None else _text(pooled.get("carried_by"))
    disagree = pooled is not None and recipe is not None and pooled["verdict"] != recipe["verdict"]
    return {
        "model": model, "dataset": dataset, "claim": int(claim), "claim_name": CLAIMS[int(claim)][0], "layer": layer,
        "recipe": _verdict_text(recipe), "recipe_effect": effect_text(recipe),
        # claims 4-5: the recipe column is the within-recipe R² (Kendall tau beside it), pooled the grouped folds
        "recipe_beside": "" if beside[1] is None else
        f"{beside[0]}: {verdict_label(beside[1])} {effect_text(beside[1])}".strip(),
        "pooled": _verdict_text(pooled), "pooled_effect": effect_text(pooled),
        "carried_by": carried if disagree else "",
        "n": "; ".join(t for t in (n_text(recipe), n_text(pooled)) if t),
        "finding": sentences[0], "detail": sentences[1],
    }


# ---------------------------------------------------------------------------------------------- verdicts at a glance

FOREST_COLUMNS = ["model", "dataset", "claim", "claim_name", "layer", "side", "effect_name", "effect", "low", "high",
                  "band_low", "band_high", "verdict", "label"]
"""One row per (claim, layer) and side: ``recipe`` (the recipe-adjusted estimate: the ``controlled`` row of the
claim's continuous form; claims 4–5 R² among seeds) and ``pooled`` (as the paper: the group contrast over
all recipes; claims 4–5 R² on folds grouped by recipe). Effects and bands on the plotted scale: ratios as log2."""
SIDES = {"recipe": "at a fixed recipe (recipe-adjusted)", "pooled": "pooled, as the paper"}


def verdict_label(row) -> str:
    """The row's verdict in words: the claims table's ``verdict_label`` where it has one (e.g. "negligible:
    |ρ| < 0.1"), else its ``verdict``."""
    if row is None:
        return "not tested"
    label = _text(row.get("verdict_label")) if hasattr(row, "get") else ""
    return label or str(row["verdict"])


def _plotted(row, side: str) -> dict:
    from weightzoo.analysis.claims.testing import NULL_CENTRE, RATIOS

    name = _text(row["effect_name"])
    values = np.array([row["effect_size"], row["ci_low"], row["ci_high"]], dtype=float)
    bound = float(row["equivalence_bound"]) if "equivalence_bound" in row and np.isfinite(
        row["equivalence_bound"]) else np.nan
    if name in RATIOS:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log2(values)
        band = (-np.log2(bound), np.log2(bound)) if bound > 0 else (np.nan, np.nan)
        name = f"log2 {name}"
    else:
        centre = NULL_CENTRE.get(name, 0.0)
        band = (centre - bound, centre + bound)
    return {"side": side, "effect_name": name, "effect": values[0], "low": values[1], "high": values[2],
            "band_low": band[0], "band_high": band[1], "verdict": str(row["verdict"]), "label": verdict_label(row)}


def forest_table(claims: pd.DataFrame) -> pd.DataFrame:
    """The rows of the forest plot (``FOREST_COLUMNS``): for every (model, dataset), claim and layer, the
    recipe-adjusted and the pooled estimate with their intervals, equivalence bands and verdicts, read from the
    stored claims table (rows without a finite effect are kept, with NaN effects: the plot says "no estimate")."""
    rows = []
    if claims.empty:
        return pd.DataFrame(columns=FOREST_COLUMNS)
    for (model, dataset), table in claims.groupby(["model", "dataset"], sort=False):
        for claim in sorted(table["claim"].unique()):
            subset = table[table["claim"] == claim]
            if claim in STATISTICS:
                sides = [("recipe", "controlled", CONTINUOUS[claim]), ("pooled", "pooled", STATISTICS[claim][0])]
                layers = list(dict.fromkeys(subset["layer"]))
            else:
                sides = [("recipe", "seeds", "cv_r2"), ("pooled", "kfold", "cv_r2")]
                layers = ["all layers"]
            for layer in layers:
                here = subset if claim not in STATISTICS else subset[subset["layer"] == layer]
                for side, scope, statistic in sides:
                    row = _one(here, scope, statistic)
                    if row is None:
                        continue
                    rows.append({"model": model, "dataset": dataset, "claim": int(claim),
                                 "claim_name": CLAIMS[int(claim)][0], "layer": layer, **_plotted(row, side)})
    return pd.DataFrame(rows, columns=FOREST_COLUMNS)


def verdict_matrix(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims × (model, dataset): per cell the verdicts of every layer at a fixed recipe and pooled
    (columns model, dataset, claim, claim_name, side, layer, verdict, label), from ``forest_table``."""
    forest = forest_table(claims)
    return forest[["model", "dataset", "claim", "claim_name", "side", "layer", "verdict", "label"]]
