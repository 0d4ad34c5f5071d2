# The trial table is small and fast, and publishing a zoo is one hard link: no cluster job (and no queue wait).
localrules:
    summarize_zoo,
    publish_zoo,


# Snakemake deletes a job's existing outputs before it runs. The gather job therefore writes `{zoo}.gathered`, and
# publish_zoo makes the zoo a second name of that file (a hard link: no copy): the previous zoo is only replaced
# once a gather has succeeded, and a failed one (a damaged chunk) leaves it as it was (docs/reliability.md).
rule gather_zoo:
    input:
        chunks=chunk_files,
    output:
        gathered="results/zoo/{model}/{dataset}/{arch}.nc.gathered",
    log:
        "logs/gather_zoo/{model}/{dataset}/{arch}.log",
    benchmark:
        "benchmarks/gather_zoo/{model}/{dataset}/{arch}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("gather_zoo"),
        mem_mb=analysis_mem_mb("gather_zoo"),
    script:
        "../scripts/gather_zoo.py"


rule publish_zoo:
    input:
        gathered=rules.gather_zoo.output.gathered,
    output:
        zoo="results/zoo/{model}/{dataset}/{arch}.nc",
    log:
        "logs/publish_zoo/{model}/{dataset}/{arch}.log",
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/publish_zoo.py"


rule summarize_zoo:
    input:
        zoos=zoo_files(),
    output:
        summary="results/zoo/summary.csv",
    log:
        "logs/summarize_zoo/summary.log",
    benchmark:
        "benchmarks/summarize_zoo/summary.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/summarize_zoo.py"
