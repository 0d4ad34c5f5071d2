"""Config checks the JSON schema cannot express, and the expansion of the experiment grid.

The schema (workflow/schemas/config.schema.yaml) checks types and ranges and fills defaults; this
module checks what spans several keys and turns experiment blocks into one record per experiment.
Errors name the config key and the offending value, and happen before any job runs.
"""

import itertools
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

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
SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


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
    """Analysis settings that span keys: bins for every dataset, an early snapshot that is stored."""
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
    early = analysis.get("claims", {}).get("early_snapshot")
    training = config["training"]
    stored = {training["epochs"] if s == -1 else s for s in training["snapshots"]}
    if early is not None and early not in stored:
        raise ConfigError(f"analysis.claims.early_snapshot: epoch {early} is not stored "
                          f"(training.snapshots resolve to {sorted(stored)}); add it to training.snapshots")


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


# ------------------------------------------------------------------------------ schema step and messages

# What YAML 1.2 reads as a number but PyYAML's YAML 1.1 reads as a string: `1e-3`, `1.0e12`, `5E+3`.
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _branches(schema: dict, root: dict) -> list[dict]:
    """The concrete alternatives of a schema: $ref resolved, oneOf/anyOf/allOf flattened."""
    schema = _resolve(schema, root)
    alternatives = [s for key in ("oneOf", "anyOf", "allOf") for s in schema.get(key, ())]
    return [schema, *(b for s in alternatives for b in _branches(s, root))]


def _types(branches: list[dict]) -> set[str]:
    types = set()
    for branch in branches:
        kind = branch.get("type", ())
        types.update([kind] if isinstance(kind, str) else kind)
    return types


def coerce_numbers(value, schema: dict, root: dict | None = None):
    """``value`` with numeric strings turned into numbers wherever ``schema`` expects a number.

    Snakemake reads config YAML with YAML 1.1 rules, which take ``1e-3`` and ``1.0e12`` for strings. Driven
    by the schema's types: a string is converted only where the schema allows a number and no string, and
    an integral float only where it wants an integer (``epochs: 1.0e+2`` -> 100). Dicts are changed in place.
    """
    root = schema if root is None else root
    branches = _branches(schema, root)
    if isinstance(value, dict):
        for key in list(value):
            subs = [b["properties"][key] if key in b.get("properties", {}) else b.get("additionalProperties")
                    for b in branches]
            subs = [sub for sub in subs if isinstance(sub, dict)]
            if subs:
                value[key] = coerce_numbers(value[key], {"anyOf": subs}, root)
        return value
    if isinstance(value, list):
        subs = [b["items"] for b in branches if isinstance(b.get("items"), dict)]
        return [coerce_numbers(v, {"anyOf": subs}, root) for v in value] if subs else value
    types = _types(branches)
    if (isinstance(value, str) and NUMBER.fullmatch(value.strip()) and types & {"number", "integer"}
            and "string" not in types and not any(value in b.get("enum", ()) for b in branches)):
        value = float(value.strip())
    if isinstance(value, float) and value.is_integer() and "integer" in types and "number" not in types:
        value = int(value)
    return value


def key_path(path) -> str:
    """``['experiments', 0, 'arch']`` -> ``experiments[0].arch``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _split_key_path(text: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", text)]


def locate(path, config_files) -> str:
    """``file line N`` of the key ``path`` in the first of ``config_files`` (highest precedence first) that
    sets it; ``""`` when none does (the value came from --config or a schema default)."""
    import yaml

    for file in config_files:
        try:
            with open(file, encoding="utf-8") as f:
                node = yaml.compose(f)
        except (OSError, yaml.YAMLError):
            continue
        mark = None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = [(k, v) for k, v in node.value if k.value == str(part)]
                if not match:
                    node = None
                    break
                mark, node = match[0][0].start_mark, match[0][1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                mark = node.start_mark
            else:
                node = None
                break
        if node is not None and mark is not None:
            return f"{file} line {mark.line + 1}"
    return ""


def _where(path, config_files) -> str:
    found = locate(path, config_files)
    if found:
        return f" ({found})"
    return f" (not set in {', '.join(map(str, config_files))}: a default or --config)" if config_files else ""


def _number_text(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def expected(schema: dict, root: dict) -> str:
    """A schema in words: ``an integer >= 1 or a list of them``."""
    schema = _resolve(schema, root)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(expected(s, root) for s in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return f"a list of ({expected(items, root)})" if isinstance(items, dict) else "a list"
    if kind in ("integer", "number"):
        bounds = [f"{op} {_number_text(schema[key])}" for key, op in (
            ("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
            if key in schema]
        return ("an integer" if kind == "integer" else "a number") + (" " + " and ".join(bounds) if bounds else "")
    return {"object": "a mapping", "string": "a string", "boolean": "true or false"}.get(kind, str(kind))


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(error, root: dict, config_files=()) -> str:
    """One jsonschema ValidationError as one line: key path, value, what was expected, file and line."""
    path = list(error.absolute_path)
    here = key_path(path) or "top level"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        key = extra[0] if extra else "?"
        return (f"{key_path([*path, key])}: unknown key{_where([*path, key], config_files)}; "
                f"allowed here ({here}): {', '.join(allowed)}")
    if "propertyNames" in error.absolute_schema_path:  # a key of a mapping with a fixed set of names
        key = error.instance
        allowed = error.schema.get("enum", [])
        return (f"{key_path([*path, key])}: unknown name {key!r}{_where([*path, key], config_files)}; "
                f"allowed: {', '.join(map(str, allowed))}")
    if error.validator == "required":
        return f"{here}: {error.message}{_where(path, config_files)}"
    if error.validator in ("minItems", "maxItems"):
        bound = "at least" if error.validator == "minItems" else "at most"
        return (f"{here} = {_short(error.instance)}{_where(path, config_files)}: needs {bound} "
                f"{error.validator_value} item(s)")
    return (f"{here} = {_short(error.instance)}{_where(path, config_files)}: "
            f"expected {expected(error.schema, root)}")


def config_sources(cli_files=(), all_files=()) -> list[str]:
    """Config files by precedence: the --configfile ones (last given first), then the Snakefile's own."""
    ordered = [*reversed(list(cli_files)), *all_files]
    return list(dict.fromkeys(str(f) for f in ordered))


