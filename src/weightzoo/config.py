"""Config checks the JSON schema cannot express, and the expansion of the experiment grid.

The schema (workflow/schemas/config.schema.yaml) checks types and ranges and fills defaults; this
module checks what spans several keys and turns experiment blocks into one record per experiment.
Errors name the config key and the offending value, and happen before any job runs.
"""

import itertools
import os
from dataclasses import dataclass, field

ARCH_KEYS = {
    "dnn": ("hidden",),
    "cnn": ("channels",),
    "vit": ("patch_size", "embed_dim", "depth", "heads", "mlp_ratio", "pool"),
}
VIT_DEFAULTS = {"patch_size": 4, "embed_dim": 32, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "pool": "cls"}
# Our reading of the paper's Table 1 ViT (config/README.md): one encoder block of width 784, the
# whole image as a single token, mean pooling, then FC 784 → 10. patch_size 0 = the image side.
VIT_PAPER = {"patch_size": 0, "embed_dim": 784, "depth": 1, "mlp_ratio": 4.0, "pool": "mean"}
LABEL_PREFIX = {"hidden": "h", "channels": "c", "heads": "heads", "embed_dim": "d", "depth": "depth",
                "patch_size": "p", "mlp_ratio": "mlp", "pool": "pool"}
IMAGE_SIDES = {"digits": 8, "mnist5k": 28, "mnist": 28, "fmnist": 28, "cifar10": 32}
NEEDS_FILES = ("mnist", "fmnist", "cifar10")
# Samples of the embedded datasets; the train split is n - ceil(test_fraction * n), as scikit-learn splits.
EMBEDDED_SAMPLES = {"digits": 1797, "mnist5k": 5000}


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the value."""


@dataclass(frozen=True)
class Experiment:
    model: str
    dataset: str
    arch: str  # label, e.g. "h5"; unique per (model, dataset)
    arch_params: dict = field(hash=False)
    trials: int = 32
    trials_per_job: int = 32
    block: int = 0  # index in config["experiments"], for error messages and provenance

    @property
    def id(self) -> str:
        return f"{self.model}/{self.dataset}/{self.arch}"

    @property
    def n_chunks(self) -> int:
        return -(-self.trials // self.trials_per_job)

    def chunk_trials(self, chunk: int) -> list[int]:
        start = chunk * self.trials_per_job
        return list(range(start, min(start + self.trials_per_job, self.trials)))


def _as_list(value):
    return value if isinstance(value, list) else [value]


def architectures(model: str, arch: dict, key: str) -> list[tuple[str, dict]]:
    """(label, params) for every point of the grid spanned by the list-valued keys of ``arch``."""
    arch = dict(arch)
    if model == "vit":
        if arch.pop("preset", None) == "paper":
            extra = sorted(set(arch) - {"heads"})
            if extra:
                raise ConfigError(f"{key}.arch: preset 'paper' fixes everything but heads; remove {extra}")
            arch = {**VIT_PAPER, "heads": arch.get("heads", [2, 4, 8, 16])}
        arch = {**VIT_DEFAULTS, **arch}
    elif "preset" in arch:
        raise ConfigError(f"{key}.arch.preset: only the vit model has presets")
    allowed = ARCH_KEYS[model]
    unknown = sorted(set(arch) - set(allowed))
    missing = [k for k in allowed if k not in arch]
    if unknown:
        raise ConfigError(f"{key}.arch: keys {unknown} do not apply to model {model!r} (allowed: {list(allowed)})")
    if missing:
        raise ConfigError(f"{key}.arch: model {model!r} needs {missing}")
    swept = [k for k in allowed if isinstance(arch[k], list)]
    result = []
    for values in itertools.product(*(_as_list(arch[k]) for k in allowed)):
        params = dict(zip(allowed, values))
        label = "-".join(f"{LABEL_PREFIX[k]}{params[k]:g}" if isinstance(params[k], float) else
                         f"{LABEL_PREFIX[k]}{params[k]}" for k in swept) or "base"
        result.append((label, params))
    return result


def _check_vit(params: dict, dataset: str, key: str):
    side = IMAGE_SIDES[dataset]
    patch = params["patch_size"] or side
    if side % patch:
        raise ConfigError(f"{key}.arch.patch_size: {patch} does not divide the {side}x{side} images of {dataset!r}")
    if params["embed_dim"] % params["heads"]:
        raise ConfigError(f"{key}.arch.heads: {params['heads']} does not divide embed_dim {params['embed_dim']}")


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
        for label, params in architectures(block["model"], block["arch"], key):
            for dataset in block["datasets"]:
                if block["model"] == "vit":
                    _check_vit(params, dataset, key)
                exp = Experiment(block["model"], dataset, label, params, block.get("trials", 32),
                                 block.get("trials_per_job", 32), i)
                if exp.id in seen:
                    raise ConfigError(f"{key}: experiment {exp.id} is already defined by experiments[{seen[exp.id]}]; "
                                      + _duplicate_advice(params, seen_params[exp.id]))
                seen[exp.id], seen_params[exp.id] = i, params
                experiments.append(exp)
    return experiments


def check_datasets(config: dict, used: set[str]):
    """Datasets read from disk need an existing data_dir (or download: true)."""
    for name in sorted(used):
        settings = config["datasets"][name]
        if name not in NEEDS_FILES:
            if "data_dir" in settings or settings.get("download"):
                raise ConfigError(f"datasets.{name}: {name!r} ships with its Python package; data_dir/download do not apply")
            continue
        if settings.get("download"):
            continue
        if "data_dir" not in settings:
            raise ConfigError(f"datasets.{name}.data_dir: required (the folder with the official files), "
                              "or set datasets.{name}.download: true")
        if not os.path.isdir(settings["data_dir"]):
            raise ConfigError(f"datasets.{name}.data_dir: {settings['data_dir']!r} is not a directory")


def check_training(config: dict):
    training = config["training"]
    bad = [s for s in training["snapshots"] if s > training["epochs"]]
    if bad:
        raise ConfigError(f"training.snapshots: {bad} exceed training.epochs = {training['epochs']}")


def train_samples(config: dict, name: str) -> int | None:
    """Samples in the train split of an embedded dataset (known before it is prepared); None for file datasets."""
    if name not in EMBEDDED_SAMPLES:
        return None
    from weightzoo.data import DEFAULT_TEST_FRACTION

    n = EMBEDDED_SAMPLES[name]
    fraction = config["datasets"][name].get("test_fraction", DEFAULT_TEST_FRACTION[name])
    return n - int(-(-fraction * n // 1))


def check_batch_size(config: dict, used: set[str]):
    """A batch larger than the train split would silently train full-batch: say so before any job."""
    batch_size = config["training"]["batch_size"]
    for name in sorted(used):
        n_train = train_samples(config, name)
        if n_train is not None and batch_size > n_train:
            raise ConfigError(f"training.batch_size: {batch_size} is larger than the {n_train} training samples of "
                              f"{name!r}; use at most {n_train} (= full-batch training)")


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
    check_batch_size(config, used)
    check_analysis(config, used)
    return experiments


def dataset_settings(config: dict, name: str) -> dict:
    """Settings passed to weightzoo.data.prepare_dataset (download resolved to the raw folder)."""
    settings = {k: v for k, v in config["datasets"][name].items() if k != "download"}
    if config["datasets"][name].get("download"):
        settings["data_dir"] = f"resources/raw/{name}"
    return settings


def resolved_model_arch(params: dict, image_side: int) -> dict:
    """Resolve ``patch_size: 0`` (the paper preset's whole image as one token)."""
    if params.get("patch_size") == 0:
        return {**params, "patch_size": image_side}
    return params


if __name__ == "__main__":  # python -m weightzoo.config FILE...: weightzoo.schema.main
    import sys

    from weightzoo.schema import main

    sys.exit(main())
