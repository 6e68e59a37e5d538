"""Build benchmark on real anime and generated clips: source fps, peak RSS and CPU seconds per stage.

    python docs/scripts/bench_build.py [--real ../shared/data/real] [--synth] [--baseline TREE] [--rounds 1]
                                       [--workers 2] [--work DIR] [--only NAME] [--upscaled DIR] [--real-1080p]

Builds with the defaults (``dataprep build INPUTS --out DIR --workers 2``, only a crop where a clip needs one):

* ``real`` (when the folder exists): the One Piece TV clip (640x480, 181 frames) and the LVCD shot (75 PNG
  frames, 576x320) in one build; the four eisai shots, cropped to their ``Input`` panel (``panels.json``: 480x405,
  640x540, 640x540, 960x540; 928 frames), one build per crop; the six TRE-Net shots cropped to their left panel
  (x 0-409 of 2048x512; 158 frames) in one build. 1342 source frames in all.
* ``real upscaled to 1080p`` (``--upscaled DIR``): every ``.mp4`` of DIR in one build, e.g. the 1920 x 1080
  clips ``upscale_real_1080p.py --out DIR`` makes from the real clips (the real-data folder has no 1080p
  clip).
* ``real 1080p`` (``--real-1080p``): the five Index-anisora shots of ``../shared/data/real-train`` (one TV anime
  episode, H.264 at 1920 x 960-968, 30 fps, 907 frames, mostly held drawings) in one build, uncropped: the only
  real video near 1080p in the shared data (training material, used here for timing only).
* ``synth`` (``--synth``): ``dataprep synth --width 1920 --height 1080 --shots 4 --shot-length 40,80 --seed 0``,
  made once in ``--work``.

With ``--baseline TREE`` (a checkout of another commit, e.g. ``git worktree add /tmp/base <commit>``) every
build runs for both trees, alternating within each round (``PYTHONPATH`` selects the tree; the builds run with
the work folder as current directory so neither checkout shadows the other), and the two datasets of each
build are compared file by file (every Parquet shard and every manifest except its timings) to show that the
change keeps the output. Prints one table per clip set: wall seconds, source frames per second, user + system
CPU seconds of the build and its workers (what compares on a busy machine) and the source fps they would
give with ``--workers`` free cores (frames / (CPU s / workers)), peak RSS of the build's process
tree, and the manifest's seconds per stage summed over workers (``timings``), with a last column: baseline
time / this tree's time (this tree's / baseline's for rates and RSS). Linux only (RSS from /proc, via
``measure_build.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_build import run_measured  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def real_builds(real: Path) -> list[tuple[str, list[str], list[str]]]:
    """(name, inputs, --set overrides) of the real clip builds."""
    builds = [("onepiece+lvcd", [str(real / "cut-clips" / "onepiece_demo.mp4"),
                                 str(real / "colour-shots" / "lvcd_sample_1")], [])]
    panels = json.loads((real / "shot-clips" / "eisai" / "panels.json").read_text())
    by_crop: dict[str, list[str]] = {}
    for name, panel in panels.items():
        by_crop.setdefault(json.dumps(panel["input_panel_box_xyxy"]), []).append(
            str(real / "shot-clips" / "eisai" / name))
    for crop, inputs in by_crop.items():
        builds.append((f"eisai {crop}", inputs, [f"frames.crop={crop}"]))
    tre_net = sorted(str(p) for p in (real / "shot-clips" / "tre-net").glob("*.mp4"))
    builds.append(("tre-net", tre_net, ["frames.crop=[0, 0, 409, 512]"]))
    return builds


def run_build(tree: Path, inputs: list[str], overrides: list[str], out: Path, workers: int) -> dict:
    """One ``dataprep build`` of ``tree``'s code; wall seconds, peak RSS, source frames, stage CPU seconds."""
    command = [sys.executable, "-m", "dataprep", "build", *inputs, "--out", str(out), "--overwrite",
               "--workers", str(workers), "-q"]
    for item in overrides:
        command += ["--set", item]
    returncode, wall, peak, cpu = run_measured(command, cwd=out.parent,
                                               env=dict(os.environ, PYTHONPATH=str(tree)), stdout=subprocess.DEVNULL)
    if returncode != 0:
        raise SystemExit(f"bench_build: build of {inputs} with {tree} failed (exit {returncode})")
    info = json.loads((out / "meta" / "info.json").read_text())
    return {"wall": wall, "cpu": cpu, "peak_rss": peak, "frames": info["counts"]["frames"],
            "source_frames": sum(s.get("n_frames") or 0 for s in info["sources"]),
            "stages": info["timings"]["stages_cpu_seconds"]}


def dataset_digest(out: Path) -> dict[str, str]:
    """sha256 of every file of a dataset, timings removed from the JSON manifests."""
    digests = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            document = json.loads(data)
            if isinstance(document, dict):
                for key in ("timings", "seconds", "created", "updated"):
                    document.pop(key, None)
                for unit in (document.get("units") or {}).values():
                    if isinstance(unit, dict):
                        unit.pop("timings", None)
                        unit.pop("seconds", None)
            data = json.dumps(document, sort_keys=True).encode()
        digests[str(path.relative_to(out))] = hashlib.sha256(data).hexdigest()
    return digests


def add(total: dict, result: dict) -> None:
    for key in ("wall", "cpu", "frames", "source_frames"):
        total[key] = total.get(key, 0) + result[key]
    total["peak_rss"] = max(total.get("peak_rss", 0), result["peak_rss"])
    stages = total.setdefault("stages", {})
    for stage, seconds in result["stages"].items():
        stages[stage] = stages.get(stage, 0.0) + seconds


