"""Snakemake script: train one chunk of trials of one experiment (vectorised in this process)."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.train import train_chunk
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
train_chunk(snakemake.input.dataset, snakemake.output.chunk, threads=snakemake.threads, **snakemake.params.job)
