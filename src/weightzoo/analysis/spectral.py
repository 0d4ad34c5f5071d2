"""Spectral metrics of a layer's weight matrices, defined as WeightWatcher 0.7.7 defines them, for many trials at once.

The eigenvalues are those of WᵀW (the squared singular values of W), formed as ``WeightWatcher.analyze()`` forms
them with its defaults on a PyTorch model, on its CPU path (float32 weights, float64 linear algebra):

* A Linear weight (out, in) is one matrix; a packed ViT ``qkv`` (3d, d) stays one (3d, d) matrix.
* A Conv2d kernel (out, in, kh, kw) is kh·kw matrices ``W[:, :, i, j]`` (not their FFT), each transposed to have
  at least as many rows as columns, scaled by sqrt(1/2) (``conv2d_norm=True``), with their eigenvalues pooled
  into one spectrum of kh·kw·min(out, in) values (``pool=True``).
* Every eigenvalue is kept (min(out, in) per matrix); the power-law fit uses those above ``EVALS_THRESH``.

The power law is WeightWatcher's default fit (``pl_package="ww"``, ``WWFit``): every fitted eigenvalue but the
largest is a candidate xmin; for each, the continuous MLE alpha = 1 + n / Σ log(λ/xmin) over the n eigenvalues
λ >= xmin and the KS distance D = max |1 - (λ/xmin)^(1-alpha) - k/n| (k = 0..n-1 along the sorted tail); the
candidate with the smallest D wins. With fewer than ``SMALL_N`` fitted eigenvalues it switches, as WWFit does, to
the bias-corrected alpha = 1 + (n-1) / Σ log(λ/xmin) on tails of at least ``SMALL_N_MIN_TAIL`` (or the whole
spectrum when it is shorter), and still picks the smallest D (its small-sample objective J is computed, then
overridden by ``WWFit.__init__``'s argmin of D). It fails (NaN here, -1 in WeightWatcher) when fewer than two
eigenvalues exceed ``EVALS_THRESH``.

The norms are WeightWatcher's, which are squared: its ``norm`` is Σλ = ||W||_F² and its ``spectral_norm`` is
λ_max = σ_max², hence our names ``frobenius_norm_sq`` and ``spectral_norm_sq`` (for a Conv2d, half the sums over
its slices); ``SPECTRAL_METRICS`` names the WeightWatcher column each metric equals. With CUDA available,
WeightWatcher itself switches to float16 weights and larger thresholds; these are the numbers of its CPU path.

WeightWatcher skips layers with fewer than 8 eigenvalues (``min_evals``, counted as ``num_evals``); we compute
every layer and flag alpha as reliable only from ``MIN_EIGENVALUES`` eigenvalues on, the number its README asks
for, and only where the fit succeeded.

Everything is vectorised over trials: the eigenvalues come from batched Gram matrices (``eigvalsh``), redone by
batched SVD for the trials whose Gram matrix is too ill-conditioned to resolve its small eigenvalues, and the fit
evaluates every candidate xmin of every trial in one array operation, a block of trials at a time.
"""

from typing import NamedTuple

import numpy as np

# README of WeightWatcher: a power-law fit needs about 50 eigenvalues; below that alpha is flagged unreliable.
MIN_EIGENVALUES = 50
# Eigenvalues entering the power-law fit are those above this (weightwatcher.constants.EVALS_THRESH, CPU path).
EVALS_THRESH = 1e-5
# WWFit switches to its small-sample fit below this many eigenvalues (WW_powerlaw.SMALL_N_CUTOFF) ...
SMALL_N = 20
# ... which only considers tails of at least this many eigenvalues (fit_powerlaw_smallN k_min) ...
SMALL_N_MIN_TAIL = 8
# ... with a positive log sum (its degenerate-tail guard).
SMALL_N_MIN_LOG_SUM = 1e-12
# weightwatcher.constants.EPSILON, added to the eigenvalue shares and to the rank in the matrix entropy.
ENTROPY_EPSILON = 1e-10
# WeightWatcher multiplies every Conv2d slice by sqrt(conv2d_count / 2) with conv2d_count = 1 (conv2d_norm=True).
CONV2D_NORM = np.sqrt(0.5)
# A Gram eigenvalue is off by about M·eps·λ_max; trials with λ_max/λ_min above this are redone by SVD so that
# every eigenvalue keeps about eight significant digits, as WeightWatcher's SVD gives.
MAX_GRAM_CONDITION = 1e6
# Trials are processed a block at a time, the block holding about this many float64 values per array.
FIT_VALUES = 1 << 21


