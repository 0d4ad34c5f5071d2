"""The conda environments in envs/ pin exactly what pyproject.toml pins, and the rules use them."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
# Conda packages that are the environment's machinery rather than project dependencies.
CONDA_TOOLING = {"python", "pip"}


def project_pins() -> dict[str, str]:
    """{canonical name: version} from pyproject.toml's [project] dependencies, all `==` pins."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"pyproject.toml: {line!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = specs[0].version
    return pins


def env_pins(path: Path) -> tuple[dict[str, str], str | None]:
    """({canonical name: version} of an env file's conda and pip packages, python version or None)."""
    env = yaml.safe_load(path.read_text())
    pins, python = {}, None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                req = Requirement(line)
                specs = list(req.specifier)
                assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: pip {line!r} is not an exact pin"
                pins[canonicalize_name(req.name)] = specs[0].version
            continue
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(?:==?\s*([^\s=]+))?\s*", dep)
        assert match, f"{path.name}: cannot read conda dependency {dep!r}"
        name, version = canonicalize_name(match[1]), match[2]
        if name == "python":
            python = version
        elif name not in CONDA_TOOLING:
            assert version, f"{path.name}: conda {dep!r} is not pinned"
            pins[name] = version
    return pins, python


def test_env_files_exist():
    assert ENV_FILES, "envs/ holds no conda environment (*.yaml)"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_pyproject(path):
    wanted = project_pins()
    pins, _ = env_pins(path)
    drifted = {n: (v, wanted[n]) for n, v in pins.items() if n in wanted and v != wanted[n]}
    assert not drifted, f"{path.name} pins differ from pyproject.toml (env, pyproject): {drifted}"
    unknown = sorted(set(pins) - set(wanted))
    assert not unknown, f"{path.name} pins packages pyproject.toml does not list: {unknown}"


def test_envs_cover_every_project_dependency():
    covered = set()
    for path in ENV_FILES:
        covered |= set(env_pins(path)[0])
    missing = sorted(set(project_pins()) - covered)
    assert not missing, f"pyproject.toml dependencies no env in envs/ installs: {missing}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_python_satisfies_requires_python(path):
    _, python = env_pins(path)
    assert python, f"{path.name} does not pin python"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(python + ".0" if python.count(".") == 1 else python), (
        f"{path.name}: python={python} does not satisfy requires-python {requires!r}"
    )


def conda_references() -> dict[Path, list[Path]]:
    """{rule file: [env files its `conda:` directives name]}; paths resolve relative to the rule file."""
    refs = {}
    for smk in sorted((ROOT / "workflow").rglob("*.smk")) + [ROOT / "Snakefile", ROOT / "workflow" / "Snakefile"]:
        if smk.is_file():
            found = re.findall(r"^\s*conda:\s*\n?\s*[\"']([^\"']+)[\"']", smk.read_text(), flags=re.M)
            refs[smk] = [(smk.parent / f).resolve() for f in found]
    return refs


def test_conda_directives_point_at_env_files():
    refs = conda_references()
    if not refs:
        pytest.skip("no Snakefile or workflow/rules/*.smk yet")
    broken = {str(smk.relative_to(ROOT)): [str(p) for p in paths if not p.is_file()] for smk, paths in refs.items()}
    broken = {k: v for k, v in broken.items() if v}
    assert not broken, f"conda: directives name missing env files: {broken}"
    used = {p for paths in refs.values() for p in paths}
    unused = [p.name for p in ENV_FILES if p.resolve() not in used]
    assert not unused, f"env files no rule uses with `conda:`: {unused}"
