"""Analysis speed and memory on a synthetic zoo: 1,000 trials of a DNN h=200 on MNIST-sized inputs.

The zoo file has the real layout (docs/data-format.md; variables, dims, attributes from
``weightzoo.io.store.result_to_dataset``, compression and chunking from ``weightzoo.io.store.encoding_for``):
fc1 200x784, fc2 200x200, fc3 10x200 and their biases, snapshots 0/1/20, 20 epochs of curves, a spread of
final accuracies with some diverged trials. It is written once, a block of trials at a time (the writer never
holds more than one block), to ``--cache`` (default ``$TMPDIR/weightzoo-bench``) and reused afterwards.

Every stage then runs in a fresh Python process that opens the zoo lazily with ``open_zoo`` and reports its
wall time, CPU time and peak resident memory (``ru_maxrss``, after imports and opening = ``base``). The
stages are what the workflow's analysis jobs of one experiment compute:

* ``groups``:     ``group_zoo`` (the default config: train accuracy, method delta): the ``group_trials`` job;
* ``extract``:    what the ``extract_features`` job computes (``jobs.features.extract``: features, node strengths and
                  densities from one read of the final snapshot, and ``training_status``; its dead-unit pass needs a
                  dataset and is left out);
* ``claims``:     ``claims_table`` on those features with the default settings (999 permutations and
                  bootstrap resamples; pooled, controlled and K-fold scopes of one architecture): ``evaluate_claims``;
* ``tsne_raw``, ``tsne_invariant``: ``project`` of all 1,000 trials (all weights) on raw / invariant features.

Parts of ``extract`` on their own, for diagnosis (each reads the zoo itself; not summed):

* ``stats``:      ``weight_statistics`` (per layer and whole network, last snapshot);
* ``kde``:        ``layer_density`` of every layer's weights, per accuracy group;
* ``strength``:   ``node_strength`` of every layer, then ``pairwise_strength`` (consecutive pairs, per group);
* ``features``:   ``trial_features`` (statistics at two snapshots, quantile functions, mean node strength);
* ``status``:     ``training_status`` without a dataset (which parameters moved from their initial values).

Targets (issue 3, kept by issues 7 and 22): groups + extract + claims <= 60 s together (until issue 22 the
budget summed the diagnostic stages, which read the zoo once each) with no stage above 2 GB peak, and no
stage holding more than one layer of all trials (fc1 of 1,000 trials at one snapshot = 627 MB float32);
t-SNE of 1,000 trials <= 60 s (each feature set). Each stage is repeated ``--repeat`` times; the best wall
time is kept and the 1-minute load average is printed beside every number (the machine is shared).

    .venv/bin/python bench/analysis_speed.py                  # write the zoo once (a few minutes), then time
    .venv/bin/python bench/analysis_speed.py --repeat 3 --json /tmp/analysis.json
    .venv/bin/python bench/analysis_speed.py --stages stats,kde --repeat 1
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

STAGES = ("groups", "extract", "claims", "stats", "kde", "strength", "features", "status", "tsne_raw",
          "tsne_invariant")
ANALYSIS = ("groups", "extract", "claims")
"""The budget's stages: what the workflow's analysis jobs of one experiment compute (group_trials,
extract_features, evaluate_claims); the other stages time parts of ``extract`` on their own, for diagnosis."""
GROUP_SETTINGS = {"accuracy": "train", "method": "delta", "delta": 0.10, "margin": 0.02}
LAYERS = (("fc1", 784), ("fc2", 200), ("fc3", 200))  # (layer, fan-in); outputs: hidden, hidden, classes
SNAPSHOTS = (0, 1, 20)
EPOCHS = 20
INIT_STD = 0.05
FORMAT = 2  # bump when the synthetic zoo or the stored layout changes (2: one chunk per trial and snapshot)
TARGET_SECONDS = 60.0
TARGET_PEAK_MB = 2000.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument(
        "--cache",
        default=os.path.join(tempfile.gettempdir(), "weightzoo-bench"),
        help="folder of the synthetic zoo file (kept between runs)",
    )
    p.add_argument("--block", type=int, default=25, help="trials per block written")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma list of {STAGES}")
    p.add_argument("--repeat", type=int, default=2, help="runs per stage; the best wall time is kept")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--child", nargs=2, metavar=("STAGE", "ZOO"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _load() -> float:
    return os.getloadavg()[0]


# ----------------------------------------------------------------------------------------- synthetic zoo
def _outputs(hidden):
    return {"fc1": hidden, "fc2": hidden, "fc3": 10}


def _fake_block(trials, hidden, seed):
    """A ``TrainResult``-like namespace for the given global trial indices (weights float32)."""
    import numpy as np

    n = len(trials)
    rng = np.random.default_rng([seed, int(trials[0])])
    # final train accuracy: ~82 % converged (0.90-0.995), ~8 % low (0.55-0.8), ~4 % stuck at the majority
    # share, ~6 % diverged (loss NaN from the divergence epoch on, weights frozen there)
    kind = rng.choice(4, size=n, p=[0.82, 0.08, 0.04, 0.06])
    final = np.where(
        kind == 0,
        rng.uniform(0.90, 0.995, n),
        np.where(kind == 1, rng.uniform(0.55, 0.80, n), 0.1135 + rng.normal(0, 0.002, n)),
    )
    diverged = kind == 3
    diverged_epoch = np.where(diverged, rng.integers(1, EPOCHS + 1, n), 0).astype(np.int32)
    epochs = np.arange(1, EPOCHS + 1)
    tau = rng.uniform(1.0, 4.0, n)[:, None]
    train_acc = final[:, None] - (final[:, None] - 0.1) * np.exp(-epochs / tau)
    test_acc = train_acc - np.abs(rng.normal(0.01, 0.005, (n, 1)))
    train_loss = -np.log(np.clip(train_acc, 1e-3, None)) * 1.2
    test_loss = -np.log(np.clip(test_acc, 1e-3, None)) * 1.3
    after = diverged[:, None] & (epochs[None, :] >= diverged_epoch[:, None])
    for curve in (train_loss, test_loss):
        curve[after] = np.nan
    for curve in (train_acc, test_acc):
        curve[after] = 0.098  # a NaN network predicts one class

    # weights: N(0, init_std^2) at snapshot 0, then a drift whose size follows how far the trial trained;
    # a diverged trial keeps the weights of the epoch it diverged in (it stopped updating)
    outputs = _outputs(hidden)
    weights = {}

    def progress(epoch):  # share of the trial's total drift reached after ``epoch`` epochs
        return (1 - np.exp(-epoch / tau[:, 0])) / (1 - np.exp(-EPOCHS / tau[:, 0]))

    last = np.where(diverged, diverged_epoch - 1, EPOCHS)  # epochs whose updates a trial kept
    progress = np.stack([progress(np.minimum(s, last)) for s in SNAPSHOTS], axis=1)  # (trial, snapshot)
    scale = np.where(kind == 2, 0.2, np.where(kind == 1, 0.6, 1.0)) * rng.uniform(0.8, 1.2, n)
    for layer, fan_in in LAYERS:
        fan_in = hidden if layer != "fc1" else fan_in
        shape = (n, outputs[layer], fan_in)
        init = rng.standard_normal(shape, dtype=np.float32) * np.float32(INIT_STD)
        drift = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.5 / np.sqrt(fan_in))
        w = np.empty((n, len(SNAPSHOTS), *shape[1:]), np.float32)
        b = np.zeros((n, len(SNAPSHOTS), shape[1]), np.float32)
        bias_drift = rng.standard_normal((n, shape[1]), dtype=np.float32) * np.float32(0.05)
        for s in range(len(SNAPSHOTS)):
            step = (progress[:, s] * scale).astype(np.float32)
            w[:, s] = init + step[:, None, None] * drift
            b[:, s] = step[:, None] * bias_drift
        weights[f"{layer}.weight"] = w
        weights[f"{layer}.bias"] = b
    trials = np.asarray(trials)
    return SimpleNamespace(
        trials=trials,
        seeds=trials + 1000,
        snapshots=list(SNAPSHOTS),
        weights=weights,
        train_loss=train_loss,
        test_loss=test_loss,
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        diverged=diverged,
        diverged_epoch=diverged_epoch,
        device="synthetic",
        vectorized=True,
        hyperparameters={"init_std": np.full(len(trials), INIT_STD)},
    )


def _block_dataset(trials, hidden, seed=0):
    from weightzoo.io.store import result_to_dataset

    hyper = {
        "epochs": EPOCHS,
        "batch_size": 100,
        "lr": 1e-3,
        "optimizer": "adam",
        "init_std": INIT_STD,
        "base_seed": 1000,
        "snapshots": [0, 1, -1],
    }
    return result_to_dataset(
        _fake_block(trials, hidden, seed),
        model="dnn",
        dataset="mnist",
        arch=f"h{hidden}",
        model_kwargs={"in_features": 784, "hidden": hidden, "n_classes": 10},
        hyperparameters=hyper,
        input_shape=[1, 28, 28],
        n_classes=10,
        dataset_source="synthetic (bench/analysis_speed.py)",
        config={"benchmark": "analysis_speed"},
    )


def write_synthetic_zoo(path: Path, n_trials: int, hidden: int, block: int) -> None:
    """Stream ``n_trials`` synthetic trials into ``path`` (atomic rename), ``block`` trials at a time.

    Coordinates, variables and attributes are laid out by xarray from a one-block template exactly as
    ``write_zoo`` would (same ``encoding_for``); the data variables are then filled block by block with
    netCDF4, so neither side ever holds more than one block.
    """
    import netCDF4
    import numpy as np
    import xarray as xr

    from weightzoo.io.store import encoding_for

    template = _block_dataset(np.arange(min(block, n_trials)), hidden)
    trial = np.arange(n_trials)
    coords = xr.Dataset(
        coords={
            "trial": ("trial", trial, template["trial"].attrs),
            "seed": ("trial", trial + 1000, template["seed"].attrs),
            "epoch": template["epoch"],
            "snapshot": template["snapshot"],
        }
    )
    # full-size stand-ins, lazily broadcast (no memory): only their names, dims, dtypes and attributes are used,
    # and encoding_for gives them write_zoo's encoding (zlib 4, one chunk per trial and snapshot)
    full = xr.Dataset(
        {
            name: var.isel(trial=0, drop=True).expand_dims(trial=n_trials).assign_attrs(var.attrs)
            for name, var in template.data_vars.items()
        },
        coords=coords.coords,
        attrs=template.attrs,
    )
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    # coordinates through xarray; data variables created with netCDF4 as xarray would create them
    coords.to_netcdf(tmp, engine="netcdf4")
    encoding = encoding_for(full)
    with netCDF4.Dataset(tmp, "a") as nc:
        for dim, size in full.sizes.items():
            if dim not in nc.dimensions:
                nc.createDimension(dim, size)
        for name, var in full.data_vars.items():
            enc = encoding[name]
            fill = np.nan if var.dtype.kind == "f" else None
            v = nc.createVariable(
                name,
                var.dtype,
                var.dims,
                zlib=enc["zlib"],
                complevel=enc["complevel"],
                chunksizes=enc["chunksizes"],
                fill_value=fill,
            )
            attrs = dict(var.attrs)
            attrs["coordinates"] = "seed"
            v.setncatts(attrs)
        nc.setncatts(template.attrs)
        for start in range(0, n_trials, block):
            stop = min(start + block, n_trials)
            part = template if start == 0 else _block_dataset(np.arange(start, stop), hidden)
            for name in full.data_vars:
                nc[name][start:stop] = part[name].values
            del part
            print(
                f"  wrote trials {start}..{stop - 1} (peak RSS {_rss_mb():.0f} MB, load {_load():.2f})",
                file=sys.stderr,
                flush=True,
            )
    os.replace(tmp, path)


def zoo_path(args) -> Path:
    return Path(args.cache) / f"dnn_h{args.hidden}_{args.trials}trials_v{FORMAT}.nc"


# ---------------------------------------------------------------------------------------------- stages
def run_stage(stage: str, path: str) -> dict:
    """Child process: run one stage on the lazily opened zoo, return timings and peak RSS."""
    import numpy as np

    from weightzoo.analysis.groups import group_zoo
    from weightzoo.analysis.kde import layer_density
    from weightzoo.analysis.projection import project
    from weightzoo.analysis.metrics import weight_statistics
    from weightzoo.analysis.strength import node_strength, pairwise_strength, strength_layers
    from weightzoo.analysis.zoo import layer_names
    from weightzoo.io.store import open_zoo

    with open_zoo(path) as ds:
        labels = None if stage == "groups" else group_zoo(ds, **GROUP_SETTINGS).values
        base = _rss_mb()
        load0 = _load()
        cpu0, t0 = time.process_time(), time.perf_counter()
        info = {}
        if stage == "groups":
            labels = group_zoo(ds, **GROUP_SETTINGS).values
            info = dict(zip(*np.unique(labels, return_counts=True)))
            info = {str(k): int(v) for k, v in info.items()}
        elif stage == "stats":
            stats = weight_statistics(ds)
            info = {"layers": [str(x) for x in stats["layer"].values], "finite": bool(np.isfinite(stats["std"]).all())}
        elif stage == "kde":
            densities = [layer_density(ds, f"{layer}_weight", groups=labels) for layer in layer_names(ds)]
            info = {"panels": [f"{d.name}:{d.sizes['group']}x{d.sizes['x']}" for d in densities]}
        elif stage == "strength":
            layers = strength_layers(ds)
            strengths = [node_strength(ds, layer) for layer in layers]
            pairs = pairwise_strength(ds, layers, groups=labels)
            info = {
                "layers": layers,
                "shapes": [list(s.shape) for s in strengths],
                "rho_all": [round(float(r), 3) for r in pairs["spearman_rho"].sel(group="all").values],
            }
        elif stage == "extract":  # the extract_features job (its dead-unit pass needs a dataset: left out)
            from weightzoo.analysis.trained import training_status
            from weightzoo.jobs.features import extract

            features, strengths, densities = extract(ds, labels, "dnn/bench/h")
            status = training_status(ds)
            info = {"vars": len(features.data_vars), "strength_layers": len(strengths.data_vars),
                    "density_layers": int(densities.sizes["layer"]), "parts": int(status.sizes["part"])}
        elif stage == "features":
            from weightzoo.analysis.features import trial_features

            features = trial_features(ds, labels)
            info = {"vars": sorted(features.data_vars), "levels": int(features.sizes["level"])}
        elif stage == "status":
            from weightzoo.analysis.trained import training_status

            status = training_status(ds)
            info = {"parts": int(status.sizes["part"])}
        elif stage == "claims":
            from weightzoo.analysis.claims import claims_table
            from weightzoo.analysis.features import trial_features

            features = trial_features(ds, labels)
            base = _rss_mb()
            cpu0, t0 = time.process_time(), time.perf_counter()  # the claims alone; features are timed above
            table = claims_table(features)
            info = {"rows": len(table), "verdicts": table["verdict"].value_counts().to_dict()}
        elif stage.startswith("tsne_"):
            proj = project(ds, groups=labels, features=stage[len("tsne_") :], seed=0)
            info = {
                k: proj.attrs[k]
                for k in ("n_trials", "n_features", "n_pca", "perplexity", "knn_accuracy", "silhouette", "note")
            }
            info = {
                k: (float(v) if isinstance(v, np.floating) else int(v) if isinstance(v, np.integer) else v)
                for k, v in info.items()
            }
        else:
            raise ValueError(f"unknown stage {stage!r}")
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "stage": stage,
        "wall_s": wall,
        "cpu_s": cpu,
        "base_mb": base,
        "peak_mb": _rss_mb(),
        "load_before": load0,
        "load_after": _load(),
        "info": info,
    }


def child(stage: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", stage, path], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"stage {stage} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- report
def machine() -> dict:
    import netCDF4
    import numpy
    import scipy
    import sklearn
    import xarray

    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "xarray": xarray.__version__,
        "netCDF4": netCDF4.__version__,
        "libnetcdf": netCDF4.__netcdf4libversion__,
        "libhdf5": netCDF4.__hdf5libversion__,
    }


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_stage(*args.child)))
        return 0
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    info = machine()
    print("machine:", json.dumps(info), flush=True)

    path = zoo_path(args)
    if not path.exists():
        print(f"writing synthetic zoo {path} ({args.trials} trials, {args.block} per block) ...", flush=True)
        load0, t0 = _load(), time.perf_counter()
        write = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, runpy; sys.argv = sys.argv[1:]; "
                "m = runpy.run_path(sys.argv[0]); from pathlib import Path; "
                "m['write_synthetic_zoo'](Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), "
                "int(sys.argv[4])); print('PEAK', m['_rss_mb']())",
                __file__,
                str(path),
                str(args.trials),
                str(args.hidden),
                str(args.block),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )  # progress goes to stderr, shown as it comes
        if write.returncode:
            raise SystemExit("writing the zoo failed (see above)")
        peak = float(write.stdout.strip().splitlines()[-1].split()[1])
        print(
            f"  written in {time.perf_counter() - t0:.0f} s, writer peak RSS {peak:.0f} MB "
            f"(load {load0:.2f} -> {_load():.2f})",
            flush=True,
        )
    import xarray as xr

    with xr.open_dataset(path, engine="netcdf4") as ds:
        one_layer_mb = ds["fc1_weight"].isel(snapshot=-1).nbytes / 1e6
        shape = {name: list(ds[name].shape) for name in ds.data_vars if name.endswith("_weight")}
    print(
        f"zoo: {path} ({path.stat().st_size / 1e9:.2f} GB on disk), weights {shape}; "
        f"one layer of all trials (fc1, one snapshot) = {one_layer_mb:.0f} MB",
        flush=True,
    )

    results = {}
    for r in range(args.repeat):
        for stage in stages:
            res = child(stage, str(path))
            results.setdefault(stage, []).append(res)
            print(
                f"  [{r + 1}/{args.repeat}] {stage:15s} wall {res['wall_s']:6.1f} s  cpu {res['cpu_s']:6.1f} s  "
                f"peak {res['peak_mb']:5.0f} MB (base {res['base_mb']:4.0f}, +{res['peak_mb'] - res['base_mb']:4.0f})"
                f"  load {res['load_before']:.2f}->{res['load_after']:.2f}  {json.dumps(res['info'])}",
                flush=True,
            )

    best = {s: min(runs, key=lambda x: x["wall_s"]) for s, runs in results.items()}
    peak = {s: max(x["peak_mb"] for x in runs) for s, runs in results.items()}
    print()
    print(
        f"{'stage':16s} {'best wall s':>11s} {'cpu s':>6s} {'load':>11s} {'peak MB':>8s} {'+base MB':>8s}  "
        f"{'> one layer?':>12s}"
    )
    for s in stages:
        b = best[s]
        grow = peak[s] - b["base_mb"]
        print(
            f"{s:16s} {b['wall_s']:11.1f} {b['cpu_s']:6.1f} {b['load_before']:5.2f}-{b['load_after']:5.2f} "
            f"{peak[s]:8.0f} {grow:8.0f}  {'yes' if grow > one_layer_mb * 1.05 else 'no':>12s}"
        )
    rows = []
    analysis = [s for s in ANALYSIS if s in best]
    if analysis:
        total = sum(best[s]["wall_s"] for s in analysis)
        top = max(peak[s] for s in analysis)
        rows.append(
            (
                f"{'+'.join(analysis)} total",
                f"<= {TARGET_SECONDS:.0f} s",
                f"{total:.1f} s",
                total <= TARGET_SECONDS and len(analysis) == len(ANALYSIS),
            )
        )
        rows.append(
            ("  peak RSS (max over stages)", f"<= {TARGET_PEAK_MB:.0f} MB", f"{top:.0f} MB", top <= TARGET_PEAK_MB)
        )
        held = max(peak[s] - best[s]["base_mb"] for s in analysis)
        rows.append(
            ("  growth over base (max)", f"<= one layer {one_layer_mb:.0f} MB", f"{held:.0f} MB", held <= one_layer_mb)
        )
    for s in ("tsne_raw", "tsne_invariant"):
        if s in best:
            rows.append(
                (
                    f"{s} ({args.trials} trials)",
                    f"<= {TARGET_SECONDS:.0f} s",
                    f"{best[s]['wall_s']:.1f} s",
                    best[s]["wall_s"] <= TARGET_SECONDS,
                )
            )
            rows.append(
                (f"  {s} peak RSS", f"<= {TARGET_PEAK_MB:.0f} MB", f"{peak[s]:.0f} MB", peak[s] <= TARGET_PEAK_MB)
            )
    print()
    print(f"{'target':36s} {'limit':>22s} {'measured':>10s}  met")
    for name, limit, value, ok in rows:
        print(f"{name:36s} {limit:>22s} {value:>10s}  {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": info, "zoo": str(path), "one_layer_mb": one_layer_mb, "runs": results, "targets": rows},
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
