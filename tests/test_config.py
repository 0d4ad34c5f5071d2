import copy
import re

import pytest
import numpy as np
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from weightzoo.config import ConfigError, architectures, dataset_settings, load_experiments

SCHEMA = "workflow/schemas/config.schema.yaml"


def config(**overrides):
    base = {
        "datasets": {"digits": {}, "mnist5k": {}},
        "experiments": [
            {"model": "dnn", "datasets": ["digits"], "arch": {"hidden": [2, 8]}, "trials": 5, "trials_per_job": 2},
            {"model": "vit", "datasets": ["digits", "mnist5k"], "arch": {"heads": [1, 2], "embed_dim": 8}},
        ],
    }
    base.update(overrides)
    return base


def checked(cfg):
    cfg = copy.deepcopy(cfg)
    validate(cfg, schema=SCHEMA)
    return cfg, load_experiments(cfg)


def test_schema_fills_defaults_and_grid_expands():
    cfg, exps = checked(config())
    assert cfg["training"]["epochs"] == 20 and cfg["training"]["batch_size"] == 100
    assert cfg["experiments"][1]["trials"] == 32
    assert [e.id for e in exps] == ["dnn/digits/h2", "dnn/digits/h8", "vit/digits/heads1", "vit/mnist5k/heads1",
                                    "vit/digits/heads2", "vit/mnist5k/heads2"]
    dnn = exps[0]
    assert dnn.n_chunks == 3 and dnn.chunk_trials(2) == [4]


@pytest.mark.parametrize("path", ["config/config.yaml", "config/paper.yaml", "tests/config/tiny.yaml"])
def test_shipped_configs_are_valid(path):
    _, experiments = checked(yaml.safe_load(open(path)))
    assert experiments


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c["experiments"][0].update(trials=0), "trials"),
    (lambda c: c["experiments"][0]["arch"].update(hidden=[0]), "hidden"),
    (lambda c: c["experiments"][0].update(model="rnn"), "rnn"),
    (lambda c: c.update(trainig={}), "trainig"),
    (lambda c: c["datasets"].update(svhn={}), "svhn"),
    (lambda c: c["experiments"][0].update(batchsize=3), "batchsize"),
])
def test_schema_errors_name_the_key(mutate, message):
    cfg = config()
    mutate(cfg)
    with pytest.raises(Exception, match=message):
        validate(cfg, schema=SCHEMA)


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c["experiments"][1]["arch"].update(heads=3), r"experiments\[1\].arch.heads: 3 does not divide embed_dim 8"),
    (lambda c: c["experiments"][1]["arch"].update(patch_size=3), r"patch_size: 3 does not divide the 8x8 images of 'digits'"),
    (lambda c: c["experiments"][0].update(datasets=["cifar10"]), r"experiments\[0\].datasets: 'cifar10' is not configured"),
    (lambda c: c["experiments"][0]["arch"].update(channels=3), r"keys \['channels'\] do not apply to model 'dnn'"),
    (lambda c: c["experiments"].append(copy.deepcopy(c["experiments"][0])), r"dnn/digits/h2 is already defined"),
    (lambda c: c.update(datasets={**c["datasets"], "fmnist": {}}, experiments=[
        {"model": "dnn", "datasets": ["fmnist"], "arch": {"hidden": 3}}]), r"datasets.fmnist.data_dir: required"),
    (lambda c: c.update(datasets={**c["datasets"], "fmnist": {"data_dir": "/nonexistent/fm"}}, experiments=[
        {"model": "dnn", "datasets": ["fmnist"], "arch": {"hidden": 3}}]), r"'/nonexistent/fm' is not a directory"),
    (lambda c: c.update(training={"epochs": 3, "snapshots": [0, 5]}), r"training.snapshots: \[5\] exceed"),
])
def test_cross_field_errors_name_key_and_value(mutate, message):
    cfg = config()
    mutate(cfg)
    validate(cfg, schema=SCHEMA)
    with pytest.raises(ConfigError, match=message):
        load_experiments(cfg)


def test_vit_paper_preset():
    (label, params), *_ = architectures("vit", {"preset": "paper", "heads": [2, 16]}, "experiments[0]")
    assert label == "paper-heads2" and params["embed_dim"] == 784 and params["depth"] == 1 and params["patch_size"] == 0
    with pytest.raises(ConfigError, match="preset 'paper' fixes everything but heads"):
        architectures("vit", {"preset": "paper", "depth": 2}, "experiments[0]")


