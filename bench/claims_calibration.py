"""Error rates of the claims' decisions on synthetic truths (issue 13): prints one line per case.

For each case, ``--replicates`` independent zoos of ``--strata`` recipes x ``--seeds`` seeds are drawn, one
test is run per zoo (its own Holm family) through the same code as the workflow (``groupwise`` +
``testing.decide``), and the share of each verdict is printed with a 95 % Wilson interval:

- ``null``: accuracy independent of the weight property: directional verdicts (either sign) must be <= alpha;
- ``at_bound``: a true effect exactly at the equivalence bound: ``no effect`` must be <= alpha;
- ``planted``: a true effect of twice the bound: how often it is found (power);
- ``recipe``: accuracy and the property both set by the recipe, none among seeds: pooled vs controlled.

    .venv/bin/python bench/claims_calibration.py --replicates 500
"""

import argparse
import time

import numpy as np
import pandas as pd
import scipy.stats

from weightzoo.analysis.claims.groupwise import group_contrast, rank_association
from weightzoo.analysis.claims.testing import EQUIVALENCE, decide


def correlated(rng, n, spearman):
    """x, y with population Spearman rho ``spearman`` (bivariate normal, r = 2 sin(pi rho / 6))."""
    r = 2 * np.sin(np.pi * spearman / 6)
    x = rng.normal(size=n)
    return x, r * x + np.sqrt(1 - r**2) * rng.normal(size=n)


def rho_case(rng, rho, strata, seeds, permutations, alpha):
    x, y = correlated(rng, strata * seeds, rho)
    labels = np.repeat(np.arange(strata).astype(str), seeds)
    return rank_association(x, y, np.full(x.size, "high"), labels, 1, permutations, alpha, rng, "x")


def delta_case(rng, delta, strata, seeds, permutations, alpha):
    """Two groups of seeds//2 per stratum, the high one lower by the shift giving Cliff's delta -abs(delta)."""
    shift = np.sqrt(2) * scipy.stats.norm.ppf((abs(delta) + 1) / 2)
    labels = np.tile(np.repeat(["high", "low"], seeds // 2), strata)
    values = rng.normal(size=labels.size) - shift * (labels == "high")  # lower std in the high group
    strata_labels = np.repeat(np.arange(strata).astype(str), 2 * (seeds // 2))
    return group_contrast(values, labels, strata_labels, 3, permutations, alpha, rng)


def recipe_case(rng, strata, seeds, permutations, alpha):
    """Recipe means of accuracy and property move together; within a recipe they are independent."""
    shift = np.repeat(rng.normal(size=strata) * 2, seeds)
    labels = np.repeat(np.arange(strata).astype(str), seeds)
    x, y = shift + rng.normal(size=shift.size), -shift + rng.normal(size=shift.size)
    group = np.full(x.size, "high")
    pooled = rank_association(x, y, group, np.full(x.size, "all"), -1, permutations, alpha, rng, "x")
    controlled = rank_association(x, y, group, labels, -1, permutations, alpha, rng, "x")
    return pooled, controlled


def verdicts(rows, alpha):
    table = pd.DataFrame([{**dict(value=np.nan, detectable=np.nan, heterogeneity_p=np.nan, reason="", detail="",
                                  verdict=""), **r,
                           "ci_low": r["ci"][0], "ci_high": r["ci"][1], "eq_low": r["eq"][0], "eq_high": r["eq"][1],
                           "replicate": i}
                          for i, r in enumerate(rows)])
    return decide(table, alpha, families=("replicate",))["verdict"]


def wilson(k, n, z=1.96):
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def report(name, verdict, goal):
    n = len(verdict)
    counts = verdict.value_counts()
    parts = []
    for v in ("supported", "contradicted", "no effect", "inconclusive"):
        k = int(counts.get(v, 0))
        low, high = wilson(k, n)
        parts.append(f"{v} {k / n:.3f} [{low:.3f}, {high:.3f}]")
    print(f"{name:34s} n={n}: " + "; ".join(parts) + f"   goal: {goal}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--strata", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    a, k, s, p, reps = args.alpha, args.strata, args.seeds, args.permutations, args.replicates
    start = time.time()
    print(f"{reps} replicates, {k} recipes x {s} seeds, {p} permutations, alpha {a}; bounds {EQUIVALENCE}")
    rho_bound, delta_bound = EQUIVALENCE["spearman_rho"], EQUIVALENCE["cliffs_delta"]
    null = verdicts([rho_case(rng, 0.0, k, s, p, a) for _ in range(reps)], a)
    report("rho: null", null, f"supported + contradicted <= {a}")
    bound = verdicts([rho_case(rng, rho_bound, k, s, p, a) for _ in range(reps)], a)
    report(f"rho: true rho = bound {rho_bound}", bound, f"no effect <= {a}")
    planted = verdicts([rho_case(rng, 2 * rho_bound, k, s, p, a) for _ in range(reps)], a)
    report(f"rho: planted rho = {2 * rho_bound}", planted, "power (supported)")
    null = verdicts([delta_case(rng, 0.0, k, s, p, a) for _ in range(reps)], a)
    report("cliffs delta: null", null, f"supported + contradicted <= {a}")
    bound = verdicts([delta_case(rng, -delta_bound, k, s, p, a) for _ in range(reps)], a)
    report(f"cliffs delta: true delta = -{delta_bound}", bound, f"no effect <= {a}")
    pooled, controlled = zip(*[recipe_case(rng, k, s, p, a) for _ in range(reps)])
    report("recipe confound: pooled", verdicts(pooled, a), "supported (the pooled view credits the recipe)")
    report("recipe confound: controlled", verdicts(controlled, a), f"supported + contradicted <= {a}")
    print(f"{time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
