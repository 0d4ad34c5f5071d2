"""Spectral metrics: known spectra, invariances, stacking, and agreement with the weightwatcher package."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from weightzoo.analysis import spectral
from weightzoo.analysis.spectral import (
    EVALS_THRESH, MIN_EIGENVALUES, SPECTRAL_METRICS, eigenvalues, layer_matrices, power_law_fit, spectral_metrics)


def _orthonormal(rng, trials, n, k):
    with threadpool_limits(limits=1, user_api="blas"):  # many small QRs: BLAS threads cost more than they save
        q, _ = np.linalg.qr(rng.standard_normal((trials, n, k)))
    return q


def _with_singular_values(rng, singular_values, n_rows, n_cols):
    """(trial, n_rows, n_cols) = U diag(s) Vᵀ for each row s of ``singular_values`` (trial, min(n_rows, n_cols))."""
    trials, k = singular_values.shape
    u, v = _orthonormal(rng, trials, n_rows, k), _orthonormal(rng, trials, n_cols, k)
    return (u * singular_values[:, None, :]) @ v.swapaxes(1, 2)


def _pareto(rng, shape, alpha, xmin=1.0):
    """Draws with density proportional to x^-alpha on [xmin, inf)."""
    return xmin * (1.0 - rng.uniform(size=shape)) ** (-1.0 / (alpha - 1.0))


def test_every_metric_is_described_and_returned():
    values = np.random.default_rng(0).standard_normal((3, 20, 30))
    metrics = spectral_metrics(values)
    assert list(metrics) == list(SPECTRAL_METRICS)
    assert all(m.shape == (3,) for m in metrics.values())


@pytest.mark.parametrize("n_rows, n_cols", [(40, 30), (30, 40)])
def test_known_singular_values_give_known_norms_rank_and_entropy(n_rows, n_cols):
    rng = np.random.default_rng(1)
    s = np.concatenate([np.linspace(0.5, 3.0, 20), np.zeros(10)])[::-1]
    s = np.stack([s, 2.0 * np.sqrt(np.arange(30, 0, -1.0))])
    metrics = spectral_metrics(_with_singular_values(rng, s, n_rows, n_cols))
    lam = s**2
    np.testing.assert_allclose(metrics["frobenius_norm_sq"], lam.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(metrics["spectral_norm_sq"], lam.max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(metrics["stable_rank"], lam.sum(axis=1) / lam.max(axis=1), rtol=1e-12)
    share = lam / lam.sum(axis=1, keepdims=True)
    plogp = np.where(share > 0, share * np.log(np.where(share > 0, share, 1.0)), 0.0)
    rank = np.array([20, 30])  # the ten zero singular values do not count
    np.testing.assert_allclose(metrics["spectral_entropy"], -plogp.sum(axis=1) / np.log(rank), atol=1e-7)
    np.testing.assert_array_equal(metrics["num_eigenvalues"], [30, 30])


def test_equal_singular_values_have_entropy_one_and_full_stable_rank():
    rng = np.random.default_rng(2)
    metrics = spectral_metrics(_with_singular_values(rng, np.full((2, 25), 0.7), 25, 60))
    np.testing.assert_allclose(metrics["spectral_entropy"], 1.0, atol=1e-7)
    np.testing.assert_allclose(metrics["stable_rank"], 25.0, rtol=1e-10)


@pytest.mark.parametrize("alpha_true", [2.5, 4.0])
def test_pareto_eigenvalues_give_alpha_back_within_sampling_error(alpha_true):
    trials, n = 40, 500
    x = np.sort(_pareto(np.random.default_rng(3), (trials, n), alpha_true), axis=1)
    fit = power_law_fit(x)
    # The full-sample MLE has standard error (alpha - 1) / sqrt(n); choosing xmin by the smallest KS distance
    # makes it about 1.6 times that (simulated). The mean of 40 trials stays within 4 of its standard errors.
    standard_error = 1.6 * (alpha_true - 1) / np.sqrt(n) / np.sqrt(trials)
    assert abs(fit["alpha"].mean() - alpha_true) < 4 * standard_error
    assert np.all(fit["alpha_xmin"] >= x[:, 0]) and np.all(fit["alpha_ks_distance"] < 0.1)
    assert np.all(fit["alpha_tail_size"] == (x >= fit["alpha_xmin"][:, None]).sum(axis=1))


def test_pareto_spectrum_of_a_matrix_gives_alpha_back():
    rng = np.random.default_rng(4)
    alpha_true, trials = 3.0, 12
    lam = _pareto(rng, (trials, 200), alpha_true)
    values = _with_singular_values(rng, np.sqrt(lam), 240, 200)
    np.testing.assert_allclose(eigenvalues(values), np.sort(lam, axis=1), rtol=1e-9)
    metrics = spectral_metrics(values)
    # sd of the mean of 12 at n = 200 is about 0.07 (simulated, with a bias of +0.06): 0.3 is over 3 sd
    assert abs(metrics["alpha"].mean() - alpha_true) < 0.3
    assert np.all(metrics["alpha_reliable"]) and np.all(metrics["alpha_ks_distance"] < 0.1)


def test_small_pareto_samples_use_the_bias_corrected_estimator():
    # Below 20 eigenvalues WWFit fits tails of at least 8 with alpha = 1 + (n - 1) / sum log(x / xmin).
    x = np.sort(_pareto(np.random.default_rng(12), (1, 12), 2.5), axis=1)
    fit = power_law_fit(x)
    n = fit["alpha_tail_size"][0]
    assert n >= 8
    tail = x[0, -n:]
    assert fit["alpha_xmin"][0] == tail[0]
    np.testing.assert_allclose(fit["alpha"][0], 1 + (n - 1) / np.log(tail / tail[0]).sum(), rtol=1e-12)


def test_rescaled_weights_scale_the_norms_and_keep_the_shape_metrics():
    rng = np.random.default_rng(5)
    values = rng.standard_normal((4, 60, 80))
    base = spectral_metrics(values)
    for c in (0.1, 3.0):
        scaled = spectral_metrics(c * values)
        for name in ("frobenius_norm_sq", "spectral_norm_sq", "alpha_xmin"):
            np.testing.assert_allclose(scaled[name], c**2 * base[name], rtol=1e-10)
        for name in ("stable_rank", "spectral_entropy", "alpha", "alpha_ks_distance"):
            np.testing.assert_allclose(scaled[name], base[name], rtol=1e-8)
        np.testing.assert_array_equal(scaled["alpha_tail_size"], base["alpha_tail_size"])


def _mixed_trials():
    """Trials of one (30, 25) layer on every path: plain, rank-deficient (SVD), small-N fit, failed fit, NaN."""
    rng = np.random.default_rng(6)
    values = rng.standard_normal((8, 30, 25))
    s = np.concatenate([np.linspace(1, 5, 15), np.zeros(10)])[::-1]
    values[1] = _with_singular_values(rng, s[None], 30, 25)[0]  # exact zeros: SVD instead of the Gram matrix
    s[-10:] = 1e-4  # 10 eigenvalues 1e-8 < EVALS_THRESH: 15 fitted, the small-sample fit
    values[2] = _with_singular_values(rng, s[None], 30, 25)[0]
    values[3] *= 1e-5  # every eigenvalue below EVALS_THRESH: no fit
    values[7, 0, 0] = np.nan  # a diverged trial
    return values


def test_stacked_trials_equal_one_trial_at_a_time(monkeypatch):
    values = _mixed_trials()
    stacked = spectral_metrics(values)
    assert np.isnan(stacked["alpha"][3]) and stacked["alpha_tail_size"][3] == 0 and not stacked["alpha_reliable"][3]
    assert np.all(np.isfinite(stacked["alpha"][[0, 1, 2, 4, 5, 6]]))
    assert np.isnan(stacked["frobenius_norm_sq"][7]) and np.isnan(stacked["alpha"][7])
    assert not stacked["alpha_reliable"][7]
    monkeypatch.setattr(spectral, "FIT_VALUES", 2 * values[0].size)  # blocks of two trials
    blocked = spectral_metrics(values)
    for i in range(len(values)):
        single = spectral_metrics(values[i : i + 1])
        for name in SPECTRAL_METRICS:
            np.testing.assert_allclose(stacked[name][i], single[name][0], rtol=1e-10, err_msg=name)
            assert stacked[name].shape == (len(values),)
            np.testing.assert_allclose(blocked[name][i], single[name][0], rtol=1e-10, err_msg=name)


def test_alpha_is_reliable_from_min_eigenvalues_on():
    rng = np.random.default_rng(7)
    few = spectral_metrics(rng.standard_normal((3, 80, MIN_EIGENVALUES - 1)))
    enough = spectral_metrics(rng.standard_normal((3, MIN_EIGENVALUES, 80)))
    conv = spectral_metrics(rng.standard_normal((3, 32, 1, 3, 3)))
    assert not few["alpha_reliable"].any() and np.isfinite(few["alpha"]).all()
    assert enough["alpha_reliable"].all()
    assert not conv["alpha_reliable"].any() and np.isfinite(conv["alpha"]).all()


def test_conv_kernels_are_slices_transposed_to_tall_and_scaled_by_half():
    rng = np.random.default_rng(8)
    for n_out, n_in in ((4, 3), (2, 5)):
        values = rng.standard_normal((2, n_out, n_in, 2, 3))
        matrices = layer_matrices(values)
        assert matrices.shape == (2, 6, max(n_out, n_in), min(n_out, n_in))
        for i in range(2):
            for j in range(3):
                w = values[:, :, :, i, j]
                np.testing.assert_array_equal(matrices[:, 3 * i + j], w if n_out >= n_in else w.swapaxes(1, 2))
        sv = np.linalg.svd(values.transpose(0, 3, 4, 1, 2), compute_uv=False).reshape(2, -1)
        np.testing.assert_allclose(eigenvalues(values, conv2d_norm=False), np.sort(sv**2), rtol=1e-10)
        np.testing.assert_allclose(eigenvalues(values), np.sort(sv**2) / 2, rtol=1e-10)


def test_a_layer_with_one_eigenvalue_has_norms_but_no_fit():
    metrics = spectral_metrics(np.random.default_rng(9).standard_normal((2, 1, 7)))
    assert np.all(metrics["frobenius_norm_sq"] > EVALS_THRESH) and np.all(metrics["stable_rank"] == 1.0)
    assert np.isnan(metrics["alpha"]).all() and not metrics["alpha_reliable"].any()


# --- agreement with WeightWatcher 0.7.7 --------------------------------------------------------------------------

# Our column -> WeightWatcher's column in ``analyze()`` details.
WW_COLUMNS = {name: m.weightwatcher_column for name, m in SPECTRAL_METRICS.items() if m.weightwatcher_column}


def _zoo_like_models(n_models):
    """Torch models whose layers have our zoos' shapes; the (300 -> 200) layer gets a heavy-tailed spectrum."""
    import torch
    from torch import nn

    def layers():
        return {
            "dnn_digits_fc1": nn.Linear(64, 5), "dnn_digits_fc2": nn.Linear(5, 5), "dnn_digits_fc3": nn.Linear(5, 10),
            "dnn_mnist_fc1": nn.Linear(784, 50), "dnn_mnist_fc2": nn.Linear(50, 50), "dnn_mnist_fc3": nn.Linear(50, 10),
            "cnn_conv1": nn.Conv2d(1, 32, 3), "cnn_conv1_c8": nn.Conv2d(1, 8, 3), "cnn_fc": nn.Linear(32 * 6 * 6, 10),
            "vit_patch_embed": nn.Conv2d(1, 32, 4, stride=4), "vit_qkv": nn.Linear(32, 96),
            "vit_proj": nn.Linear(32, 32), "vit_mlp_fc1": nn.Linear(32, 64), "vit_mlp_fc2": nn.Linear(64, 32),
            "vit_head": nn.Linear(32, 10), "large": nn.Linear(300, 200), "large_heavy_tailed": nn.Linear(300, 200),
        }

    torch.manual_seed(0)
    rng = np.random.default_rng(10)
    models = [nn.ModuleDict(layers()) for _ in range(n_models)]
    for model in models:
        s = np.sqrt(_pareto(rng, (1, 200), 2.5, xmin=0.01))
        heavy = _with_singular_values(rng, s, 200, 300)[0]
        model["large_heavy_tailed"].weight.data = torch.from_numpy(heavy.astype(np.float32))
    return models


