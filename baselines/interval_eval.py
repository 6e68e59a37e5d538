"""PSNR of CMFT, its ablation and copy-reference against the frame interval (CMFT paper section 4.2/4.3,
Table 1: pairs ``interval`` frames apart in one shot, the earlier frame being the colour reference).

    python -m baselines.interval_eval [--intervals 1,5,10,20,40] [--size 128] [--clips 10]
        [--real ../shared/data/real/colour-shots/lvcd_sample_1] [--cmft W] [--nocmft W] [--json OUT]

Held-out data:
* generated: ``dataprep.synth`` clips with seeds from ``--seed`` (default 100000, far from the training
  seeds 0..~200), ``--size`` px square, 2 shots of 48-64 frames; pairs start every 4 frames while
  ``start + max(intervals)`` stays in the shot, so every interval uses the same references.
* real (optional): one folder of consecutive frames (sorted numerically), resized so the shorter side is
  ``--size`` (aspect kept; the network pads to a multiple of 8), starts every 2 frames likewise.
Sketches: xdog with default settings on the resized frame (the ``dataprep build`` default) for both.

Scores: outputs and targets are quantised to uint8 as ``bench evaluate`` does and scored with
``benchmark.metrics.pixel``; per-pair PSNR is capped at ``CAP_DB`` because copying a held drawing gives
MSE 0 (+inf dB). Rows "moving" leave out pairs whose target equals the reference bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from baselines.datasets import make_sketcher, read_frame_folder
from benchmark.metrics.pixel import mse_batch, psnr_from_mse
from dataprep.sketch.extractor import DEFAULT_EXTRACTOR

#: Per-pair PSNR cap (dB) for identical frames (copying a held drawing).
CAP_DB = 60.0
#: The held-out real shot, beside the checkout (``../shared`` from the repository root, as in tests/conftest.py).
DEFAULT_REAL = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "colour-shots" / "lvcd_sample_1")


def synth_shots(clips: int, size: int, seed: int) -> list[list[np.ndarray]]:
    """Shots of generated frames: lists of (size, size, 3) uint8 RGB."""
    from dataprep.synth import SynthClip, SynthConfig

    shots: list[list[np.ndarray]] = []
    for index in range(clips):
        clip = SynthClip(SynthConfig(width=size, height=size, seed=seed + index, shots=2, shot_length=(48, 64),
                                     fade=False, flash=False))
        by_shot: dict[int, list[np.ndarray]] = {}
        for frame in clip.frames():
            by_shot.setdefault(frame.shot, []).append(frame.image)
        shots.extend(by_shot.values())
    return shots


def real_shot(folder: str, size: int) -> list[np.ndarray]:
    """Frames of ``folder`` with the shorter side resized to ``size`` (aspect kept), uint8 RGB."""
    import cv2

    names = sorted((f for f in os.listdir(folder) if f.lower().endswith(".png")),
                   key=lambda n: (0, int(n[:-4])) if n[:-4].isdigit() else (1, n))
    out = []
    for name in names:
        rgb = cv2.cvtColor(cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        scale = size / min(h, w)
        out.append(cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA))
    return out


def score(shots: list[list[np.ndarray]], intervals: list[int], models: dict, start_step: int) -> dict:
    """{interval: {method: {"all": dB, "moving": dB, "pairs": n, "moving_pairs": m}}}; methods are
    "copy-reference" and the keys of ``models`` (callables on a batch dict)."""
    sketch = make_sketcher(DEFAULT_EXTRACTOR)
    longest = max(intervals)
    results: dict = {}
    for interval in intervals:
        per_method: dict[str, list[float]] = {name: [] for name in ["copy-reference", *models]}
        moving: list[bool] = []
        for frames in shots:
            sketches = [sketch(f) for f in frames]
            for start in range(0, len(frames) - longest, start_step):
                ref, tgt = frames[start], frames[start + interval]
                moving.append(not np.array_equal(ref, tgt))
                preds = {"copy-reference": ref}
                batch = {
                    "reference_colour": torch.from_numpy(ref.astype(np.float32) / 255).permute(2, 0, 1)[None, None],
                    "reference_sketch": torch.from_numpy(sketches[start])[None, None, None],
                    "target_sketch": torch.from_numpy(sketches[start + interval])[None, None],
                }
                with torch.no_grad():
                    for name, model in models.items():
                        out = model(batch)[0].permute(1, 2, 0).clamp(0, 1).numpy()
                        preds[name] = np.round(out * 255).astype(np.uint8)
                for name, pred in preds.items():
                    psnr = float(psnr_from_mse(mse_batch(pred[None], tgt[None]))[0])
                    per_method[name].append(min(psnr, CAP_DB))
        mask = np.array(moving)
        results[interval] = {name: {"all": float(np.mean(v)), "moving": float(np.mean(np.array(v)[mask])) if mask.any()
                                    else float("nan"), "pairs": len(v), "moving_pairs": int(mask.sum())}
                             for name, v in per_method.items()}
    return results


def table(title: str, results: dict) -> str:
    methods = list(next(iter(results.values())))
    lines = [f"{title}", "", "| interval | pairs (moving) | " + " | ".join(methods) + " |",
             "| --- | --- | " + " | ".join("---" for _ in methods) + " |"]
    for interval, row in results.items():
        first = row[methods[0]]
        cells = [f"{row[m]['all']:.2f} ({row[m]['moving']:.2f})" for m in methods]
        lines.append(f"| {interval} | {first['pairs']} ({first['moving_pairs']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from baselines.models.cmft import load_cmft, load_cmft_nocmft

    parser = argparse.ArgumentParser(prog="python -m baselines.interval_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--intervals", default="1,5,10,20,40")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--seed", type=int, default=100000)
    parser.add_argument("--real", default=DEFAULT_REAL, help="folder of consecutive real frames ('' to skip)")
    parser.add_argument("--cmft", default=None, help="cmft weights from bench train ('none': untrained; "
                        "none are shipped, baselines/pretrained/MODEL_CARD.md)")
    parser.add_argument("--nocmft", default=None, help="cmft-nocmft weights (likewise)")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    intervals = [int(x) for x in args.intervals.split(",")]
    models = {"cmft-nocmft": load_cmft_nocmft(args.nocmft), "cmft": load_cmft(args.cmft)}
    report = {"generated": score(synth_shots(args.clips, args.size, args.seed), intervals, models, 4)}
    print(table(f"generated ({args.clips} clips, seed {args.seed}, {args.size}px): mean PSNR dB, all (moving)",
                report["generated"]))
    if args.real and os.path.isdir(args.real):
        report["real"] = score([real_shot(args.real, args.size)], intervals, models, 2)
        print()
        print(table(f"real ({os.path.basename(args.real)}, shorter side {args.size}px): mean PSNR dB, all (moving)",
                    report["real"]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), **{k: {str(i): v for i, v in r.items()} for k, r in report.items()}},
                      handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
