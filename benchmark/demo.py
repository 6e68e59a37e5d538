"""``bench demo``: the main job on the embedded demo video.

Today: generate the built-in demo clip (procedural cel animation, see :mod:`dataprep.synth`) and
describe it. It grows into demo video -> dataset -> ``bench evaluate`` -> leaderboard.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dataprep.synth import SynthClip, demo_config
from dataprep.synth.cli import describe


def add_commands(commands) -> None:
    p = commands.add("demo", "run the main job on the built-in demo video", run_demo)
    p.add_argument("--out", default="demo", help="output folder (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing demo folder")


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    clip = SynthClip(demo_config())
    video_dir = clip.write(out / "video", overwrite=args.overwrite or (out / "video" / "truth.json").exists())
    print(describe(video_dir))
    return 0
