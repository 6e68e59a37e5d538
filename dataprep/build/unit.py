"""The work of one unit: its shots' frames through the stage pipeline, pairs mined per shot, shards and marker.

Frames stream shot by shot: a unit holds the encoded PNGs and component tables of one shot at a time (needed to
mine pairs inside the shot), so memory is bounded by the longest shot (~150 kB per 256x256 frame), not by the video;
the decoded colour frames and label maps are kept as well up to :data:`RAW_BUDGET` per shot (64 MiB), so mining
pairs decodes no PNG for shots of up to about 200 frames.

Stored arrays (:data:`dataprep.dataset.schemas.FRAMES`, :data:`~dataprep.dataset.schemas.PAIRS`): colour (H, W, 3)
uint8 sRGB, sketch (H, W) uint8 (0 = line), distance field (H, W) uint16, component labels (H, W) uint16 (0 = line),
hints (H, W, 3) uint8 sRGB + mask (H, W) uint8 (255 = hint), all as PNG.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict

import cv2
import numpy as np

from dataprep.build.markers import remove_unit_files, write_marker
from dataprep.build.pipeline import LastFrame, make_pipeline
from dataprep.build.plan import ShotPlan, UnitPlan, derive_seed
from dataprep.build.shards import SplitShardWriter
from dataprep.config import BuildConfig
from dataprep.dataset.manifest import shard_hashes
from dataprep.dataset.schemas import FRAMES, PAIRS, image_value
from dataprep.imaging import decode_png, encode_png
from dataprep.pairs import PairSpec, ShotView, create_samplers, unseen_fraction
from dataprep.storage import Storage, local_input
from dataprep.video.line_art import part_correspondences, region_parts


class _Timer:
    """CPU seconds per stage (``time.process_time``: every thread of the process running the unit, FFmpeg's
    decoder threads included), so other load on the machine does not inflate them as it does wall time."""

    def __init__(self):
        self.seconds: Counter = Counter()

    def __call__(self, stage: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.t0 = time.process_time()

            def __exit__(self, *exc):
                timer.seconds[stage] += time.process_time() - self.t0

        return _Span()


class _ShotState:
    """What a unit keeps of the shot being processed (encoded, to bound memory)."""

    def __init__(self, shot_id: int, start: int, split: str):
        self.shot_id, self.start, self.split = shot_id, start, split
        self.indices: list[int] = []
        self.groups: list[int] = []
        self.colour_png: dict[int, bytes] = {}
        self.labels_png: dict[int, bytes] = {}
        # The arrays themselves too, up to RAW_BUDGET bytes per shot, so mining pairs needs no PNG decoding
        self.colour_raw: dict[int, np.ndarray] = {}
        self.labels_raw: dict[int, np.ndarray] = {}
        self.raw_bytes = 0
        self.tables: dict[int, list[dict]] = {}
        # region -> part index of drawings whose source gave a part map (dataprep.video.line_art.region_parts)
        self.parts: dict[int, np.ndarray] = {}
        self.anchor: np.ndarray | None = None
        self.run_first: dict[int, int] = {}


#: Bytes of decoded colour frames and label maps a unit keeps per shot for mining its pairs (64 MiB: about
#: 200 frames at 256 x 256); frames beyond it are decoded again from their PNG when a pair needs them.
RAW_BUDGET = 64 << 20


def _keep_raw(state: _ShotState, index: int, rgb: np.ndarray, labels: np.ndarray) -> None:
    """Keep a frame's arrays for pair mining while the budget allows and they equal their PNG round trip."""
    size = rgb.nbytes + labels.nbytes
    if (state.raw_bytes + size > RAW_BUDGET or rgb.dtype != np.uint8 or rgb.ndim != 3
            or labels.dtype not in (np.uint8, np.uint16) or labels.ndim != 2):
        return
    for array, store in ((rgb, state.colour_raw), (labels, state.labels_raw)):
        array = np.ascontiguousarray(array)
        array.setflags(write=False)
        store[index] = array
    state.raw_bytes += size


class _DecodeCache:
    """``cache[index]``: the image of ``encoded[index]``: the kept array when there is one, else the decoded PNG,
    the ``size`` most recently used kept decoded.

    Pairs are mined sequence by sequence in time order, so a small cache decodes almost every frame once.
    Arrays handed out are read-only (a shared array must not be changed by one pair for the next).
    """

    def __init__(self, encoded: dict[int, bytes], raw: dict[int, np.ndarray] | None = None, size: int = 64):
        self.encoded, self.raw, self.size = encoded, raw or {}, size
        self._decoded: OrderedDict[int, np.ndarray] = OrderedDict()

    def __getitem__(self, index: int) -> np.ndarray:
        if index in self.raw:
            return self.raw[index]
        array = self._decoded.get(index)
        if array is None:
            array = decode_png(self.encoded[index])
            array.setflags(write=False)
            self._decoded[index] = array
            if len(self._decoded) > self.size:
                self._decoded.popitem(last=False)
        else:
            self._decoded.move_to_end(index)
        return array