def test_download_points_data_dir_at_raw_folder():
    cfg = {"datasets": {"mnist": {"download": True}}}
    assert dataset_settings(cfg, "mnist") == {"data_dir": "resources/raw/mnist"}


def _schema_keys(node):
    for name, sub in node.get("properties", {}).items():
        yield name
        yield from _schema_keys(sub)
    for key in ("additionalProperties", "items"):
        if isinstance(node.get(key), dict):
            yield from _schema_keys(node[key])


def test_config_readme_explains_every_schema_key():
    schema = yaml.safe_load(open(SCHEMA))
    readme = open("config/README.md").read()
    def explained(key):  # `key`, `parent.key`, `key.child` or `key: value` in backticks
        return re.search(rf"`([\w.]*\.)?{key}(\.[\w.]+)?(:[^`]*)?`", readme)

    missing = sorted({key for key in _schema_keys(schema) if not explained(key)})
    assert not missing, f"config/README.md does not explain {missing}"


def test_windows_need_a_paper_dataset_for_every_dataset():
    from weightzoo.config import ConfigError, check_grouping

    config = {"analysis": {"groups": {"method": "windows"}, "paper_datasets": {"mnist5k": "mnist"}}}
    check_grouping(config, {"mnist5k", "fmnist"})
    with pytest.raises(ConfigError, match="analysis.paper_datasets.digits"):
        check_grouping(config, {"digits", "mnist5k"})



def sweep_config(trials=7, **hyperparameters):
    return config(training={"lr": 0.01, "batch_size": 64}, experiments=[
        {"model": "dnn", "datasets": ["digits"], "arch": {"hidden": [2, 8]}, "trials": trials, "trials_per_job": 4,
         "hyperparameters": hyperparameters}])


def test_hyperparameter_sweep_cycles_through_the_product():
    _, exps = checked(sweep_config(init_std=[0.05, 0.3, 1.0], lr=[0.001, 0.01]))
    assert [e.id for e in exps] == ["dnn/digits/h2", "dnn/digits/h8"]  # per trial, not per experiment
    exp = exps[0]
    assert exp.n_combinations == 6
    lr_std = [(exp.trial_hyperparameters(t)["lr"], exp.trial_hyperparameters(t)["init_std"]) for t in range(7)]
    assert lr_std == [(0.001, 0.05), (0.001, 0.3), (0.001, 1.0), (0.01, 0.05), (0.01, 0.3), (0.01, 1.0), (0.001, 0.05)]
    assert exps[1].trial_hyperparameters(4) == exp.trial_hyperparameters(4)
    # the other keys: training's values, and every sample of the train split
    assert {k: exp.trial_hyperparameters(5)[k] for k in ("batch_size", "train_fraction")} == {"batch_size": 64,
                                                                                              "train_fraction": 1.0}


def test_block_hyperparameters_override_training():
    _, exps = checked(sweep_config(lr=0.1, batch_size=[10, 20], train_fraction=0.5))
    assert [exps[0].trial_hyperparameters(t) for t in range(2)] == [
        {"lr": 0.1, "init_std": 0.05, "batch_size": b, "train_fraction": 0.5, "weight_decay": 0.0} for b in (10, 20)]
    _, plain = checked(config())
    assert plain[0].n_combinations == 1
    assert plain[0].trial_hyperparameters(3) == {"lr": 0.001, "init_std": 0.05, "batch_size": 100, "train_fraction": 1.0,
                                                 "weight_decay": 0.0}


SMALL_CNN_DRAWS = {"lr": {"log_uniform": [5e-4, 5e-2]}, "init_std": {"log_uniform": [1e-3, 0.5]},
                   "weight_decay": {"log_uniform": [1e-8, 1e-2]}, "train_fraction": {"uniform": [0.1, 1.0]},
                   "activation": {"choice": ["relu", "tanh"]}}


def draws_config(trials=400, base_seed=0, **hyperparameters):
    return config(training={"base_seed": base_seed}, experiments=[
        {"model": "smallcnn", "datasets": ["digits"], "arch": {}, "trials": trials, "hyperparameters": hyperparameters}])


