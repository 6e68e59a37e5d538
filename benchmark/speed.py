"""``bench speed``: latency, throughput and peak memory of a model's colourisation step.

Inputs are synthetic (seeded random line art and colours of the requested size), because speed does
not depend on content for the models celbench targets; the first ``warmup`` calls are discarded
(lazy initialisation, cuDNN autotuning), then ``repeats`` timed calls are made with the device
synchronised around each. Peak memory is CUDA's peak allocation on GPU, the process's peak
resident set size on CPU. ``cpu_ms_median`` is the process's CPU time per frame (all its threads): what the
model costs a CPU, which on a machine shared with other jobs says more than the latency, since waiting for a
core is not counted (spinning OpenMP threads are).

Figures from two machines compare only with what made them: :func:`machine_description` (CPU model, cores,
load, torch's threads and build: version, BLAS, OpenMP, oneDNN, the CPU capability its kernels dispatch to, and
the OpenMP environment) is printed before every report. docs/benchmark.md explains how much each changes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import ndimage

from dataprep.cli_app import bounded
from benchmark.model import Model, load_model, pick_device
from benchmark.timing import measure


@dataclass
class SpeedReport:
    model: str
    device: str
    size: int
    batch_size: int
    references: int
    latency_ms_median: float
    latency_ms_min: float
    frames_per_second: float
    peak_memory_bytes: int
    cpu_ms_median: float


def synthetic_batch(size: int, batch_size: int = 1, references: int = 1, seed: int = 0,
                    device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """A batch in the :mod:`benchmark.model` layout with seeded random content (``target_components``: the
    4-connected paper regions of the random target sketch)."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    b, k, s = batch_size, references, size
    sketch = lambda *shape: (rand(*shape) > 0.1).float()  # noqa: E731  (mostly paper, some line pixels)
    hints = rand(b, 4, s, s)
    hints[:, 3] = (hints[:, 3] > 0.99).float()
    target_sketch = sketch(b, 1, s, s)
    # Component labels as every protocol that gives a sketch gives them: its line-enclosed (paper) regions.
    components = torch.stack([torch.from_numpy(ndimage.label(t[0].cpu().numpy() > 0.5)[0].astype(np.int64))
                              for t in target_sketch]).to(device)
    return {"reference_colour": rand(b, k, 3, s, s), "reference_sketch": sketch(b, k, 1, s, s),
            "reference_field": rand(b, k, 1, s, s), "target_sketch": target_sketch,
            "target_field": rand(b, 1, s, s), "hints": hints, "target_components": components}


def measure_speed(model: Model, name: str, size: int = 256, batch_size: int = 1, references: int = 1,
                  device: torch.device | str = "cpu", warmup: int = 2, repeats: int = 10) -> SpeedReport:
    device = torch.device(device)
    batch = synthetic_batch(size, batch_size, references, device=device)
    times, cpu_times, peak = [], [], 0
    with torch.inference_mode():
        for i in range(warmup + repeats):
            cpu_start = time.process_time()
            _, seconds, peak_bytes = measure(model, batch, device=device)
            if i >= warmup:
                times.append(seconds)
                cpu_times.append(time.process_time() - cpu_start)
                peak = max(peak, peak_bytes)
    median = statistics.median(times)
    return SpeedReport(name, str(device), size, batch_size, references, median * 1e3 / batch_size,
                       min(times) * 1e3 / batch_size, batch_size / median, peak,
                       statistics.median(cpu_times) * 1e3 / batch_size)


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device | str = "cpu") -> dict[str, str]:
    """What a speed figure depends on besides the model: CPU, cores this process may use, load, torch's thread
    counts and build (version, BLAS, OpenMP, oneDNN, dispatched CPU capability), the OpenMP/MKL environment
    (``OMP_WAIT_POLICY`` unset means OpenMP threads spin while waiting, which costs several times on a busy
    machine), and the GPU when one is used."""
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    described = {
        "cpu": f"{cpu_model()} ({os.cpu_count()} logical cores, {usable} usable by this process)",
        "load average": " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a",
        "torch": f"{torch.__version__}, BLAS {blas.group(1) if blas else 'unknown'}, "
                 f"MKL {'yes' if torch.backends.mkl.is_available() else 'no'}, "
                 f"oneDNN {'yes' if torch.backends.mkldnn.is_available() else 'no'}, "
                 f"OpenMP {'yes' if torch.backends.openmp.is_available() else 'no'}, "
                 f"CPU capability {torch.backends.cpu.get_cpu_capability()}",
        "threads": f"{torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op",
        "environment": ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in
                                 ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")),
    }
    if torch.device(device).type == "cuda":
        described["gpu"] = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    return described


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    for key, value in machine_description(device).items():
        print(f"{key:>18}: {value}")
    model = load_model(args.model, args.weights, device)
    report = measure_speed(model, args.model, args.size, args.batch_size, args.references, device,
                           args.warmup, args.repeats)
    for key, value in asdict(report).items():
        print(f"{key:>18}: {value:.3f}" if isinstance(value, float) else f"{key:>18}: {value}")
    return 0


def add_commands(commands) -> None:
    p = commands.add("speed", "latency, throughput and peak memory of a model on this machine", run)
    p.add_argument("--model", required=True, help="registered model name or package.module:factory")
    p.add_argument("--weights", help="weights file for the model factory")
    p.add_argument("--size", type=bounded(int, 8), default=256, help="image side in pixels (default 256)")
    p.add_argument("--batch-size", type=bounded(int, 1), default=1)
    p.add_argument("--references", type=bounded(int, 1), default=1, help="reference frames per target (K)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--warmup", type=bounded(int, 0), default=2, help="untimed calls first (default 2)")
    p.add_argument("--repeats", type=bounded(int, 1), default=10, help="timed calls (default 10)")
    p.add_argument("--threads", type=bounded(int, 1), help="torch intra-op threads (default: torch's, one per core)")