def report(name: str, totals: dict[str, dict], rounds: int, workers: int) -> None:
    trees = list(totals)
    print(f"\n## {name}: {totals[trees[0]]['source_frames'] // rounds} source frames, "
          f"{totals[trees[0]]['frames'] // rounds} stored frames per round, {rounds} round(s)")
    header = "| | " + " | ".join(trees) + (" | speed-up |" if len(trees) == 2 else " |")
    print(header)
    print("|---" * (len(trees) + 1 + (len(trees) == 2)) + "|")

    def row(label: str, values: list[float], fmt: str, higher_is_faster: bool = False) -> None:
        """speed-up: baseline time / this tree's time (this tree's rate / baseline's for rates)."""
        ratio = " |"
        if len(values) == 2 and values[0] and values[1]:
            ratio = f" | {(values[1] / values[0]) if higher_is_faster else (values[0] / values[1]):.2f} |"
        print(f"| {label} | " + " | ".join(format(v, fmt) for v in values) + ratio)

    row("wall s", [t["wall"] / rounds for t in totals.values()], ".2f")
    row("source frames/s", [t["source_frames"] / t["wall"] for t in totals.values()], ".1f", True)
    row("CPU s (user + sys)", [t["cpu"] / rounds for t in totals.values()], ".2f")
    row("source frames/CPU s", [t["source_frames"] / t["cpu"] for t in totals.values()], ".1f", True)
    row(f"source fps if {workers} cores were free (frames / (CPU s / {workers}))",
        [t["source_frames"] / (t["cpu"] / workers) for t in totals.values()], ".1f", True)
    row("peak RSS MiB", [t["peak_rss"] / 2**20 for t in totals.values()], ".0f", True)
    stages = sorted(totals[trees[-1]]["stages"], key=lambda s: -totals[trees[-1]]["stages"][s])
    for stage in stages:
        row(f"{stage} CPU s", [t["stages"].get(stage, 0.0) / rounds for t in totals.values()], ".2f")
    row("components ms/stored frame", [1e3 * t["stages"].get("components", 0.0) / t["frames"]
                                       for t in totals.values()], ".2f")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REPO.parent / "shared" / "data" / "real",
                        help="real-data folder (default ../shared/data/real beside the repository)")
    parser.add_argument("--synth", action="store_true", help="also build a generated 1080p clip")
    parser.add_argument("--no-real", action="store_true", help="skip the real clips")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with, side by side")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("bench-build-work"), help="folder for the builds")
    parser.add_argument("--only", help="only the real builds whose name contains this (e.g. onepiece, eisai)")
    parser.add_argument("--upscaled", type=Path,
                        help="also build every .mp4 of this folder in one build (upscale_real_1080p.py output)")
    parser.add_argument("--real-1080p", action="store_true",
                        help="also build the Index-anisora shots of ../shared/data/real-train (1920 x 960-968)")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list] = {}
    if not args.no_real:
        if not args.real.is_dir():
            raise SystemExit(f"bench_build: real data not found at {args.real} (pass --real or --no-real)")
        sets["real"] = [b for b in real_builds(args.real.resolve()) if not args.only or args.only in b[0]]
    if args.upscaled:
        clips = sorted(str(p) for p in args.upscaled.resolve().glob("*.mp4"))
        if not clips:
            raise SystemExit(f"bench_build: no .mp4 clips in {args.upscaled}")
        sets["real upscaled to 1080p"] = [("real 1080p proxy", clips, [])]
    if args.real_1080p:
        folder = args.real.parent / "real-train" / "bilibili_Index-anisora" / "anisoraV1_train_npu" / "sat" / "demo_data"
        clips = sorted(str(p) for p in folder.resolve().glob("*.mp4"))
        if not clips:
            raise SystemExit(f"bench_build: no Index-anisora clips in {folder}")
        sets["real 1080p"] = [("Index-anisora shots", clips, [])]
    if args.synth:
        clip = work / "synth1080" / "video.mp4"
        if not clip.exists():
            subprocess.run([sys.executable, "-m", "dataprep", "synth", "--out", str(clip.parent), "--overwrite",
                            "--width", "1920", "--height", "1080", "--shots", "4", "--shot-length", "40,80",
                            "--seed", "0", "--no-truth-images", "-q"], check=True, cwd=work,
                           env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL)
        sets["synth"] = [("synth 1080p", [str(clip)], [])]
    trees = {"this tree": REPO}
    if args.baseline:
        trees = {"baseline": args.baseline.resolve(), "this tree": REPO}
    identical = True
    for name, builds in sets.items():
        totals: dict[str, dict] = {label: {} for label in trees}
        for round_index in range(args.rounds):
            for b, (build_name, inputs, overrides) in enumerate(builds):
                labels = list(trees)
                if (round_index + b) % 2:
                    labels.reverse()  # alternate which tree goes first
                outs = {}
                for label in labels:
                    out = work / f"{name}-{b}-{label.replace(' ', '-')}"
                    result = run_build(trees[label], inputs, overrides, out, args.workers)
                    add(totals[label], result)
                    outs[label] = out
                    print(f"{build_name} [{label}]: {result['wall']:.2f} s, CPU {result['cpu']:.2f} s, "
                          f"{result['source_frames'] / result['wall']:.1f} source fps, "
                          f"components {result['stages'].get('components', 0):.2f} s", file=sys.stderr)
                if len(outs) == 2:
                    a, b_ = (dataset_digest(o) for o in outs.values())
                    if a != b_:
                        identical = False
                        differing = sorted(k for k in set(a) | set(b_) if a.get(k) != b_.get(k))
                        print(f"{build_name}: datasets differ: {differing[:5]}", file=sys.stderr)
        report(name, totals, args.rounds, args.workers)
    if args.baseline:
        print(f"\ndatasets identical apart from timings: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
