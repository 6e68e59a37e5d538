"""Measure ``dataprep build`` end to end: source frames per second, peak RSS of the whole process tree, stage times.

    python docs/scripts/measure_build.py INPUT --out DIR [--workers 2] [--set key=value ...]

Runs ``dataprep build`` as a subprocess (with --overwrite), samples the summed RSS of it and all its worker
processes every 50 ms from /proc, then runs ``dataprep validate`` and prints one JSON object: wall seconds,
source frames per second (frames decoded from the source / wall time of the build), peak RSS in MiB, user +
system CPU seconds of the build and its workers, the manifest's counts and per-stage seconds (summed over
workers; ``detect`` is the shot-detection pass). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def tree_rss_bytes(root: int) -> int:
    """Summed resident set size of ``root`` and its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as f:
                rss[int(entry)] = int(f.read().split()[1]) * page
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_measured(command: list[str], **popen) -> tuple[int, float, int, float]:
    """Run ``command`` (``subprocess.Popen`` keywords in ``popen``); (exit status, wall seconds, peak summed RSS
    of its process tree in bytes, sampled every 50 ms, user + system CPU seconds of the process and the children
    it waited for). CPU seconds are what to compare on a busy machine: other jobs stretch the wall time, much
    less the CPU a build uses."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, **popen)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return process.returncode, wall, peak, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    command = [sys.executable, "-m", "dataprep", "build", *args.inputs, "--out", str(args.out), "--overwrite",
               "--workers", str(args.workers), "-q"]
    for item in args.set:
        command += ["--set", item]
    if args.out.exists() and not (args.out / "meta" / "info.json").exists():
        raise SystemExit(f"{args.out}: exists and is not a dataset")
    returncode, wall, peak, cpu = run_measured(command, stdout=sys.stderr)  # stdout stays pure JSON
    if returncode != 0:
        return returncode
    valid = subprocess.run([sys.executable, "-m", "dataprep", "validate", str(args.out)], capture_output=True,
                           text=True)
    info = json.loads((args.out / "meta" / "info.json").read_text())
    source_frames = sum(s.get("n_frames") or 0 for s in info["sources"])
    print(json.dumps({
        "wall_seconds": round(wall, 2), "source_frames": source_frames,
        "source_frames_per_second": round(source_frames / wall, 1), "peak_rss_mib": round(peak / 2**20, 1),
        "cpu_seconds": round(cpu, 2),
        "workers": args.workers, "counts": info["counts"], "stage_cpu_seconds": info["timings"],
        "validate": (valid.stdout or valid.stderr).strip(),
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
