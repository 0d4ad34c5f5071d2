"""Provenance attributes shared by every file weightzoo writes."""

import datetime
import hashlib
import json
import platform
import subprocess
from pathlib import Path


def package_versions() -> dict:
    import numpy
    import xarray

    import weightzoo

    versions = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "xarray": xarray.__version__,
        "weightzoo": weightzoo.__version__,
    }
    for name in ("torch", "timm", "sklearn", "scipy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return versions


def provenance_attrs() -> dict:
    """Global attributes every netCDF file carries: creation time and package versions."""
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weightzoo_version": __import__("weightzoo").__version__,
        "versions": json.dumps(package_versions()),
    }


def code_revision(folder=None) -> str:
    """``git rev-parse HEAD`` of the checkout holding ``folder`` (default: this package), ``-dirty`` appended
    when tracked files differ from it; "" where the folder is not tracked by git or git is missing.

    Untracked files do not count as dirty: results, logs and virtualenvs usually sit in the checkout.
    """
    folder = Path(folder) if folder else Path(__file__).resolve().parent

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=60,
                              check=True).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", ".")  # tracked itself, not an installed copy inside some checkout
        revision = git("rev-parse", "--verify", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/")
    except (OSError, subprocess.SubprocessError):
        return ""
    return revision + ("-dirty" if dirty else "")


def file_sha256(path) -> str:
    """Hex sha256 of a file, read in blocks (a prepared dataset may be larger than memory)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
