import numpy as np
import pytest

from weightzoo.analysis.canonical import canonicalize, canonicalize_arrays, layer_chain
from zoo_factory import make_zoo


def _forward(weights, biases, x):
    """in -> h -> h -> classes with ReLU, every trial at once: x (batch, in) -> (trial, batch, classes)."""
    h = x[None]
    for level, (w, b) in enumerate(zip(weights, biases)):
        h = np.einsum("tbi,toi->tbo", h, w) + b[:, None, :]
        if level < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h


def _random_biases(ds, rng):
    for layer in ("fc1", "fc2", "fc3"):
        ds[f"{layer}_bias"] = ds[f"{layer}_bias"].copy(
            data=rng.normal(0, 0.1, ds[f"{layer}_bias"].shape).astype(np.float32)
        )
    return ds


def _params(ds, snapshot=-1):
    select = (lambda v: v.isel(snapshot=-1)) if snapshot == -1 else (lambda v: v.sel(snapshot=snapshot))
    weights = [select(ds[f"fc{i}_weight"]).values.astype(np.float64) for i in (1, 2, 3)]
    biases = [select(ds[f"fc{i}_bias"]).values.astype(np.float64) for i in (1, 2, 3)]
    return weights, biases


def test_outputs_unchanged():
    rng = np.random.default_rng(0)
    ds = _random_biases(make_zoo(n_trials=7, n_in=12, hidden=9), rng)
    canonical = canonicalize(ds)
    assert canonical.sizes["snapshot"] == 1
    x = rng.normal(size=(50, 12))
    before, after = _forward(*_params(ds), x), _forward(*_params(canonical), x)
    np.testing.assert_allclose(after, before, atol=1e-5)
    w1 = canonical["fc1_weight"].isel(snapshot=0).values
    strength = np.abs(w1).sum(axis=2)
    assert (np.diff(strength, axis=1) <= 0).all()
    assert not np.allclose(w1, ds["fc1_weight"].isel(snapshot=-1).values)


def test_permuted_copy_gives_same_weights():
    rng = np.random.default_rng(1)
    ds = _random_biases(make_zoo(n_trials=5, n_in=10, hidden=8), rng)
    weights, biases = _params(ds)
    permuted_w, permuted_b = [w.copy() for w in weights], [b.copy() for b in biases]
    for level in range(2):
        perm = np.stack([rng.permutation(8) for _ in range(5)])
        permuted_w[level] = np.take_along_axis(permuted_w[level], perm[:, :, None], axis=1)
        permuted_b[level] = np.take_along_axis(permuted_b[level], perm, axis=1)
        permuted_w[level + 1] = np.take_along_axis(permuted_w[level + 1], perm[:, None, :], axis=2)
    x = rng.normal(size=(20, 10))
    np.testing.assert_allclose(_forward(permuted_w, permuted_b, x), _forward(weights, biases, x), atol=1e-10)
    a_w, a_b = canonicalize_arrays(weights, biases)
    b_w, b_b = canonicalize_arrays(permuted_w, permuted_b)
    for a, b in zip(a_w + a_b, b_w + b_b):
        np.testing.assert_array_equal(a, b)
    # the dataset version agrees with the array version and keeps all snapshots aligned on request
    every = canonicalize(ds, all_snapshots=True)
    assert every.sizes["snapshot"] == ds.sizes["snapshot"]
    np.testing.assert_allclose(every["fc2_weight"].isel(snapshot=-1).values, a_w[1], rtol=1e-6)
    x0 = rng.normal(size=(20, 10))
    np.testing.assert_allclose(
        _forward(*_params(every, snapshot=0), x0), _forward(*_params(ds, snapshot=0), x0), atol=1e-5
    )


def test_not_a_dnn():
    ds = make_zoo(n_trials=3, model="vit")
    layers, reason = layer_chain(ds)
    assert layers is None and "DNN" in reason
    with pytest.raises(ValueError, match="DNN"):
        canonicalize(ds)


def test_canonical_layer_matches_canonicalize():
    from weightzoo.analysis.canonical import canonical_layer

    ds = _random_biases(make_zoo(n_trials=6, n_in=9, hidden=7), np.random.default_rng(4))
    whole = canonicalize(ds, snapshot=1)
    for layer in ("fc1", "fc2", "fc3"):
        weight, bias = canonical_layer(ds, layer, snapshot=1)
        np.testing.assert_array_equal(weight, whole[f"{layer}_weight"].isel(snapshot=0).values)
        np.testing.assert_array_equal(bias, whole[f"{layer}_bias"].isel(snapshot=0).values)


def _conv_chain_forward(weights, biases, x):
    """conv -> ReLU -> conv -> ReLU -> global average pool -> linear (the Small CNN Zoo pattern), per trial."""
    import torch
    import torch.nn.functional as F

    outs = []
    for t in range(len(weights[0])):
        h = torch.from_numpy(x)
        for w, b in zip(weights[:-1], biases[:-1]):
            h = torch.relu(F.conv2d(h, torch.from_numpy(w[t]), torch.from_numpy(b[t]), stride=2, padding=1))
        h = h.mean(dim=(2, 3))
        outs.append((h @ torch.from_numpy(weights[-1][t]).T + torch.from_numpy(biases[-1][t])).numpy())
    return np.stack(outs)


def test_conv_chain_permutes_channels_into_the_next_layer():
    rng = np.random.default_rng(5)
    trials, shapes = 3, [(4, 2, 3, 3), (5, 4, 3, 3), (3, 5)]
    weights = [rng.normal(size=(trials, *s)) for s in shapes]
    biases = [rng.normal(0, 0.1, (trials, s[0])) for s in shapes]
    permuted_w, permuted_b = [w.copy() for w in weights], [b.copy() for b in biases]
    for level in range(2):
        perm = np.stack([rng.permutation(shapes[level][0]) for _ in range(trials)])
        permuted_w[level] = np.take_along_axis(permuted_w[level], perm[:, :, None, None, None], axis=1)
        permuted_b[level] = np.take_along_axis(permuted_b[level], perm, axis=1)
        index = perm[:, None, :, None, None] if permuted_w[level + 1].ndim == 5 else perm[:, None, :]
        permuted_w[level + 1] = np.take_along_axis(permuted_w[level + 1], index, axis=2)
    x = rng.normal(size=(6, 2, 8, 8))
    reference = _conv_chain_forward(weights, biases, x)
    np.testing.assert_allclose(_conv_chain_forward(permuted_w, permuted_b, x), reference, atol=1e-10)
    a_w, a_b = canonicalize_arrays(weights, biases)
    b_w, b_b = canonicalize_arrays(permuted_w, permuted_b)
    for a, b in zip(a_w + a_b, b_w + b_b):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(_conv_chain_forward(a_w, a_b, x), reference, atol=1e-10)


def test_flatten_into_fc_is_not_a_chain():
    ds = make_zoo(n_trials=2, model="dnn")
    conv = ds["fc1_weight"].values[:, :, :, :4].reshape(2, 3, 8, 1, 2, 2)
    ds = ds.drop_vars("fc1_weight").assign(
        fc1_weight=(("trial", "snapshot", "c_out", "c_in", "kh", "kw"), conv, {"parameter": "fc1.weight", "kind": "weight"})
    )[["fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "fc3_weight", "fc3_bias"]]
    ds["fc2_weight"] = ds["fc2_weight"].isel(fc2_in=[0] * 32).rename(fc2_in="wide_in")
    layers, reason = layer_chain(ds)
    assert layers is None and "fc2 takes 32 inputs but fc1 has 8 outputs (a flatten" in reason
