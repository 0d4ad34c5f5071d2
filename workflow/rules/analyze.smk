# These read only the small trial tables: no cluster job (and no queue wait) for them.
localrules:
    group_trials,
    tabulate_groups,
    plot_verdicts,
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
    benchmark:
        "benchmarks/group_trials/summary.tsv"
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
    benchmark:
        "benchmarks/tabulate_groups/table2.tsv"
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
        zoo=rules.publish_zoo.output.zoo,
        groups=rules.group_trials.output.summary,
        dataset=rules.prepare_dataset.output.dataset,
    output:
        features="results/analysis/features/{model}/{dataset}/{arch}.nc",
        strengths="results/analysis/node_strength/{model}/{dataset}/{arch}.nc",
        densities="results/analysis/densities/{model}/{dataset}/{arch}.nc",
        status="results/analysis/training_status/{model}/{dataset}/{arch}.nc",
    log:
        "logs/extract_features/{model}/{dataset}/{arch}.log",
    benchmark:
        "benchmarks/extract_features/{model}/{dataset}/{arch}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("extract_features", dataset=True),
        mem_mb=analysis_mem_mb("extract_features", dataset=True),
    params:
        experiment="{model}/{dataset}/{arch}",
        strength_kind=ANALYSIS["strength"]["kind"],
        early_snapshot=ANALYSIS["claims"]["early_snapshot"],
        max_values=ANALYSIS["claims"]["max_values"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/extract_features.py"


# One rule per figure family; {scope} is `pooled` (every architecture of the (model, dataset)) or an
# architecture, whose figure is the pooled view's selection of its trials (weightzoo.analysis.scope). All are
# drawn from the stored per-experiment results of extract_features, never from the zoos.
rule plot_convergence:
    input:
        unpack(scope_files("features")),
    output:
        figure=report(
            "results/analysis/convergence/{model}/{dataset}/{scope}.png",
            caption="../report/convergence.rst",
            category="3 Convergence",
            subcategory="{model} / {dataset}",
            labels=figure_labels("loss, accuracy"),
        ),
    log:
        "logs/plot_convergence/{model}/{dataset}/{scope}.log",
    benchmark:
        "benchmarks/plot_convergence/{model}/{dataset}/{scope}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("plot", "scope"),
        mem_mb=analysis_mem_mb("plot", "scope"),
    params:
        figure="convergence",
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/plot_figure.py"


rule plot_metrics:
    input:
        unpack(scope_files("features")),
    output:
        figure=report(
            "results/analysis/metrics/{model}/{dataset}/{scope}.png",
            caption="../report/metrics.rst",
            category="4 Weight statistics",
            subcategory="{model} / {dataset}",
            labels=figure_labels("metrics tested as claims"),
        ),
    log:
        "logs/plot_metrics/{model}/{dataset}/{scope}.log",
    benchmark:
        "benchmarks/plot_metrics/{model}/{dataset}/{scope}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("plot", "scope"),
        mem_mb=analysis_mem_mb("plot", "scope"),
    params:
        figure="metrics",
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/plot_figure.py"


rule plot_weight_statistics:
    input:
        unpack(scope_files("features")),
    output:
        figure=report(
            "results/analysis/weight_statistics/{model}/{dataset}/{scope}.png",
            caption="../report/weight_statistics.rst",
            category="4 Weight statistics",
            subcategory="{model} / {dataset}",
            labels=figure_labels("mean vs std"),
        ),
    log:
        "logs/plot_weight_statistics/{model}/{dataset}/{scope}.log",
    benchmark:
        "benchmarks/plot_weight_statistics/{model}/{dataset}/{scope}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("plot", "scope"),
        mem_mb=analysis_mem_mb("plot", "scope"),
    params:
        figure="weight_statistics",
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/plot_figure.py"


rule plot_distributions:
    input:
        unpack(scope_files("densities")),
    output:
        figure=report(
            "results/analysis/distributions/{model}/{dataset}/{scope}.png",
            caption="../report/distributions.rst",
            category="5 Distributions",
            subcategory="{model} / {dataset}",
            labels=figure_labels("weight density"),
        ),
    log:
        "logs/plot_distributions/{model}/{dataset}/{scope}.log",
    benchmark:
        "benchmarks/plot_distributions/{model}/{dataset}/{scope}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("plot", "scope"),
        mem_mb=analysis_mem_mb("plot", "scope"),
    params:
        figure="distributions",
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/plot_figure.py"


rule plot_node_strength:
    input:
        unpack(scope_files("features", "strengths")),
    output:
        figure=report(
            "results/analysis/node_strength/{model}/{dataset}/{scope}.png",
            caption="../report/node_strength.rst",
            category="6 Node strength",
            subcategory="{model} / {dataset}",
            labels=figure_labels("per layer"),
        ),
    log:
        "logs/plot_node_strength/{model}/{dataset}/{scope}.log",
    benchmark:
        "benchmarks/plot_node_strength/{model}/{dataset}/{scope}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("plot", "scope"),
        mem_mb=analysis_mem_mb("plot", "scope"),
    params:
        figure="node_strength",
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
        strength_kind=ANALYSIS["strength"]["kind"],
    script:
        "../scripts/plot_figure.py"


rule plot_strength_pairs:
    input:
        unpack(scope_files("features")),
    output:
        figure=report(
            "results/analysis/strength_pairs/{model}/{dataset}/{scope}.png",
            caption="../report/strength_pairs.rst",
            category="6 Node strength",
            subcategory="{model} / {dataset}",
            labels=figure_labels("layer vs layer"),
        ),
    log:
        "logs/plot_strength_pairs/{model}/{dataset}/{scope}.log",
    benchmark:
        "benchmarks/plot_strength_pairs/{model}/{dataset}/{scope}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("plot", "scope"),
        mem_mb=analysis_mem_mb("plot", "scope"),
    params:
        figure="strength_pairs",
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/plot_figure.py"


rule plot_statistics_tsne:
    input:
        unpack(scope_files("features")),
    output:
        figure=report(
            "results/analysis/statistics_tsne/{model}/{dataset}/{scope}.png",
            caption="../report/statistics_tsne.rst",
            category="7 Projections",
            subcategory="{model} / {dataset}",
            labels=figure_labels("t-SNE, statistics"),
        ),
        scores="results/analysis/statistics_tsne/{model}/{dataset}/{scope}.json",
    log:
        "logs/plot_statistics_tsne/{model}/{dataset}/{scope}.log",
    benchmark:
        "benchmarks/plot_statistics_tsne/{model}/{dataset}/{scope}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("plot_statistics_tsne", "scope"),
        mem_mb=analysis_mem_mb("plot_statistics_tsne", "scope"),
    params:
        figure="statistics_tsne",
        title="{model} on {dataset}",
        tsne=ANALYSIS["tsne"],
        seed=ANALYSIS["groups"]["seed"],
        scores=projection_scores,
    script:
        "../scripts/plot_figure.py"


rule project_trials:
    input:
        zoo=rules.publish_zoo.output.zoo,
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
    resources:
        runtime=analysis_runtime("project_trials"),
        mem_mb=analysis_mem_mb("project_trials"),
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
            labels=figure_labels("claims, every scope"),
        ),
    log:
        "logs/evaluate_claims/{model}/{dataset}.log",
    benchmark:
        "benchmarks/evaluate_claims/{model}/{dataset}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    resources:
        runtime=analysis_runtime("evaluate_claims", "scope"),
        mem_mb=analysis_mem_mb("evaluate_claims", "scope"),
    params:
        title="{model} on {dataset}",
        claims=ANALYSIS["claims"],
        accuracy=ANALYSIS["groups"]["accuracy"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/analyze_claims.py"


rule plot_verdicts:
    input:
        claims=rules.evaluate_claims.output.csv,
    output:
        figure=report(
            "results/analysis/verdicts/{model}/{dataset}.png",
            caption="../report/verdicts.rst",
            category="1 Findings",
            subcategory="All experiments",
            labels=verdict_labels,
        ),
    log:
        "logs/plot_verdicts/{model}/{dataset}.log",
    conda:
        "../../envs/weightzoo.yaml"
    params:
        title="{model} on {dataset}: every claim and layer, at a fixed recipe and pooled",
    script:
        "../scripts/plot_verdicts.py"


rule collect_claims:
    input:
        tables=expand("results/analysis/claims/{scope[0]}/{scope[1]}.csv", scope=SCOPES),
        forests=expand(
            "results/analysis/verdicts/{scope[0]}/{scope[1]}.png", scope=SCOPES
        ),
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
    benchmark:
        "benchmarks/collect_claims/claims.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        min_group=ANALYSIS["claims"]["min_group"],
    script:
        "../scripts/analyze_claims_all.py"