def _held_group(state: _ShotState, rgb: np.ndarray, index: int, threshold: float) -> int:
    """Streaming form of :func:`dataprep.pairs.held_groups` (when the detector reports no held runs)."""
    grey = rgb.mean(axis=2, dtype=np.float32)
    if (state.anchor is not None and state.anchor.shape == grey.shape
            and float(np.abs(grey - state.anchor).mean()) <= threshold):
        return state.groups[-1]
    state.anchor = grey
    return index


def process_unit(plan: UnitPlan, out_location: str, config: BuildConfig, pipeline_factory: str | None = None) -> dict:
    """Process the shots of one unit and write its shards into ``out_location`` (a folder or URL), then its
    marker. Returns the marker's content: ``unit`` and :data:`dataprep.build.markers.MARKER_KEYS` (counts per
    table/split/pair kind, CPU seconds per stage).

    Whatever an earlier attempt of the unit left is deleted first, and what this one wrote is deleted when it
    fails, so a unit is all or nothing.
    """
    out = Storage(out_location)
    unit = plan.key
    video_id = plan.video_id
    shots = plan.shots
    remove_unit_files(out, unit)
    if config.run.workers > 1:
        # Parallelism comes from the workers; OpenCV's own thread pool in each of them only oversubscribes
        # the cores (measured: 2 workers were slower than 1 on 2 cores until this).
        cv2.setNumThreads(1)
    timer = _Timer()
    t_start = time.perf_counter()
    with timer("setup"):
        pipeline = make_pipeline(config, pipeline_factory)
        samplers = create_samplers(config.samplers)
        described = pipeline.describe()
    compression = config.output.png_compression
    # a held drawing repeating the last frame's array repeats its PNG bytes too (LastFrame)
    last_png = {kind: LastFrame() for kind in ("colour", "sketch", "distance_field", "components")}

    def frame_png(array: np.ndarray, kind: str) -> bytes:
        return last_png[kind](lambda: encode_png(array, compression, kind), array)

    frames_writer = SplitShardWriter(out, "data/frames", unit, FRAMES, config.output.shard_size)
    pairs_writer = SplitShardWriter(out, "data/pairs", unit, PAIRS, config.output.shard_size * 8)
    shot_of: dict[int, ShotPlan] = {}
    for shot in shots:
        for i in range(shot.start, shot.end):
            shot_of[i] = shot
    first, last = min(s.start for s in shots), max(s.end for s in shots)
    dropped = set(plan.dropped)
    run_start: dict[int, int] | None = None
    if plan.held is not None:
        run_start = {i: a for a, b in plan.held for i in range(a, b)}
    counts: Counter = Counter()
    state: _ShotState | None = None

    def finish_shot(s: _ShotState) -> None:
        with timer("pairs"):
            specs = _mine(samplers, s, video_id, config)
        # A frame is in many pairs: decode each PNG once (a bounded cache, so memory stays per-frame small).
        labels_of = _DecodeCache(s.labels_png, s.labels_raw)
        colour_of = _DecodeCache(s.colour_png, s.colour_raw)
        for spec in specs:
            with timer("pairs"):
                ref, tgt = spec.references[0], spec.target
                ref_comp = (labels_of[ref], s.tables[ref])
                tgt_labels = labels_of[tgt]
                if ref in s.parts and tgt in s.parts:  # the source's part maps: the true correspondences
                    matches = part_correspondences(s.parts[ref], s.parts[tgt])
                else:
                    matches = pipeline.correspondences(ref_comp, (tgt_labels, s.tables[tgt]))
            with timer("hints"):
                pair_key = f"{spec.sequence_id}/{tgt:06d}"
                seed = derive_seed(config.seed, "hint", pair_key)
                hint_rgb, hint_mask = pipeline.hints(colour_of[tgt], tgt_labels, seed)
            with timer("encode"):
                row = {
                    "pair_key": pair_key, "video_id": video_id, "shot_id": s.shot_id, "split": s.split,
                    "kind": spec.kind, "sequence_id": spec.sequence_id, "position": spec.position,
                    "reference_keys": [f"{video_id}/{r:06d}" for r in spec.references],
                    "target_key": f"{video_id}/{tgt:06d}", "interval": spec.interval,
                    "correspondences": [{"ref_id": a, "tgt_id": b} for a, b in matches],
                    "hints": image_value(encode_png(hint_rgb, compression, "hints")),
                    "hint_mask": image_value(encode_png(hint_mask, compression, "hint_mask")),
                    "hint_method": described["hint_method"], "hint_seed": seed,
                }
            with timer("write"):
                pairs_writer.add(row)
            counts[f"pairs:{spec.kind}"] += 1
            counts[f"pairs@{s.split}"] += 1
        counts["shots"] += 1

    try:
        path = local_input(plan.path, plan.sha256)
        frames = pipeline.frames(path, first, last, n_frames=plan.n_frames)
        while True:
            with timer("decode"):
                item = next(frames, None)
                if item is not None:
                    index, timestamp, image = item
                    if index not in shot_of or index in dropped:  # not in a kept shot, or dark/faded (Shi 4.1)
                        continue
                    rgb, given = pipeline.fit(image)
            if item is None:
                break
            shot = shot_of[index]
            if state is None or state.shot_id != shot.shot_id:
                if state is not None:
                    finish_shot(state)
                state = _ShotState(shot.shot_id, shot.start, shot.split)
            with timer("held"):
                if run_start is not None:
                    # id = first stored frame of the detector's run (its first frame may have been dropped)
                    group = state.run_first.setdefault(run_start.get(index, index), index)
                else:
                    group = _held_group(state, rgb, index, config.frames.held_threshold)
            with timer("sketch"):
                sketch = pipeline.sketch(rgb) if given is None else given.sketch
            with timer("field"):
                field = pipeline.distance_field(sketch)
            with timer("components"):
                labels, table = (pipeline.components(sketch, rgb) if given is None else
                                 pipeline.components(sketch, rgb, given.labels))
            parts = None
            if given is not None and given.parts is not None:
                with timer("components"):
                    parts = region_parts(labels, given.parts)
            with timer("encode"):
                extractor = described if given is None else pipeline.describe_given(given)
                colour_png = frame_png(rgb, "colour")
                labels_png = frame_png(labels, "components")
                row = {
                    "frame_key": f"{video_id}/{index:06d}", "video_id": video_id, "shot_id": state.shot_id,
                    "shot_start": state.start, "frame_index": index, "timestamp": timestamp,
                    "split": state.split, "held_group": group, "width": rgb.shape[1], "height": rgb.shape[0],
                    "colour": image_value(colour_png), "sketch": image_value(frame_png(sketch, "sketch")),
                    "distance_field": image_value(frame_png(field, "distance_field")),
                    "components": image_value(labels_png), "component_table": table,
                    "component_parts": None if parts is None else _stored_parts(parts, table),
                    "extractor": extractor["extractor"], "extractor_params": extractor["extractor_params"],
                    "field": described["field"], "seed": derive_seed(config.seed, video_id, index),
                }
            with timer("write"):
                frames_writer.add(row)
            state.indices.append(index)
            state.groups.append(group)
            state.colour_png[index], state.labels_png[index], state.tables[index] = colour_png, labels_png, table
            _keep_raw(state, index, rgb, labels)
            if parts is not None:
                state.parts[index] = parts
            counts["frames"] += 1
            counts[f"frames:{state.split}"] += 1
        if state is not None:
            finish_shot(state)
        with timer("write"):
            files = {"frames": frames_writer.close(), "pairs": pairs_writer.close()}
    except BaseException:
        frames_writer.abort()
        pairs_writer.abort()
        remove_unit_files(out, unit)
        raise
    result = {"unit": unit, "files": files, "sha256": shard_hashes(out, files), "counts": dict(counts),
              "timings": dict(timer.seconds), "seconds": time.perf_counter() - t_start}
    write_marker(out, unit, result)
    return result


def _stored_parts(parts: np.ndarray, table: list[dict]) -> list[int]:
    """``frames.component_parts`` of a frame: the part of each component 1..N of its table, from
    :func:`dataprep.video.line_art.region_parts`' (L + 1,) array (an id with no pixel, never in a table of
    compact labels, would be -2)."""
    ids = [int(entry["id"]) for entry in table]
    if ids != list(range(1, len(ids) + 1)):
        raise ValueError(f"component ids are not 1..{len(ids)}")
    return [int(parts[i]) if i < len(parts) else -2 for i in ids]


def _mine(samplers, s: _ShotState, video_id: str, config: BuildConfig) -> list[PairSpec]:
    tolerance = config.unseen_colour_tolerance
    view = ShotView(video_id, s.shot_id, s.indices, s.groups, seed=derive_seed(config.seed, video_id, s.start),
                    unseen=lambda r, t: unseen_fraction(s.tables[r], s.tables[t], tolerance))
    specs: list[PairSpec] = []
    for sampler in samplers:
        specs.extend(sampler.sample(view))
    return specs

