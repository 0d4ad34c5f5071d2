"""Config checks the JSON schema cannot express, and the expansion of the experiment grid.

The schema (``config.schema.yaml`` beside this module, package data; the workflow links it as
workflow/schemas/config.schema.yaml) checks types and ranges and fills defaults; this
module checks what spans several keys and turns experiment blocks into one record per experiment.
Errors name the config key and the offending value, and happen before any job runs.
"""

import itertools
import math
import os
from dataclasses import dataclass, field

import numpy as np

from weightzoo.data.specs import DATASETS, spec


def _models():
    """The model registry, imported on first use: it imports torch, which the analysis jobs that read the
    config's facts (hyperparameter names, defaults) need not load (2-3 s and ~650 MB per job)."""
    from weightzoo import models

    return models

# Training keys an experiment block may set, sweep (a list) or draw (a distribution), in the order of the product
HYPERPARAMETERS = {  # key: (long name, units) of the per-trial coordinate the zoo stores
    "lr": ("Adam learning rate of the trial", "1"),
    "init_std": ("standard deviation of the trial's normal weight initialisation", "1"),
    "batch_size": ("samples per optimiser step of the trial", "1"),
    "train_fraction": ("fraction of the train split the trial trained on (its own fixed random subset)", "1"),
    "weight_decay": ("L2 penalty of the trial: weight_decay x parameter added to every gradient (Adam's)", "1"),
    "activation": ("nonlinearity after the trial's hidden layers", ""),
}
HYPERPARAMETER_KEYS = tuple(HYPERPARAMETERS)
# Not training keys: every trial sees all train samples and no penalty unless a block says otherwise; the
# activation's default is the model family's own (ModelFamily.nonlinearities[0]).
HYPERPARAMETER_DEFAULTS = {"train_fraction": 1.0, "weight_decay": 0.0}
DISTRIBUTIONS = ("log_uniform", "uniform", "choice")  # what a block may draw a key from, per trial
DRAW_STREAM = 2  # SeedSequence spawn key of the draws; 0 and 1 are a trial's init and batch order (train.py)


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the value."""


@dataclass(frozen=True)
class Experiment:
    model: str
    dataset: str
    arch: str  # label, e.g. "h5"; unique per (model, dataset)
    arch_params: dict = field(hash=False)
    trials: int = 32
    trials_per_job: int | str = 32  # "auto" until weightzoo.cluster.resolve_trials_per_job sizes it
    block: int = 0  # index in config["experiments"], for error messages and provenance
    # the HYPERPARAMETER_KEYS of this block: a value, a list swept over trials, or a distribution drawn per trial
    hyperparameters: dict = field(default_factory=dict, hash=False)
    epochs: int | None = None  # the block's own epochs (hyperparameters.epochs); None: training.epochs
    base_seed: int = 0  # training.base_seed: trial t's seed, which also fixes its draws, is base_seed + t

    @property
    def id(self) -> str:
        return f"{self.model}/{self.dataset}/{self.arch}"

    @property
    def n_chunks(self) -> int:
        return -(-self.trials // self.trials_per_job)

    def chunk_trials(self, chunk: int) -> list[int]:
        start = chunk * self.trials_per_job
        return list(range(start, min(start + self.trials_per_job, self.trials)))

    @property
    def n_combinations(self) -> int:
        return len(combinations(self.hyperparameters))

    def trial_hyperparameters(self, trial: int) -> dict:
        """Trial ``trial``'s values of the block's hyperparameters (see ``trial_hyperparameters``)."""
        return trial_hyperparameters(self.hyperparameters, trial, self.base_seed + trial)


def combinations(hyperparameters: dict) -> list[dict]:
    """Every combination of the list-valued (swept) keys, in product order (the last key varies fastest);
    values and distributions are the same in every combination."""
    values = [v if isinstance(v, list) else [v] for v in hyperparameters.values()]
    return [dict(zip(hyperparameters, combo)) for combo in itertools.product(*values)]


def trial_hyperparameters(hyperparameters: dict, trial: int, seed: int) -> dict:
    """Combination ``trial mod n_combinations`` of the swept keys (cycling keeps every chunk balanced over the
    combinations and keeps the settings of existing trials when trials are added), with every distribution
    drawn from the trial's ``seed`` (``draw``)."""
    options = combinations(hyperparameters)
    values = dict(options[trial % len(options)])
    return {k: draw(k, v, seed) if isinstance(v, dict) else v for k, v in values.items()}


