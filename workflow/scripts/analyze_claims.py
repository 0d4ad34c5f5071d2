"""Snakemake script: the paper's claims as statistics for one zoo (CSV and HTML)."""

from weightzoo.analysis_jobs import check_claims
from weightzoo.logs import to_file

to_file(snakemake.log[0])
check_claims(snakemake.input.zoo, snakemake.input.groups, snakemake.params.experiment, snakemake.output.csv,
             snakemake.output.html, snakemake.params.claims, accuracy=snakemake.params.accuracy,
             seed=snakemake.params.seed)
