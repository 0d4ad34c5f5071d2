"""Snakemake script: merge one experiment's training chunks into its zoo file."""

from weightzoo.jobs import gather_experiment
from weightzoo.logs import to_file

to_file(snakemake.log[0])
gather_experiment(list(snakemake.input.chunks), snakemake.output.zoo)
