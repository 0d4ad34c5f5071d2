"""Snakemake script: all experiments' claims tables in one CSV and a verdict overview (HTML)."""

from weightzoo.analysis_jobs import collect_claims
from weightzoo.logs import to_file

to_file(snakemake.log[0])
collect_claims(list(snakemake.input.tables), snakemake.output.csv, snakemake.output.html)