def test_distributions_are_drawn_per_trial_from_its_seed_within_their_ranges():
    _, (exp,) = checked(draws_config(**SMALL_CNN_DRAWS))
    draws = [exp.trial_hyperparameters(t) for t in range(400)]
    for key, (low, high) in [("lr", (5e-4, 5e-2)), ("init_std", (1e-3, 0.5)), ("weight_decay", (1e-8, 1e-2))]:
        values = np.log([d[key] for d in draws])
        assert low <= np.exp(values.min()) and np.exp(values.max()) <= high
        # log-uniform: the log is uniform, so about half the draws fall below the geometric midpoint
        assert abs(np.mean(values < (np.log(low) + np.log(high)) / 2) - 0.5) < 0.1, key
    fractions = np.array([d["train_fraction"] for d in draws])
    assert 0.1 <= fractions.min() and fractions.max() <= 1.0 and abs(fractions.mean() - 0.55) < 0.05
    assert {d["activation"] for d in draws} == {"relu", "tanh"}
    assert len({d["lr"] for d in draws}) == 400  # every trial its own recipe
    # a trial's draw is a function of its seed: the same again, and trial t of base seed s is trial t-1 of s+1
    assert exp.trial_hyperparameters(7) == draws[7]
    _, (shifted,) = checked(draws_config(base_seed=1, **SMALL_CNN_DRAWS))
    assert shifted.trial_hyperparameters(6) == draws[7]
    # adding a drawn key leaves the other keys' draws as they were
    _, (fewer,) = checked(draws_config(lr=SMALL_CNN_DRAWS["lr"]))
    assert [fewer.trial_hyperparameters(t)["lr"] for t in range(5)] == [d["lr"] for d in draws[:5]]


def test_draws_and_sweeps_mix():
    _, (exp,) = checked(draws_config(trials=4, lr={"uniform": [0.001, 0.002]}, batch_size=[10, 20]))
    assert [exp.trial_hyperparameters(t)["batch_size"] for t in range(4)] == [10, 20, 10, 20]
    assert all(0.001 <= exp.trial_hyperparameters(t)["lr"] <= 0.002 for t in range(4))


@pytest.mark.parametrize("hyperparameters,key", [
    ({"lr": {"log_uniform": [0.1, 0.01]}}, r"experiments\[0\].hyperparameters.lr.log_uniform: \[0.1, 0.01\]: the low bound 0.1 is not "
                                          r"below the high bound 0.01; write \[low, high\]"),
    ({"train_fraction": {"uniform": [0.5, 0.5]}}, r"hyperparameters.train_fraction.uniform"),
])
def test_a_distribution_range_must_increase(hyperparameters, key):
    cfg = draws_config(trials=4, **hyperparameters)
    validate(cfg, schema=SCHEMA)
    with pytest.raises(ConfigError, match=key):
        load_experiments(cfg)


@pytest.mark.parametrize("hyperparameters", [
    {"lr": {"log_uniform": [0, 0.1]}}, {"lr": {"normal": [0, 1]}}, {"lr": {"log_uniform": [0.1]}},
    {"train_fraction": {"uniform": [0.1, 1.5]}}, {"activation": {"choice": ["sigmoid"]}},
    {"activation": {"uniform": [0, 1]}}, {"weight_decay": -1.0},
])
def test_schema_rejects_bad_distributions(hyperparameters):
    with pytest.raises(WorkflowError):
        validate(draws_config(trials=4, **hyperparameters), schema=SCHEMA)


def test_activation_must_be_one_the_family_has():
    cfg = sweep_config(trials=4, activation={"choice": ["relu", "tanh"]})
    validate(cfg, schema=SCHEMA)
    with pytest.raises(ConfigError, match=r"experiments\[0\].hyperparameters.activation: model 'dnn' has no "
                                          r"activation \['tanh'\]"):
        load_experiments(cfg)


def test_too_few_trials_for_the_sweep_names_the_key():
    cfg = sweep_config(trials=5, init_std=[0.05, 0.3, 1.0], lr=[0.001, 0.01])
    validate(cfg, schema=SCHEMA)
    with pytest.raises(ConfigError, match=r"experiments\[0\].hyperparameters: lr 2 x init_std 3 = 6 combinations.*"
                                          r"experiments\[0\].trials is 5"):
        load_experiments(cfg)


@pytest.mark.parametrize("hyperparameters,message", [
    ({"train_fraction": 1.5}, "train_fraction"), ({"train_fraction": [0.5, 0]}, "train_fraction"),
    ({"lr": -1}, "lr"), ({"momentum": 0.9}, "momentum"), ({"batch_size": [0]}, "batch_size"),
])
def test_hyperparameter_schema_errors_name_the_key(hyperparameters, message):
    with pytest.raises(Exception, match=message):
        validate(sweep_config(**hyperparameters), schema=SCHEMA)
