localrules:
    download_dataset,


rule download_dataset:
    output:
        raw=directory("resources/raw/{dataset}"),
    log:
        "logs/download_dataset/{dataset}.log",
    conda:
        "../../envs/weightzoo.yaml"
    params:
        name="{dataset}",
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        unpack(raw_data),
    output:
        dataset="resources/datasets/{dataset}.nc",
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("prepare_dataset", "dataset"),
        mem_mb=analysis_mem_mb("prepare_dataset", "dataset"),
    params:
        name="{dataset}",
        settings=lambda wildcards: dataset_settings(config, wildcards.dataset),
    script:
        "../scripts/prepare_dataset.py"
