"""Peak CPU memory of ``shi`` inference: K references at S x S, attention chunked or whole.

Each configuration runs in a fresh subprocess (one torch thread) that builds an untrained network, runs one
``colorize`` of a batch of B random frames and reports its peak resident set size (``ru_maxrss``) and the
increase over the RSS just before the forward pass (interpreter, torch and the weights). Usage::

    python docs/scripts/shi_memory.py                      # the table in docs/shi.md
    python docs/scripts/shi_memory.py --one paper 256 5 1 budget   # a single configuration
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

#: preset, size, K, batch, attention: "budget" (query chunks at the default score budget) or "whole" (one
#: call), each with PyTorch's default SDPA kernel (on CPU a fused kernel that tiles the scores itself) or,
#: with "-math", the plain math kernel, which materialises every score (what backends without a fused
#: kernel do).
CONFIGS = [
    ("cpu", 256, 5, 1, "budget"), ("cpu", 256, 5, 1, "whole"), ("cpu", 256, 5, 1, "budget-math"),
    ("cpu", 256, 5, 1, "whole-math"),
    ("cpu", 256, 5, 6, "budget"), ("cpu", 256, 5, 6, "budget-math"), ("cpu", 256, 5, 6, "whole-math"),
    ("paper", 256, 5, 1, "budget"), ("paper", 256, 5, 1, "budget-math"),
    ("cpu", 512, 5, 1, "budget"), ("cpu", 512, 5, 1, "budget-math"),
]


def run_one(preset: str, size: int, k: int, batch: int, attention: str) -> dict:
    import contextlib

    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from baselines.model import build_model, model_preset

    torch.set_num_threads(1)
    torch.manual_seed(0)
    args = model_preset("shi", preset)["model"]
    if attention.startswith("whole"):
        args["attention_budget"] = None
    model = build_model("shi", **args).eval()
    g = torch.Generator().manual_seed(0)
    frames = {"reference_colour": torch.rand(batch, k, 3, size, size, generator=g),
              "reference_sketch": torch.rand(batch, k, 1, size, size, generator=g),
              "reference_field": torch.rand(batch, k, 1, size, size, generator=g),
              "target_sketch": torch.rand(batch, 1, size, size, generator=g),
              "target_field": torch.rand(batch, 1, size, size, generator=g)}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with sdpa_kernel([SDPBackend.MATH]) if attention.endswith("-math") else contextlib.nullcontext():
        model.colorize(frames)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hw = (size // 4) ** 2
    return {"preset": preset, "size": size, "k": k, "batch": batch, "attention": attention,
            "whole_matrix_mib": round(batch * hw * k * hw * 4 / 2**20, 1), "peak_mib": round(peak),
            "forward_mib": round(peak - before), "seconds": round(seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=5, metavar=("PRESET", "SIZE", "K", "BATCH", "ATTENTION"))
    args = parser.parse_args()
    if args.one:
        preset, size, k, batch, attention = args.one
        print(json.dumps(run_one(preset, int(size), int(k), int(batch), attention)))
        return 0
    print("| preset | size | K | batch | attention | whole score matrix (MiB) | peak RSS (MiB) | forward increase (MiB) | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config in CONFIGS:
        done = subprocess.run([sys.executable, __file__, "--one", *map(str, config)], capture_output=True, text=True)
        if done.returncode:
            print(f"| {' | '.join(map(str, config))} | failed: {done.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(done.stdout)
        print(f"| {r['preset']} | {r['size']} | {r['k']} | {r['batch']} | {r['attention']} | {r['whole_matrix_mib']} "
              f"| {r['peak_mib']} | {r['forward_mib']} | {r['seconds']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
