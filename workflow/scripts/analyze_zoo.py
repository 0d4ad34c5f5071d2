"""Snakemake script: paper Figs 1–10 (convergence, weight statistics, distributions, node strength) of one zoo."""

from weightzoo.analysis_jobs import characterize
from weightzoo.atomic import name_damaged_inputs_on_crash
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
characterize(snakemake.input.zoo, snakemake.input.groups, snakemake.params.experiment, dict(snakemake.output.items()),
             strength_kind=snakemake.params.strength_kind, seed=snakemake.params.seed)
