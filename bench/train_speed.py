"""Training speed: a naive torchvision-style loop against weightzoo's trainer, and against GEMM peak.

Both sides do the same work per epoch on the same trials: one pass over the training subset in batches of
100 with Adam, then the loss and accuracy on the whole training and test subsets.

* naive: a Dataset of uint8 HxW images with per-sample ``ToTensor`` + ``Normalize``,
  ``DataLoader(batch_size=100, shuffle=True)``, an ``nn.Module`` and ``torch.optim.Adam``, one trial at a time;
* weightzoo: ``train_trials`` on uint8 data resident in memory, vectorised (K trials in one process) and
  one by one (``vectorize=False``).

Every measurement runs in fresh worker processes with the layout's thread count: ``1t`` (one process, one
thread), ``2t`` (one process, two threads), ``2p`` (two processes of one thread each training their own
trials at the same time, as two Snakemake jobs would). Throughput is trial-samples/s = trials x training
samples x epochs / wall time, and also per CPU second of the workers (``time.process_time``), which is
what to compare on a machine that other people are loading: wall times there measure their load too. Useful FLOPs = 6 x MACs per training sample + 2 x MACs per evaluated sample
(MACs counted by ``torch.utils.flop_counter``); "% peak" divides the FLOPs per CPU second by the best fp32
``torch.mm`` FLOPs per CPU second (1024-2048 squares) measured in the same layout in the same run.

    .venv/bin/python bench/train_speed.py                 # default cases, a few minutes on 2 cores
    .venv/bin/python bench/train_speed.py --cases dnn:200 --layouts 2t --train-samples 20000
    python bench/train_speed.py --device cuda --layouts 1t --trials 64,256,1024 --project config/paper.yaml

On a GPU (``--device cuda``, bench/gpu_check.sh) the naive loop moves each DataLoader batch to the GPU,
``--trials`` sweeps K, and ``--project CONFIG`` fits the throughput model of weightzoo.cluster to the best K
per case and prints the GPU-hours that CONFIG's grid would take.
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_CASES = "dnn:5,dnn:50,dnn:200,cnn:4,cnn:16,vit"
# The default config's ViT scale: 7x7 patches (16 tokens + class token), width 16, one block.
VIT_ARCH = {"patch_size": 7, "embed_dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "pool": "cls"}
# The paper preset (case "vitp"): the whole 28x28 image as one token of width 784, mean pooling.
VIT_PAPER_ARCH = {"patch_size": 28, "embed_dim": 784, "depth": 1, "heads": 4, "mlp_ratio": 4.0, "pool": "mean"}
LAYOUTS = {"1t": (1, 1), "2t": (1, 2), "2p": (2, 1)}  # name: (processes, threads per process)

_barrier = None
_cache = {}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="auto", help="fmnist, mnist5k or auto (fmnist when installed)")
    p.add_argument("--cases", default=DEFAULT_CASES, help="comma list: dnn:H, cnn:C, vit")
    p.add_argument("--layouts", default="1t,2t,2p", help=f"comma list of {list(LAYOUTS)}")
    p.add_argument("--train-samples", type=int, default=6000, help="training subset size")
    p.add_argument("--test-samples", type=int, default=1000, help="test subset size")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--trials", default="16", help="K: trials per process, vectorised; a comma list sweeps K")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda: one process, layout 1t)")
    p.add_argument("--project", help="a config (e.g. config/paper.yaml): fit the throughput model to the best K "
                                     "per case and print the GPU-hours of its grid")
    p.add_argument("--naive-trials", type=int, default=2, help="trials per process, naive loop")
    p.add_argument("--seq-trials", type=int, default=2, help="trials per process, weightzoo one by one")
    p.add_argument("--repeat", type=int, default=1, help="repeat each measurement, keep the best")
    p.add_argument("--modes", default="naive,vec,seq", help="comma list of naive, vec, seq")
    p.add_argument("--json", help="also write the results here")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------- workers
def _init_worker(threads, barrier):
    global _barrier
    import torch

    torch.set_num_threads(threads)
    _barrier = barrier


def _dataset(name, n_train, n_test):
    key = (name, n_train, n_test)
    if key not in _cache:
        import numpy as np

        from weightzoo.data import prepare_dataset

        ds = prepare_dataset(name, {"data_dir": FMNIST_DIR} if name == "fmnist" else {})
        split = ds["split"].values
        keep = np.concatenate([np.flatnonzero(split == 0)[:n_train], np.flatnonzero(split == 1)[:n_test]])
        _cache[key] = ds.isel(sample=keep).load()
    return _cache[key]


def _kwargs(model, size, input_shape, n_classes):
    from weightzoo.models import model_kwargs

    arch = _arch(model, size)
    return model_kwargs("vit" if model == "vitp" else model, arch, input_shape, n_classes)


def _arch(model, size):
    return {"dnn": {"hidden": size}, "cnn": {"channels": size}, "smallcnn": {"channels": size}, "vit": VIT_ARCH,
            "vitp": VIT_PAPER_ARCH}[model]


def _job(task):
    """Run one measurement in this worker; returns (wall seconds, CPU seconds, trial-samples trained)."""
    mode, model, size, dataset, n_train, n_test, epochs, device, n_trials, first_trial = task
    import torch

    ds = _dataset(dataset, n_train, n_test)
    input_shape = tuple(ds["images"].shape[1:])
    kwargs = _kwargs(model, size, input_shape, int(ds.attrs["n_classes"]))
    trials = list(range(first_trial, first_trial + n_trials))
    if mode == "naive":
        loaders = _naive_loaders(ds)
        _barrier.wait()
        start, cpu = time.perf_counter(), time.process_time()
        for t in trials:
            _naive_train(model, kwargs, loaders, seed=t, epochs=epochs, device=device)
    else:
        from weightzoo.train import Hyperparameters, TensorData, train_trials

        data = TensorData.from_dataset(ds, device)
        hp = Hyperparameters(epochs=epochs, batch_size=100, snapshots=(0, -1))
        _barrier.wait()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            train_trials(model, kwargs, data, trials, hp, vectorize=mode == "vec")
        except torch.cuda.OutOfMemoryError:  # K too large for this GPU: counts as no throughput
            del data
            torch.cuda.empty_cache()
            return math.inf, math.inf, 0
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu, n_trials * n_train * epochs


def _naive_loaders(ds):
    import numpy as np
    import torch
    from torchvision import transforms

    class ImageDataset(torch.utils.data.Dataset):
        """uint8 images as HxW (grey) or HxWxC arrays, converted one sample at a time."""

        def __init__(self, images, labels, transform):
            self.images, self.labels, self.transform = images, labels, transform

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return self.transform(self.images[i]), int(self.labels[i])

    images = ds["images"].values.transpose(0, 2, 3, 1)
    if images.shape[-1] == 1:
        images = images[..., 0]
    images = np.ascontiguousarray(images)
    labels, split = ds["labels"].values.astype(np.int64), ds["split"].values
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(ds["mean"].values.tolist(), ds["std"].values.tolist())]
    )
    train = ImageDataset(images[split == 0], labels[split == 0], transform)
    test = ImageDataset(images[split == 1], labels[split == 1], transform)
    return {
        "train": torch.utils.data.DataLoader(train, batch_size=100, shuffle=True),
        "eval_train": torch.utils.data.DataLoader(train, batch_size=1000),
        "eval_test": torch.utils.data.DataLoader(test, batch_size=1000),
    }


def _naive_train(model, kwargs, loaders, seed, epochs, device="cpu"):
    import torch
    import torch.nn.functional as F

    from weightzoo.models import build_model, init_normal_

    torch.manual_seed(seed)
    model = "vit" if model == "vitp" else model
    net = init_normal_(build_model(model, **kwargs), 0.05, torch.Generator().manual_seed(seed)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        net.train()
        for x, y in loaders["train"]:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            F.cross_entropy(net(x), y).backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            for split in ("eval_train", "eval_test"):
                loss, correct, n = 0.0, 0, 0
                for x, y in loaders[split]:
                    x, y = x.to(device), y.to(device)
                    logits = net(x)
                    loss += F.cross_entropy(logits, y, reduction="sum").item()
                    correct += int((logits.argmax(1) == y).sum())
                    n += len(y)


def _gemm_job(device):
    import torch

    _barrier.wait()
    best_wall = best_cpu = 0.0
    sizes = (1024, 1536, 2048) if device == "cpu" else (4096, 8192)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    for n in sizes:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        torch.mm(a, b)
        sync()
        for _ in range(4):
            start, cpu = time.perf_counter(), time.process_time()
            torch.mm(a, b)
            sync()
            best_wall = max(best_wall, 2 * n**3 / (time.perf_counter() - start))
            best_cpu = max(best_cpu, 2 * n**3 / (time.process_time() - cpu))
    return best_wall, best_cpu


# ---------------------------------------------------------------------------------------------- driver
def _pool(layout):
    procs, threads = LAYOUTS[layout]
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    return ctx.Pool(procs, initializer=_init_worker, initargs=(threads, barrier)), procs


def measure(pool, procs, task, repeat):
    """Best-of-``repeat`` trial-samples per wall second (all workers together) and per CPU second."""
    wall = cpu = 0.0
    for _ in range(repeat):
        tasks = [(*task[:-1], task[-1] + p * task[-2]) for p in range(procs)]
        results = pool.map(_job, tasks, chunksize=1)
        work = sum(r[2] for r in results)
        wall = max(wall, work / max(r[0] for r in results))
        cpu = max(cpu, work / sum(r[1] for r in results))
    return wall, cpu


def gemm_peak(pool, procs, repeat=2, device="cpu"):
    """Best fp32 GEMM FLOP/s of ``procs`` workers multiplying at once: (wall, all workers; per CPU second)."""
    runs = [pool.map(_gemm_job, [device] * procs, chunksize=1) for _ in range(repeat)]
    return max(sum(w for w, _ in r) for r in runs), max(max(c for _, c in r) for r in runs)


def macs_per_sample(model, size, dataset, n_train, n_test):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from weightzoo.models import build_model

    ds = _dataset(dataset, n_train, n_test)
    shape = tuple(ds["images"].shape[1:])
    net = build_model("vit" if model == "vitp" else model, **_kwargs(model, size, shape, int(ds.attrs["n_classes"])))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, *shape))
    return counter.get_total_flops() / 2


def load_average():
    return os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    dataset = args.dataset
    if dataset == "auto":
        dataset = "fmnist" if os.path.isdir(FMNIST_DIR) else "mnist5k"
    import torch

    cases = []
    for item in args.cases.split(","):
        model, _, size = item.partition(":")
        cases.append((model, int(size) if size else 0))
    modes = args.modes.split(",")
    ks = [int(k) for k in str(args.trials).split(",")]
    layouts = args.layouts.split(",") if args.device == "cpu" else ["1t"]
    split = _dataset(dataset, args.train_samples, args.test_samples)["split"].values
    n_train, n_test = int((split == 0).sum()), int((split == 1).sum())
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"# {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, dataset {dataset} "
          f"({n_train} train / {n_test} test samples), epochs {args.epochs}, K {args.trials}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device != "cpu" else ""))
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in load_average())}")
    rows = []
    for layout in layouts:
        pool, procs = _pool(layout)
        try:
            peak, peak_cpu = gemm_peak(pool, procs, device=args.device)
            print(f"# layout {layout}: fp32 GEMM peak {peak / 1e9:.1f} GFLOP/s wall, "
                  f"{peak_cpu / 1e9:.1f} GFLOP per CPU second", flush=True)
            for model, size in cases:
                macs = macs_per_sample(model, size, dataset, args.train_samples, args.test_samples)
                row = {"case": f"{model}:{size}" if size else model, "layout": layout, "macs": macs,
                       "peak_gflops": peak / 1e9, "peak_gflops_cpu": peak_cpu / 1e9, "device": args.device}
                for mode in modes:
                    for k in (ks if mode == "vec" else [None]):
                        per_proc = {"naive": args.naive_trials, "vec": k, "seq": args.seq_trials}[mode]
                        task = (mode, model, size, dataset, args.train_samples, args.test_samples, args.epochs,
                                args.device, per_proc, 0)
                        wall, cpu = measure(pool, procs, task, args.repeat)
                        if mode == "vec":
                            row[f"vec_k{k}"] = wall
                            if wall <= row.get("vec", 0):
                                continue
                            row["best_k"] = k
                        row[mode], row[f"{mode}_cpu"] = wall, cpu
                if "vec" in row:
                    # per trained sample: 6 MACs of training, 2 MACs for each of (n_train + n_test) / n_train
                    # evaluated samples
                    flops = macs * (6 + 2 * (n_train + n_test) / n_train)
                    row["vec_peak_pct"] = 100 * row["vec_cpu"] * flops / peak_cpu
                rows.append(row)
                print(format_row(row), flush=True)
        finally:
            pool.close()
            pool.join()
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in load_average())}")
    print()
    print(table(rows))
    if len(ks) > 1:
        print()
        print(k_table(rows, ks))
    projection = project(rows, args.project, n_train, n_test) if args.project else None
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dataset": dataset, "args": vars(args), "rows": rows, "load_after": load_average(),
                       "projection": projection}, f, indent=1)


def k_table(rows, ks):
    """Vectorised trial-samples/s (wall) for each K, and the best K, per case."""
    lines = ["| case | " + " | ".join(f"K={k}" for k in ks) + " | best K | vec / naive |",
             "|---|" + "---:|" * (len(ks) + 2)]
    for r in rows:
        naive = r.get("naive", math.nan)
        lines.append(f"| {r['case']} | " + " | ".join(f"{r.get(f'vec_k{k}', math.nan):,.0f}" for k in ks)
                     + f" | {r.get('best_k', '-')} | {r.get('vec', math.nan) / naive:.1f}x |")
    return "\n".join(lines)


def fit_throughput(points):
    """(overhead_us, gflops) of weightzoo.cluster.Throughput from (useful FLOPs per trial-sample, rate) points.

    Least squares of seconds per trial-sample = overhead + FLOPs / rate; one point: no overhead."""
    import numpy as np

    flops = np.array([f for f, _ in points], float)
    seconds = np.array([1 / r for _, r in points], float)
    if len(points) > 1 and np.ptp(flops) > 0:
        slope, intercept = np.polyfit(flops, seconds, 1)
        if slope > 0 and intercept >= 0:
            return intercept * 1e6, 1 / slope / 1e9
    return 0.0, float(np.max(flops / seconds)) / 1e9


def project(rows, config_path, n_train, n_test):
    """Fit the throughput per model family to the best-K rates, then the grid's GPU-hours by experiment."""
    import yaml

    from weightzoo.cluster import Throughput, network_size
    from weightzoo.config import expand
    from weightzoo.data import spec

    points = {}
    for r in rows:
        if "vec" not in r:
            continue
        model = r["case"].split(":")[0]
        family = "vit" if model == "vitp" else model
        points.setdefault(family, []).append((r["macs"] * (6 + 2 * (n_train + n_test) / n_train), r["vec"]))
    fitted = {family: fit_throughput(p) for family, p in points.items()}
    config = yaml.safe_load(open(config_path))
    epochs = config.get("training", {}).get("epochs", 20)
    hours, by_model = 0.0, {}
    for exp in expand(config):
        if exp.model not in fitted:
            continue
        macs, _, _ = network_size(exp.model, exp.arch_params, exp.dataset)
        train, test = spec(exp.dataset).split_sizes()
        flops = macs * (6 + 2 * (train + test) / train)
        overhead_us, gflops = fitted[exp.model]
        seconds = exp.trials * train * epochs * Throughput(overhead_us, gflops, "").seconds_per_trial_sample(flops)
        hours += seconds / 3600
        by_model[exp.model] = by_model.get(exp.model, 0.0) + seconds / 3600
    print()
    print(f"# projected training time of {config_path} on this device at the best K: {hours:.2f} hours "
          + "(" + ", ".join(f"{m} {h:.2f}" for m, h in sorted(by_model.items())) + "; start-up of jobs not counted)")
    print("# for weightzoo.cluster (measured):")
    for family, (overhead_us, gflops) in sorted(fitted.items()):
        print(f'#     "{family}": Throughput({overhead_us:.3g}, {gflops:.4g}, "bench/gpu_check.sh"),')
    return {"hours": hours, "by_model": by_model, "fitted": fitted}


def format_row(row):
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def table(rows):
    """Wall = as measured on the shared machine; CPU = per CPU second (robust to other users' load)."""
    head = ("| case | layout | naive wall | naive CPU | wz vec wall | wz vec CPU | ratio wall | ratio CPU "
            "| % GEMM peak (CPU) | wz 1-by-1 CPU | ratio CPU |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    nan = math.nan
    for r in rows:
        naive, naive_cpu = r.get("naive", nan), r.get("naive_cpu", nan)
        vec, vec_cpu, seq_cpu = r.get("vec", nan), r.get("vec_cpu", nan), r.get("seq_cpu", nan)
        lines.append(
            f"| {r['case']} | {r['layout']} | {naive:,.0f} | {naive_cpu:,.0f} | {vec:,.0f} | {vec_cpu:,.0f} | "
            f"{vec / naive:.1f}x | {vec_cpu / naive_cpu:.1f}x | {r.get('vec_peak_pct', nan):.0f}% | "
            f"{seq_cpu:,.0f} | {seq_cpu / naive_cpu:.1f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
