"""``bench demo``: the main job on the embedded demo video, end to end.

1. generate the built-in demo clip (procedural cel animation, :mod:`dataprep.synth`) -> ``DIR/video``;
2. build a dataset from it with ``dataprep build`` -> ``DIR/dataset`` (every shot in the test split);
3. ``bench evaluate`` the built-in floors (``copy-reference``, ``flow-warp``) under every protocol
   whose inputs they accept, the shipped learned weights under their paper's protocol (``cmft-warp`` and
   ``warp-refine`` under ``cmft-interval``; ``shi-warp`` under ``shi-kref``; the faithful ``cmft``, ``cmft-nocmft``,
   ``shi`` and ``shi-nosim`` ship no weights: baselines/pretrained/MODEL_CARD.md),
   the component matchers (``match-hand``, ``match-graph``, ``match-unet``, ``match-graph-unet``) with
   ``flow-warp+vote`` under ``components@2``, and ``hint-flood`` and the shipped ``yuan`` weights under ``hints@2``
   -> ``DIR/leaderboards/results``;
4. ``bench leaderboard build`` -> ``DIR/leaderboards/*.md, .csv, .html`` with plots and example grids.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from dataprep.build.cli import single_split_overrides
from dataprep.errors import CelbenchError
from dataprep.synth import SynthClip, demo_config
from dataprep.synth.cli import describe

from benchmark.source import Frame, MemorySource, SampleSource, Shot

PROTOCOLS = ("cmft-interval@1", "shi-kref@1", "components@1", "components@2", "hints@1", "hints@2")
#: model -> protocols the demo scores it under: the floors wherever their inputs allow, the learned baselines
#: (shipped weights, reached through the ``celbench.models`` entry points) under their paper's protocol,
#: the component matchers and the voted flow warp under the paint-bucket protocol (matchers also under CMFT's),
#: the hint floor and the hint colouriser of Yuan & Simo-Serra under the hint-budget protocol.
DEMO_MODELS = {"copy-reference": PROTOCOLS, "flow-warp": PROTOCOLS,
               "cmft-warp": ("cmft-interval@1",), "warp-refine": ("cmft-interval@1",),
               "shi-warp": ("shi-kref@1",),
               "flow-warp+vote": ("components@2",),
               "match-hand": ("components@2", "cmft-interval@1"), "match-graph": ("components@2", "cmft-interval@1"),
               "match-unet": ("components@2", "cmft-interval@1"), "match-graph-unet": ("components@2", "cmft-interval@1"),
               "hint-flood": ("hints@2",), "yuan": ("hints@2",)}
#: ``dataprep build --set`` overrides for the demo: the whole clip is test data (``--split test``).
BUILD_OVERRIDES = (*single_split_overrides("test"), "run.workers=1")


def add_commands(commands) -> None:
    p = commands.add("demo", "run the main job on the built-in demo video", run_demo)
    p.add_argument("--out", default="demo", help="output folder (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing demo folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")


def effect_frames(clip: SynthClip) -> set[int]:
    """Indices of the clip's frames that a post effect recolours: the fade through black
    (``truth["gradual_transitions"]``, inclusive ranges) and the flash frames (``truth["flashes"]``)."""
    truth = clip.truth
    frames = {index for first, last in truth["gradual_transitions"] for index in range(first, last + 1)}
    return frames | set(truth["flashes"])


def synth_source(clip: SynthClip, paint_only: bool = True) -> MemorySource:
    """The clip's ground truth as a sample source: colour, line art, a Euclidean distance field
    (pixels to the nearest line, divided by the image diagonal so it lies in [0, 1]) and region labels;
    one shot per synth shot, drawing numbers as held groups, every shot in the test split. The generator's
    region ids are its parts (the same id in two frames of a shot is the same part), so every frame's
    ``parts`` is the identity and ``components@2`` scores matches against these true correspondences.

    ``paint_only`` (default) leaves out the frames a post effect recolours (:func:`effect_frames`: fade,
    flash): their colours are not the paint, so a pair with such a frame on either side has no target region
    whose colour is in the reference's palette, and a paint-bucket colouriser cannot be right there whatever
    it matches (on the demo clip 9 of the 64 ``components@2`` pairs, 0 such regions in each; seed 20: 15 of
    64). ``paint_only=False`` keeps them."""
    skipped = effect_frames(clip) if paint_only else set()
    frames: dict[str, Frame] = {}
    shots: dict[int, list[tuple[str, int]]] = {}
    for frame in clip.frames():
        if frame.index in skipped:
            continue
        key = f"synth/{frame.index:06d}"
        distance = cv2.distanceTransform(np.where(frame.line_art > 127, 255, 0).astype(np.uint8), cv2.DIST_L2, 5)
        diagonal = float(np.hypot(*frame.line_art.shape))
        parts = np.arange(int(frame.labels.max()) + 1, dtype=np.int64)
        parts[0] = -2  # the line label has no part
        frames[key] = Frame(colour=frame.image, sketch=frame.line_art, field=(distance / diagonal).astype(np.float32),
                            components=frame.labels, parts=parts)
        shots.setdefault(frame.shot, []).append((key, frame.drawing))
    shot_list = [Shot(f"synth/{shot}", tuple(k for k, _ in items), tuple(d for _, d in items))
                 for shot, items in sorted(shots.items())]
    return MemorySource({"test": shot_list}, frames, manifest={"synth": clip.truth}, location="synth-ground-truth")


def demo_dataset(video_dir: Path, dataset_dir: Path, log=print) -> SampleSource:
    """Step 2: ``dataprep build`` the demo video into ``dataset_dir`` (every shot in the test split), then
    ``dataprep validate`` and ``dataprep info``: build messages go to ``log``, the summary to stdout, the
    report (random samples: colour, sketch, distance field, components, hints) to ``dataset_dir/report.html``
    and ``report.png``."""
    from benchmark.parquet_source import ParquetSource
    from dataprep.build import build
    from dataprep.config import load_config
    from dataprep.dataset.report import format_summary, summarise, write_report
    from dataprep.dataset.validate import ValidationError, validate

    video = next(p for p in sorted(video_dir.iterdir()) if p.stem == "video")
    report = build([video], dataset_dir, load_config(None, list(BUILD_OVERRIDES)), overwrite=True,
                   log=lambda message: log(f"dataprep build: {message}"))
    if report.failed:
        raise CelbenchError(f"{dataset_dir}: dataprep build failed for units {', '.join(report.failed)}")
    try:
        validate(dataset_dir)
    except ValidationError as error:  # a demo scored on an invalid dataset would mislead
        raise CelbenchError(f"{dataset_dir}: dataprep validate: invalid: {error}") from None
    summary = summarise(dataset_dir)
    print(format_summary(summary))
    written = write_report(dataset_dir, summary)
    print("dataset report (open the .html in a browser): " + ", ".join(str(p) for p in written))
    return ParquetSource(dataset_dir)


def run_demo(args: argparse.Namespace) -> int:
    from benchmark.evaluate import evaluate, model_inputs, save
    from benchmark.leaderboard import build as build_leaderboard
    from benchmark.model import load_model, pick_device
    from benchmark.protocol import load_protocol

    out = Path(args.out)
    clip = SynthClip(demo_config())
    video_dir = clip.write(out / "video", overwrite=args.overwrite or (out / "video" / "truth.json").exists())
    print(describe(video_dir))
    source = demo_dataset(Path(video_dir), out / "dataset", log=lambda m: print(m, file=sys.stderr))
    device = pick_device(args.device)
    results = out / "leaderboards" / "results"
    for protocol_id in PROTOCOLS:
        protocol = load_protocol(protocol_id)
        for name in (m for m, protocols in DEMO_MODELS.items() if protocol_id in protocols):
            model = load_model(name, device=device)
            needs = set(getattr(model, "requires", ()))
            if not needs <= set(model_inputs(protocol)):
                print(f"skip {name} on {protocol.id}: it needs {', '.join(sorted(needs - set(model_inputs(protocol))))}")
                continue
            try:
                evaluation = evaluate(model, name, source, protocol, split="test", device=device)
            except CelbenchError as error:
                print(f"skip {name} on {protocol.id}: {error}")
                continue
            paths = save(evaluation, results / protocol.id / f"{name}.json")
            record = evaluation.record
            primary = record.metric(record.primary_metric)
            print(f"{name:>15} {protocol.id:<16} {primary.name} = {primary.value:.4f} "
                  f"({record.samples_valid} samples, {record.status}) -> {paths['record']}")
    written = build_leaderboard(results, out / "leaderboards")
    print("\nLeaderboards (open the .html in a browser):")
    for path in written:
        if path.suffix in (".md", ".html"):
            print(f"  {path}")
    return 0
