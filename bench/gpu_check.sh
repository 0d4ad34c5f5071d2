#!/usr/bin/env bash
# Everything a GPU machine should tell us, in one go (about 8 minutes on one GPU):
#
#   1. the tiny config (tests/config/tiny.yaml) end to end through Snakemake with training.device: cuda;
#   1b. smallcnn (the Small CNN Zoo family) with random per-trial draws, stacked on the device (grouped
#      convolutions) against one trial at a time;
#   2. the training benchmark on the GPU: vectorised at K = 16..1024 trials per process against a naive
#      one-trial-at-a-time GPU loop, and the CPU path (vectorised, 1 thread) of the same machine;
#   3. trial-samples/s per case, the best K per model, the fitted throughput to put into
#      src/weightzoo/cluster.py (GPU_THROUGHPUT), and the projected GPU-hours of config/paper.yaml.
#
#   make gpu-wheels                          # once, here: wheels the GPU machine lacks -> bench/wheels/
#   bench/gpu_check.sh                       # there (carry bench/wheels); results in $OUT or /tmp/weightzoo-gpu-check
#   bench/gpu_check.sh --cpu                 # dry run of the same steps on the CPU, small sizes (tests the script)
#
# Needs Python 3.12 with torch, xarray, scipy, scikit-learn, matplotlib; what is missing (snakemake,
# netCDF4, mlxtend) is installed from bench/wheels/ without network into a private folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DEVICE="${DEVICE:-cuda}"
[[ "${1:-}" == --cpu ]] && DEVICE=cpu
RESULTS="${OUT:-/tmp/weightzoo-gpu-check}"
mkdir -p "$RESULTS"
PYTHON="${PYTHON:-python3}"
step() { echo; echo "== $(date +%T) $*"; }
T0=$SECONDS

