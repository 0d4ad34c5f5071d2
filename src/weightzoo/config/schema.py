"""The schema step of the config: numbers written `1e-3`, validation with the schema's defaults, and errors in
one line with the key, the value and the config file and line (docs/reliability.md).

``check_config`` is what ``workflow/rules/common.smk`` calls first; ``python -m weightzoo.config FILE...`` runs it
on config files without Snakemake, and names the line of a YAML syntax error (Snakemake does not).
"""

import re
import sys
from pathlib import Path

from weightzoo.config import DISTRIBUTIONS, ConfigError, Experiment, load_experiments

SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"  # package data (pyproject.toml)

# What YAML 1.2 reads as a number but PyYAML's YAML 1.1 reads as a string: `1e-3`, `1.0e12`, `5E+3`.
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
BOOLEANS = {"true": True, "false": False}  # YAML's words, as --config hands them over: strings


class CommandLineConfig(dict):
    """The values given with ``--config`` (``workflow.config_settings.config``), as a config source: errors in
    them say "from --config" rather than naming a config file's line of the same key."""

    def __str__(self) -> str:
        return "--config"


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

    Snakemake reads config YAML with YAML 1.1 rules, which take ``1e-3`` and ``1.0e12`` for strings, and
    ``--config`` values below the top level as strings (``'training={epochs: 2, vectorize: false}'``). Driven
    by the schema's types: a string is converted only where the schema allows a number (or true/false) and no
    string, and an integral float only where it wants an integer (``epochs: 1.0e+2`` -> 100). Dicts are changed
    in place.
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
    named = any(value in b.get("enum", ()) for b in branches if isinstance(value, str))
    if (isinstance(value, str) and NUMBER.fullmatch(value.strip()) and types & {"number", "integer"}
            and "string" not in types and not named):
        value = float(value.strip())
    # --config 'training={vectorize: false}': Snakemake reads nested values as strings, booleans too
    wants_bool = "boolean" in types or any(isinstance(v, bool) for b in branches for v in b.get("enum", ()))
    word = value.strip().lower() if isinstance(value, str) else None
    if word in BOOLEANS and wants_bool and "string" not in types and not named:
        value = BOOLEANS[word]
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
        if isinstance(file, CommandLineConfig):
            if _sets(file, path):
                return "from --config"
            continue
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


def _sets(mapping, path) -> bool:
    """Whether the nested ``mapping`` (dicts and lists) has a value at ``path``."""
    node = mapping
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return False
    return True


def _where(path, config_files) -> str:
    found = locate(path, config_files)
    if found:
        return f" ({found})"
    files = [str(f) for f in config_files if not isinstance(f, CommandLineConfig)]
    if not files:
        return ""
    origin = "a default" if any(isinstance(f, CommandLineConfig) for f in config_files) else "a default or --config"
    return f" (not set in {', '.join(files)}: {origin})"


