"""Measure the executors side by side: source frames per second of ``dataprep build`` and the driver's peak memory.

    python docs/scripts/measure_scaleout.py throughput INPUT... --work DIR [--rounds 2] [--workers 2] [--set k=v]
    python docs/scripts/measure_scaleout.py memory --work DIR [--clips 1 10 100] [--executors local ray]

``throughput`` builds the same inputs with each executor in turn (local, ray, local, ray, ... so a change of load
on the machine hits both alike), each build a fresh ``dataprep build`` process, and prints per round the wall
seconds and source fps (frames decoded from the sources / wall time), then the median ratio ray / local. The Ray
builds join a Ray instance started beforehand (a head node, as ``ray start --head`` on a cluster), so Ray's own start-up
(about ten seconds, once per cluster) is not counted; it is printed separately.

``memory`` generates N small clips (``dataprep synth``, 64 x 48, 2 shots) and builds them with each executor,
printing the peak resident memory of the driver process alone (``ru_maxrss``; the workers are other processes).

Each build runs in a child process of this script (``--child``), which prints one JSON line on its last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def child(args: list[str]) -> int:
    """Run ``dataprep build ARGS`` here and print wall seconds, frames and this process's peak RSS as JSON."""
    from dataprep.cli import main

    start = time.perf_counter()
    code = main(["build", *args])
    wall = time.perf_counter() - start
    out = Path(args[args.index("--out") + 1])
    info = json.loads((out / "meta" / "info.json").read_text())
    frames = sum(s.get("n_frames") or 0 for s in info["sources"])
    print(json.dumps({"code": code, "wall": wall, "source_frames": frames, "dataset_frames": info["counts"]["frames"],
                      "driver_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return code


def run_build(inputs: list[str], out: Path, executor: str, workers: int, sets: list[str],
              address: str = "") -> dict:
    command = [sys.executable, __file__, "--child", *inputs, "--out", str(out), "--overwrite", "-q",
               "--executor", executor, "--workers", str(workers)]
    for item in sets:
        command += ["--set", item]
    if executor == "ray":
        command += ["--set", f"run.address={address}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"build failed ({executor}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class RayHead:
    """A Ray head node with ``cpus`` CPUs (as ``ray start --head`` would start), held by this script and stopped
    on exit (only its own processes)."""

    def __init__(self, cpus: int):
        self.cpus = cpus

    def __enter__(self) -> "RayHead":
        from ray.cluster_utils import Cluster

        start = time.perf_counter()
        self.cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": self.cpus, "include_dashboard": False})
        self.startup = time.perf_counter() - start
        return self

    def __exit__(self, *exc) -> None:
        self.cluster.shutdown()


def throughput(args) -> None:
    rows = {"local": [], "ray": []}
    with RayHead(args.workers) as head:
        print(f"ray start --head: {head.startup:.1f} s", flush=True)
        for round_ in range(args.rounds):
            for executor in ("local", "ray"):
                r = run_build(args.inputs, args.work / executor, executor, args.workers, args.set,
                              head.cluster.address)
                fps = r["source_frames"] / r["wall"]
                rows[executor].append(fps)
                print(f"round {round_ + 1} {executor:5s}: {r['wall']:7.1f} s, {r['source_frames']} source frames, "
                      f"{fps:6.1f} source fps, driver peak {r['driver_peak_mib']:.0f} MiB", flush=True)
    local, ray = statistics.median(rows["local"]), statistics.median(rows["ray"])
    print(f"median source fps: local {local:.1f}, ray {ray:.1f}; ray / local = {ray / local:.3f}")


def memory(args) -> None:
    clips = args.work / "clips"
    most = max(args.clips)
    for k in range(most):
        folder = clips / f"c{k:03d}"
        if not (folder / "truth.json").exists():
            subprocess.run([sys.executable, "-m", "dataprep", "synth", "--out", str(folder), "--width", "64",
                            "--height", "48", "--shots", "2", "--shot-length", "8,10", "--seed", str(k),
                            "--no-truth-images", "--overwrite"], check=True, capture_output=True)
    videos = [str(next(p for p in (clips / f"c{k:03d}").iterdir() if p.stem == "video")) for k in range(most)]
    head = RayHead(args.workers) if "ray" in args.executors else None
    if head:
        head.__enter__()
    try:
        for executor in args.executors:
            for n in args.clips:
                r = run_build(videos[:n], args.work / f"ds-{executor}-{n}", executor, args.workers,
                              ["frames.size=32", *args.set],
                              head.cluster.address if head else "")
                print(f"{executor:5s} {n:4d} clips: driver peak {r['driver_peak_mib']:6.0f} MiB, "
                      f"{r['wall']:6.1f} s, {r['dataset_frames']} frames", flush=True)
    finally:
        if head:
            head.__exit__()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--rounds", type=int, default=2)
    p = sub.add_parser("memory")
    p.add_argument("--clips", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--executors", nargs="+", default=["local", "ray"])
    for p in sub.choices.values():
        p.add_argument("--work", type=Path, required=True, help="scratch folder (clips and datasets)")
        p.add_argument("--workers", type=int, default=2)
        p.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    throughput(args) if args.mode == "throughput" else memory(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
