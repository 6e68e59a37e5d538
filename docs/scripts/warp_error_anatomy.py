"""Where ``flow-warp`` loses PSNR on a built dataset, per K of ``shi-kref@1`` (the table in the model card).

For every sample, ``flow-warp``'s squared error (RGB, [0, 1] scale) is split by pixel kind: target line pixels;
"ghost" pixels (the best warp's line art has a line where the target has none); "disagree" pixels (the warped
line art disagrees with the target's around the pixel, box-filtered difference above ``--disagree``:
occlusions and flow failures); the rest. The last column is the PSNR of the mean squared error of
``flow-warp`` and of an oracle that takes, per pixel, the reference warp nearest the ground truth (an upper
bound for any per-pixel choice between the K warps). Usage::

    python docs/scripts/warp_error_anatomy.py DATASET_DIR [DATASET_DIR ...]
"""

from __future__ import annotations

import argparse
import math

import torch

from baselines.models.shi import warp_candidates
from benchmark.evaluate import FrameLoader, build_batch
from benchmark.models.flow_warp import FlowWarp
from benchmark.parquet_source import ParquetSource
from benchmark.protocol import load_protocol

KINDS = ("line", "ghost", "disagree", "rest")


def anatomy(root: str, disagree: float, protocol_id: str = "shi-kref@1") -> dict[int, dict[str, list[float]]]:
    """{K: {kind: [summed squared error, pixel count]}} plus "all" and "oracle" entries."""
    protocol = load_protocol(protocol_id)
    source = ParquetSource(root)
    load = FrameLoader(source, protocol.resolution)
    warper = FlowWarp()
    totals: dict[int, dict[str, list[float]]] = {}
    for sample in protocol.select(source, "test"):
        batch, truth, _ = build_batch([sample], load, protocol)
        colours, _, _ = warper.warp_references(batch)
        candidates = warp_candidates(batch, warper)[0]
        error = ((candidates[:3] - truth[0]) ** 2).mean(0)  # (H, W)
        oracle = ((colours[0] - truth) ** 2).mean(1).min(0).values
        line = batch["target_sketch"][0, 0] < 0.5
        ghost = (candidates[6] < 0.5) & ~line
        off = (candidates[7] > disagree) & ~line & ~ghost
        masks = {"line": line, "ghost": ghost, "disagree": off, "rest": ~line & ~ghost & ~off}
        entry = totals.setdefault(batch["reference_colour"].shape[1],
                                  {name: [0.0, 0] for name in (*KINDS, "all", "oracle")})
        for name, mask in masks.items():
            entry[name][0] += float(error[mask].sum())
            entry[name][1] += int(mask.sum())
        for name, values in (("all", error), ("oracle", oracle)):
            entry[name][0] += float(values.sum())
            entry[name][1] += values.numel()
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", help="dataset folders written by dataprep build (split test)")
    parser.add_argument("--disagree", type=float, default=0.15, help="disagreement threshold (default 0.15)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| dataset | K | error share: line / ghost / disagree / rest | pixel share: line / ghost / disagree "
          "| flow-warp -> oracle K-choice (dB) |")
    print("|---|---|---|---|---|")
    for root in args.datasets:
        for k, entry in sorted(anatomy(root, args.disagree).items()):
            total, pixels = entry["all"]
            psnr = lambda summed: 10 * math.log10(pixels / summed)  # noqa: E731  (peak 1, mean over pixels)
            print(f"| {root} | {k} | " + " / ".join(f"{entry[n][0] / total:.2f}" for n in KINDS) + " | "
                  + " / ".join(f"{entry[n][1] / pixels:.3f}" for n in KINDS[:3])
                  + f" | {psnr(total):.2f} -> {psnr(entry['oracle'][0]):.2f} |")


if __name__ == "__main__":
    main()
