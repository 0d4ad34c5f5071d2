"""Provenance attributes shared by every file weightzoo writes."""

import datetime
import json
import platform


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
