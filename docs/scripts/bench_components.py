"""CPU per stored frame of the components stage on real anime and generated frames, optionally side by side.

    python docs/scripts/bench_components.py [--real ../shared/data/real] [--step 3] [--as-built] [--baseline TREE ...]

Makes the frames a default ``dataprep build`` stores (256 x 256, XDoG sketch) from the real clips of
``bench_build.py`` (One Piece, LVCD, the eisai and TRE-Net shots cropped to their input panel) and from a
generated clip (``dataprep.synth``, 1920 x 1080, 3 shots), every ``--step``-th frame, then times gap closing +
labels + features (``time.process_time``, one OpenCV thread) per frame. With ``--baseline TREE`` (a checkout
of another commit; repeat it for several) that tree's ``dataprep/components`` module runs too, the trees
taking turns to go first frame by frame, and every label map and feature table is compared with this tree's.
With ``--as-built`` this tree runs the stage as a build does (``StagePipeline.components``: a held drawing that
repeats the last frame's line mask or colour frame gets the last output back, ``LastFrame``); with ``--step 1``
the frames come in build order, so that reuse shows. Prints ms per frame per clip, this tree's speed-up over
each baseline and whether all outputs were identical (exit 1 if not).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import REPO, real_builds  # noqa: E402

from dataprep import components  # noqa: E402
from dataprep.build.pipeline import TABLE_FIELDS, StagePipeline  # noqa: E402
from dataprep.config import load_config  # noqa: E402
from dataprep.imaging import fit_frame, to_rgb  # noqa: E402


def stored_frames(inputs: list[str], overrides: list[str], step: int):
    """(clip name, rgb, sketch) of every ``step``-th frame as a default build stores it."""
    config = load_config(None, overrides)
    pipeline = StagePipeline(config)
    for path in inputs:
        for index, _, image in pipeline.frames(path):
            if index % step == 0:
                rgb = fit_frame(to_rgb(image), *config.frames.box(), config.frames.resize)
                yield Path(path).stem, rgb, pipeline.sketch(rgb)


def synth_frames(step: int):
    from dataprep.synth import SynthClip, SynthConfig

    pipeline = StagePipeline(load_config())
    clip = SynthClip(SynthConfig(width=1920, height=1080, shots=3, shot_length=(40, 80), seed=0))
    for frame in clip.frames():
        if frame.index % step == 0:
            rgb = fit_frame(frame.image, 256, 256, "centre-crop")
            yield "synth 1080p", rgb, pipeline.sketch(rgb)


def load_components(tree: Path, n: int = 0):
    """``dataprep.components`` of another checkout, as a module of its own."""
    path = tree / "dataprep" / "components" / "__init__.py"
    if not path.exists():
        path = tree / "dataprep" / "components.py"
    spec = importlib.util.spec_from_file_location(f"baseline_components_{n}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(module, sketch: np.ndarray, rgb: np.ndarray) -> tuple[float, tuple]:
    start = time.process_time()
    labels = module.label_components(module.close_gaps(module.line_mask(sketch)))
    columns = module.component_columns(labels, rgb)
    return time.process_time() - start, (labels, columns)


class AsBuilt:
    """This tree's stage as a build runs it: :meth:`StagePipeline.components`, which hands back the last frame's
    labels and table when a held drawing repeats the line mask (and the colour frame); columns for comparison."""

    def __init__(self):
        self.pipeline = StagePipeline(load_config())

    def __call__(self, sketch: np.ndarray, rgb: np.ndarray) -> tuple[float, tuple]:
        start = time.process_time()
        labels, table = self.pipeline.components(sketch, rgb)
        spent = time.process_time() - start
        return spent, (labels, {k: [row[k] for row in table] for k in TABLE_FIELDS})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REPO.parent / "shared" / "data" / "real")
    parser.add_argument("--step", type=int, default=3, help="every step-th frame (default 3)")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="another checkout to compare with (repeatable)")
    parser.add_argument("--as-built", action="store_true",
                        help="time this tree as the build runs the stage (held drawings reuse the last frame's "
                             "output); use with --step 1, the frames in build order")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as in a build with several workers
    trees = {}  # label -> (sketch, rgb) -> (CPU seconds, (labels, columns))
    for n, tree in enumerate(args.baseline):
        trees[f"baseline {n + 1}" if len(args.baseline) > 1 else "baseline"] = partial(
            run, load_components(tree.resolve(), n))
    trees["this tree"] = AsBuilt() if args.as_built else partial(run, components)
    sources = []
    if args.real.is_dir():
        sources += [stored_frames(inputs, overrides, args.step) for _, inputs, overrides in real_builds(args.real)]
    else:
        print(f"bench_components: no real data at {args.real}; generated frames only", file=sys.stderr)
    sources.append(synth_frames(args.step))
    seconds: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    identical = True
    for source in sources:
        for n, (clip, rgb, sketch) in enumerate(source):
            order = list(trees)[n % len(trees):] + list(trees)[:n % len(trees)]
            outputs = {}
            for label in order:
                spent, outputs[label] = trees[label](sketch, rgb)
                seconds.setdefault(clip, {}).setdefault(label, 0.0)
                seconds[clip][label] += spent
            counts[clip] = counts.get(clip, 0) + 1
            labels_b, columns_b = outputs["this tree"]
            for label, (labels_a, columns_a) in outputs.items():
                identical &= bool(np.array_equal(labels_a, labels_b) and columns_a == columns_b)
    baselines = list(trees)[:-1]
    header = " ".join(f"{label + ' ms':>14s}" for label in trees)
    print(f"{'clip':32s} {'frames':>6s} {header}" + "".join(f" {'x ' + b:>12s}" for b in baselines))
    real = [clip for clip in seconds if not clip.startswith("synth")]
    rows = list(seconds.items())
    if len(real) > 1:
        rows.append(("all real frames", {label: sum(seconds[c][label] for c in real) for label in trees}))
        counts["all real frames"] = sum(counts[c] for c in real)
    for clip, spent in rows:
        values = [1e3 * spent[label] / counts[clip] for label in trees]
        ratios = "".join(f" {values[i] / values[-1]:12.2f}" for i in range(len(baselines)))
        print(f"{clip:32s} {counts[clip]:6d} " + " ".join(f"{v:14.2f}" for v in values) + ratios)
    if baselines:
        print(json.dumps({"identical_outputs": identical}))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
