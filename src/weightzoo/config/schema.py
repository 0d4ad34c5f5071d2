"""The schema step of the config: numbers written `1e-3`, validation with the schema's defaults, and errors in
one line with the key, the value and the config file and line (docs/reliability.md).

``check_config`` is what ``workflow/rules/common.smk`` calls first; ``python -m weightzoo.config FILE...`` runs it
on config files without Snakemake, and names the line of a YAML syntax error (Snakemake does not).
"""

import re
import sys
from pathlib import Path

from weightzoo.config import ConfigError, Experiment, load_experiments

SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"  # package data (pyproject.toml)

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
    # The file of highest precedence that sets the key or a section above it: a key missing from the user's file
    # (`method: bins` without `bins`) points at the user's section, not at the default config that sets it empty.
    for file in config_files:
        for n in range(len(path), 0, -1):
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