def draw(key: str, distribution: dict, seed: int):
    """One trial's value of ``key`` from ``{"log_uniform": [low, high]}``, ``{"uniform": [low, high]}`` or
    ``{"choice": [...]}``: a stream of its own per key (spawned from the trial's seed), so adding a drawn key
    to a block leaves the other keys' draws, the initial weights and the batch order as they were."""
    (kind, args), = distribution.items()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DRAW_STREAM, HYPERPARAMETER_KEYS.index(key))))
    if kind == "log_uniform":
        return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    raise ValueError(f"hyperparameter {key}: unknown distribution {kind!r}; known: {list(DISTRIBUTIONS)}")


def _as_list(value):
    return value if isinstance(value, list) else [value]


def architectures(model: str, arch: dict, key: str) -> list[tuple[str, dict]]:
    """(label, params) for every point of the grid spanned by the list-valued keys of ``arch``."""
    try:
        fam = _models().family(model)
    except ValueError as err:
        raise ConfigError(f"{key}.model: {err}") from None
    arch = dict(arch)
    preset = arch.pop("preset", None)
    if preset is not None:
        if preset not in fam.presets:
            having = [f.name for f in _models().families() if f.presets]
            raise ConfigError(f"{key}.arch.preset: model {model!r} has no preset {preset!r} (models with presets: "
                              f"{having}{', its presets: ' + str(list(fam.presets)) if fam.presets else ''})")
        fixed, free = fam.presets[preset].fixed, fam.presets[preset].free
        extra = sorted(set(arch) - set(free))
        if extra:
            raise ConfigError(f"{key}.arch: preset {preset!r} fixes everything but {', '.join(free)}; remove {extra}")
        arch = {**fixed, **{k: arch.get(k, default) for k, default in free.items()}}
    arch = {**fam.defaults, **arch}
    allowed = fam.arch_keys
    unknown = sorted(set(arch) - set(allowed))
    missing = [k for k in allowed if k not in arch]
    if unknown:
        raise ConfigError(f"{key}.arch: keys {unknown} do not apply to model {model!r} (allowed: {list(allowed)})")
    if missing:
        raise ConfigError(f"{key}.arch: model {model!r} needs {missing}")
    swept = [k for k in allowed if isinstance(arch[k], list)]
    prefix = fam.label_prefix
    result = []
    for values in itertools.product(*(_as_list(arch[k]) for k in allowed)):
        params = dict(zip(allowed, values))
        label = "-".join(f"{prefix[k]}{params[k]:g}" if isinstance(params[k], float) else
                         f"{prefix[k]}{params[k]}" for k in swept) or "base"
        if preset:  # a preset must never share a label with a plain architecture of the same swept values
            label = f"{preset}-{label}" if label != "base" else preset
        result.append((label, params))
    return result


def check_architecture(model: str, params: dict, dataset: str, key: str):
    """The family's own check of one architecture on one dataset (e.g. a ViT patch must divide the image)."""
    check = _models().family(model).check
    if check is None:
        return
    try:
        check(params, spec(dataset).input_shape[-1], dataset)
    except _models().ArchError as err:
        raise ConfigError(f"{key}.arch.{err.key}: {err}") from None


def block_hyperparameters(block: dict, training: dict, key: str) -> dict:
    """The block's HYPERPARAMETER_KEYS: its own value, list or distribution, else training's value (the
    activation, not a training key: only where the block gives one)."""
    given = block.get("hyperparameters", {})
    values = {k: given.get(k, training.get(k, HYPERPARAMETER_DEFAULTS.get(k))) for k in HYPERPARAMETER_KEYS}
    values = {k: v for k, v in values.items() if v is not None}
    for name, value in values.items():
        if isinstance(value, dict):
            check_distribution(name, value, f"{key}.hyperparameters.{name}")
    check_activation(block["model"], values.get("activation"), f"{key}.hyperparameters.activation")
    sizes = {k: len(v) for k, v in values.items() if isinstance(v, list)}
    trials = block.get("trials", 32)
    if math.prod(sizes.values()) > trials:
        product = " x ".join(f"{k} {n}" for k, n in sizes.items())
        raise ConfigError(f"{key}.hyperparameters: {product} = {math.prod(sizes.values())} combinations need at "
                          f"least as many trials; {key}.trials is {trials}")
    return values


def check_distribution(name: str, distribution: dict, key: str):
    """A drawn key's range must be increasing (the schema checks the kind, the numbers and their count)."""
    (kind, args), = distribution.items()
    if kind in ("log_uniform", "uniform") and not args[0] < args[1]:
        raise ConfigError(f"{key}.{kind}: {list(args)}: the low bound {args[0]} is not below the high bound "
                          f"{args[1]}; write [low, high] with low < high")