class SpectralMetric(NamedTuple):
    """What a metric of ``spectral_metrics`` is, for a metric registry."""

    long_name: str
    units: str
    higher_means: str
    weightwatcher_column: str


SPECTRAL_METRICS = {
    "frobenius_norm_sq": SpectralMetric(
        "squared Frobenius norm ||W||_F^2 = Σλ (Conv2d: ½ Σ over kernel slices)", "1",
        "larger weights", "norm"),
    "spectral_norm_sq": SpectralMetric(
        "squared spectral norm σ_max^2 = λ_max (Conv2d: ½ max over kernel slices)", "1",
        "a larger top singular value", "spectral_norm"),
    "stable_rank": SpectralMetric(
        "stable rank Σλ / λ_max", "1",
        "energy spread over more directions", "stable_rank"),
    "spectral_entropy": SpectralMetric(
        "matrix entropy -Σ p log p / log rank, p = λ / Σλ", "1",
        "a flatter spectrum (1 = all eigenvalues equal)", "entropy"),
    "alpha": SpectralMetric(
        "power-law exponent alpha of the tail of the eigenvalue density of WᵀW", "1",
        "a lighter tail (WeightWatcher: 2 to 6 well trained, above 6 under-trained)", "alpha"),
    "alpha_ks_distance": SpectralMetric(
        "Kolmogorov-Smirnov distance D of the power-law fit", "1",
        "a worse fit", "D"),
    "alpha_xmin": SpectralMetric(
        "smallest eigenvalue of the fitted power-law tail (xmin)", "1",
        "a tail starting at larger eigenvalues", "xmin"),
    "alpha_tail_size": SpectralMetric(
        "number of eigenvalues >= xmin (in the fitted tail)", "count",
        "a longer fitted tail", "num_pl_spikes"),
    "num_eigenvalues": SpectralMetric(
        "number of eigenvalues of the layer's pooled spectrum", "count",
        "more eigenvalues", "num_evals"),
    "alpha_reliable": SpectralMetric(
        f"alpha fitted on a spectrum of at least {MIN_EIGENVALUES} eigenvalues", "bool",
        "true: alpha can be trusted", ""),
}


def layer_matrices(values: np.ndarray) -> np.ndarray:
    """The matrices WeightWatcher analyses for one parameter, stacked: (trial, matrix, N, M) with N >= M.

    ``values`` is (trial, out, in) for a Linear layer (one matrix per trial) or (trial, out, in, kh, kw) for a
    Conv2d kernel (kh·kw matrices ``W[:, :, i, j]``, i outer). Returns views where it can; the sqrt(1/2)
    ``conv2d_norm`` scaling WeightWatcher then applies to conv slices is applied by ``eigenvalues``.
    """
    values = np.asarray(values)
    if values.ndim == 3:
        matrices = values[:, None]
    elif values.ndim == 5:
        n_trials, n_out, n_in, kh, kw = values.shape
        matrices = values.transpose(0, 3, 4, 1, 2).reshape(n_trials, kh * kw, n_out, n_in)
    else:
        raise ValueError(f"expected (trial, out, in) or (trial, out, in, kh, kw) weights, got shape {values.shape}")
    return matrices if matrices.shape[2] >= matrices.shape[3] else matrices.swapaxes(2, 3)


def eigenvalues(values: np.ndarray, conv2d_norm: bool = True) -> np.ndarray:
    """Pooled eigenvalues of WᵀW per trial, ascending: (trial, matrices·M), WeightWatcher's ``evals``.

    BLAS runs on one thread here: the matrices are small and batched, so more threads only synchronise (issue 22:
    the features of 150 trials of h=200 took 11.5 s CPU with OpenBLAS' two threads on a loaded 2-core machine,
    3.8 s with one; the same numbers to the last bit)."""
    from threadpoolctl import threadpool_limits

    matrices = layer_matrices(values)
    is_conv = np.ndim(values) == 5
    with threadpool_limits(limits=1, user_api="blas"):
        return np.concatenate([_block_eigenvalues(matrices[block], conv2d_norm and is_conv)
                               for block in _trial_blocks(matrices.shape[0], np.prod(matrices.shape[1:]))])


