"""CPU time of ``spectral_metrics`` for 1,000 trials of every layer shape of the default zoos.

Shapes: DNN h in {5, 50} on 8x8 digits (64 inputs) and 28x28 MNIST (784 inputs): in->h, h->h, h->10; CNN
Conv2d(1, c, 3) for c in {8, 32} and its Linear (c * side^2 -> 10, side 6 or 26); ViT d = 32: packed qkv (96, 32),
proj (32, 32), MLP (64, 32) and (32, 64). Weights are N(0, 1/in) float32. The trials of a shape are generated and
analysed in chunks (``--chunk``) so that the largest layer (10 x 21,632) stays within memory; only the
``spectral_metrics`` calls are timed, in wall and in CPU seconds (the latter is the work done, whatever else runs
on the machine). Run with ``OPENBLAS_NUM_THREADS=1`` for a single core's time.

    PYTHONPATH=src .venv/bin/python bench/spectral_speed.py [--trials 1000] [--chunk 100]
"""

import argparse
import os
import time

import numpy as np

from weightzoo.analysis.spectral import spectral_metrics


def layer_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for h in (5, 50):
        for n_in in (64, 784):
            shapes[f"dnn h{h} fc1 {n_in}->{h}"] = (h, n_in)
        shapes[f"dnn h{h} fc2"] = (h, h)
        shapes[f"dnn h{h} fc3"] = (10, h)
    for c in (8, 32):
        shapes[f"cnn c{c} conv1"] = (c, 1, 3, 3)
        for side in (6, 26):
            shapes[f"cnn c{c} fc (side {side})"] = (10, c * side * side)
    shapes.update({"vit qkv": (96, 32), "vit proj": (32, 32), "vit mlp fc1": (64, 32), "vit mlp fc2": (32, 64)})
    return shapes


def time_shape(shape: tuple[int, ...], n_trials: int, chunk: int, rng: np.random.Generator) -> tuple[float, float]:
    """Wall and CPU seconds of ``spectral_metrics`` on ``n_trials`` trials of one weight shape."""
    wall = cpu = 0.0
    for start in range(0, n_trials, chunk):
        n = min(chunk, n_trials - start)
        values = (rng.standard_normal((n, *shape)) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
        wall_began, cpu_began = time.perf_counter(), time.process_time()
        spectral_metrics(values)
        wall += time.perf_counter() - wall_began
        cpu += time.process_time() - cpu_began
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    total_wall = total_cpu = 0.0
    print(f"{args.trials} trials, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'layer':28s} {'shape':18s} {'wall':>9s} {'cpu':>9s}")
    for name, shape in layer_shapes().items():
        wall, cpu = time_shape(shape, args.trials, args.chunk, rng)
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"{name:28s} {str(shape):18s} {wall:7.3f} s {cpu:7.3f} s")
    print(f"{'total':47s} {total_wall:7.3f} s {total_cpu:7.3f} s")


if __name__ == "__main__":
    main()