step "environment"
if ! "$PYTHON" -c "import snakemake, netCDF4, mlxtend" 2>/dev/null; then
    if ls bench/wheels/*.whl >/dev/null 2>&1; then
        SITE="${TMPDIR:-/tmp}/weightzoo-site"
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" bench/wheels/*.whl
        export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "snakemake, netCDF4 or mlxtend missing and no bench/wheels/*.whl (run make gpu-wheels)" >&2
        exit 2
    fi
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" - <<EOF
import platform, torch, snakemake
print(f"python {platform.python_version()}, torch {torch.__version__}, snakemake {snakemake.__version__}")
if "$DEVICE" == "cuda":
    assert torch.cuda.is_available(), "no CUDA device visible to torch"
    p = torch.cuda.get_device_properties(0)
    print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

step "1. tiny config end to end (training.device: $DEVICE)"
WORK="$(mktemp -d)"
cp -r Snakefile workflow config src envs "$WORK/"
"$PYTHON" - "$WORK/tiny.yaml" "$DEVICE" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open("tests/config/tiny.yaml"))
cfg.setdefault("training", {})["device"] = sys.argv[2]
if sys.argv[2] == "cpu":  # dry run: one architecture, two trials (the full tiny config takes minutes on 2 cores)
    exp = dict(cfg["experiments"][0], trials=2, trials_per_job=2)
    exp["arch"] = {k: (v[:1] if isinstance(v, list) else v) for k, v in exp["arch"].items()}
    cfg["experiments"] = [exp]
yaml.safe_dump(cfg, open(sys.argv[1], "w"), sort_keys=False)
EOF
t=$SECONDS
(cd "$WORK" && timeout -k 10 300 "$PYTHON" -m snakemake --cores "$(nproc)" --configfile tiny.yaml --quiet rules) \
    >"$RESULTS/tiny_run.log" 2>&1 || { tail -40 "$RESULTS/tiny_run.log"; echo "tiny run failed" >&2; exit 1; }
"$PYTHON" - "$WORK" <<'EOF'
import glob, sys, xarray as xr
chunks = sorted(glob.glob(f"{sys.argv[1]}/results/train/*/*/*/chunk*.nc"))
devices = {xr.open_dataset(c).attrs.get("device", "?") for c in chunks}
print(f"{len(chunks)} chunks trained on {sorted(devices)}; zoos: {len(glob.glob(sys.argv[1] + '/results/zoo/*/*/*.nc'))}")
EOF
echo "tiny config: $((SECONDS - t)) s"
rm -rf "$WORK"

step "1b. smallcnn with random per-trial draws: stacked on $DEVICE equals one trial at a time"
t=$SECONDS
timeout -k 10 180 "$PYTHON" - "$DEVICE" <<'EOF' | tee "$RESULTS/smallcnn_draws.txt"
import sys, time
import numpy as np
from weightzoo.config import trial_hyperparameters
from weightzoo.data import prepare_dataset
from weightzoo.models import model_kwargs
from weightzoo.train import Hyperparameters, TensorData, train_trials

device = sys.argv[1]
data = TensorData.from_dataset(prepare_dataset("mnist5k", {}), device)
# lr up to 5e-3, not the zoo's 5e-2: above ~2e-2 training is chaotic (float-level differences between two
# correct implementations grow ~5x per Adam step, docs/benchmarks.md), so weights could not be compared there
draws = {"lr": {"log_uniform": [5e-4, 5e-3]}, "init_std": {"log_uniform": [1e-3, 0.5]},
         "weight_decay": {"log_uniform": [1e-8, 1e-2]}, "train_fraction": {"uniform": [0.1, 1.0]},
         "activation": {"choice": ["relu", "tanh"]}}
n = 16 if device == "cuda" else 4
per_trial = [trial_hyperparameters(draws, t, t) for t in range(n)]
kwargs = model_kwargs("smallcnn", {"channels": 16}, data.input_shape, data.n_classes)
hp = Hyperparameters(epochs=2, snapshots=(0, -1))
t0 = time.perf_counter()
stacked = train_trials("smallcnn", kwargs, data, range(n), hp, vectorize=True, per_trial=per_trial)
t1 = time.perf_counter()
alone = train_trials("smallcnn", kwargs, data, range(n), hp, vectorize=False, per_trial=per_trial)
t2 = time.perf_counter()
gap = max(float(np.abs(stacked.weights[k] - alone.weights[k]).max()) for k in stacked.weights)
acc = float(np.abs(stacked.test_accuracy - alone.test_accuracy).max())
print(f"smallcnn {n} trials x 2 epochs on {device}: stacked {t1 - t0:.1f} s, one by one {t2 - t1:.1f} s; "
      f"max weight gap {gap:.2e}, max test accuracy gap {acc:.4f}")
assert gap < 1e-3 and acc < 0.01, "stacked smallcnn training disagrees with one trial at a time"
EOF
echo "smallcnn draws: $((SECONDS - t)) s"

step "2. training benchmark on $DEVICE: vectorised (K sweep) vs naive one-trial loop"
if [[ "$DEVICE" == cuda ]]; then
    BENCH=(--device cuda --cases dnn:5,dnn:50,dnn:200,cnn:4,cnn:16,smallcnn:16,vit,vitp --trials 16,64,256,1024
           --naive-trials 1 --train-samples 6000 --test-samples 1000)
    CPU_BENCH=(--device cpu --layouts 1t --cases dnn:5,dnn:200,cnn:16,smallcnn:16 --modes vec --trials 16
               --train-samples 3000 --test-samples 500)
else
    BENCH=(--device cpu --layouts 1t --cases dnn:5,cnn:4,smallcnn:16 --trials 2,4 --naive-trials 1
           --train-samples 300 --test-samples 100)
    CPU_BENCH=(--device cpu --layouts 1t --cases dnn:5 --modes vec --trials 2 --train-samples 300 --test-samples 100)
fi
t=$SECONDS
timeout -k 10 420 "$PYTHON" bench/train_speed.py "${BENCH[@]}" --modes naive,vec --layouts 1t \
    --project config/paper.yaml --json "$RESULTS/gpu_bench.json" | tee "$RESULTS/gpu_bench.txt"
echo "benchmark: $((SECONDS - t)) s"

step "3. the CPU path of this machine, for comparison"
timeout -k 10 120 "$PYTHON" bench/train_speed.py "${CPU_BENCH[@]}" --json "$RESULTS/cpu_bench.json" \
    | tee "$RESULTS/cpu_bench.txt" | grep -v '^#' || true

step "summary"
"$PYTHON" - "$RESULTS" <<'EOF'
import json, sys
gpu = json.load(open(f"{sys.argv[1]}/gpu_bench.json"))
cpu = {r["case"]: r for r in json.load(open(f"{sys.argv[1]}/cpu_bench.json"))["rows"]}
print("| case | naive trial-samples/s | vectorised, best K | best K | vec / naive | CPU vec (1 thread) | vec / CPU |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in gpu["rows"]:
    c = cpu.get(r["case"], {}).get("vec", float("nan"))
    print(f"| {r['case']} | {r.get('naive', float('nan')):,.0f} | {r['vec']:,.0f} | {r.get('best_k')} | "
          f"{r['vec'] / r.get('naive', float('nan')):.1f}x | {c:,.0f} | {r['vec'] / c:.1f}x |")
best = {}
for r in gpu["rows"]:
    model = r["case"].split(":")[0]
    best[model] = max(best.get(model, (0, None)), (r["vec"], r.get("best_k")))
print("best K per model: " + ", ".join(f"{m} K={k} ({v:,.0f}/s)" for m, (v, k) in best.items()))
p = gpu["projection"]
print(f"config/paper.yaml: projected {p['hours']:.2f} GPU-hours of training on this device "
      f"(goal: <= 1 on one H100-class GPU)")
EOF
echo "total: $((SECONDS - T0)) s; results in $RESULTS"