def _trial_blocks(n_trials: int, values_per_trial: int) -> list[slice]:
    step = max(1, FIT_VALUES // max(1, values_per_trial))
    return [slice(start, start + step) for start in range(0, max(n_trials, 1), step)]


def _block_eigenvalues(matrices: np.ndarray, conv2d_norm: bool) -> np.ndarray:
    """Eigenvalues of one block of trials, ascending per trial; ``conv2d_norm`` halves them (conv slices)."""
    matrices = matrices.astype(np.float64)
    finite = np.isfinite(matrices).all(axis=(1, 2, 3))  # a diverged trial's weights may be NaN or inf
    matrices[~finite] = 0.0
    if matrices.shape[2] == matrices.shape[3]:
        # a square matrix's smallest singular value is near 0, so its Gram matrix is almost always too
        # ill-conditioned: go straight to the SVD the fallback below would redo it with
        evals = np.linalg.svd(matrices, compute_uv=False)[..., ::-1] ** 2
        unresolved = np.zeros(len(matrices), bool)
    else:
        evals = np.linalg.eigvalsh(matrices.swapaxes(2, 3) @ matrices)
        unresolved = np.any(evals[..., 0] < evals[..., -1] / MAX_GRAM_CONDITION, axis=1)
    if unresolved.any():
        evals[unresolved] = np.linalg.svd(matrices[unresolved], compute_uv=False)[..., ::-1] ** 2
    evals[~finite] = np.nan
    if conv2d_norm:
        evals *= CONV2D_NORM**2
    return np.sort(evals.reshape(evals.shape[0], evals.shape[1] * evals.shape[2]), axis=1)


def power_law_fit(evals: np.ndarray) -> dict[str, np.ndarray]:
    """WeightWatcher's default power-law fit of each row of ``evals`` (trial, n), rows ascending.

    Returns ``alpha``, ``alpha_ks_distance`` (D) and ``alpha_xmin``, NaN where the fit fails, and
    ``alpha_tail_size`` (eigenvalues >= xmin, 0 where the fit fails), each a (trial,) array.
    """
    evals = np.asarray(evals, dtype=np.float64)
    parts = [_block_power_law_fit(evals[block]) for block in _trial_blocks(evals.shape[0], evals.shape[1] ** 2)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _block_power_law_fit(x: np.ndarray) -> dict[str, np.ndarray]:
    n_trials, length = x.shape
    fitted = x > EVALS_THRESH  # a suffix of each ascending row
    n_fit = fitted.sum(axis=1)
    failed = n_fit < 2
    alpha, distance, xmin = (np.full(n_trials, np.nan) for _ in range(3))
    tail_size = np.zeros(n_trials, np.int64)
    if length >= 2:
        x_fitted = np.where(fitted, x, 1.0)
        # Candidate xmin = x[:, i] for i < length - 1; its tail x[:, i:] does not depend on how many smaller
        # eigenvalues were left out, so one array holds the candidates of every trial.
        candidate_alpha, has_distance = _candidate_alphas(x_fitted, n_fit)
        with np.errstate(over="ignore", invalid="ignore"):
            ks = _ks_distances(x_fitted, np.where(has_distance, candidate_alpha, 2.0))
        candidate_distance = np.where(has_distance, ks, 1.0)
        candidate_distance[np.arange(length - 1)[None, :] < (length - n_fit)[:, None]] = np.inf
        best = np.argmin(candidate_distance, axis=1)  # the first smallest D, as np.argmin in WWFit
        rows = np.arange(n_trials)
        alpha = np.where(failed, np.nan, candidate_alpha[rows, best])
        distance = np.where(failed, np.nan, candidate_distance[rows, best])
        xmin = np.where(failed, np.nan, x[rows, best])
        tail_size = np.where(failed, 0, (x >= xmin[:, None]).sum(axis=1))
    return {"alpha": alpha, "alpha_ks_distance": distance, "alpha_xmin": xmin, "alpha_tail_size": tail_size}


def _candidate_alphas(x: np.ndarray, n_fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WWFit's alpha for every candidate xmin (trial, candidate), and whether it computes a KS distance for it."""
    length = x.shape[1]
    candidate = np.arange(length - 1)
    tail_n = (length - candidate).astype(np.float64)
    log_x = np.log(x)
    log_sum = np.cumsum(log_x[:, ::-1], axis=1)[:, ::-1][:, :-1] - tail_n * log_x[:, :-1]  # Σ log(λ / xmin)
    with np.errstate(divide="ignore", invalid="ignore"):
        standard = 1.0 + tail_n / log_sum
        small_n = 1.0 + (tail_n - 1.0) / log_sum
    # The small-sample fit skips tails shorter than SMALL_N_MIN_TAIL; when that leaves none, it fits the whole
    # fitted spectrum (the smallest fitted eigenvalue as xmin).
    whole = (candidate[None, :] == (length - n_fit)[:, None]) & (n_fit < SMALL_N_MIN_TAIL)[:, None]
    small_fitted = (log_sum > SMALL_N_MIN_LOG_SUM) & ((tail_n >= SMALL_N_MIN_TAIL) | whole)
    small = (n_fit < SMALL_N)[:, None]
    alpha = np.where(small, np.where(small_fitted, small_n, 0.0), standard)
    return alpha, (alpha > 1.0) & (small_fitted | ~small)


def _ks_distances(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """max over each candidate's tail of |1 - (λ/xmin)^(1-alpha) - k/n|, (trial, candidate)."""
    length = x.shape[1]
    candidate = np.arange(length - 1)
    position = np.arange(length)[None, :] - candidate[:, None]  # k of eigenvalue j in the tail of candidate i
    in_tail = position >= 0
    ratio = np.where(in_tail, x[:, None, :] / x[:, :-1, None], 1.0)
    gap = np.abs(1.0 - ratio ** (1.0 - alpha[:, :, None]) - position / (length - candidate)[:, None])
    return np.where(in_tail, gap, 0.0).max(axis=2)


def spectrum_metrics(evals: np.ndarray, n_rows: int) -> dict[str, np.ndarray]:
    """Norm metrics of ascending eigenvalue rows (trial, n) of matrices with ``n_rows`` (N, the larger side) rows.

    WeightWatcher's ``norm``, ``spectral_norm``, ``stable_rank`` and ``entropy`` (``apply_norm_metrics``): the
    entropy's rank counts singular values above σ_max·N·eps, as ``numpy.linalg.matrix_rank``.
    """
    evals = np.asarray(evals, dtype=np.float64)
    total = evals.sum(axis=1)
    top = evals[:, -1]
    singular = np.sqrt(np.clip(evals, 0.0, None))
    rank = (singular > singular[:, -1:] * n_rows * np.finfo(np.float64).eps).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = evals / total[:, None] + ENTROPY_EPSILON
        entropy = -(share * np.log(share)).sum(axis=1) / np.log(rank + ENTROPY_EPSILON)
        stable_rank = total / top
    return {"frobenius_norm_sq": total, "spectral_norm_sq": top, "stable_rank": stable_rank,
            "spectral_entropy": entropy, "num_eigenvalues": np.full(evals.shape[0], evals.shape[1])}


def spectral_metrics(values: np.ndarray, conv2d_norm: bool = True) -> dict[str, np.ndarray]:
    """Every metric of ``SPECTRAL_METRICS`` for one parameter of many trials, each a (trial,) array.

    ``values`` is a layer's weight as a zoo stores it at one snapshot: (trial, out, in) or (trial, out, in, kh, kw).
    """
    evals = eigenvalues(values, conv2d_norm)
    n_rows = layer_matrices(values).shape[2]
    metrics = spectrum_metrics(evals, n_rows)
    fit = power_law_fit(evals)
    metrics.update((key, fit[key]) for key in ("alpha", "alpha_ks_distance", "alpha_xmin", "alpha_tail_size"))
    metrics["alpha_reliable"] = (metrics["num_eigenvalues"] >= MIN_EIGENVALUES) & np.isfinite(fit["alpha"])
    return {name: metrics[name] for name in SPECTRAL_METRICS}
