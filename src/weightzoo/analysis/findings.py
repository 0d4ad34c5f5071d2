"""The findings page: for each paper claim and (model, dataset), what the zoo says, pooled and controlled.

One row per claim, (model, dataset) and layer (claims 1–3) or cross-validation scheme (claims 4–5): the
pooled verdict (architectures together, as the paper), the controlled verdict (within architectures), the
effect with its interval, n per group, whether the pooled effect survives the control, and one plain
sentence. Where the zoo cannot answer, the sentence says why and which config change would answer it.
"""

import html

import numpy as np
import pandas as pd

from weightzoo.analysis.claims import CLAIMS

EFFECT_TEXT = {
    "cliffs_delta": "Cliff's δ",
    "w1_ratio_high_low": "W1 ratio high/low",
    "spearman_rho": "ρ",
    "r2": "R²",
    "kendall_tau": "Kendall τ",
    "above_chance": "balanced accuracy − chance",
}
PLAIN = {
    1: "high-accuracy nets have lower weight std than low-accuracy nets",
    2: "high-accuracy nets are more alike than low-accuracy nets",
    3: "node strength follows accuracy in the paper's direction",
    4: "final weight statistics predict accuracy",
    5: "epoch-1 weight statistics predict the final accuracy",
}
COLUMNS = ["model", "dataset", "claim", "claim_name", "layer", "pooled", "pooled_effect", "controlled",
           "controlled_effect", "survives_control", "n", "finding"]


def effect_text(row) -> str:
    """'Cliff's δ −0.82 [−0.95, −0.69]' or '' when there is no effect."""
    if not np.isfinite(row["effect_size"]):
        return ""
    text = f"{EFFECT_TEXT.get(row['effect_name'], row['effect_name'])} {row['effect_size']:.2f}"
    if np.isfinite(row["ci_low"]):
        text += f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    return text


def remedy(reason: str) -> str:
    """The config change that would answer a question the zoo cannot answer."""
    if "no stratum holds both" in reason:
        return ("accuracy groups coincide with architectures: sweep hyperparameters inside each architecture "
                "(experiments[].hyperparameters, e.g. init_std: [0.05, 0.3, 1.0]) so each has high and low trials")
    if "fewer than" in reason and "group" in reason:
        return ("raise experiments[].trials, or spread accuracy inside architectures with experiments[].hyperparameters"
                " (init_std, lr, train_fraction)")
    if "underpowered" in reason:
        return "more trials per architecture and group (experiments[].trials)"
    if "one architecture only" in reason:
        return "sweep an architecture key as a list (experiments[].arch) to test generalisation across architectures"
    if "no snapshot" in reason:
        return "add the epoch to training.snapshots"
    if "never trained" in reason or "never moved" in reason:
        return "a reading of the architecture in which these parameters get gradients (config/README.md, ViT)"
    if "same in every" in reason or "same within every" in reason:
        return "spread accuracy inside architectures (experiments[].hyperparameters)"
    return ""


def _verdict_text(row) -> str:
    if row is None:
        return "not tested"
    return str(row["verdict"])


def _sentence(claim, pooled, controlled) -> str:
    statement = PLAIN[claim]
    if pooled is None:
        return "not tested"
    if claim in (4, 5):
        row = pooled
        if row["verdict"] == "supported":
            return f"Yes: {statement} ({effect_text(row)}, {row['scope']} cross-validation, n={int(row['n'])})."
        if row["verdict"] in ("inconclusive", "never trained"):
            fix = remedy(str(row["reason"]))
            return f"Cannot answer ({row['reason']})" + (f"; to answer it: {fix}." if fix else ".")
        return f"No: {statement} does not hold here ({effect_text(row)}; {row['reason']})."
    p_verdict = pooled["verdict"]
    parts = [_scope_sentence("Pooled over architectures", pooled)]
    if controlled is not None and controlled["verdict"] == p_verdict and controlled["reason"] == pooled["reason"]:
        parts.append("The same within architectures.")
    elif controlled is not None:
        parts.append(_scope_sentence("Within architectures", controlled))
        if p_verdict == "supported" and controlled["verdict"] != "supported":
            parts.append("The pooled effect does not survive the architecture control: it may be architecture, not accuracy.")
    return " ".join(parts)


def _scope_sentence(where: str, row) -> str:
    verdict = row["verdict"]
    if verdict in ("supported", "contradicted"):
        word = "holds" if verdict == "supported" else "is reversed"
        return f"{where} the claim {word} ({effect_text(row)})."
    if verdict == "no effect":
        return f"{where}: no effect ({row['reason'].split('; ')[-1]})."
    fix = remedy(str(row["reason"]))
    return f"{where}: cannot answer ({row['reason']})" + (f"; to answer it: {fix}." if fix else ".")


