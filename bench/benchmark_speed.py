"""Time of the prediction benchmark (``weightzoo.analysis.benchmark``) per 1,000 trials, on synthetic features.

The benchmark reads only the per-trial features, so its cost is set by the number of trials, of features and of
cells, not by the zoo: this builds features in the full layout (``tests/zoo_factory.make_benchmark_features``:
the Small CNN Zoo's 4 layers, kernel and bias statistics, the registry's spectral metrics, node-strength
moments; every trial its own recipe) and times, in this process, what the workflow's two jobs compute:

* ``folds``: ``assign_folds`` (GroupKFold over recipes);
* ``table``: ``benchmark_table`` with the default settings (methods a-d, 5 folds, 100 boosting iterations,
  999 bootstrap resamples for R², 199 for tau), one (model, dataset) cell of ``--trials`` trials;
* ``table_pooled``: the same trials as two cells of half the size each (a second model with 3 layers), so the
  pooled rows (one more regressor per method over all cells) are timed too.

The analysis budget is 60 s per 1,000 trials for all default analyses together (docs/benchmarks.md).

    .venv/bin/python bench/benchmark_speed.py                 # 1,000 trials, best of 2
    .venv/bin/python bench/benchmark_speed.py --trials 200 --repeat 1
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from zoo_factory import make_benchmark_features  # noqa: E402

from weightzoo.analysis.benchmark import Cell, assign_folds, benchmark_table  # noqa: E402

SETTINGS = dict(max_iter=100, max_bins=63, n_bootstrap=999, alpha=0.05, seed=0)  # config analysis.benchmark defaults


def timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    one = make_benchmark_features("planted", n_recipes=args.trials, model="smallcnn", dataset="fmnist")
    half = args.trials // 2
    two = [make_benchmark_features("planted", n_recipes=half, model="smallcnn", dataset="fmnist", seed=1),
           make_benchmark_features("planted", n_recipes=args.trials - half, model="dnn", dataset="fmnist",
                                   layers=("fc1", "fc2", "fc3"), seed=2)]
    stages = {
        "folds": lambda: assign_folds(one, 5, 0),
        "table": lambda: benchmark_table([Cell("smallcnn", "fmnist", one, assign_folds(one, 5, 0))], **SETTINGS),
        "table_pooled": lambda: benchmark_table([Cell(f.attrs["model"], "fmnist", f, assign_folds(f, 5, 0))
                                                 for f in two], **SETTINGS),
    }
    print(f"{args.trials} trials, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for name, stage in stages.items():
        runs = [timed(stage) for _ in range(args.repeat)]
        result, wall, cpu = min(runs, key=lambda r: r[1])
        rows = f"{len(result)} rows" if hasattr(result, "columns") else ""
        print(f"{name:14s} best wall {wall:6.2f} s  cpu {cpu:6.2f} s  {rows}  (load {os.getloadavg()[0]:.2f})",
              flush=True)
        if name.startswith("table"):
            answered = result[result["reason"] == ""]
            print("   ", ", ".join(f"{r.model}/{r.method} tau {r.tau:.2f}" for r in answered.itertuples()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
