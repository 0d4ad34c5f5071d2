"""The findings page: for each paper claim and (model, dataset), what the zoo says at a fixed recipe and pooled.

One row per claim, (model, dataset) and layer (claims 1–3), or per claim (4–5: R² among the seeds of each recipe
with Kendall tau beside it, then held-out recipes pooled, held-out architectures in the sentence). It leads
with the **recipe-controlled** verdict (seeds of one recipe compared: claims 1–2 by their continuous form,
rank correlation with accuracy, since seeds of one recipe rarely fill two accuracy groups; the recipe-level
group contrast beside it), then the **pooled** verdict as the paper does it (group contrast over all
architectures and recipes), the recipe variable that carries the pooled result where the two disagree, n,
and one plain sentence answering: does the claim reproduce pooled; does it hold among seeds of one recipe;
if not, what carries the pooled result. Where the zoo cannot answer, the sentence says why and which config
change would answer it.
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
COLUMNS = ["model", "dataset", "claim", "claim_name", "layer", "recipe", "recipe_effect", "recipe_contrast",
           "pooled", "pooled_effect", "carried_by", "n", "finding"]


def effect_text(row) -> str:
    """'Cliff's δ −0.82 [−0.95, −0.69]' or '' when there is no effect."""
    if row is None or not np.isfinite(row["effect_size"]):
        return ""
    text = f"{EFFECT_TEXT.get(row['effect_name'], row['effect_name'])} {row['effect_size']:.2f}"
    if np.isfinite(row["ci_low"]):
        text += f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    return text


def remedy(reason: str) -> str:
    """The config change that would answer a question the zoo cannot answer."""
    if "no stratum holds both" in reason:
        return ("seeds of one recipe fall in one accuracy group: read the continuous form (recipe column), or "
                "choose a recipe whose seeds spread accuracy (e.g. init_std: 1.0, the literal N(0, 1))")
    if "fewer than" in reason and "group" in reason:
        return "raise experiments[].trials (more seeds per recipe)"
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


def _text(value) -> str:
    """A CSV cell as text: '' for a missing value (pandas reads empty cells as NaN)."""
    return "" if value is None or (isinstance(value, float) and not np.isfinite(value)) else str(value)


def _verdict_text(row) -> str:
    return "not tested" if row is None else str(row["verdict"])


def _cannot(row) -> str:
    fix = remedy(str(row["reason"]))
    return f"cannot answer ({row['reason']})" + (f"; to answer it: {fix}" if fix else "")


def _scope_sentence(where: str, statement: str, row) -> str:
    if row is None:
        return f"{where}: not tested."
    verdict = row["verdict"]
    if verdict == "supported":
        return f"{where}: yes, {statement} ({effect_text(row)}, n={int(row['n'])})."
    if verdict == "contradicted":
        return f"{where}: reversed, the opposite holds ({effect_text(row)}, n={int(row['n'])})."
    if verdict == "no effect":
        return f"{where}: no effect ({effect_text(row)}: inside the equivalence bound ±{row['equivalence_bound']:g})."
    return f"{where}: {_cannot(row)}."


def _group_sentence(claim, recipe, contrast, pooled) -> str:
    parts = [_scope_sentence("Among seeds of one recipe", AT_RECIPE[claim], recipe),
             _scope_sentence("Pooled, as the paper does", PLAIN[claim], pooled)]
    if contrast is not None and contrast["verdict"] != "inconclusive":
        parts.append(f"The group contrast at a fixed recipe: {contrast['verdict']} ({effect_text(contrast)}).")
    if pooled is not None and recipe is not None and pooled["verdict"] in ("supported", "contradicted") \
            and recipe["verdict"] != pooled["verdict"]:
        carried = _text(pooled.get("carried_by"))
        if carried:
            parts.append(f"The pooled result is carried by the recipe variable {carried} "
                         f"({pooled['confounder']}), not by accuracy among seeds.")
        else:
            parts.append("The pooled result does not hold among seeds of one recipe: it reflects differences "
                         "between recipes.")
    return " ".join(parts)


def _prediction_sentence(claim, seeds, kfold, loao) -> str:
    statement = PLAIN[claim]
    parts = [_scope_sentence("Among seeds of one recipe (recipe means removed)", statement, seeds),
             _scope_sentence("Held-out recipes (folds grouped by recipe)", statement, kfold),
             _scope_sentence("Held-out architectures", statement, loao)]
    return " ".join(parts)


def findings_table(claims: pd.DataFrame) -> pd.DataFrame:
    """One finding per claim × (model, dataset) × layer (claims 1–3) or one per claim (4–5)."""
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
                    rows.append(_finding(model, dataset, claim, layer, recipe, contrast, pooled,
                                         _group_sentence(claim, recipe, contrast, pooled)))
            else:
                seeds, kfold, loao = (_one(subset, scope, "cv_r2") for scope in ("seeds", "kfold", "loao"))
                tau = _one(subset, "seeds", "kendall_tau")
                rows.append(_finding(model, dataset, claim, "all layers", seeds, tau, kfold,
                                     _prediction_sentence(claim, seeds, kfold, loao)))
    return pd.DataFrame(rows, columns=COLUMNS)


def _one(table, scope, statistic):
    rows = table[(table["scope"] == scope) & (table["statistic"] == statistic)]
    return None if rows.empty else rows.iloc[0]


def _finding(model, dataset, claim, layer, recipe, contrast, pooled, sentence):
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
        "recipe_contrast": "" if contrast is None else f"{contrast['verdict']} {effect_text(contrast)}".strip(),
        # claims 4-5: the recipe column is the within-recipe R² (Kendall tau beside it), pooled the grouped folds
        "pooled": _verdict_text(pooled), "pooled_effect": effect_text(pooled),
        "carried_by": carried if disagree else "",
        "n": "; ".join(t for t in (n_text(recipe), n_text(pooled)) if t),
        "finding": sentence,
    }
