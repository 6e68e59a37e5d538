"""``dataprep synth``: write a procedural cel-animation clip with its ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dataprep.synth.clip import CODECS, SynthClip, SynthConfig


def _pair(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX integers, got {text!r}") from None
    if not 1 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 1 <= MIN <= MAX, got {text!r}")
    return lo, hi


def add_commands(commands) -> None:
    p = commands.add("synth", "write a procedural cel-animation clip with ground truth (the demo video)", run_synth)
    p.add_argument("--out", required=True, help="output folder (must be new or empty unless --overwrite)")
    defaults = SynthConfig()
    p.add_argument("--shots", type=int, default=defaults.shots)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--width", type=int, default=defaults.width)
    p.add_argument("--height", type=int, default=defaults.height)
    p.add_argument("--fps", type=float, default=defaults.fps)
    p.add_argument("--shot-length", type=_pair, default=defaults.shot_length, metavar="MIN,MAX",
                   help="frames per shot (default %(default)s)")
    p.add_argument("--fade", action="store_true", help="one shot boundary is a fade through black")
    p.add_argument("--flash", action="store_true", help="add a flash frame inside a shot")
    p.add_argument("--no-pan", action="store_true", help="no camera pans")
    p.add_argument("--codec", default="h264", help=f"one of {', '.join(CODECS)} (default %(default)s)")
    p.add_argument("--no-truth-images", action="store_true",
                   help="skip per-frame line-art and label PNGs (long clips)")
    p.add_argument("--frames-png", action="store_true", help="also write lossless colour frames as PNG")
    p.add_argument("--overwrite", action="store_true")


def run_synth(args: argparse.Namespace) -> int:
    config = SynthConfig(width=args.width, height=args.height, fps=args.fps, shots=args.shots,
                         shot_length=tuple(args.shot_length), seed=args.seed, fade=args.fade, flash=args.flash,
                         pan=not args.no_pan)
    clip = SynthClip(config)
    out = clip.write(args.out, codec=args.codec, truth_images=not args.no_truth_images,
                     frames_png=args.frames_png, overwrite=args.overwrite)
    print(describe(out))
    return 0


def describe(out: Path) -> str:
    """A few lines saying what the synthetic clip written to ``out`` contains."""
    truth = json.loads((out / "truth.json").read_text())
    shots = truth["shots"]
    lines = [f"wrote {out}/{truth.get('video', 'video')}: {truth['n_frames']} frames, "
             f"{truth['width']}x{truth['height']} @ {truth['fps']:g} fps, {len(shots)} shots, "
             f"{len(truth['regions'])} regions"]
    for i, s in enumerate(shots):
        pan = "pan" if any(s["pan"]) else "fixed camera"
        lines.append(f"  shot {i}: frames {s['start']}-{s['end'] - 1} ({s['end'] - s['start']} frames), "
                     f"on {s['hold']}s, {pan}")
    lines.append(f"  hard cuts at {truth['hard_cuts']}; fades {truth['gradual_transitions']}; "
                 f"flashes {truth['flashes']}")
    lines.append(f"  ground truth: {out}/truth.json, {out}/cuts.json; look: {out}/contact_sheet.png")
    return "\n".join(lines)

