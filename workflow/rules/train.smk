rule train_trials:
    input:
        dataset=rules.prepare_dataset.output.dataset,
    output:
        chunk="results/train/{model}/{dataset}/{arch}/chunk{chunk}.nc",
    log:
        "logs/train_trials/{model}/{dataset}/{arch}/chunk{chunk}.log",
    benchmark:
        "benchmarks/train_trials/{model}/{dataset}/{arch}/chunk{chunk}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    threads: 1
    resources:
        gpu=gpus_requested(),
        runtime=train_runtime,
        mem_mb=train_mem_mb,
    params:
        job=train_params,
    script:
        "../scripts/train_trials.py"
