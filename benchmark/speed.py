"""``bench speed``: latency, throughput and peak memory of a model's colourisation step.

Inputs are synthetic (seeded random line art and colours of the requested size), because speed does
not depend on content for the models celbench targets; the first ``warmup`` calls are discarded
(lazy initialisation, cuDNN autotuning), then ``repeats`` timed calls are made with the device
synchronised around each. Peak memory is CUDA's peak allocation on GPU, the process's peak
resident set size on CPU.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import ndimage

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
    times, peak = [], 0
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _, seconds, peak_bytes = measure(model, batch, device=device)
            if i >= warmup:
                times.append(seconds)
                peak = max(peak, peak_bytes)
    median = statistics.median(times)
    return SpeedReport(name, str(device), size, batch_size, references, median * 1e3 / batch_size,
                       min(times) * 1e3 / batch_size, batch_size / median, peak)


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
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
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--references", type=int, default=1, help="reference frames per target (K)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--repeats", type=int, default=10, help="timed calls (default 10)")
