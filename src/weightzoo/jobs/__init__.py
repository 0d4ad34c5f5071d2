"""The Snakemake-facing jobs: each opens its inputs, calls the package, writes its outputs. One module per
concern: ``train`` (train, gather, summarise), ``groups`` (accuracy groups, Table 2), ``features`` (per-experiment
results), ``figures`` (figures at every scope, projections), ``claims`` (claims, findings), ``weight_space``
(method (e): the weight-space network on the benchmark's folds)."""
