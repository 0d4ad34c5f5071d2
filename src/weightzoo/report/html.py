"""Every HTML page of the report: tables (Table 2, verdict counts, training status, the prediction benchmark),
the claims page and the findings page, with one stylesheet and one set of verdict colours. Pages are
self-contained (inline style, no scripts) so the Snakemake report can embed them."""

import html
import re

import numpy as np
import pandas as pd

def _verdict_of(label: str) -> str:
    """The verdict a label stands for: "negligible: ..." is the equivalence verdict, "inconclusive: ..." inconclusive."""
    head = str(label).split(":")[0].strip()
    return "no effect" if head == "negligible" else head


VERDICT_COLOURS = {"supported": "#0072B2", "contradicted": "#D55E00", "no effect": "#009E73",
                   "never trained": "#CC79A7", "inconclusive": "#777777"}
"""One colour per verdict (Okabe–Ito), in the order the pages list verdicts."""

# Table pages (body.weightzoo-page) fill the frame and wrap long cells; the findings page (body.findings) is prose
# with tables beside it.
CSS = (
    "body{font-family:sans-serif;font-size:14px}"
    "body.weightzoo-page{margin:.5em}"
    ".weightzoo-page h3{margin:.2em 0 .6em}"
    ".weightzoo-scroll{overflow-x:auto;max-width:100%}"
    "table.weightzoo-table{border-collapse:collapse;width:100%;table-layout:auto}"
    ".weightzoo-table th,.weightzoo-table td{padding:3px 5px;border-bottom:1px solid #ddd;text-align:right;"
    "vertical-align:top;overflow-wrap:break-word}"
    ".weightzoo-table th{background:#f2f2f2;position:sticky;top:0}"
    ".weightzoo-table tr:hover{background:#fafafa}"
    ".weightzoo-page p.note{color:#555;font-size:12px}"
    "body.findings{margin:.8em;max-width:1250px}"
    ".findings table{border-collapse:collapse;margin-bottom:1.5em;max-width:100%}"
    ".findings th,.findings td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;"
    "overflow-wrap:break-word}.findings td b{white-space:nowrap}"
    ".findings th{background:#f2f2f2}.findings td.finding{min-width:16em;max-width:520px;white-space:normal}"
    ".findings p.note{color:#444}"
)


def _page(title: str, body: str, kind: str, style: str = "", viewport: bool = True) -> str:
    meta = "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" if viewport else ""
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{meta}<title>{html.escape(title)}</title>"
            f"<style>{CSS}{style}</style></head>\n<body class=\"{kind}\">{body}</body></html>\n")


def _number(x, digits: int, significant: bool) -> str:
    if significant:
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def table_page(table: pd.DataFrame, title: str = "Accuracy per group (%)", digits: int = 2, significant: bool = False,
               note: str | None = None) -> str:
    """A small self-contained HTML page holding ``table`` (no scripts, inline style).

    The table fills the width it is shown at and wraps long cells instead of hiding columns (a horizontal scroll bar
    is the last resort); text columns are left-aligned, numbers right-aligned. ``significant``: ``digits``
    significant digits instead of decimals (narrower columns for p-values and effects)."""
    body = table.to_html(
        index=False,
        na_rep="–",
        float_format=lambda x: _number(x, digits, significant),
        border=0,
        classes="weightzoo-table",
        justify="left",
    )
    # names break after underscores, sentences at spaces, numbers never: columns keep readable widths
    body = re.sub(r"<(th|td)>([^<]*)</(th|td)>",
                  lambda m: f"<{m.group(1)}>" + m.group(2).replace("_", "_<wbr>").replace("/", "/<wbr>")
                  + f"</{m.group(3)}>", body)
    rules = []
    for i, column in enumerate(table.columns, start=1):
        cells = f".weightzoo-table td:nth-child({i})"
        if pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(table[column]):
            rules.append(f"{cells}{{white-space:nowrap}}")
            continue
        rules.append(f"{cells},.weightzoo-table th:nth-child({i}){{text-align:left}}")
        if table[column].astype(str).str.len().max() > 40:
            rules.append(f"{cells}{{min-width:10em}}")
    if note is None:
        note = "– = no value."
        if any(str(c).startswith("paper_") for c in table.columns):
            note = "paper_* columns: Zheng et al. 2024, arXiv 2408.11720, Table 2 (training accuracy). " + note
    content = (f"<h3>{html.escape(title)}</h3>\n<div class=\"weightzoo-scroll\">{body}</div>\n"
               f"<p class=\"note\">{html.escape(note)}</p>")
    return _page(title, content, "weightzoo-page", "".join(rules))


