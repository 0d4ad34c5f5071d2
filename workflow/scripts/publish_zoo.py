"""Snakemake script: make the gathered zoo the experiment's zoo (a hard link, no copy)."""

from weightzoo.jobs.train import publish_zoo
from weightzoo.logs import to_file

to_file(snakemake.log[0])
publish_zoo(snakemake.input.gathered, snakemake.output.zoo)
