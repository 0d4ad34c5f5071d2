"""Synthetic zoo datasets in the gathered-zoo layout of docs/data-format.md, for analysis tests.

With ``effect`` > 0 the weight standard deviation of a trial falls as its accuracy rises (the paper's
claim 1), so analyses have a planted effect to find; with ``effect=0`` weights are independent of accuracy.
"""

import json

import numpy as np
import xarray as xr


def make_zoo(
    n_trials=40,
    n_in=16,
    hidden=8,
    n_classes=10,
    epochs=3,
    effect=1.0,
    seed=0,
    diverged=(),
    model="dnn",
    dataset="synthetic",
):
    rng = np.random.default_rng(seed)
    accuracy = np.sort(rng.uniform(0.1, 1.0, n_trials))
    rng.shuffle(accuracy)
    scale = np.exp(-effect * (accuracy - accuracy.mean()) / accuracy.std())
    snapshots = np.array([0, 1, epochs])
    shapes = {"fc1": (hidden, n_in), "fc2": (hidden, hidden), "fc3": (n_classes, hidden)}
    data_vars = {}
    for layer, (n_out, n_in_) in shapes.items():
        w = rng.normal(0.0, 0.05, (n_trials, len(snapshots), n_out, n_in_))
        w[:, 1:] *= scale[:, None, None, None]
        data_vars[f"{layer}_weight"] = xr.Variable(
            ("trial", "snapshot", f"{layer}_out", f"{layer}_in"),
            w.astype(np.float32),
            {"parameter": f"{layer}.weight", "layer": layer, "kind": "weight", "long_name": f"{layer} weight", "units": "1"},
        )
        b = np.zeros((n_trials, len(snapshots), n_out), np.float32)
        data_vars[f"{layer}_bias"] = xr.Variable(
            ("trial", "snapshot", f"{layer}_out"),
            b,
            {"parameter": f"{layer}.bias", "layer": layer, "kind": "bias", "long_name": f"{layer} bias", "units": "1"},
        )
    curve = np.linspace(0.3, 1.0, epochs)[None, :]
    acc = np.clip(accuracy[:, None] * curve / curve[:, -1:], 0, 1)
    flags = np.zeros(n_trials, np.uint8)
    flags[list(diverged)] = 1
    acc[flags == 1] = 0.1
    data_vars.update(
        train_accuracy=(("trial", "epoch"), acc.astype(np.float32)),
        test_accuracy=(("trial", "epoch"), (acc * 0.97).astype(np.float32)),
        train_loss=(("trial", "epoch"), (-np.log(np.clip(acc, 1e-3, 1)) + 0.05).astype(np.float32)),
        test_loss=(("trial", "epoch"), (-np.log(np.clip(acc * 0.97, 1e-3, 1)) + 0.06).astype(np.float32)),
        diverged=(("trial",), flags),
        diverged_epoch=(("trial",), np.where(flags == 1, 1, 0).astype(np.int32)),
    )
    ds = xr.Dataset(
        data_vars,
        coords={
            "trial": np.arange(n_trials),
            "seed": ("trial", np.arange(n_trials)),
            "epoch": np.arange(1, epochs + 1),
            "snapshot": snapshots,
        },
        attrs={
            "model": model,
            "dataset": dataset,
            "arch": f"h{hidden}",
            "model_kwargs": json.dumps({"in_features": n_in, "hidden": hidden, "n_classes": n_classes}),
            "n_classes": n_classes,
        },
    )
    return ds


LAYERS = ["fc1", "fc2", "fc3", "network"]


def _statistics(std, rng) -> np.ndarray:
    """(trial, layer, stat) weight statistics of normal weights with per-trial std ``std`` (layers jittered)."""
    n = std.size
    stats = np.zeros((n, len(LAYERS), 7))
    stats[:, :, 1] = std[:, None] * rng.lognormal(0, 0.02, (n, len(LAYERS)))
    stats[:, :, 0] = rng.normal(0, 0.01, (n, len(LAYERS)))
    stats[:, :, 2:] = stats[:, :, 1:2] * np.array([-3, -0.67, 0, 0.67, 3])
    return stats