# ---------------------------------------------------------------------------------------------- claims

CLAIM_COLUMNS = ["scope", "strata", "arch", "claim", "claim_name", "layer", "statistic", "value", "effect_name",
                 "effect_size", "ci_low", "ci_high", "detectable", "p_value", "n", "n_strata", "verdict", "reason"]


def _g(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3g}"


def claims_page(table: pd.DataFrame, title: str) -> str:
    """The claims table as a self-contained HTML page (verdict column coloured). Eight columns, so that it wraps
    at the width of the report instead of hiding the verdict and reason: scope, architecture and what was held
    fixed; claim and layer; statistic and value; effect and interval; p and detectable effect; n and strata are
    shown together (the CSV keeps them apart)."""
    if table.empty:
        shown = pd.DataFrame({"message": ["no claims could be tested"]})
    else:
        rows = table[CLAIM_COLUMNS]
        shown = pd.DataFrame({
            # the strata column's keys only (the CSV keeps its full text): the page must fit the report's frame
            "scope, arch [held fixed]": [
                scope + ("" if arch == "all" else f" {arch}")
                + (f" [{str(strata).split(' (')[0]}]" if scope in ("controlled", "within") else "")
                for scope, arch, strata in zip(rows["scope"], rows["arch"], rows["strata"].fillna(""))],
            "claim, layer": [f"{c} {name}, {layer}" for c, name, layer in
                             zip(rows["claim"], rows["claim_name"], rows["layer"])],
            "statistic": [f"{s} = {_g(v)}" for s, v in zip(rows["statistic"], rows["value"])],
            "effect [interval]": [f"{name} {_g(e)} [{_g(lo)}, {_g(hi)}]" for name, e, lo, hi in
                                  zip(rows["effect_name"], rows["effect_size"], rows["ci_low"], rows["ci_high"])],
            "p (detectable)": [f"{_g(p)} ({_g(d)})" for p, d in zip(rows["p_value"], rows["detectable"])],
            "n (strata)": [f"{n} ({k})" for n, k in zip(rows["n"], rows["n_strata"])],
            "verdict": rows["verdict"], "reason": rows["reason"],
        })
    page = table_page(shown, title=title, digits=3, significant=True)
    for verdict, colour in VERDICT_COLOURS.items():
        page = page.replace(f"<td>{verdict}</td>", f'<td style="color:{colour};font-weight:bold">{verdict}</td>')
    return page


def _with_interval(value, low, high) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    interval = f" [{low:.3f}, {high:.3f}]" if np.isfinite(low) and np.isfinite(high) else " [no interval]"
    return f"{value:.3f}{interval}"


