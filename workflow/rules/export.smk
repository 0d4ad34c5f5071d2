# Zoos for weight-space learning (docs/export.md) and method (e) of the accuracy-prediction benchmark.


wildcard_constraints:
    order="raw|canonical",


rule export_zoo:
    input:
        zoo=rules.publish_zoo.output.zoo,
    output:
        weights="results/export/{model}/{dataset}/{arch}/{order}/weights.npy",
        metrics="results/export/{model}/{dataset}/{arch}/{order}/metrics.csv",
        layout="results/export/{model}/{dataset}/{arch}/{order}/layout.csv",
        manifest="results/export/{model}/{dataset}/{arch}/{order}/export.json",
    log:
        "logs/export_zoo/{model}/{dataset}/{arch}/{order}.log",
    benchmark:
        "benchmarks/export_zoo/{model}/{dataset}/{arch}/{order}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("export_zoo"),
        mem_mb=analysis_mem_mb("export_zoo"),
    params:
        canonical=lambda wildcards: wildcards.order == "canonical",
    script:
        "../scripts/export_zoo.py"


# One network per shape group and fold; the folds come from the benchmark (rule of benchmark.smk). One thread:
# nfn's layers on these zoos are small, and a second thread tripled the CPU time (busy 2-core host).
rule train_weight_space_net:
    input:
        zoos=scope_inputs("zoo"),
        folds="results/analysis/benchmark/{model}/{dataset}/folds.csv",
    output:
        predictions="results/analysis/benchmark/{model}/{dataset}/weight_space_net.csv",
        summary="results/analysis/benchmark/{model}/{dataset}/weight_space_net.json",
    log:
        "logs/train_weight_space_net/{model}/{dataset}.log",
    benchmark:
        "benchmarks/train_weight_space_net/{model}/{dataset}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    threads: 1
    resources:
        runtime=analysis_runtime("train_weight_space_net", "scope"),
        mem_mb=analysis_mem_mb("train_weight_space_net", "scope"),
    params:
        settings=ANALYSIS["weight_space_net"],
    script:
        "../scripts/train_weight_space_net.py"