def test_metrics_equal_weightwatchers_on_zoo_shaped_layers():
    ww = pytest.importorskip("weightwatcher")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("with CUDA, weightwatcher analyses float16 weights with other thresholds")
    models = _zoo_like_models(2)
    # min_evals=1: analyse every layer (its default 8 skips the h = 5 layers); everything else its defaults.
    details = [ww.WeightWatcher(model=model).analyze(min_evals=1).set_index("longname") for model in models]
    for name in models[0]:
        values = np.stack([m[name].weight.detach().numpy() for m in models])
        ours = spectral_metrics(values)
        for trial, table in enumerate(details):
            row = table.loc[name]
            assert row["status"] == "success", name
            for column, ww_column in WW_COLUMNS.items():
                # Same eigenvalues up to float64 rounding (their SVD, our Gram eigenvalues: ~1e-15 λ_max), the
                # same estimators and the same xmin search: alpha, D and xmin agree to 1e-6 relative too; a looser
                # tolerance would hide a different xmin choice, and a tighter one is float noise.
                np.testing.assert_allclose(ours[column][trial], row[ww_column], rtol=1e-6, err_msg=f"{name} {column}")
            assert ours["alpha_reliable"][trial] == (row["num_evals"] >= MIN_EIGENVALUES), name
    assert ours["alpha_reliable"].all() and 1.5 < np.median(ours["alpha"]) < 3.5  # the heavy-tailed layer


