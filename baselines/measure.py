"""Measure a model's inference cost: ``python -m baselines.measure --model cmft [--full-resolution]``.

Prints one JSON line: seconds per frame of ``colorize`` (median of ``--repeat`` runs after one warm-up),
batch 1, one reference, with ``--threads`` torch threads, and the process's peak resident memory
(``ru_maxrss``) before and after inference. Run each setting in its own process so peaks do not mix.
On a shared machine set ``OMP_WAIT_POLICY=PASSIVE`` (recorded in the output): OpenMP's default spin-waiting
makes two threads slower than one when another process holds a core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch

from baselines import DEFAULT_PRESET
from baselines.model import build_model, model_preset


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baselines.measure", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cmft")
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full-resolution", action="store_true", help="enable CMFT^3 (section 3.4)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    margs = model_preset(args.model, args.preset)["model"]
    if args.full_resolution:
        margs["cmft_full_resolution"] = True
    model = build_model(args.model, **margs).eval()
    n = args.size
    batch = {"reference_colour": torch.rand(1, 1, 3, n, n), "reference_sketch": torch.rand(1, 1, 1, n, n),
             "target_sketch": torch.rand(1, 1, n, n)}
    before = peak_rss_mib()
    model.colorize(batch)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        model.colorize(batch)
        times.append(time.perf_counter() - start)
    print(json.dumps({"model": args.model, "preset": args.preset, "size": n, "threads": args.threads,
                      "cmft_full_resolution": args.full_resolution,
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "seconds_per_frame_median": round(statistics.median(times), 4),
                      "seconds_per_frame_min": round(min(times), 4),
                      "peak_rss_mib_before": round(before, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
