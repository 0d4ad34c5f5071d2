import numpy as np
import pytest

from weightzoo.analysis.projection import invariant_features, project, separation_scores
from zoo_factory import make_zoo


def _two_groups(n):
    return np.array(["low", "high"] * (n // 2))


def _planted(n=40, seed=0):
    """Zoo whose 'high' trials have all weights shifted: a separation t-SNE should find."""
    ds = make_zoo(n_trials=n, n_in=8, hidden=6, effect=0.0, seed=seed)
    labels = _two_groups(n)
    w = ds["fc1_weight"].values.copy()
    w[labels == "high"] += 0.2
    ds["fc1_weight"] = ds["fc1_weight"].copy(data=w)
    return ds, labels


def test_separation_scores_planted_and_random():
    rng = np.random.default_rng(0)
    labels = _two_groups(60)
    separated = rng.normal(size=(60, 2)) + np.where(labels == "high", 6.0, 0.0)[:, None]
    scores = separation_scores(separated, labels)
    assert scores["knn_accuracy"] == 1.0 and scores["silhouette"] > 0.6 and scores["knn_k"] == 5
    accuracies = [separation_scores(rng.normal(size=(60, 2)), labels)["knn_accuracy"] for _ in range(5)]
    assert abs(np.mean(accuracies) - 0.5) < 0.15
    one_group = separation_scores(separated, np.array(["high"] * 59 + ["low"]))
    assert np.isnan(one_group["knn_accuracy"]) and "need >= 2 groups" in one_group["score_note"]
    tiny = separation_scores(separated, np.array(["low"] * 30 + ["high"] * 29 + ["mid"]))
    assert np.isfinite(tiny["knn_accuracy"]) and "mid (n=1)" in tiny["score_note"]


@pytest.mark.parametrize("features", ["raw", "canonical", "invariant"])
def test_project_finds_planted_separation(features):
    ds, labels = _planted()
    result = project(ds, labels, features=features, layer="fc1", perplexity=10, max_iter=300)
    assert result["x"].dims == ("trial",) and np.isfinite(result["x"]).all()
    assert result.attrs["message"] == "" and result.attrs["features"] == features
    assert result.attrs["knn_accuracy"] >= 0.9 and result.attrs["chance_accuracy"] == 0.5
    assert list(result["group"].values) == list(labels)


def test_project_random_zoo_near_chance():
    ds = make_zoo(n_trials=40, n_in=8, hidden=6, effect=0.0, seed=2)
    result = project(ds, _two_groups(40), features="raw", perplexity=10, max_iter=300)
    assert result.attrs["knn_accuracy"] < 0.8


def test_project_few_trials_and_fallbacks():
    ds = make_zoo(n_trials=3)
    result = project(ds, ["low", "high", "high"])
    assert np.isnan(result["x"]).all() and "at least 4 trials" in result.attrs["message"]
    assert np.isnan(result.attrs["knn_accuracy"])
    vit = make_zoo(n_trials=8, model="vit")
    result = project(vit, None, features="canonical", perplexity=5, max_iter=300)
    assert result.attrs["features"] == "raw" and "DNN" in result.attrs["note"]
    assert result.attrs["perplexity"] == pytest.approx(7 / 3)
    assert "need >= 2 groups" in result.attrs["score_note"]
    diverged = make_zoo(n_trials=8)
    w = diverged["fc2_weight"].values.copy()
    w[0] = np.nan
    diverged["fc2_weight"] = diverged["fc2_weight"].copy(data=w)
    result = project(diverged, _two_groups(8), features="invariant", max_iter=300)
    assert np.isnan(result["x"][0]) and np.isfinite(result["x"][1:]).all() and "1 trial" in result.attrs["note"]


def test_pca_scores_match_sklearn_and_identical_trials():
    from sklearn.decomposition import PCA

    from weightzoo.analysis.projection import pca_scores

    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 1.0, (30, 40)).astype(np.float32), rng.normal(size=(30, 25))
    a[4, 2] = np.nan
    scores, finite, n_values = pca_scores([a, b], n_components=5)
    assert n_values == 65 and finite.sum() == 29 and not finite[4]
    reference = PCA(5).fit_transform(np.hstack([a, b])[finite])
    np.testing.assert_allclose(np.abs(scores), np.abs(reference), rtol=1e-3, atol=1e-4)
    same = make_zoo(n_trials=6, effect=0.0)
    same["fc1_weight"] = same["fc1_weight"] * 0 + 1
    same["fc2_weight"] = same["fc2_weight"] * 0
    same["fc3_weight"] = same["fc3_weight"] * 0
    assert "identical" in project(same, None).attrs["message"]


def test_invariant_features_are_permutation_invariant():
    ds = make_zoo(n_trials=4, n_in=5, hidden=6)
    features = invariant_features(ds, "fc2")
    permuted = ds.copy()
    permuted["fc2_weight"] = ds["fc2_weight"].isel(fc2_out=[5, 3, 1, 0, 2, 4], fc2_in=[2, 0, 1, 5, 4, 3])
    np.testing.assert_allclose(invariant_features(permuted, "fc2"), features, rtol=1e-6)
    assert features.shape == (4, 2 * 7 + 6)


def test_project_one_unit_layer():
    """A minimal DNN (h=1) has a 1x1 middle layer: one feature, still projected (no PCA initialisation)."""
    zoo = make_zoo(n_trials=12, hidden=1, effect=1.0, seed=3)
    result = project(zoo, groups=None, features="raw", layer="fc2", max_iter=250)
    assert result.attrs["message"] == ""
    assert np.isfinite(result["x"].values).all() and np.isfinite(result["y"].values).all()


@pytest.mark.parametrize("canonical", [False, True])
def test_pca_in_trial_blocks_equals_the_whole_layer(canonical):
    """Issue 22: the Gram matrix summed over pairs of trial blocks (here 3 trials per block, 14 blocks) gives the
    scores of the whole layer read at once, to float32 rounding (1e-4 of the largest score), with a diverged
    trial (NaN) left out and a blown-up one (1e20, the power-of-two scaling path) kept."""
    from weightzoo.analysis.projection import TrialBlocks, _weight_blocks, pca_scores

    ds = make_zoo(n_trials=40, n_in=12, hidden=10, seed=5)
    w = ds["fc1_weight"].values.copy()
    w[7, -1, 0, 0], w[11, -1] = np.nan, w[11, -1] * 1e20
    ds["fc1_weight"] = ds["fc1_weight"].copy(data=w)
    blocks = _weight_blocks(ds, None, -1, canonical)
    whole = [TrialBlocks.of(b.read(0, b.n_trials)) for b in blocks]
    expected, finite, n_values = pca_scores(whole, 10)
    scores, finite_blocked, n_blocked = pca_scores(blocks, 10, block_values=3 * 12 * 10)
    assert n_values == n_blocked == 12 * 10 + 10 * 10 + 10 * 10 and finite.sum() == 39 and not finite[7]
    np.testing.assert_array_equal(finite, finite_blocked)
    assert scores.shape == expected.shape
    # eigenvectors are defined up to sign; the trials' distances (what t-SNE sees) must not change
    np.testing.assert_allclose(np.abs(scores[:, :3]), np.abs(expected[:, :3]), atol=1e-4 * np.abs(expected).max())
    distance = lambda s: np.linalg.norm(s[:, None] - s[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(distance(scores), distance(expected), atol=1e-4 * distance(expected).max())


def test_pca_of_a_zoo_on_disk_holds_blocks_not_the_layer_of_all_trials(tmp_path):
    """Issue 22: the raw and canonical views read a zoo a block of trials at a time. Before, the whole layer of all
    trials was read (64 x 256 x 512 float32 = 33.6 MB here, plus float copies); now two blocks of 4 trials (2.1 MB
    each) and the copies of their column chunks: a peak below half the layer, whatever the number of trials."""
    import tracemalloc

    import xarray as xr

    from weightzoo.analysis.projection import _weight_blocks, pca_scores

    make_zoo(n_trials=64, n_in=512, hidden=256, seed=1).to_netcdf(tmp_path / "zoo.nc")
    one_layer = 64 * 256 * 512 * 4
    with xr.open_dataset(tmp_path / "zoo.nc", cache=False) as ds:
        for canonical in (False, True):
            pca_scores(_weight_blocks(ds, "fc2", -1, canonical), 10)  # imports, caches: not the measured reads
            tracemalloc.start()
            try:
                scores, finite, _ = pca_scores(_weight_blocks(ds, "fc1", -1, canonical), 10, block_values=4 * 256 * 512)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert finite.all() and scores.shape == (64, 10)
            assert peak < one_layer / 2, f"canonical={canonical}: peak {peak / 1e6:.1f} MB for a {one_layer / 1e6:.1f} MB layer"
