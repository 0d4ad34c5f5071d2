"""Snakemake script: one row per trial of every experiment."""

from weightzoo.jobs import summarize
from weightzoo.logs import to_file

to_file(snakemake.log[0])
summarize(list(snakemake.input.zoos), snakemake.output.summary)
