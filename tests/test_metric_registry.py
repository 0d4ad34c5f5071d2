"""The metric registry: one registration gives a stored feature, claims rows and the docs' table row."""

import re
from pathlib import Path

import numpy as np
import pytest
from zoo_factory import make_zoo

from weightzoo.analysis import metrics
from weightzoo.analysis.claims import claims_table
from weightzoo.analysis.features import trial_features
from weightzoo.analysis.groups import group_zoo
from weightzoo.analysis.metrics import METRICS, Metric, layer_metrics, markdown_table, register

DOCS = Path(__file__).resolve().parents[1] / "docs" / "data-format.md"


def test_docs_table_is_the_registry():
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- metrics:begin -->\n(.*?)\n<!-- metrics:end -->", text, re.S)
    assert block, "docs/data-format.md lost its metrics block"
    assert block.group(1) == markdown_table()


def test_moments_match_numpy():
    zoo = make_zoo(n_trials=6, hidden=7)
    stats = layer_metrics(zoo, "moments")
    w = zoo["fc2_weight"].isel(snapshot=-1).values.reshape(6, -1)
    np.testing.assert_allclose(stats["std"].sel(layer="fc2").values, w.std(axis=1))
    np.testing.assert_allclose(stats["q50"].sel(layer="fc2").values, np.median(w, axis=1), rtol=1e-6)
    assert np.isnan(layer_metrics(zoo, "spectral")["stable_rank"].sel(layer="network").values).all()


def test_spectral_features_stored_per_layer():
    zoo = make_zoo(n_trials=6, hidden=7)
    features = trial_features(zoo, group_zoo(zoo))
    spectral = features["spectral"]
    assert list(spectral.dims) == ["trial", "layer", "spectral_stat"]
    w = zoo["fc1_weight"].isel(snapshot=-1).values.astype(np.float64)
    top = np.linalg.svd(w, compute_uv=False)[:, 0] ** 2
    np.testing.assert_allclose(spectral.sel(layer="fc1", spectral_stat="spectral_norm_sq").values, top, rtol=1e-6)
    assert "early_statistic" in features and "early_spectral" not in features
    assert str(features["spectral_stat_units"].sel(spectral_stat="num_eigenvalues").values) == "count"


@pytest.fixture
def registered_toy_metric():
    """A metric registered by a test alone: the largest absolute weight, expected lower in better networks."""
    metric = register(Metric("max_abs", "moments", "largest absolute weight", "1",
                             lambda layer: np.abs(layer.flat).max(axis=1), label="largest |weight|", direction=-1,
                             claim=99))
    yield metric
    del METRICS[metric.name]


def test_a_registered_metric_becomes_a_feature_and_a_claim(registered_toy_metric):
    zoo = make_zoo(n_trials=30, hidden=8, effect=2.0)
    features = trial_features(zoo, group_zoo(zoo))
    assert "max_abs" in features["stat"].values
    table = claims_table(features, n_permutations=199, n_bootstrap=99)
    rows = table[table["claim"] == 99]
    assert set(rows["statistic"]) == {"cliffs_delta", "spearman_max_abs"}
    # make_zoo shrinks the weights of accurate trials: the planted direction is found
    pooled = rows[(rows["scope"] == "pooled") & (rows["layer"] == "fc1") & (rows["statistic"] == "spearman_max_abs")]
    assert pooled["verdict"].iloc[0] == "supported"
    assert "max_abs" in markdown_table()


def test_registering_twice_or_in_an_unknown_family_fails():
    with pytest.raises(ValueError, match="registered twice"):
        register(METRICS["std"])
    with pytest.raises(ValueError, match="unknown family"):
        register(Metric("x", "nonsense", "x", "1", lambda layer: layer.flat[:, 0]))
    assert metrics.claim_metrics()[0].name == "std"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [4, 5, 7, 12, 1001, 40000])
def test_percentiles_equal_numpys(dtype, n):
    """Issue 22: the moments' percentiles partition each row at its median and quartiles instead of calling
    np.percentile (1.4x as fast); the numbers are numpy's to the last bit, NaN rows and infinities included."""
    from weightzoo.analysis.metrics.moments import QUANTILES, percentiles

    x = np.random.default_rng(n).standard_normal((6, n)).astype(dtype)
    x[1, 2] = np.nan
    x[2, :2], x[3], x[4, -2:] = np.inf, 1.5, -np.inf
    expected = np.percentile(x, QUANTILES, axis=1)
    with np.errstate(invalid="ignore"):
        got = percentiles(x)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_features_from_one_read_equal_each_reduction_on_its_own():
    """Issue 22: trial_features reads the final snapshot once for every family, the quantile functions' samples and
    the node strengths (each read it anew before); the values are those of each function called on its own."""
    from weightzoo.analysis.features import quantile_function, trial_features
    from weightzoo.analysis.metrics import FAMILIES, layer_metrics
    from weightzoo.analysis.stats import NETWORK, sorted_sample
    from weightzoo.analysis.strength import node_strength, strength_layers
    from weightzoo.analysis.zoo import layer_names

    ds = make_zoo(n_trials=30, n_in=40, hidden=20, seed=4, diverged=(3,))
    w = ds["fc2_weight"].values.copy()
    w[5, -1, 0, 0] = np.nan
    ds["fc2_weight"] = ds["fc2_weight"].copy(data=w)
    features = trial_features(ds, n_quantiles=100)
    for name, family in FAMILIES.items():
        expected = layer_metrics(ds, name).to_array(family.dim).transpose("trial", "layer", family.dim)
        np.testing.assert_array_equal(features[family.variable].values, expected.values)
    for i, layer in enumerate([*layer_names(ds), NETWORK]):
        np.testing.assert_array_equal(features["quantile_function"].values[:, i],
                                      quantile_function(sorted_sample(ds, layer, max_values=100),
                                                        100).astype(np.float32))
    for i, layer in enumerate(strength_layers(ds)):
        np.testing.assert_array_equal(features["mean_strength"].values[:, i],
                                      node_strength(ds, layer).values.mean(axis=1))