def test_power_law_fit_equals_weightwatchers_on_random_spectra():
    ww = pytest.importorskip("weightwatcher")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("with CUDA, weightwatcher uses a larger EVALS_THRESH")
    watcher, rng = ww.WeightWatcher(), np.random.default_rng(11)
    for case in range(200):
        # 1 to 69 eigenvalues: failed, whole-spectrum, small-sample and standard fits; with some below
        # EVALS_THRESH, with ties, at other scales
        x = rng.pareto(rng.uniform(0.5, 4.0), int(rng.integers(1, 70))) + rng.uniform(0.0, 1.0)
        if case % 4 == 1:
            x[: rng.integers(0, len(x) + 1)] = rng.uniform(0.0, EVALS_THRESH)
        elif case % 4 == 2:
            x = np.round(x, 1)
        elif case % 4 == 3:
            x *= 10 ** rng.uniform(-4.0, 3.0)
        x = np.sort(x)
        alpha, _, xmin, _, distance, _, tail_size, *_ = watcher.fit_powerlaw(x, plot=False, savefig=False)
        expected = [np.nan, np.nan, np.nan, 0] if alpha == -1 else [alpha, distance, xmin, tail_size]
        fit = power_law_fit(x[None])
        ours = [fit[key][0] for key in ("alpha", "alpha_ks_distance", "alpha_xmin", "alpha_tail_size")]
        np.testing.assert_allclose(ours, expected, rtol=1e-9, err_msg=f"case {case}: {x}")