def _number_text(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def expected(schema: dict, root: dict) -> str:
    """A schema in words: ``an integer >= 1 or a list of them``."""
    schema = _resolve(schema, root)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(expected(s, root) for s in schema[key])
    if "const" in schema:
        return str(schema["const"])
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
    if error.validator in ("oneOf", "anyOf") and isinstance(error.instance, dict):
        draws = _draw_branches(error.schema, root)
        if draws:
            return (f"{here} = {_short(error.instance)}{_where(path, config_files)}: "
                    f"{distribution_problem(error.instance, draws, root, str(path[-1]))}")
    if error.validator in ("oneOf", "anyOf") and isinstance(error.instance, list):
        problem = sweep_problem(error.instance, error.schema, root)
        if problem:
            return f"{here} = {_short(error.instance)}{_where(path, config_files)}: {problem}"
    if error.validator in ("minItems", "maxItems"):
        bound = "at least" if error.validator == "minItems" else "at most"
        return (f"{here} = {_short(error.instance)}{_where(path, config_files)}: needs {bound} "
                f"{error.validator_value} item(s)")
    return (f"{here} = {_short(error.instance)}{_where(path, config_files)}: "
            f"expected {expected(error.schema, root)}")


# ------------------------------------------------------------------ distributions: {kind: [arguments]}

BOUNDED = ("log_uniform", "uniform")  # {kind: [low, high]}; "choice" takes [value, ...]


def _draw_branches(schema: dict, root: dict) -> list[dict]:
    """The mapping alternatives of a key that may be drawn per trial: ``{log_uniform: [...]}`` and the like."""
    branches = [_resolve(s, root) for key in ("oneOf", "anyOf") for s in schema.get(key, ())]
    return [b for b in branches if b.get("type") == "object" and b.get("properties")
            and set(b["properties"]) <= set(DISTRIBUTIONS)]


def _form(kind: str) -> str:
    return f"{{{kind}: [low, high]}}" if kind in BOUNDED else f"{{{kind}: [value, ...]}}"


def _item_problem(value, schema: dict) -> str:
    """Why one argument of a distribution does not fit its schema ("" when it does)."""
    if "enum" in schema:
        return "" if value in schema["enum"] else f"is not one of {', '.join(map(str, schema['enum']))}"
    if schema.get("type") in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "is not a number" if schema["type"] == "number" else "is not an integer"
        if schema["type"] == "integer" and not float(value).is_integer():
            return "is not an integer"
        for key, op, fails in (("exclusiveMinimum", ">", lambda v, b: v <= b), ("minimum", ">=", lambda v, b: v < b),
                               ("exclusiveMaximum", "<", lambda v, b: v >= b), ("maximum", "<=", lambda v, b: v > b)):
            if key in schema and fails(value, schema[key]):
                return f"must be {op} {_number_text(schema[key])}"
    return ""


def _why(kind: str, name: str, problem: str) -> str:
    """The reason behind a bound's range, for the keys that have one."""
    if name == "train_fraction":
        return " (a train fraction is the share of the train split a trial trains on: 0 < fraction <= 1)"
    if kind == "log_uniform" and ">" in problem:
        return " (log_uniform is uniform in log(value): only numbers > 0 have a log)"
    if name == "weight_decay" and ">" in problem:
        return " (a drawn weight decay must be > 0; for no penalty give weight_decay: 0 instead of a distribution)"
    if ">" in problem:
        return f" (a drawn {name} must be > 0)"
    return ""


def distribution_problem(value: dict, branches: list[dict], root: dict, name: str) -> str:
    """What is wrong inside a distribution mapping given for key ``name``, in words: which kind, which bound, why."""
    kinds = {kind: _resolve(spec, root) for branch in branches for kind, spec in branch["properties"].items()}
    forms = " or ".join(_form(k) for k in kinds)
    if not value:
        return f"an empty mapping; a drawn value needs one distribution: {forms}"
    unknown = [k for k in value if k not in kinds]
    if unknown:
        return f"{unknown[0]!r} is not a distribution {name} can be drawn from; it takes {forms}"
    if len(value) > 1:
        return (f"{len(value)} distributions in one mapping ({', '.join(value)}); a value is drawn from one: keep "
                "one of them")
    (kind, args), = value.items()
    spec = kinds[kind]
    if not isinstance(args, list):
        return f"{kind} takes a list, {_form(kind)}, not {args!r}"
    if kind in BOUNDED and len(args) != 2:
        return f"{kind} takes two bounds, {_form(kind)}; {args} has {len(args)}"
    if len(args) < spec.get("minItems", 0):
        return f"{kind}: {args} is empty; give at least one value to choose from"
    items = spec.get("items", {})
    for i, arg in enumerate(args):
        problem = _item_problem(arg, _resolve(items, root) if isinstance(items, dict) else {})
        if problem:
            what = ("the low bound", "the high bound")[i] if kind in BOUNDED else "the value"
            return f"{kind}: {what} {arg!r} {problem}{_why(kind, name, problem)}"
    repeated = sorted({str(a) for a in args if args.count(a) > 1})
    if spec.get("uniqueItems") and repeated:
        return f"{kind}: {', '.join(repeated)} listed more than once; list each value once"
    return f"expected {expected(spec, root)} inside {_form(kind)}"  # not reached for the schema's own kinds


def sweep_problem(values: list, schema: dict, root: dict) -> str:
    """What is wrong inside a list given where a key also takes one value (a sweep): "" when not a list problem."""
    branches = [_resolve(s, root) for key in ("oneOf", "anyOf") for s in schema.get(key, ())]
    lists = [b for b in branches if b.get("type") == "array" and isinstance(b.get("items"), dict)]
    if len(lists) != 1:
        return ""
    spec, items = lists[0], _resolve(lists[0]["items"], root)
    if len(values) < spec.get("minItems", 0):
        return f"an empty list; a sweep needs at least {spec['minItems']} value(s)"
    for value in values:
        problem = _item_problem(value, items)
        if problem:
            return f"the value {value!r} {problem}"
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if spec.get("uniqueItems") and repeated:
        return f"{', '.join(repeated)} listed more than once; a sweep lists each value once"
    return ""


def config_sources(cli_files=(), all_files=(), cli_config=None) -> list:
    """Config sources by precedence: the values of --config (when given), the --configfile ones (last given
    first), then the Snakefile's own."""
    ordered = [*reversed(list(cli_files)), *all_files]
    files = list(dict.fromkeys(str(f) for f in ordered))
    return [CommandLineConfig(cli_config), *files] if cli_config else files


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
    # The file of highest precedence that sets the key or a section above it: a key missing from the user's file
    # (`method: bins` without `bins`) points at the user's section, not at the default config that sets it empty.
    for file in config_files:
        shortest = len(path) if isinstance(file, CommandLineConfig) else 1  # --config sets whole sections
        for n in range(len(path), shortest - 1, -1):
            found = locate(path[:n], [file])
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


def unreadable(path) -> str:
    """Why ``path`` cannot be read as a text file ("" when it can)."""
    try:
        with open(path, encoding="utf-8") as f:
            f.read()
    except FileNotFoundError:
        return f"{path}: no such config file"
    except IsADirectoryError:
        return f"{path}: a folder, not a config file"
    except UnicodeDecodeError as err:
        return f"{path}: not a text file (byte {err.start} is not UTF-8)"
    except OSError as err:
        return f"{path}: cannot be read: {err.strerror or err}"
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
        problem = unreadable(file) or yaml_syntax_error(file)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        with open(file, encoding="utf-8") as f:
            content = yaml.safe_load(f) or {}
        if not isinstance(content, dict):
            print(f"{file}: a config file is a mapping of sections (datasets:, experiments:, training:, analysis:), "
                  f"not a {type(content).__name__}", file=sys.stderr)
            return 1
        _merge(config, content)
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
