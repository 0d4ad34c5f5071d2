# The trial table is small and fast: no cluster job (and no queue wait) for it.
localrules:
    summarize_zoo,


# update(): Snakemake otherwise deletes an existing zoo before gathering it again, and a failed gather (a
# damaged chunk) then leaves none; with it the previous zoo is kept (backed up and restored on failure).
rule gather_zoo:
    input:
        chunks=chunk_files,
    output:
        zoo=update("results/zoo/{model}/{dataset}/{arch}.nc"),
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