def _part(stats, quantiles, acc, width, levels, model, **trial_coords) -> xr.Dataset:
    """One synthetic experiment in the ``analysis.features`` layout (node strength = std x width)."""
    n = acc.size
    curve = np.linspace(0.5, 1.0, 3)
    return xr.Dataset(
        {
            "statistic": (("trial", "layer", "stat"), stats),
            "quantile_function": (("trial", "layer", "level"), quantiles),
            "mean_strength": (("trial", "strength_layer"), stats[:, :3, 1] * width),
            "train_accuracy": (("trial", "epoch"), acc[:, None] * curve),
            "test_accuracy": (("trial", "epoch"), acc[:, None] * curve * 0.97),
            "diverged": (("trial",), np.zeros(n, np.uint8)),
        },
        coords={
            "trial": np.arange(n), "group": ("trial", np.full(n, "")),
            "arch": ("trial", np.full(n, f"h{width}")),
            "experiment": ("trial", np.full(n, f"{model}/synthetic/h{width}")),
            **{name: ("trial", np.full(n, value)) for name, value in trial_coords.items()},
            "layer": LAYERS, "stat": ["mean", "std", "q0", "q25", "q50", "q75", "q100"],
            "strength_layer": ["fc1", "fc2", "fc3"], "level": levels, "epoch": [1, 2, 3],
        },
        attrs={"model": model, "dataset": "synthetic", "snapshot": 3, "early_snapshot": -1, "network_layer": "network"},
    )


def make_features(widths=(5, 20, 50, 200), n_per_arch=30, width_effect=True, within_effect=0.0, spread=0.08,
                  seed=0, n_levels=64, model="dnn"):
    """Synthetic pooled features (``analysis.features`` layout) of a width sweep with known truth.

    Accuracy rises with width and varies inside each width (sd ``spread``); with ``width_effect`` the weight
    std falls with width (as measured on Fashion-MNIST: 0.26 / 0.16 / 0.13 / 0.12), so pooled groups differ
    in std through width alone; ``within_effect`` > 0 also lowers std with accuracy inside a width.
    Groups are the pooled accuracy tertiles (``assign_groups`` with bins): low and high trials exist inside
    most widths, but the high group is mostly wide nets. Node strength is std x width.
    """
    import scipy.stats

    from weightzoo.analysis.features import quantile_levels, pool
    from weightzoo.analysis.groups import assign_groups

    rng = np.random.default_rng(seed)
    base_acc = np.linspace(0.70, 0.84, len(widths))
    base_std = np.array([0.26, 0.16, 0.13, 0.12, 0.11, 0.10])[: len(widths)] if width_effect else np.full(len(widths), 0.15)
    parts = []
    for w, (width, acc0, std0) in enumerate(zip(widths, base_acc, base_std)):
        acc = np.clip(acc0 + rng.normal(0, spread, n_per_arch), 0.15, 1.0)
        z = (acc - acc.mean()) / acc.std()
        std = std0 * np.exp(-within_effect * z + rng.normal(0, 0.05, n_per_arch))
        stats = _statistics(std, rng)
        levels = quantile_levels(n_levels)
        quantiles = stats[:, :, 1:2] * scipy.stats.norm.ppf(levels)[None, None, :]
        parts.append(_part(stats, quantiles.astype(np.float32), acc, width, levels, model))
    pooled = pool(parts)
    final = pooled["train_accuracy"].isel(epoch=-1).values
    cuts = np.quantile(final, [1 / 3, 2 / 3])
    groups = assign_groups(final, n_classes=10, method="bins", bins=cuts)
    pooled = pooled.assign_coords(group=("trial", groups.astype(str)))
    return pooled


