# These read only the small trial tables: no cluster job (and no queue wait) for them.
localrules:
    group_trials,
    tabulate_groups,
    collect_claims,


rule group_trials:
    input:
        summary=rules.summarize_zoo.output.summary,
        datasets=expand(rules.prepare_dataset.output.dataset, dataset=DATASETS),
    output:
        summary=report(
            "results/analysis/summary_groups.csv",
            caption="../report/summary_groups.rst",
            category="Accuracy groups",
            subcategory="Trials",
            labels={"table": "trial summary with groups"},
        ),
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
        groups=ANALYSIS["groups"],
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
            category="Accuracy groups",
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
    script:
        "../scripts/analyze_table2.py"


rule characterize_zoo:
    input:
        zoo=rules.gather_zoo.output.zoo,
        groups=rules.group_trials.output.summary,
    output:
        convergence=report(
            "results/analysis/convergence/{model}/{dataset}/{arch}.png",
            caption="../report/convergence.rst",
            category="Convergence",
            subcategory="{model} / {dataset}",
            labels=figure_labels("loss and accuracy per epoch"),
        ),
        statistics="results/analysis/weight_statistics/{model}/{dataset}/{arch}.nc",
        weight_statistics=report(
            "results/analysis/weight_statistics/{model}/{dataset}/{arch}.png",
            caption="../report/weight_statistics.rst",
            category="Weight statistics",
            subcategory="{model} / {dataset}",
            labels=figure_labels("mean vs std, per layer and network"),
        ),
        distributions=report(
            "results/analysis/distributions/{model}/{dataset}/{arch}.png",
            caption="../report/distributions.rst",
            category="Distributions",
            subcategory="{model} / {dataset}",
            labels=figure_labels("weight density per layer"),
        ),
        node_strength=report(
            "results/analysis/node_strength/{model}/{dataset}/{arch}.png",
            caption="../report/node_strength.rst",
            category="Node strength",
            subcategory="{model} / {dataset}",
            labels=figure_labels("per layer"),
        ),
        strength_pairs=report(
            "results/analysis/node_strength/{model}/{dataset}/{arch}_pairs.png",
            caption="../report/strength_pairs.rst",
            category="Node strength",
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
            category="Projections",
            subcategory="{model} / {dataset}",
            labels=figure_labels("t-SNE, raw weights"),
        ),
        canonical=report(
            "results/analysis/projection/{model}/{dataset}/{arch}_canonical.png",
            caption="../report/projection_canonical.rst",
            category="Projections",
            subcategory="{model} / {dataset}",
            labels=figure_labels("t-SNE, canonical order"),
        ),
        invariant=report(
            "results/analysis/projection/{model}/{dataset}/{arch}_invariant.png",
            caption="../report/projection_invariant.rst",
            category="Projections",
            subcategory="{model} / {dataset}",
            labels=figure_labels("t-SNE, invariant features"),
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
        zoo=rules.gather_zoo.output.zoo,
        groups=rules.group_trials.output.summary,
    output:
        csv="results/analysis/claims/{model}/{dataset}/{arch}.csv",
        html=report(
            "results/analysis/claims/{model}/{dataset}/{arch}.html",
            caption="../report/claims.rst",
            category="Claims",
            subcategory="{model} / {dataset}",
            labels=figure_labels("claims table"),
        ),
    log:
        "logs/evaluate_claims/{model}/{dataset}/{arch}.log",
    benchmark:
        "benchmarks/evaluate_claims/{model}/{dataset}/{arch}.tsv"
    conda:
        "../../envs/weightzoo.yaml"
    params:
        experiment="{model}/{dataset}/{arch}",
        claims=ANALYSIS["claims"],
        accuracy=ANALYSIS["groups"]["accuracy"],
        seed=ANALYSIS["groups"]["seed"],
    script:
        "../scripts/analyze_claims.py"


rule collect_claims:
    input:
        tables=claims_tables(),
    output:
        csv=report(
            "results/analysis/claims.csv",
            caption="../report/claims_all.rst",
            category="Claims",
            subcategory="All experiments",
            labels={"table": "all claims (CSV)"},
        ),
        html=report(
            "results/analysis/claims.html",
            caption="../report/claims_all.rst",
            category="Claims",
            subcategory="All experiments",
            labels={"table": "verdict counts"},
        ),
    log:
        "logs/collect_claims/claims.log",
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/analyze_claims_all.py"
