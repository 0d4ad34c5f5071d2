import json

import numpy as np
import pytest
import xarray as xr

from weightzoo.analysis.strength import mean_node_strength, node_strength, pairwise_strength, strength_layers
from zoo_factory import make_zoo


def _cnn_zoo(n_trials=5, channels=4, side=5, seed=0):
    rng = np.random.default_rng(seed)
    conv = rng.normal(size=(n_trials, 1, channels, 1, 3, 3)).astype(np.float32)
    fc = rng.normal(size=(n_trials, 1, 10, channels * (side - 2) ** 2)).astype(np.float32)

    def attrs(layer, kind):
        return {"parameter": f"{layer}.{kind}", "layer": layer, "kind": kind}

    return xr.Dataset(
        {
            "conv1_weight": (
                ("trial", "snapshot", "conv1_out", "conv1_in", "conv1_kh", "conv1_kw"),
                conv,
                attrs("conv1", "weight"),
            ),
            "conv1_bias": (("trial", "snapshot", "conv1_out"), conv[:, :, :, 0, 0, 0], attrs("conv1", "bias")),
            "fc_weight": (("trial", "snapshot", "fc_out", "fc_in"), fc, attrs("fc", "weight")),
        },
        coords={"trial": np.arange(n_trials), "snapshot": [1]},
        attrs={"model": "cnn", "model_kwargs": json.dumps({"channels": channels})},
    )


def test_abs_in_strength_dnn_rows():
    ds = make_zoo(n_trials=6, n_in=7, hidden=5)
    strength = node_strength(ds, "fc1")
    w = ds["fc1_weight"].isel(snapshot=-1).values
    assert strength.dims == ("trial", "node") and strength.shape == (6, 5)
    np.testing.assert_allclose(strength.values, np.abs(w).sum(axis=2), rtol=1e-6)
    np.testing.assert_allclose(
        mean_node_strength(ds, "fc1_weight", snapshot=0),
        np.abs(ds["fc1_weight"].sel(snapshot=0).values).sum(axis=2).mean(axis=1),
        rtol=1e-6,
    )
    assert strength_layers(ds) == ["fc1", "fc2", "fc3"]


def test_abs_in_strength_conv_channels():
    ds = _cnn_zoo()
    strength = node_strength(ds, "conv1")
    w = ds["conv1_weight"].isel(snapshot=-1).values
    np.testing.assert_allclose(strength.values, np.abs(w).sum(axis=(2, 3, 4)), rtol=1e-6)
    with pytest.raises(ValueError, match="node strength"):
        node_strength(ds.rename({"conv1_bias": "norm_weight"}), "norm")


def test_signed_strength_in_plus_out():
    ds = make_zoo(n_trials=4, n_in=6, hidden=5)
    w1, w2, w3 = (ds[f"fc{i}_weight"].isel(snapshot=-1).values.astype(float) for i in (1, 2, 3))
    s1 = node_strength(ds, "fc1", kind="signed")
    np.testing.assert_allclose(s1.values, w1.sum(axis=2) + w2.sum(axis=1), rtol=1e-5, atol=1e-6)
    s3 = node_strength(ds, "fc3", kind="signed")
    np.testing.assert_allclose(s3.values, w3.sum(axis=2), rtol=1e-5, atol=1e-6)
    assert "incoming weights only" in s3.attrs["note"]
    cnn = _cnn_zoo()
    conv, fc = cnn["conv1_weight"].values[:, 0].astype(float), cnn["fc_weight"].values[:, 0].astype(float)
    expected = conv.sum(axis=(2, 3, 4)) + fc.reshape(5, 10, 4, 9).sum(axis=(1, 3))
    np.testing.assert_allclose(node_strength(cnn, "conv1", kind="signed").values, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="kind"):
        node_strength(ds, "fc1", kind="degree")


def test_pairwise_strength_correlation_and_small_groups():
    ds = make_zoo(n_trials=30, effect=2.0)
    labels = np.array(["high"] * 2 + ["low"] * 28)
    result = pairwise_strength(ds, groups=labels)
    assert list(result["pair"].values) == ["fc1~fc2", "fc2~fc3"]
    assert list(result["group"].values) == ["low", "high", "all"]
    assert result["mean_strength"].shape == (30, 3)
    # the planted scale factor is shared by all layers of a trial, so strengths correlate strongly
    assert float(result["spearman_rho"].sel(pair="fc1~fc2", group="all")) > 0.8
    assert np.isnan(result["spearman_rho"].sel(group="high")).all()
    assert result["reason"].sel(pair="fc1~fc2", group="high").item() == "n=2 < 3"
    assert int(result["n"].sel(pair="fc1~fc2", group="low")) == 28
    everything = pairwise_strength(ds, layers=["fc1", "fc3"], pairs="all", kind="signed")
    assert list(everything["pair"].values) == ["fc1~fc3"] and list(everything["group"].values) == ["all"]


def test_pairwise_strength_reuses_precomputed_strengths():
    zoo = make_zoo(n_trials=20, effect=1.0, seed=5)
    layers = strength_layers(zoo)
    direct = pairwise_strength(zoo, layers)
    reused = pairwise_strength(zoo, layers, strengths=[node_strength(zoo, layer) for layer in layers])
    xr.testing.assert_allclose(direct, reused)


def test_signed_strength_into_flattened_channels_is_read_in_trial_blocks(monkeypatch):
    """Issue 22: the outgoing sum into a Linear layer fed by flattened conv channels read that layer for all trials
    at once; it is now read a block of trials at a time (here 2), with the same values."""
    import xarray as xr

    from weightzoo.analysis import strength as strength_module

    rng = np.random.default_rng(3)
    conv = rng.normal(size=(5, 1, 4, 1, 3, 3)).astype(np.float32)
    fc = rng.normal(size=(5, 1, 10, 4 * 9)).astype(np.float32)
    ds = xr.Dataset({
        "conv1_weight": (("trial", "snapshot", "conv1_out", "conv1_in", "conv1_kh", "conv1_kw"), conv,
                         {"kind": "weight", "layer": "conv1", "parameter": "conv1.weight"}),
        "fc_weight": (("trial", "snapshot", "fc_out", "fc_in"), fc, {"kind": "weight", "layer": "fc", "parameter": "fc.weight"}),
    }, coords={"trial": np.arange(5), "snapshot": [1]})
    monkeypatch.setattr(strength_module, "CHUNK_VALUES", 2 * 10 * 36)
    signed = strength_module.node_strength(ds, "conv1", kind="signed").values
    incoming = conv[:, 0].astype(np.float64).sum(axis=(2, 3, 4))
    outgoing = fc[:, 0].astype(np.float64).transpose(0, 2, 1).reshape(5, 4, -1).sum(axis=2)
    np.testing.assert_allclose(signed, incoming + outgoing, rtol=1e-10)