def make_recipe_features(archs=(5, 50), inits=(0.05, 1.0), n_seeds=24, recipe_effect=True, seed_effect=0.0,
                         alike_effect=0.0, n_levels=64, seed=0, model="dnn"):
    """Synthetic pooled features of a seed design with known truth: recipes (arch x init_std), seeds inside.

    ``recipe_effect``: a large init lowers accuracy by 0.25 and multiplies the weight std by 3 (a recipe
    confound: pooled, high trials have low std; among seeds of one recipe nothing). ``seed_effect`` > 0 also
    lowers the std with accuracy among seeds of one recipe (a planted seed-level claim 1). ``alike_effect``
    > 0 makes the better seeds of a recipe more alike (their log std scatters less; a planted claim 2).
    Groups by the pooled accuracy (``assign_groups`` delta). Node strength is std x width (claim 3 follows
    claim 1's sign: a planted claim 1 contradicts claim 3).
    """
    import scipy.stats

    from weightzoo.analysis.features import pool, quantile_levels
    from weightzoo.analysis.groups import assign_groups

    rng = np.random.default_rng(seed)
    parts = []
    levels = quantile_levels(n_levels)
    for a, width in enumerate(archs):
        for init in inits:
            large = init == max(inits) and recipe_effect
            acc = np.clip(0.80 + 0.05 * a - (0.25 if large else 0.0) + rng.normal(0, 0.03, n_seeds), 0.15, 1.0)
            z = (acc - acc.mean()) / acc.std()
            rank = scipy.stats.rankdata(acc) / n_seeds
            scatter = 0.05 + alike_effect * (1 - rank)
            std = 0.1 * (3.0 if large else 1.0) * np.exp(-seed_effect * 0.3 * z + rng.normal(0, 1, n_seeds) * scatter)
            stats = _statistics(std, rng)
            shape = 1 + 0.02 * rng.normal(0, 1, (n_seeds, len(LAYERS), 1))
            normal = scipy.stats.norm.ppf(levels)[None, None, :]
            quantiles = stats[:, :, 1:2] * np.sign(normal) * np.abs(normal) ** shape
            parts.append(_part(stats, quantiles, acc, width, levels, model, init_std=init))
    pooled = pool(parts)
    final = pooled["train_accuracy"].isel(epoch=-1).values
    groups = assign_groups(final, n_classes=10, method="delta", delta=0.1)
    return pooled.assign_coords(group=("trial", groups.astype(str)))


def make_benchmark_features(truth="planted", n_recipes=80, seeds=1, layers=("conv1", "conv2", "conv3", "fc"),
                            model="smallcnn", dataset="synthetic", arch="base", diverged=(), seed=0):
    """Synthetic features of one experiment in the full ``analysis.features`` layout the prediction benchmark
    reads (``statistic``, ``bias_statistic``, ``spectral``, ``strength_statistic``, curves), with known truth.

    Every recipe has its own ``init_std`` (per-trial random draws when ``seeds`` is 1). A latent scale ``z``
    sets the weight std of every layer (and through it the spectral norms and node strengths). ``truth``:
    ``planted``: accuracy rises with ``z`` (a function of a weight statistic); ``null``: accuracy independent of
    the weights; ``recipe``: ``z`` is the recipe's (its seeds share it) and accuracy is the recipe's own random
    level plus seed noise, so the weights carry the recipe and nothing about accuracy beyond it.
    ``diverged``: trial indices flagged as diverged (accuracy 0.1).
    """
    from weightzoo.analysis.features import pool
    from weightzoo.analysis.metrics import family_metrics

    rng = np.random.default_rng(seed)
    n = n_recipes * seeds
    recipe = np.repeat(np.arange(n_recipes), seeds)
    if truth == "recipe":
        z = rng.normal(size=n_recipes)[recipe] + 0.01 * rng.normal(size=n)
        acc = rng.uniform(0.4, 0.9, n_recipes)[recipe] + 0.005 * rng.normal(size=n)
    else:
        z = rng.normal(size=n)
        acc = 0.65 + 0.1 * np.tanh(z) + 0.01 * rng.normal(size=n) if truth == "planted" else rng.uniform(0.4, 0.9, n)
    flags = np.zeros(n, np.uint8)
    flags[list(diverged)] = 1
    acc[flags == 1] = 0.1
    names = [*layers, "network"]
    std = 0.1 * np.exp(0.5 * z[:, None] + 0.05 * rng.normal(size=(n, len(names))))
    stats = np.zeros((n, len(names), 7))
    stats[:, :, 0] = rng.normal(0, 0.01, (n, len(names)))
    if truth == "recipe":  # a second code of the recipe in the means of its weights
        stats[:, :, 0] = rng.normal(0, 0.02, n_recipes)[recipe, None] + rng.normal(0, 0.001, (n, len(names)))
    stats[:, :, 1] = std
    stats[:, :, 2:] = stats[:, :, :1] + std[:, :, None] * np.array([-3, -0.67, 0, 0.67, 3])
    bias = stats * 0.1 + rng.normal(0, 0.001, stats.shape)
    spectral_names = [m.name for m in family_metrics("spectral")]
    spectral = rng.lognormal(0, 0.3, (n, len(names), len(spectral_names)))
    spectral[:, :, :2] *= std[:, :, None] ** 2  # squared Frobenius and spectral norms follow the scale
    spectral[:, -1] = np.nan  # not defined on the whole network
    width = np.array([16.0] * (len(layers) - 1) + [10.0])
    strength = stats[:, :-1] * width[None, :, None] * (1 + 0.02 * rng.normal(size=(n, len(layers), 1)))
    curve = np.linspace(0.5, 1.0, 3)
    part = xr.Dataset(
        {
            "statistic": (("trial", "layer", "stat"), stats),
            "bias_statistic": (("trial", "layer", "stat"), bias),
            "spectral": (("trial", "layer", "spectral_stat"), spectral),
            "strength_statistic": (("trial", "strength_layer", "stat"), np.abs(strength)),
            "mean_strength": (("trial", "strength_layer"), np.abs(strength[:, :, 0])),
            "train_accuracy": (("trial", "epoch"), acc[:, None] * curve / 0.97),
            "test_accuracy": (("trial", "epoch"), acc[:, None] * curve),
            "diverged": (("trial",), flags),
        },
        coords={
            "trial": np.arange(n), "group": ("trial", np.full(n, "")), "arch": ("trial", np.full(n, arch)),
            "experiment": ("trial", np.full(n, f"{model}/{dataset}/{arch}")), "seed": ("trial", np.arange(n)),
            "init_std": ("trial", np.exp(rng.uniform(-5, 0, n_recipes))[recipe]),
            "layer": names, "stat": ["mean", "std", "q0", "q25", "q50", "q75", "q100"],
            "spectral_stat": spectral_names, "strength_layer": list(layers), "epoch": [1, 2, 3],
        },
        attrs={"model": model, "dataset": dataset, "snapshot": 3, "early_snapshot": -1, "network_layer": "network"},
    )
    return pool([part])


