"""CPU seconds per frame of a model's inference, one torch thread, at several sizes and reference counts.

``bench speed`` reports wall time, which on a machine shared with other jobs measures the load as much as the
model; the process CPU time (``time.process_time``, all threads of the process, OpenCV's included) of one call
does not depend on how many other jobs share the cores. On an otherwise idle machine the wall time of a
one-thread call is about this CPU time. The batch is ``bench speed``'s synthetic one (one target). Usage::

    python docs/scripts/cpu_time_per_frame.py shi-warp                       # shipped weights
    python docs/scripts/cpu_time_per_frame.py shi-warp --weights W.safetensors --configs 256x2 512x5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from benchmark.model import load_model
from benchmark.speed import synthetic_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--weights", default=None, help="weights file (default: the shipped weights)")
    parser.add_argument("--configs", nargs="+", default=["256x2", "256x5", "512x2", "512x5"],
                        help="SIZExK: frame side in px and number of references")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after one untimed call")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, args.weights, "cpu")
    for config in args.configs:
        size, k = (int(v) for v in config.split("x"))
        batch = synthetic_batch(size, 1, k)
        cpu, wall = [], []
        with torch.inference_mode():
            for i in range(1 + args.repeats):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                model(batch)
                if i:
                    cpu.append(time.process_time() - cpu0)
                    wall.append(time.perf_counter() - wall0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; the process so far
        print(f"{args.model} {size}x{size} K={k}: CPU {statistics.median(cpu):.3f} s/frame (min {min(cpu):.3f}), "
              f"wall {statistics.median(wall):.3f} s, peak RSS so far {peak:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