def benchmark_page(table: pd.DataFrame, title: str, level: float) -> str:
    """The prediction benchmark (``analysis.benchmark.COLUMNS``) as a page: per (model, dataset) and pooled, each
    method's Kendall tau and R² with their ``level`` intervals beside the published anchors, n trials / recipes /
    folds, the best method, and why a row is not answered; what each zoo is, ours and the anchor's, once per cell
    (the CSV keeps every column of every row)."""
    if table.empty:
        return table_page(pd.DataFrame({"message": ["no (model, dataset) to benchmark"]}), title=title)
    first = ~table.duplicated(["model", "dataset"])
    shown = pd.DataFrame({
        "model / dataset": [f"{m} / {d}" for m, d in zip(table["model"], table["dataset"])],
        "method": [f"({k}) {name}" for k, name in zip(table["method"], table["method_name"])],
        f"Kendall τ [{level:.0%}]": [_with_interval(*v) for v in
                                     zip(table["tau"], table["tau_low"], table["tau_high"])],
        "anchor τ": table["anchor_tau"],
        f"R² [{level:.0%}]": [_with_interval(*v) for v in zip(table["r2"], table["r2_low"], table["r2_high"])],
        "anchor R²": table["anchor_r2"],
        "n (recipes, K)": [f"{n} ({r}, {k})" for n, r, k in zip(table["n"], table["n_recipes"], table["cv_folds"])],
        "best": table["best"],
        "not answered because": table["reason"],
        "our zoo / the anchor's": [f"{zoo} / {anchor}; excluded: {excluded}" if show else ""
                                   for zoo, anchor, excluded, show in
                                   zip(table["zoo"], table["anchor_zoo"].replace("", "no anchor"), table["excluded"],
                                       first)],
    })
    note = ("anchor τ / R²: the published number of the same method on the same dataset of the Small CNN Zoo "
            "(anchors in the CSV's anchor column, with their source; – = none published on this dataset, or several "
            "variants: the CSV's anchor column then lists them, and the same method's numbers on the other Small CNN "
            "Zoo datasets, marked not comparable: Kendall τ was published on CIFAR-10-GS and SVHN-GS only). "
            "Intervals: bootstrap over recipes. – = no value.")
    return table_page(shown, title=title, digits=3, note=note)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """How many tests of each claim got each verdict, per model, dataset and scope (verdicts in page order)."""
    if table.empty:
        return pd.DataFrame({"message": ["no claims tables"]})
    counts = table.groupby(["model", "dataset", "scope", "claim", "claim_name", "verdict"]).size().unstack(
        "verdict", fill_value=0)
    order = sorted(counts.columns, key=lambda v: list(VERDICT_COLOURS).index(v) if v in VERDICT_COLOURS else 99)
    counts = counts[order].assign(tests=counts.sum(axis=1)).reset_index()
    counts.columns.name = None
    return counts


# ---------------------------------------------------------------------------------------------- findings


def verdict_matrix_html(matrix: pd.DataFrame) -> str:
    """Claims × (model, dataset) on one screen (``analysis.findings.verdict_matrix`` rows): per cell one square
    per layer at a fixed recipe and one per layer pooled, coloured by verdict (the layer and verdict label on
    hover), and the labels with their counts; the column heads link to the (model, dataset)'s forest plot."""
    if matrix.empty:
        return ""
    cells = list(dict.fromkeys(zip(matrix["model"], matrix["dataset"])))
    head = "".join(f'<th><a href="#{_anchor(m, d)}">{html.escape(m)} / {html.escape(d)}</a></th>' for m, d in cells)
    body = [f"<table class=\"matrix\"><tr><th>claim</th>{head}</tr>"]
    for (claim, name), rows in matrix.groupby(["claim", "claim_name"], sort=True):
        line = [f"<tr><td><b>{claim}</b> {html.escape(str(name))}</td>"]
        for model, dataset in cells:
            here = rows[(rows["model"] == model) & (rows["dataset"] == dataset)]
            if here.empty:
                line.append("<td class=\"none\">–</td>")
                continue
            parts = []
            for side, word in (("recipe", "fixed recipe"), ("pooled", "pooled")):
                shown = here[here["side"] == side]
                squares = "".join(f'<span class="sq" style="background:{VERDICT_COLOURS.get(v, "#333333")}" '
                                  f'title="{html.escape(f"{layer}: {label}")}"></span>'
                                  for layer, v, label in zip(shown["layer"], shown["verdict"], shown["label"]))
                counts = shown["label"].value_counts()
                words = ", ".join(f"{n} {html.escape(str(label))}" if len(shown) > 1 else html.escape(str(label))
                                  for label, n in counts.items())
                parts.append(f"<div><small>{word}</small> {squares} <small>{words}</small></div>")
            line.append(f"<td>{''.join(parts)}</td>")
        body.append("".join(line) + "</tr>")
    body.append("</table>")
    return "".join(body)


def _anchor(model, dataset) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"forest-{model}-{dataset}")


FINDINGS_STYLE = (".findings table.matrix td{min-width:9em;font-size:12px}.findings table.matrix td div{white-space:nowrap}"
                  ".findings span.sq{display:inline-block;width:9px;height:9px;margin-right:1px;vertical-align:middle}"
                  ".findings img.forest{max-width:100%;height:auto;display:block;margin-bottom:1em}"
                  ".findings details{color:#444;font-size:12px}")


