"""Error rates of the claims' decisions on synthetic truths (issues 13 and 21): one line per case.

Each case draws ``--replicates`` independent zoos as feature vectors and calls the statistic functions the
workflow uses (``groupwise``, ``adjust``, ``confounding``, ``testing.decide``) directly, one test per zoo (its own
Holm family); each line gives the share of every outcome with a 95 % Wilson interval. Permutations: 199 where a
directional verdict is measured (a single test per family, p resolved to 0.01, enough to read a 5 % rate), 19
where only the equivalence interval matters (the verdict "no effect" never reads p). The confounder test runs
its own 499 bootstrap replicates.

- ``null``: accuracy independent of the weight property: directional verdicts (either sign) <= alpha;
- ``at_bound``: a true effect exactly at the equivalence bound on small unequal strata: ``no effect`` <= alpha;
- ``planted``: a true effect of twice the bound (power);
- ``recipe``: accuracy and the property both set by a grid recipe, none among seeds: pooled vs controlled;
- ``drawn confound``: every net draws its own lr; weight std and accuracy follow lr alone (issue 21's example):
  the adjusted scope must stay within alpha, and the confounder test must name lr;
- ``drawn planted``: the same zoo with a within-recipe effect: found at the adjusted scope;
- ``noise variable``: a random recipe variable beside a real pooled effect: named at most alpha;
- ``reversal``: within each of two recipes the effect has one sign, pooled the other: named as a reversal.

    nice -n 10 .venv/bin/python bench/claims_calibration.py --replicates 1000
"""

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd
import scipy.stats

from weightzoo.analysis.claims.confounding import confounder_test
from weightzoo.analysis.claims.groupwise import group_contrast, rank_association
from weightzoo.analysis.claims.testing import EQUIVALENCE, decide

SMALL_UNEQUAL = (6, 10, 30, 60)
"""Seeds per recipe of the small, unequal strata (issue 21)."""


def correlated(rng, n, spearman):
    """x, y with population Spearman rho ``spearman`` (bivariate normal, r = 2 sin(pi rho / 6))."""
    r = 2 * np.sin(np.pi * spearman / 6)
    x = rng.normal(size=n)
    return x, r * x + np.sqrt(1 - r**2) * rng.normal(size=n)


def rho_case(rng, rho, sizes, permutations, alpha):
    x, y = correlated(rng, int(np.sum(sizes)), rho)
    labels = np.repeat(np.arange(len(sizes)).astype(str), sizes)
    return rank_association(x, y, np.full(x.size, "high"), labels, 1, permutations, alpha, rng, "x")