def check_activation(model: str, value, key: str):
    """Every activation a block gives (a value, a list or a choice) must be one its model family has."""
    if value is None:
        return
    given = value.get("choice", []) if isinstance(value, dict) else _as_list(value)
    try:
        allowed = _models().family(model).nonlinearities
    except ValueError:
        return  # an unknown model: architectures() says so, with the known ones
    bad = [v for v in given if v not in allowed]
    if bad:
        raise ConfigError(f"{key}: model {model!r} has no activation {bad}; it has {list(allowed)}"
                          + ("" if len(allowed) > 1 else " only (its activation is fixed: remove the key)"))


def _duplicate_advice(params: dict, other: dict) -> str:
    differing = [k for k in params if params[k] != other.get(k)]
    if not differing:
        return "the same architecture is listed twice; remove it from one of the blocks"
    return (f"the blocks differ in {differing}, which the label does not show because it is not swept in both; "
            f"sweep {differing[0]} as a list in one block, or change the arch values so the labels differ")


def expand(config: dict) -> list[Experiment]:
    """Check cross-field rules and return every (model, dataset, architecture) experiment."""
    experiments, seen, seen_params = [], {}, {}
    for i, block in enumerate(config["experiments"]):
        key = f"experiments[{i}]"
        for dataset in block["datasets"]:
            if dataset not in config["datasets"]:
                raise ConfigError(f"{key}.datasets: {dataset!r} is not configured under 'datasets' "
                                  f"(configured: {sorted(config['datasets'])})")
        hyperparameters = block_hyperparameters(block, config.get("training", {}), key)
        epochs = block.get("hyperparameters", {}).get("epochs")
        if epochs is not None:
            check_training({"training": {**config["training"], "epochs": epochs}}, f"{key}.hyperparameters.epochs")
        for label, params in architectures(block["model"], block["arch"], key):
            for dataset in block["datasets"]:
                check_architecture(block["model"], params, dataset, key)
                exp = Experiment(block["model"], dataset, label, params, block.get("trials", 32),
                                 block.get("trials_per_job", 32), i, hyperparameters, epochs,
                                 config.get("training", {}).get("base_seed", 0))
                if exp.id in seen:
                    raise ConfigError(f"{key}: experiment {exp.id} is already defined by experiments[{seen[exp.id]}]; "
                                      + _duplicate_advice(params, seen_params[exp.id]))
                seen[exp.id], seen_params[exp.id] = i, params
                experiments.append(exp)
    return experiments


def check_datasets(config: dict, used: set[str]):
    """Every dataset used is registered; datasets read from disk need an existing data_dir (or download: true)."""
    for name in sorted(used):
        if name not in DATASETS:
            raise ConfigError(f"datasets.{name}: unknown dataset; known datasets are {list(DATASETS)}")
        settings = config["datasets"][name]
        if spec(name).embedded:
            if "data_dir" in settings or settings.get("download"):
                raise ConfigError(f"datasets.{name}: {name!r} ships with its Python package; data_dir/download do not apply")
            continue
        if settings.get("download"):
            continue
        if "data_dir" not in settings:
            raise ConfigError(f"datasets.{name}.data_dir: required (the folder with the official files), "
                              f"or set datasets.{name}.download: true")
        if not os.path.isdir(settings["data_dir"]):
            raise ConfigError(f"datasets.{name}.data_dir: {settings['data_dir']!r} is not a directory")


def check_training(config: dict, epochs_key: str = "training.epochs"):
    training = config["training"]
    bad = [s for s in training["snapshots"] if s > training["epochs"]]
    if bad:
        raise ConfigError(f"training.snapshots: {bad} exceed {epochs_key} = {training['epochs']}")


PAPER_DATASETS = ("mnist", "fmnist", "cifar10")


def check_grouping(config: dict, used: set[str]):
    """``groups.method: windows`` needs the paper's dataset of every dataset used."""
    analysis = config.get("analysis", {})
    if analysis.get("groups", {}).get("method") != "windows":
        return
    aliases = analysis.get("paper_datasets", {})
    for name in sorted(used):
        paper = aliases.get(name, name)
        if paper not in PAPER_DATASETS:
            raise ConfigError(f"analysis.groups.method: 'windows' takes the paper's accuracy windows, but dataset "
                              f"{name!r} has none; map it with analysis.paper_datasets.{name}: one of "
                              f"{list(PAPER_DATASETS)}, or use another method (delta, bins, kmeans)")


def train_samples(config: dict, name: str) -> int | None:
    """Samples in the train split of an embedded dataset (known before it is prepared); None for file datasets,
    whose files may differ from the official ones (``weightzoo.data.check_batch_size`` checks them)."""
    dataset = spec(name)
    if not dataset.embedded:
        return None
    return dataset.split_sizes(config["datasets"][name].get("test_fraction"))[0]


