import numpy as np
import pytest

from weightzoo.analysis.canonical import canonicalize, canonicalize_arrays, fc_chain
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
    layers, reason = fc_chain(ds)
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