def delta_case(rng, delta, sizes, permutations, alpha):
    """Per stratum half high, half low; the high group lower by the shift giving Cliff's delta -abs(delta)."""
    shift = np.sqrt(2) * scipy.stats.norm.ppf((abs(delta) + 1) / 2)
    labels = np.concatenate([np.repeat(["high", "low"], [s // 2, s - s // 2]) for s in sizes])
    values = rng.normal(size=labels.size) - shift * (labels == "high")
    strata = np.repeat(np.arange(len(sizes)).astype(str), sizes)
    return group_contrast(values, labels, strata, 3, permutations, alpha, rng)


def recipe_case(rng, strata, seeds, permutations, alpha):
    """Recipe means of accuracy and property move together; within a recipe they are independent."""
    shift = np.repeat(rng.normal(size=strata) * 2, seeds)
    labels = np.repeat(np.arange(strata).astype(str), seeds)
    x, y = shift + rng.normal(size=shift.size), -shift + rng.normal(size=shift.size)
    group = np.full(x.size, "high")
    pooled = rank_association(x, y, group, np.full(x.size, "all"), -1, permutations, alpha, rng, "x")
    controlled = rank_association(x, y, group, labels, -1, permutations, alpha, rng, "x")
    return pooled, controlled


def drawn_zoo(rng, n, planted):
    """Issue 21's design as vectors: lr log-uniform per net (u its position on the log scale), accuracy a concave
    function of u, weight std rising with u; ``planted`` > 0 adds a within-recipe claim-1 effect."""
    u = rng.uniform(size=n)
    noise = rng.normal(size=n)
    acc = 0.12 * (1 - (2 * u - 0.7) ** 2) + 0.02 * noise
    std = np.exp(1.5 * u + 0.05 * rng.normal(size=n) - planted * 0.3 * noise)
    return np.exp(np.log(1e-4) + u * np.log(500)), std, acc


def drawn_case(rng, n, planted, permutations, alpha):
    lr, std, acc = drawn_zoo(rng, n, planted)
    group = np.full(n, "high")
    pooled = rank_association(std, acc, group, np.full(n, "all"), -1, permutations, alpha, rng, "std")
    adjusted = rank_association(std, acc, group, np.full(n, "all"), -1, permutations, alpha, rng, "std",
                                drawn=lr[:, None], drawn_names=["lr"])
    return pooled, adjusted, _named(pooled, {"lr": lr}, std, acc, np.zeros(n, int), alpha, rng)


def _named(row, variables, x, y, cells, alpha, rng):
    if row.get("reason"):
        return dict(carried_by="", recipes_disagree="")
    return confounder_test(dict(row, ci_low=row["ci"][0], ci_high=row["ci"][1]), variables, x, y,
                           np.full(x.size, "high"), np.full(x.size, "a"), None, cells, alpha, rng)


def noise_case(rng, n, drawn, permutations, alpha, effect=0.6):
    """A pooled effect (``effect`` 0.6: rho about 0.5; 0: a null) and a recipe variable that has nothing to do
    with it."""
    x = rng.normal(size=n)
    y = effect * x + rng.normal(size=n)
    noise = rng.uniform(size=n) if drawn else rng.integers(0, 4, n).astype(float)
    row = rank_association(x, y, np.full(n, "high"), np.full(n, "all"), 1, permutations, alpha, rng, "x")
    return _named(row, {"noise": noise}, x, y, np.zeros(n, int) if drawn else noise.astype(int), alpha, rng)


def reversal_case(rng, seeds, permutations, alpha):
    """Simpson: within each init_std accuracy rises with x (rho about 0.4), across them the larger init has a
    larger x and a lower accuracy."""
    init = np.repeat([0.1, 1.0], seeds)
    x = rng.normal(size=init.size) + 3 * (init == 1.0)
    y = 0.5 * x + rng.normal(0, 1.0, init.size) - 4 * (init == 1.0)
    row = rank_association(x, y, np.full(x.size, "high"), np.full(x.size, "all"), 1, permutations, alpha, rng, "x")
    return _named(row, {"init_std": init}, x, y, init.astype(str), alpha, rng)


def verdicts(rows, alpha, bounds=None):
    table = pd.DataFrame([{**dict(value=np.nan, detectable=np.nan, heterogeneity_p=np.nan, reason="", detail="",
                                  verdict=""), **r,
                           "ci_low": r["ci"][0], "ci_high": r["ci"][1], "eq_low": r["eq"][0], "eq_high": r["eq"][1],
                           "replicate": i}
                          for i, r in enumerate(rows)])
    return decide(table, alpha, bounds, families=("replicate",))["verdict"]


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
    print(f"{name:44s} n={n}: " + "; ".join(parts) + f"   goal: {goal}", flush=True)


def report_share(name, hits, goal):
    k, n = int(np.sum(hits)), len(hits)
    low, high = wilson(k, n)
    print(f"{name:44s} n={n}: {k / n:.3f} [{low:.3f}, {high:.3f}]   goal: {goal}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    a, p, reps = args.alpha, args.permutations, args.replicates
    start, cpu = time.time(), time.process_time()
    print(f"{reps} replicates, {p} permutations, alpha {a}; default bounds {EQUIVALENCE}; load {os.getloadavg()}")
    rho_bound, delta_bound = EQUIVALENCE["spearman_rho"], EQUIVALENCE["cliffs_delta"]
    four = (30,) * 4
    report("rho: null, 4 x 30", verdicts([rho_case(rng, 0.0, four, p, a) for _ in range(reps)], a),
           f"supported + contradicted <= {a}")
    report(f"rho: planted {0.3}, 4 x 30", verdicts([rho_case(rng, 0.3, four, p, a) for _ in range(reps)], a),
           "power (supported)")
    medium = {"spearman_rho": 0.3, "cliffs_delta": 0.33}
    report("rho at bound 0.3, strata 6/10/30/60",
           verdicts([rho_case(rng, 0.3, SMALL_UNEQUAL, 19, a) for _ in range(reps)], a, medium),
           f"no effect <= {a}")
    report("rho at bound 0.3, 30 strata of 6",
           verdicts([rho_case(rng, 0.3, (6,) * 30, 19, a) for _ in range(reps)], a, medium), f"no effect <= {a}")
    many = SMALL_UNEQUAL * 10
    report(f"rho at bound {rho_bound}, 10 x strata 6/10/30/60",
           verdicts([rho_case(rng, rho_bound, many, 19, a) for _ in range(reps)], a), f"no effect <= {a}")
    report("rho: true 0, 10 x strata 6/10/30/60",
           verdicts([rho_case(rng, 0.0, many, 19, a) for _ in range(reps)], a), "power of no effect at the default")
    report(f"delta at bound -{delta_bound}, strata 6/10/30/60",
           verdicts([delta_case(rng, -delta_bound, SMALL_UNEQUAL, 19, a) for _ in range(reps)], a),
           f"no effect <= {a}")
    report(f"delta at bound -{delta_bound}, 10 x strata 6/10/30/60",
           verdicts([delta_case(rng, -delta_bound, many, 19, a) for _ in range(reps)], a), f"no effect <= {a}")
    report("delta at bound -0.33, strata 6/10/30/60",
           verdicts([delta_case(rng, -0.33, SMALL_UNEQUAL, 19, a) for _ in range(reps)], a, medium),
           f"no effect <= {a}")
    report("delta: null, strata 6/10/30/60",
           verdicts([delta_case(rng, 0.0, SMALL_UNEQUAL, p, a) for _ in range(reps)], a),
           f"supported + contradicted <= {a}")
    pooled, controlled = zip(*[recipe_case(rng, 4, 30, p, a) for _ in range(reps)])
    report("grid recipe confound: pooled", verdicts(pooled, a), "supported (the pooled view credits the recipe)")
    report("grid recipe confound: controlled", verdicts(controlled, a), f"supported + contradicted <= {a}")
    pooled, adjusted, named = zip(*[drawn_case(rng, 64, 0.0, p, a) for _ in range(reps)])
    report("drawn lr confound (64 nets): pooled", verdicts(pooled, a), "directional (credits lr)")
    report("drawn lr confound (64 nets): adjusted", verdicts(adjusted, a), f"supported + contradicted <= {a}")
    report_share("drawn lr confound: lr named (carried_by)", [n["carried_by"] == "lr" for n in named], "high")
    _, adjusted, _ = zip(*[drawn_case(rng, 64, 2.0, p, a) for _ in range(reps)])
    report("drawn lr, planted within-recipe effect: adjusted", verdicts(adjusted, a), "power (supported)")
    report_share("noise variable (drawn) named", ["noise" in noise_case(rng, 80, True, p, a)["carried_by"]
                                                  for _ in range(reps)], f"<= {a}")
    report_share("noise variable (4-level grid) named", ["noise" in noise_case(rng, 80, False, p, a)["carried_by"]
                                                         for _ in range(reps)], f"<= {a}")
    report_share("noise variable (drawn) named on a null", ["noise" in noise_case(rng, 80, True, p, a, 0.0)["carried_by"]
                                                            for _ in range(reps)], f"<= {a}")
    reversals = [reversal_case(rng, 30, p, a) for _ in range(reps)]
    report_share("reversal (2 x 30) named as reversal", [r["carried_by"] == "reversal by init_std" for r in reversals],
                 "high")
    report_share("reversal: recipes disagree (pooled inconclusive)", [bool(r["recipes_disagree"]) for r in reversals],
                 "high")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{time.time() - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, peak RSS "
          f"{usage.ru_maxrss / 1024:.0f} MiB; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
