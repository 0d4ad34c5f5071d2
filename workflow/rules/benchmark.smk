# The prediction benchmark (weightzoo.analysis.benchmark): final test accuracy predicted from the weights by
# several methods on the same folds grouped by recipe, beside the published numbers. benchmark_folds writes
# the folds every method uses (the weight-space network's rule reads them too); benchmark_predictions scores
# them all, per (model, dataset) and pooled.


# Folds read only the small features files: no cluster job (and no queue wait) for them.
localrules:
    benchmark_folds,


rule benchmark_folds:
    input:
        features=scope_inputs("features"),
    output:
        folds="results/analysis/benchmark/{model}/{dataset}/folds.csv",
    log:
        "logs/benchmark_folds/{model}/{dataset}.log",
    benchmark:
        "benchmarks/benchmark_folds/{model}/{dataset}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        cv_folds=BENCHMARK["cv_folds"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/benchmark_folds.py"


rule benchmark_predictions:
    input:
        features=[STORED["features"].format(id=e.id) for e in EXPERIMENTS],
        folds=expand(
            "results/analysis/benchmark/{scope[0]}/{scope[1]}/folds.csv", scope=SCOPES
        ),
        weight_space_net=weight_space_net_predictions,
    output:
        # a CSV in the report is a download link, not a table: the caption names it
        csv="results/analysis/benchmark/benchmark.csv",
        html=report(
            "results/analysis/benchmark/benchmark.html",
            caption="../report/benchmark.rst",
            category="8 Claims",
            subcategory="All experiments",
            labels={"table": "prediction benchmark"},
        ),
    log:
        "logs/benchmark_predictions/benchmark.log",
    benchmark:
        "benchmarks/benchmark_predictions/benchmark.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("benchmark_predictions", "grid"),
        mem_mb=analysis_mem_mb("benchmark_predictions", "grid"),
    params:
        benchmark=BENCHMARK,
        alpha=ANALYSIS["claims"]["alpha"],
        seed=ANALYSIS["groups"]["seed"],
        weight_space_net=weight_space_net_enabled(),
    script:
        "../scripts/benchmark_predictions.py"
