from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/gather.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/benchmark.smk"


rule all:
    default_target: True
    input:
        all_targets,
        checkpoint_targets,
