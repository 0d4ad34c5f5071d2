# These read only the small trial tables: no cluster job (and no queue wait) for them.
localrules:
    group_trials,
    tabulate_groups,
    collect_claims,


# A checkpoint: which architectures get figures of their own depends on the groups it finds.
checkpoint group_trials:
    input:
        summary=rules.summarize_zoo.output.summary,
        datasets=expand(rules.prepare_dataset.output.dataset, dataset=DATASETS),
    output:
        # one row per trial: too long for the report (tens of MB on the paper's grid); Table 2's caption names it
        summary="results/analysis/summary_groups.csv",
    log:
        "logs/group_trials/summary.log",
    conda:
        "../../envs/weightzoo.yaml"
    params:
        datasets=dict(
            zip(
                DATASETS,
                expand(rules.prepare_dataset.output.dataset, dataset=DATASETS),
            )
        ),
        groups={**ANALYSIS["groups"], "paper_datasets": ANALYSIS["paper_datasets"]},
    script:
        "../scripts/analyze_groups.py"


rule tabulate_groups:
    input:
        summary=rules.group_trials.output.summary,
    output:
        csv="results/analysis/table2.csv",
        html=report(
            "results/analysis/table2.html",
            caption="../report/table2.rst",
            category="2 Accuracy groups",
            subcategory="Table 2",
            labels={"table": "Table 2: ours vs. paper"},
        ),
    log:
        "logs/tabulate_groups/table2.log",
    conda:
        "../../envs/weightzoo.yaml"
    params:
        accuracy=ANALYSIS["groups"]["accuracy"],
        paper_datasets=ANALYSIS["paper_datasets"],
        method=ANALYSIS["groups"]["method"],
    script:
        "../scripts/analyze_table2.py"


