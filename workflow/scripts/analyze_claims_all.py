"""Snakemake script: all claims in one CSV, verdict counts, and the findings page (HTML)."""

from weightzoo.logs import to_file
from weightzoo.scope_jobs import collect_findings

to_file(snakemake.log[0])
collect_findings(list(snakemake.input.tables), snakemake.input.groups, snakemake.output.csv, snakemake.output.html,
                 snakemake.output.findings, min_group=snakemake.params.min_group)
