import numpy as np
import pytest
from scipy.stats import gaussian_kde

from weightzoo.analysis.kde import BinnedKDE, layer_density
from zoo_factory import make_zoo


def _mixture(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0.0, 0.05, n // 2), rng.laplace(0.1, 0.02, n - n // 2)])


@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_binned_kde_matches_scipy(rule):
    values = _mixture(4000)
    kde = BinnedKDE(values.min() - 0.2, values.max() + 0.2, 2048, bandwidth=rule)
    for chunk in np.array_split(values, 7):  # streaming gives the same answer as one pass
        kde.add(chunk)
    assert kde.n == values.size
    assert kde.std == pytest.approx(values.std(ddof=1), rel=1e-10)
    exact = gaussian_kde(values, bw_method=kde.bandwidth / values.std(ddof=1))
    if rule == "scott":
        assert kde.bandwidth == pytest.approx(exact.factor * values.std(ddof=1), rel=1e-9)
        assert gaussian_kde(values).factor == pytest.approx(exact.factor, rel=1e-9)
    grid = np.linspace(values.min() - 0.1, values.max() + 0.1, 300)
    reference = exact(grid)
    assert np.max(np.abs(kde.density(grid) - reference)) < 0.01 * reference.max()


def test_binned_kde_edge_cases():
    kde = BinnedKDE(-1, 1)
    assert np.isnan(kde.density()).all()
    kde.add(np.full(10, 0.25))  # zero spread: bandwidth falls back to one grid step
    assert np.trapezoid(kde.density(), kde.grid) == pytest.approx(1.0, rel=1e-6)
    kde = BinnedKDE(-1, 1, bandwidth=0.05)
    kde.add(np.full(10, 0.25)).add([np.nan, np.inf, 5.0])
    assert kde.n == 11 and kde.n_outside == 1
    density = kde.density()
    assert np.isfinite(density).all()
    assert np.trapezoid(density, kde.grid) == pytest.approx(10 / 11, rel=1e-3)
    with pytest.raises(ValueError):
        BinnedKDE(1, 1)
    with pytest.raises(ValueError):
        BinnedKDE(0, 1, bandwidth="wide")


def test_layer_density_groups_and_mass():
    ds = make_zoo(n_trials=30, n_in=20, hidden=10, effect=1.5)
    groups = np.where(ds["train_accuracy"].isel(epoch=-1).values > 0.55, "high", "low")
    density = layer_density(ds, "fc1_weight", groups)
    assert density.dims == ("group", "x")
    assert list(density["group"].values) == ["low", "high"]
    assert int(density["n_values"].sum()) == 30 * 20 * 10
    for g in density["group"].values:
        assert np.trapezoid(density.sel(group=g).values, density["x"].values) == pytest.approx(1.0, abs=1e-3)
    # the planted effect: high-accuracy trials have narrower weights, hence a higher peak
    assert density.sel(group="high").max() > density.sel(group="low").max()
    single = layer_density(ds, "fc1_bias", None, grid=np.linspace(-1, 1, 101))  # all zeros
    assert list(single["group"].values) == ["all"] and np.isfinite(single).all()


def test_layer_density_matches_scipy_on_subsample():
    ds = make_zoo(n_trials=12, n_in=30, hidden=20, effect=0.0, seed=3)
    density = layer_density(ds, "fc1_weight", snapshot=0)
    values = ds["fc1_weight"].sel(snapshot=0).values.ravel().astype(float)
    reference = gaussian_kde(values)(density["x"].values)
    error = np.max(np.abs(density.sel(group="all").values - reference))
    assert error < 0.01 * reference.max()


def test_one_read_serves_features_strengths_and_densities():
    """extract_features' shared read (issue 22): the densities' first pass and the node strengths fed from the
    features' blocks give what the separate readers give (moments to float rounding, everything else exactly)."""
    import xarray as xr

    from weightzoo.analysis.features import trial_features
    from weightzoo.analysis.kde import GroupMoments, density_dataset
    from weightzoo.analysis.strength import node_strength, strength_layers

    ds = make_zoo(n_trials=12, seed=3)
    groups = np.array(["low", "high", "mid"] * 4)
    apart = trial_features(ds, groups, strengths=[node_strength(ds, layer) for layer in strength_layers(ds)])
    moments = GroupMoments(ds, groups)
    shared, strengths = trial_features(ds, groups, on_block=moments.add, with_strengths=True, n_quantiles=2000)
    xr.testing.assert_identical(apart, shared)
    for layer, strength in zip(strength_layers(ds), strengths):
        xr.testing.assert_identical(node_strength(ds, layer), strength)
    alone, fed = density_dataset(ds, groups), density_dataset(ds, groups, moments=moments)
    np.testing.assert_allclose(alone["moments"].values, fed["moments"].values, rtol=1e-12)
    xr.testing.assert_identical(alone.drop_vars("moments"), fed.drop_vars("moments"))
