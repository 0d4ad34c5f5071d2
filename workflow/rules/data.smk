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
    conda:
        "../../envs/weightzoo.yaml"
    params:
        name="{dataset}",
        settings=lambda wildcards: dataset_settings(config, wildcards.dataset),
    script:
        "../scripts/prepare_dataset.py"
