"""The curated API of ``weightzoo``: every name resolves, and reading a config does not import torch."""

import subprocess
import sys

import numpy as np
import pytest

import weightzoo


@pytest.mark.parametrize("name", weightzoo.__all__)
def test_every_public_name_resolves(name):
    assert getattr(weightzoo, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        weightzoo.nonsense  # noqa: B018


def test_the_package_import_stays_light():
    # the config counts each architecture's cost on the built module (torch); the package itself does not
    code = "import sys, weightzoo; weightzoo.__all__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_zoo_round_trip_through_the_api(tmp_path):
    from zoo_factory import make_zoo

    from weightzoo.io.atomic import write_netcdf_atomic
    from weightzoo.analysis.features import trial_features

    zoo = make_zoo(n_trials=4, hidden=3)
    path = tmp_path / "f.nc"
    write_netcdf_atomic(trial_features(zoo, np.array(["low", "high"] * 2)), path)
    features = weightzoo.read_features([path, path])
    assert features.sizes["trial"] == 8
    assert set(weightzoo.layer_metrics(zoo, "spectral").data_vars) == {
        m.name for m in weightzoo.METRICS.values() if m.family == "spectral"}


def test_analysis_jobs_do_not_load_torch():
    # only training and the dead-unit check need torch (2-3 s and ~650 MB per job otherwise)
    code = ("import sys, weightzoo.jobs.benchmark, weightzoo.jobs.claims, weightzoo.jobs.figures, "
            "weightzoo.jobs.groups; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