def findings_table(claims: pd.DataFrame) -> pd.DataFrame:
    """One finding per claim × (model, dataset) × layer (claims 1–3) or scheme (claims 4–5)."""
    rows = []
    if claims.empty:
        return pd.DataFrame(columns=COLUMNS)
    for (model, dataset), table in claims.groupby(["model", "dataset"], sort=False):
        for claim in sorted(table["claim"].unique()):
            subset = table[table["claim"] == claim]
            if claim in (1, 2, 3):
                for layer in dict.fromkeys(subset["layer"]):
                    here = subset[subset["layer"] == layer]
                    pooled = _one(here, "pooled")
                    controlled = _one(here, "controlled")
                    rows.append(_finding(model, dataset, claim, layer, pooled, controlled))
            else:
                for statistic in ("cv_r2",):
                    here = subset[subset["statistic"] == statistic]
                    rows.append(_finding(model, dataset, claim, "all layers", _one(here, "kfold"), _one(here, "loao"),
                                         prediction=True))
    return pd.DataFrame(rows, columns=COLUMNS)


def _one(table, scope):
    rows = table[table["scope"] == scope]
    return None if rows.empty else rows.iloc[0]


def _finding(model, dataset, claim, layer, pooled, controlled, prediction=False):
    if prediction:
        survives = ""
        if pooled is not None and pooled["verdict"] == "supported" and controlled is not None:
            survives = {"supported": "yes", "inconclusive": "n/a", "never trained": "n/a"}.get(controlled["verdict"], "no")
        sentence = _sentence(claim, pooled, None)
        if controlled is not None:
            sentence += " Leave-one-architecture-out: " + (
                f"{controlled['verdict']} ({effect_text(controlled) or controlled['reason']})."
            )
    else:
        survives = ""
        if pooled is not None and pooled["verdict"] == "supported" and controlled is not None:
            survives = {"supported": "yes", "inconclusive": "n/a", "never trained": "n/a"}.get(controlled["verdict"], "no")
        sentence = _sentence(claim, pooled, controlled)
    n = "" if pooled is None else str(pooled["detail"]).split(", median")[0].split(", mean")[0]
    return {
        "model": model, "dataset": dataset, "claim": int(claim), "claim_name": CLAIMS[int(claim)][0], "layer": layer,
        "pooled": _verdict_text(pooled), "pooled_effect": "" if pooled is None else effect_text(pooled),
        "controlled": _verdict_text(controlled), "controlled_effect": "" if controlled is None else effect_text(controlled),
        "survives_control": survives, "n": n if "n_high" in n else ("" if pooled is None else f"n={int(pooled['n'])}"),
        "finding": sentence,
    }


VERDICT_COLOURS = {"supported": "#0072B2", "contradicted": "#D55E00", "no effect": "#009E73",
                   "never trained": "#CC79A7", "inconclusive": "#777777"}


def findings_html(findings: pd.DataFrame, groups: pd.DataFrame, notes: list[str], title: str) -> str:
    """The findings page: summary counts, the findings table, group sizes per architecture, notes."""
    style = (
        "body{font-family:sans-serif;font-size:14px;margin:.8em;max-width:1250px}"
        "table{border-collapse:collapse;margin-bottom:1.5em;max-width:100%}"
        "th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;"
        "overflow-wrap:break-word}td b{white-space:nowrap}"
        "th{background:#f2f2f2}td.finding{min-width:16em;max-width:520px;white-space:normal}"
        "p.note{color:#444}"
    )
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{style}</style></head><body><h2>{html.escape(title)}</h2>"]
    parts.append("<p>Zheng et al. (arXiv 2408.11720) compare accuracy groups with architectures pooled. Each claim is "
                 "tested here pooled (as the paper) and <b>controlled</b> for architecture (labels permuted and trials "
                 "resampled only within an architecture), because on a width sweep the groups are largely the widths. "
                 "Verdicts use Holm-adjusted one-sided p-values; <i>no effect</i> means the test could have detected a "
                 "medium effect and found none; intervals are bootstrap intervals of the effect shown.</p>")
    if not findings.empty:
        counts = findings.groupby(["pooled", "controlled"]).size().rename("findings").reset_index()
        parts.append("<h3>Verdicts at a glance</h3>" + counts.to_html(index=False, border=0))
    for (model, dataset), table in findings.groupby(["model", "dataset"], sort=False):
        parts.append(f"<h3>{html.escape(model)} on {html.escape(dataset)}</h3>")
        body = ["<table><tr><th>claim</th><th>layer</th><th>pooled</th><th>controlled</th><th>survives control</th>"
                "<th>n</th><th>finding</th></tr>"]
        for row in table.itertuples():
            body.append(
                f"<tr><td>{row.claim} {html.escape(row.claim_name)}</td><td>{html.escape(str(row.layer))}</td>"
                f"<td>{_coloured(row.pooled)}<br><small>{html.escape(row.pooled_effect)}</small></td>"
                f"<td>{_coloured(row.controlled)}<br><small>{html.escape(row.controlled_effect)}</small></td>"
                f"<td>{html.escape(row.survives_control)}</td><td>{html.escape(row.n)}</td>"
                f"<td class=\"finding\">{html.escape(row.finding)}</td></tr>"
            )
        body.append("</table>")
        parts.append("".join(body))
    if not groups.empty:
        parts.append("<h3>Trials per accuracy group and architecture</h3>" + groups.to_html(index=False, border=0))
    if notes:
        parts.append("<h3>What this zoo cannot show</h3><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                     + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _coloured(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#333333")
    return f'<b style="color:{colour}">{html.escape(verdict)}</b>'
