"""The package's imports run one way (docs/architecture.md) and have no cycles.

Layers, lowest first; a module imports (at module level) only from its own layer or lower ones:
files and provenance -> config, data, models -> train -> zoo files -> analysis -> report -> workflow-facing
jobs. Imports inside functions are not counted (they exist to keep start-up light, never to hide a cycle).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "weightzoo"
LAYERS = [
    ("io.atomic", "io.provenance", "logs"),
    ("config", "data", "models"),
    ("train",),
    ("io",),
    ("analysis", "export"),
    ("report",),
    ("jobs", "cluster", "selection"),
]


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("weightzoo."):
            found.add(node.module.removeprefix("weightzoo."))
            found |= {f"{node.module.removeprefix('weightzoo.')}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("weightzoo.") for a in node.names if a.name.startswith("weightzoo.")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {_name(p): p for p in PACKAGE.rglob("*.py") if _name(p)}
    return {name: {d for d in _imports(path) if d in modules and d != name} for name, path in modules.items()}


def layer(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"weightzoo.{module} is in no layer of tests/test_layout.py"
    return best[0]


def test_imports_run_one_way():
    wrong = [f"weightzoo.{m} imports weightzoo.{d}" for m, deps in graph().items() for d in deps
             if layer(d) > layer(m)]
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def find_cycles(edges: dict[str, set[str]]) -> list[str]:
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(edges[node]):
            if dep.startswith(node + "."):
                continue  # a package importing its own submodules
            if state.get(dep) == "open":
                cycles.append(" -> ".join([*path[path.index(dep):], dep]) if dep in path else f"{node} -> {dep}")
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a -> b -> c -> a"]


def test_no_import_cycles():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