def make_drawn_features(n=64, lr_effect=True, seed_effect=0.0, seed=0, width=20, model="dnn"):
    """Synthetic features of a zoo where every net draws its own learning rate (log-uniform in [1e-4, 5e-2], the
    Small CNN Zoo's design; issue 21's example): one architecture, no two nets sharing a recipe.

    ``lr_effect``: the weight std follows log lr (Spearman about 1) and accuracy is a smooth concave function of
    log lr, so pooled, std and accuracy correlate through lr alone. ``seed_effect`` > 0 plants a within-recipe
    claim 1: the std also falls with the accuracy a net got beyond what its lr explains.
    """
    import scipy.stats

    from weightzoo.analysis.features import quantile_levels
    from weightzoo.analysis.groups import assign_groups

    rng = np.random.default_rng(seed)
    log_lr = rng.uniform(np.log(1e-4), np.log(5e-2), n)
    u = (log_lr - np.log(1e-4)) / (np.log(5e-2) - np.log(1e-4))  # 0..1
    noise = rng.normal(0, 1, n)
    acc = 0.80 + (0.12 * (1 - (2 * u - 0.7) ** 2) if lr_effect else 0.0) + 0.02 * noise
    std = 0.1 * np.exp((1.5 * u if lr_effect else 0.0) - seed_effect * 0.3 * noise + 0.05 * rng.normal(0, 1, n))
    levels = quantile_levels(64)
    stats = _statistics(std, rng)
    normal = scipy.stats.norm.ppf(levels)[None, None, :]
    quantiles = stats[:, :, 1:2] * np.sign(normal) * np.abs(normal) ** (1 + 0.02 * rng.normal(0, 1, (n, len(LAYERS), 1)))
    part = _part(stats, quantiles, np.clip(acc, 0.15, 1.0), width, levels, model).assign_coords(
        lr=("trial", np.exp(log_lr)))
    final = part["train_accuracy"].isel(epoch=-1).values
    groups = assign_groups(final, n_classes=10, method="delta", delta=0.1)
    return part.assign_coords(group=("trial", groups.astype(str)))
