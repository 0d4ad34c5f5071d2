"""Snakemake script: merge one experiment's training chunks into its zoo file."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.train import gather_experiment
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
gather_experiment(list(snakemake.input.chunks), snakemake.output.gathered)