def validate_config(config: dict, schema_path=SCHEMA, config_files=()) -> dict:
    """Coerce numeric strings, validate against the schema (filling its defaults) and raise ConfigError with a
    one-line message naming the key, the value and the file, instead of Snakemake's dump of the whole schema."""
    import jsonschema
    import yaml
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    with open(schema_path, encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    coerce_numbers(config, schema)
    try:
        validate(config, schema=str(Path(schema_path).resolve()))
    except WorkflowError as err:
        cause = err.__cause__ or err.__context__  # Snakemake raises it while handling the ValidationError
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise ConfigError(describe_error(cause, schema, config_files)) from None
    return config


def with_location(message: str, config_files) -> str:
    """A cross-field ConfigError message (``experiments[1].arch.heads: ...``) with the file and line of its key
    appended (at the end, so the message still starts with the key)."""
    head, sep, rest = message.partition(":")
    if not sep or not re.fullmatch(r"[\w.\[\]]+", head):
        return message
    path = _split_key_path(head)
    for n in range(len(path), 0, -1):  # a missing key (bins of a dataset): point at its parent
        found = locate(path[:n], config_files)
        if found:
            under = "" if n == len(path) else f", under {key_path(path[:n])}"
            return f"{message} ({found}{under})"
    return message


def check_config(config: dict, config_files=(), schema_path=SCHEMA) -> list[Experiment]:
    """Everything the workflow checks before its first job; ConfigError messages name key, value and file."""
    validate_config(config, schema_path, config_files)
    try:
        return load_experiments(config)
    except ConfigError as err:
        raise ConfigError(with_location(str(err), config_files)) from None


def yaml_syntax_error(path) -> str:
    """``file line L column C: problem`` when ``path`` is not valid YAML, else ``""``.

    Snakemake says only "Config file is not valid JSON or YAML" (no file, no line) for a --configfile it
    cannot parse, before the workflow runs; ``python -m weightzoo.config FILE`` says where.
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            yaml.safe_load(f)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        text = f"{path} line {mark.line + 1} column {mark.column + 1}: YAML syntax error: {err.problem}"
        if err.context and err.context_mark:
            context = err.context_mark
            text += f" ({err.context} that starts at line {context.line + 1} column {context.column + 1})"
        return text
    except yaml.YAMLError as err:
        return f"{path}: YAML syntax error: {err}"
    return ""


def main(argv=None) -> int:
    """``python -m weightzoo.config FILE...``: check config files as the workflow would, before any job."""
    import yaml

    files = list(sys.argv[1:] if argv is None else argv)
    if not files:
        print("usage: python -m weightzoo.config CONFIG.yaml [MORE.yaml ...] (later files override earlier)")
        return 2
    config = {}
    for file in files:
        problem = yaml_syntax_error(file)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        with open(file, encoding="utf-8") as f:
            _merge(config, yaml.safe_load(f) or {})
    try:
        experiments = check_config(config, config_sources(files))
    except ConfigError as err:
        print(f"invalid config: {err}", file=sys.stderr)
        return 1
    print(f"{', '.join(files)}: valid, {len(experiments)} experiments")
    return 0


def _merge(base: dict, update: dict) -> None:
    """Snakemake's update_config: nested mappings merged, everything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


if __name__ == "__main__":
    sys.exit(main())
