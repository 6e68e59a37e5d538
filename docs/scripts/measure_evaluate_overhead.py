"""How much does ``bench evaluate`` add on top of the work any evaluation must do?

Runs ``copy-reference`` (a model whose forward is a slice, so the harness dominates) at 256x256 on the
built-in demo clip's ground truth under a protocol, twice:

- ``evaluate()``: the full runner (sampling, batching, output checks, timing, per-sample rows,
  aggregation, example images);
- a bare loop doing only the necessary work for the same samples: load + resize frames, call the
  model, quantise to 8 bit, score every metric.

and prints seconds per frame of each, the runner's own breakdown, and

    overhead = (runner - bare) / runner            (harness bookkeeping as a share of the runner's time)
    non-forward share = (runner - forward) / runner (everything but the model call; ~100% for this floor)

Usage: python docs/scripts/measure_evaluate_overhead.py [--protocol shi-kref@1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmark.demo import synth_source
from benchmark.evaluate import HARNESS_THREADS, FrameLoader, _batches, build_batch, create_metric, evaluate, to_uint8_images
from benchmark.model import load_model
from benchmark.protocol import load_protocol
from dataprep.synth import SynthClip, demo_config


def bare_loop(model, source, protocol, samples) -> float:
    metrics = [create_metric(spec) for spec in protocol.metrics if not spec.optional]
    load = FrameLoader(source, protocol.resolution)
    start = time.perf_counter()
    for batch in _batches(samples, protocol.batch_size):  # same grouping (equal K per batch)
        inputs, target, labels = build_batch(batch, load, protocol)
        prediction = to_uint8_images(model(inputs))
        truth = to_uint8_images(target)
        for j in range(len(batch)):
            for metric in metrics:
                extra = {"labels": labels[j].numpy()} if "labels" in getattr(metric, "requires", ()) else {}
                metric.score(prediction[j], truth[j], **extra)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="shi-kref@1")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    protocol = load_protocol(args.protocol)
    source = synth_source(SynthClip(demo_config()))
    model = load_model("copy-reference")
    samples = protocol.select(source, "test")
    runner, bare, breakdowns = [], [], []
    for _ in range(args.repeats):
        result = evaluate(model, "copy-reference", source, protocol, n_examples=4)
        runner.append(result.record.speed.evaluation_seconds)
        breakdowns.append(result.record.speed.breakdown)
        before = torch.get_num_threads()
        torch.set_num_threads(HARNESS_THREADS)  # same thread setting as the runner's own work
        bare.append(bare_loop(model, source, protocol, samples))
        torch.set_num_threads(before)
    n = len(samples)
    r, b = statistics.median(runner), statistics.median(bare)
    forward = statistics.median(d["forward"] for d in breakdowns)
    print(f"{protocol.id}, {n} frames at {protocol.resolution[1]}x{protocol.resolution[0]}, copy-reference, "
          f"median of {args.repeats}")
    print(f"runner      {r / n * 1e3:8.3f} ms/frame   breakdown (last run): {breakdowns[-1]}")
    print(f"bare loop   {b / n * 1e3:8.3f} ms/frame")
    print(f"overhead = (runner - bare) / runner = {(r - b) / r:.1%}")
    print(f"non-forward share = (runner - forward) / runner = {(r - forward) / r:.1%}")


if __name__ == "__main__":
    main()