rule extract_features:
    input:
        zoo=rules.gather_zoo.output.zoo,
        groups=rules.group_trials.output.summary,
        dataset=rules.prepare_dataset.output.dataset,
    output:
        features="results/analysis/features/{model}/{dataset}/{arch}.nc",
        strengths="results/analysis/node_strength/{model}/{dataset}/{arch}.nc",
        status="results/analysis/training_status/{model}/{dataset}/{arch}.nc",
    log:
        "logs/extract_features/{model}/{dataset}/{arch}.log",
    benchmark:
        "benchmarks/extract_features/{model}/{dataset}/{arch}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        experiment="{model}/{dataset}/{arch}",
        strength_kind=ANALYSIS["strength"]["kind"],
        early_snapshot=ANALYSIS["claims"]["early_snapshot"],
        max_values=ANALYSIS["claims"]["max_values"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/extract_features.py"


rule characterize_scope:
    input:
        features=scope_inputs("features"),
        strengths=scope_inputs("strengths"),
        zoos=scope_inputs("zoo"),
    output:
        convergence=report(
            "results/analysis/pooled/{model}/{dataset}/convergence.png",
            caption="../report/pooled_convergence.rst",
            category="3 Convergence",
            subcategory="{model} / {dataset}",
            labels=scope_labels("loss, accuracy"),
        ),
        weight_statistics=report(
            "results/analysis/pooled/{model}/{dataset}/weight_statistics.png",
            caption="../report/pooled_weight_statistics.rst",
            category="4 Weight statistics",
            subcategory="{model} / {dataset}",
            labels=scope_labels("mean vs std"),
        ),
        distributions=report(
            "results/analysis/pooled/{model}/{dataset}/distributions.png",
            caption="../report/pooled_distributions.rst",
            category="5 Distributions",
            subcategory="{model} / {dataset}",
            labels=scope_labels("weight density"),
        ),
        node_strength=report(
            "results/analysis/pooled/{model}/{dataset}/node_strength.png",
            caption="../report/pooled_node_strength.rst",
            category="6 Node strength",
            subcategory="{model} / {dataset}",
            labels=scope_labels("per layer"),
        ),
        strength_pairs=report(
            "results/analysis/pooled/{model}/{dataset}/strength_pairs.png",
            caption="../report/pooled_strength_pairs.rst",
            category="6 Node strength",
            subcategory="{model} / {dataset}",
            labels=scope_labels("layer vs layer"),
        ),
        projection=report(
            "results/analysis/pooled/{model}/{dataset}/projection.png",
            caption="../report/pooled_projection.rst",
            category="7 Projections",
            subcategory="{model} / {dataset}",
            labels=scope_labels("t-SNE, statistics"),
        ),
        scores="results/analysis/pooled/{model}/{dataset}/projection_scores.json",
    log:
        "logs/characterize_scope/{model}/{dataset}.log",
    benchmark:
        "benchmarks/characterize_scope/{model}/{dataset}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
        scores=projection_scores,
    script:
        "../scripts/analyze_scope.py"


rule characterize_zoo:
    input:
        zoo=rules.gather_zoo.output.zoo,
        groups=rules.group_trials.output.summary,
    output:
        convergence=report(
            "results/analysis/convergence/{model}/{dataset}/{arch}.png",
            caption="../report/convergence.rst",
            category="3 Convergence",
            subcategory="{model} / {dataset}",
            labels=figure_labels("loss, accuracy"),
        ),
        weight_statistics=report(
            "results/analysis/weight_statistics/{model}/{dataset}/{arch}.png",
            caption="../report/weight_statistics.rst",
            category="4 Weight statistics",
            subcategory="{model} / {dataset}",
            labels=figure_labels("mean vs std"),
        ),
        distributions=report(
            "results/analysis/distributions/{model}/{dataset}/{arch}.png",
            caption="../report/distributions.rst",
            category="5 Distributions",
            subcategory="{model} / {dataset}",
            labels=figure_labels("weight density"),
        ),
        node_strength=report(
            "results/analysis/node_strength/{model}/{dataset}/{arch}.png",
            caption="../report/node_strength.rst",
            category="6 Node strength",
            subcategory="{model} / {dataset}",
            labels=figure_labels("per layer"),
        ),
        strength_pairs=report(
            "results/analysis/node_strength/{model}/{dataset}/{arch}_pairs.png",
            caption="../report/strength_pairs.rst",
            category="6 Node strength",
            subcategory="{model} / {dataset}",
            labels=figure_labels("layer vs layer"),
        ),
    log:
        "logs/characterize_zoo/{model}/{dataset}/{arch}.log",
    benchmark:
        "benchmarks/characterize_zoo/{model}/{dataset}/{arch}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        experiment="{model}/{dataset}/{arch}",
        strength_kind=ANALYSIS["strength"]["kind"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/analyze_zoo.py"


rule project_trials:
    input:
        zoo=rules.gather_zoo.output.zoo,
        groups=rules.group_trials.output.summary,
    output:
        raw=report(
            "results/analysis/projection/{model}/{dataset}/{arch}_raw.png",
            caption="../report/projection_raw.rst",
            category="7 Projections",
            subcategory="{model} / {dataset}",
            labels=figure_labels("t-SNE, raw"),
        ),
        canonical=report(
            "results/analysis/projection/{model}/{dataset}/{arch}_canonical.png",
            caption="../report/projection_canonical.rst",
            category="7 Projections",
            subcategory="{model} / {dataset}",
            labels=figure_labels("t-SNE, canonical"),
        ),
        invariant=report(
            "results/analysis/projection/{model}/{dataset}/{arch}_invariant.png",
            caption="../report/projection_invariant.rst",
            category="7 Projections",
            subcategory="{model} / {dataset}",
            labels=figure_labels("t-SNE, invariant"),
        ),
        scores="results/analysis/projection/{model}/{dataset}/{arch}_scores.json",
    log:
        "logs/project_trials/{model}/{dataset}/{arch}.log",
    benchmark:
        "benchmarks/project_trials/{model}/{dataset}/{arch}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        experiment="{model}/{dataset}/{arch}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
        scores=projection_scores,
    script:
        "../scripts/analyze_projection.py"


rule evaluate_claims:
    input:
        features=scope_inputs("features"),
        statuses=scope_inputs("status"),
    output:
        csv="results/analysis/claims/{model}/{dataset}.csv",
        html=report(
            "results/analysis/claims/{model}/{dataset}.html",
            caption="../report/claims.rst",
            category="8 Claims",
            subcategory="{model} / {dataset}",
            labels=scope_labels("claims, every scope"),
        ),
    log:
        "logs/evaluate_claims/{model}/{dataset}.log",
    benchmark:
        "benchmarks/evaluate_claims/{model}/{dataset}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        title="{model} on {dataset}",
        claims=ANALYSIS["claims"],
        accuracy=ANALYSIS["groups"]["accuracy"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/analyze_claims.py"


rule collect_claims:
    input:
        tables=expand("results/analysis/claims/{scope[0]}/{scope[1]}.csv", scope=SCOPES),
        groups=rules.group_trials.output.summary,
        statuses=expand("results/analysis/training_status/{id}.nc", id=EXPERIMENT_BY_ID),
    output:
        status=report(
            "results/analysis/training_status.html",
            caption="../report/training_status.rst",
            category="9 Training status",
            subcategory="All experiments",
            labels={"table": "never trained, dead units"},
        ),
        # a CSV in the report is a download link, not a table: the verdict counts' caption names it
        csv="results/analysis/claims.csv",
        html=report(
            "results/analysis/claims.html",
            caption="../report/claims_all.rst",
            category="8 Claims",
            subcategory="All experiments",
            labels={"table": "verdict counts"},
        ),
        findings=report(
            "results/analysis/findings.html",
            caption="../report/findings.rst",
            category="1 Findings",
            subcategory="All experiments",
            labels={"table": "findings, pooled and controlled"},
        ),
    log:
        "logs/collect_claims/claims.log",
    conda:
        "../../envs/weightzoo.yaml"
    params:
        min_group=ANALYSIS["claims"]["min_group"],
    script:
        "../scripts/analyze_claims_all.py"