def batch_size_key(block: dict, index: int | None = None) -> str:
    """The config key the batch size of experiment block ``index`` comes from: its own hyperparameters (a value
    or a sweep), else training.batch_size."""
    if "batch_size" in block.get("hyperparameters", {}):
        return f"experiments[{'' if index is None else index}].hyperparameters.batch_size"
    return "training.batch_size"


def check_batch_size(config: dict, experiments: list[Experiment]):
    """A batch larger than the train split would silently train full-batch: say so before any job."""
    for exp in experiments:
        given = exp.hyperparameters.get("batch_size", config["training"].get("batch_size"))
        if given is None:
            continue
        batch_size = max(_as_list(given))
        key = batch_size_key(config["experiments"][exp.block], exp.block)
        n_train = train_samples(config, exp.dataset)
        if n_train is not None and batch_size > n_train:
            raise ConfigError(f"{key}: {batch_size} is larger than the {n_train} training samples of "
                              f"{exp.dataset!r}; use at most {n_train} (= full-batch training)")


def subset_size(train_fraction: float, n_samples: int) -> int:
    """Samples a trial with ``train_fraction`` trains on: round(fraction x train split); 0 cannot train."""
    return round(train_fraction * n_samples)


def smallest_fraction(n_samples: int) -> str:
    """The smallest train fraction that keeps one of ``n_samples`` (3 digits, rounded so that it still does)."""
    return f"{1 / n_samples:.3g}"


def check_train_fraction(experiments: list[Experiment], config: dict):
    """A train fraction that leaves a trial no sample of an embedded dataset: say so before any job (file datasets:
    the training job says it, ``weightzoo.train.subset_size``)."""
    for exp in experiments:
        given = exp.hyperparameters.get("train_fraction")
        n_train = train_samples(config, exp.dataset)
        if given is None or n_train is None:
            continue
        key = f"experiments[{exp.block}].hyperparameters.train_fraction"
        if isinstance(given, dict):
            low = given["uniform"][0]
            if subset_size(low, n_train) < 1:
                raise ConfigError(f"{key}: the low bound {low} of {{uniform: {list(given['uniform'])}}} x the "
                                  f"{n_train} training samples of {exp.dataset!r} rounds to 0 samples: a trial drawn "
                                  f"near it would train on nothing; raise the low bound to at least "
                                  f"{smallest_fraction(n_train)} (1 sample)")
            continue
        empty = [f for f in _as_list(given) if subset_size(f, n_train) < 1]
        if empty:
            raise ConfigError(f"{key}: {empty[0]} x the {n_train} training samples of {exp.dataset!r} rounds to 0 "
                              f"samples: a trial would train on nothing; use at least {smallest_fraction(n_train)} "
                              "(1 sample)")


def check_analysis(config: dict, used: set[str]):
    """Analysis settings that span keys: bins for every trained dataset, in increasing order. (An early_snapshot
    that is not stored is not an error: claim 5 then says so in its row, and snapshots may be cut to save disk.)"""
    analysis = config.get("analysis", {})
    groups = analysis.get("groups", {})
    if groups.get("method") == "bins":
        bins = groups.get("bins") or {}
        missing = sorted(used - set(bins))
        if missing:
            raise ConfigError(f"analysis.groups.bins: method 'bins' needs cut points [low/mid, mid/high] for every "
                              f"trained dataset; missing {missing} (e.g. bins: {{{missing[0]}: [0.5, 0.9]}})")
        for name, edges in sorted(bins.items()):
            if edges[0] > edges[1]:
                raise ConfigError(f"analysis.groups.bins.{name}: {list(edges)} must be increasing (low/mid <= mid/high)")


def load_experiments(config: dict) -> list[Experiment]:
    """All checks, then the experiment list (call after schema validation filled the defaults)."""
    check_training(config)
    experiments = expand(config)
    used = {e.dataset for e in experiments}
    check_datasets(config, used)
    check_batch_size(config, experiments)
    check_train_fraction(experiments, config)
    check_analysis(config, used)
    check_grouping(config, used)
    return experiments


def dataset_settings(config: dict, name: str) -> dict:
    """Settings passed to weightzoo.data.prepare_dataset (download resolved to the raw folder)."""
    settings = {k: v for k, v in config["datasets"][name].items() if k != "download"}
    if config["datasets"][name].get("download"):
        settings["data_dir"] = f"resources/raw/{name}"
    return settings


def resolved_model_arch(params: dict, image_side: int) -> dict:
    """Resolve ``patch_size: 0`` (the paper preset's whole image as one token); ``model_kwargs`` does it too."""
    from weightzoo.models.vit import resolved_arch

    return resolved_arch(params, image_side)