def findings_page(findings: pd.DataFrame, groups: pd.DataFrame, notes: list[str], title: str,
                  matrix: pd.DataFrame | None = None, forests: list[tuple[str, str, str]] = ()) -> str:
    """The findings page: the verdicts at a glance (the claims × (model, dataset) matrix, then one forest plot per
    (model, dataset): ``forests`` = (model, dataset, image data URI)), then per (model, dataset) the findings
    table whose rows say at most two sentences and fold the rest away, group sizes per architecture, notes
    (``analysis.findings.findings_table`` rows)."""
    parts = [f"<h2>{html.escape(title)}</h2>"]
    parts.append("<p>Each claim leads with the verdict <b>at a fixed recipe</b> (seeds of one recipe compared, "
                 "recipe variables adjusted for: the <code>controlled</code> rows of claims.csv) beside the verdict <b>pooled, as the paper</b> does it (a group "
                 "contrast over every recipe, which measures the recipe as much as accuracy).</p>"
                 "<details><summary>How the verdicts are made</summary><p>Zheng et al. (arXiv 2408.11720) compare "
                 "accuracy groups with architectures pooled. A larger init both lowers accuracy and raises the weight "
                 "std, so a pooled contrast can be the recipe's. At a fixed recipe, claims are tested by rank "
                 "correlation with accuracy among seeds of one recipe, pooled over recipes with weights ∝ n (claims "
                 "1–2 also as a group contrast where a recipe's seeds fill two groups); where the pooled and the "
                 "recipe verdicts disagree, the recipe variable that carries the pooled result is named. Verdicts: "
                 "Holm-adjusted two-sided tests, one family per (model, dataset, scope, claim), with the direction "
                 "read from the sign and the 95% interval on the same side; <i>no effect</i> (negligible) only from "
                 "an equivalence test (the 90% interval inside the bound of claims.equivalence).</p></details>")
    if matrix is not None and not matrix.empty:
        parts.append("<h3>Verdicts at a glance</h3><p class=\"note\">One square per layer, coloured by verdict "
                     "(hover for the layer): first at a fixed recipe, then pooled. "
                     + " ".join(f'<span class="sq" style="background:{c}"></span> {html.escape(v)}'
                                for v, c in VERDICT_COLOURS.items()) + "</p>" + verdict_matrix_html(matrix))
    for model, dataset, uri in forests:
        parts.append(f'<h3 id="{_anchor(model, dataset)}">{html.escape(model)} on {html.escape(dataset)}: every claim '
                     f'and layer</h3><img class="forest" src="{uri}" alt="forest plot of the verdicts of '
                     f'{html.escape(model)} on {html.escape(dataset)}">')
    for (model, dataset), table in findings.groupby(["model", "dataset"], sort=False):
        parts.append(f"<h3>{html.escape(model)} on {html.escape(dataset)}</h3>")
        body = ["<table><tr><th>claim</th><th>layer</th><th>at a fixed recipe</th><th>pooled, as the paper</th>"
                "<th>carried by</th><th>n</th><th>finding</th></tr>"]
        for row in table.itertuples():
            beside = f"<br><small>{html.escape(row.recipe_beside)}</small>" if row.recipe_beside else ""
            detail = (f"<details><summary>more</summary>{html.escape(row.detail)}</details>"
                      if row.detail else "")
            body.append(
                f"<tr><td>{row.claim} {html.escape(row.claim_name)}</td><td>{html.escape(str(row.layer))}</td>"
                f"<td>{_coloured(row.recipe)}<br><small>{html.escape(row.recipe_effect)}</small>{beside}</td>"
                f"<td>{_coloured(row.pooled)}<br><small>{html.escape(row.pooled_effect)}</small></td>"
                f"<td>{html.escape(row.carried_by)}</td><td>{html.escape(row.n)}</td>"
                f"<td class=\"finding\">{html.escape(row.finding)}{detail}</td></tr>"
            )
        body.append("</table>")
        parts.append("".join(body))
    if not groups.empty:
        parts.append("<h3>Trials per accuracy group and architecture</h3>" + groups.to_html(index=False, border=0))
    if notes:
        parts.append("<h3>What this zoo cannot show</h3><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                     + "</ul>")
    return _page(title, "".join(parts), "findings", FINDINGS_STYLE, viewport=False)


def _coloured(verdict: str) -> str:
    """A verdict (or its label, e.g. "negligible: |ρ| < 0.1") in its verdict's colour."""
    colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS.get(_verdict_of(verdict), "#333333"))
    return f'<b style="color:{colour}">{html.escape(verdict)}</b>'
