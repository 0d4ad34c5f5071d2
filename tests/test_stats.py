import numpy as np
import pytest
import scipy.stats
from zoo_factory import make_zoo

from weightzoo.analysis.metrics import QUANTILES, weight_statistics
from weightzoo.analysis.stats import NETWORK, feature_matrix, sorted_sample


@pytest.fixture(scope="module")
def zoo():
    return make_zoo(n_trials=7, n_in=6, hidden=5, n_classes=3)


def test_statistics_match_numpy_by_hand(zoo):
    stats = weight_statistics(zoo)
    assert stats["std"].dims == ("trial", "layer")
    assert stats["layer"].values.tolist() == ["fc1", "fc2", "fc3", NETWORK]
    assert stats["n_weights"].values.tolist() == [30, 25, 15, 70]
    w = zoo["fc2_weight"].isel(snapshot=-1).values.astype(float)
    trial = 4
    flat = w[trial].ravel()
    assert stats["mean"].sel(layer="fc2").values[trial] == pytest.approx(flat.mean())
    assert stats["std"].sel(layer="fc2").values[trial] == pytest.approx(flat.std())
    for q in QUANTILES:
        assert stats[f"q{q}"].sel(layer="fc2").values[trial] == pytest.approx(np.percentile(flat, q))
    everything = np.concatenate(
        [zoo[f"{layer}_weight"].isel(snapshot=-1).values[trial].ravel() for layer in ("fc1", "fc2", "fc3")]
    ).astype(float)
    assert stats["std"].sel(layer=NETWORK).values[trial] == pytest.approx(everything.std())
    assert stats["q50"].sel(layer=NETWORK).values[trial] == pytest.approx(np.median(everything))


def test_block_size_does_not_change_the_result(zoo):
    whole = weight_statistics(zoo, snapshot=1)
    tiny_blocks = weight_statistics(zoo, snapshot=1, max_values=100)
    np.testing.assert_allclose(whole["std"].values, tiny_blocks["std"].values)
    np.testing.assert_allclose(whole["q75"].values, tiny_blocks["q75"].values)
    assert whole.attrs["snapshot"] == 1


def test_snapshot_selection(zoo):
    initial = weight_statistics(zoo, snapshot=0, include_network=False)
    assert NETWORK not in initial["layer"].values
    expected = zoo["fc1_weight"].sel(snapshot=0).values.reshape(7, -1).astype(float).std(axis=1)
    np.testing.assert_allclose(initial["std"].sel(layer="fc1").values, expected)


def test_feature_matrix(zoo):
    features, names = feature_matrix(weight_statistics(zoo))
    assert features.shape == (7, 3 * 7)
    assert names[0] == "fc1:mean" and "fc3:q100" in names and not any(n.startswith(NETWORK) for n in names)


def test_sorted_sample_gives_scipy_wasserstein(zoo):
    full = sorted_sample(zoo, "fc1")
    assert full.shape == (7, 30)
    a, b = (zoo["fc1_weight"].isel(snapshot=-1, trial=t).values.ravel() for t in (1, 2))
    assert np.abs(full[1] - full[2]).mean() == pytest.approx(scipy.stats.wasserstein_distance(a, b))
    sub = sorted_sample(zoo, NETWORK, max_values=20, seed=3)
    assert sub.shape == (7, 20) and (np.diff(sub, axis=1) >= 0).all()


def test_lazy_zoo_from_disk_gives_the_same_statistics(zoo, tmp_path):
    import xarray as xr

    path = tmp_path / "zoo.nc"
    zoo.to_netcdf(path)
    with xr.open_dataset(path) as lazy:
        from_disk = weight_statistics(lazy, max_values=50)
    np.testing.assert_allclose(from_disk["std"].values, weight_statistics(zoo)["std"].values)
