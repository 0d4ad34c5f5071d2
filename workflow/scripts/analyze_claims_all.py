"""Snakemake script: all claims in one CSV, verdict counts, the findings page and the training status (HTML)."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.claims import collect_findings
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
collect_findings(list(snakemake.input.tables), snakemake.input.groups, snakemake.output.csv, snakemake.output.html,
                 snakemake.output.findings, min_group=snakemake.params.min_group,
                 status_paths=list(snakemake.input.statuses), status_html_path=snakemake.output.status,
                 forest_paths=list(getattr(snakemake.input, "forests", [])))
