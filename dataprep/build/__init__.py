"""``dataprep build``: sources -> shots -> per-frame stages -> mined pairs -> sharded Parquet + manifest.

Layout of a dataset directory::

    README.md                       dataset card: Hugging Face ``configs:`` (a config per table), counts, fields
    meta/info.json                  manifest (LeRobot-like): schema version, config + hash, sources, units, counts
    meta/lock.json                  while a build runs: who runs it (a second build on the output is refused)
    meta/shots/<video_id>.json      shot detection result per source (cached; a resumed build reuses it)
    meta/units/<unit>.done.json     completion marker of a unit: its files, their sha256 and counts (datatrove-style)
    data/frames/<unit>.<split>.<nnn>.parquet    frames table shards, one split each (dataprep.dataset.schemas.FRAMES)
    data/pairs/<unit>.<split>.<nnn>.parquet     pairs table shards, one split each (dataprep.dataset.schemas.PAIRS)

Work is split into independent *units* (a whole source, or a range of its shots, ``run.frames_per_unit``) run by an
executor from :data:`dataprep.build.executor.EXECUTORS`. A unit writes each shard to a temporary name and renames it when
complete, then writes its marker; a unit without marker is redone from scratch (its leftovers deleted first) so a
rerun with ``--resume`` neither loses nor duplicates rows. A failing unit (exception, ``OSError`` such as a full
disk, a killed worker) is recorded as failed in the manifest and the others go on; ``--resume`` redoes it.

Shot detection and units run in one executor session (:class:`dataprep.build.executor.TaskQueue`): the workers are
spawned once, a worker with nothing to detect warms up meanwhile (imports, the source's packet index), and a
source's units are queued, longest first, as soon as its shots are known, so the next source's detection overlaps
with them and no worker idles long at the end.

Frames stream shot by shot: a unit holds the encoded PNGs and component tables of one shot at a time (needed to
mine pairs inside the shot), so memory is bounded by the longest shot (~150 kB per 256x256 frame), not by the video;
the decoded colour frames and label maps are kept as well up to :data:`RAW_BUDGET` per shot (64 MiB), so mining
pairs decodes no PNG for shots of up to about 200 frames.

The output and the inputs may be URLs of any fsspec filesystem (``s3://``, ``gs://`` ...; :mod:`dataprep.storage`),
and the executor may be a Ray cluster (docs/scale-out.md): a unit's payload names its source and the output, and
workers anywhere read and write them.

Splits are assigned per shot (or per source, ``split.by``) from a hash of (split seed, video id, shot start):
deterministic, independent of the executor and of the other sources, and never divide a shot.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import time
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.hashing import sha256_file, sha256_stream
from dataprep import __version__
from dataprep.config import SPLITS, BuildConfig, config_from_dict, config_hash
from dataprep.dataset.card import write_card
from dataprep.dataset.manifest import Manifest, check_manifest_structure, shard_hashes
from dataprep.errors import CelbenchError, file_error
from dataprep.build.executor import EXECUTORS, Task, TaskQueue, TaskResult
from dataprep.imaging import decode_png, encode_png, fit_frame, to_rgb
from dataprep.pairs import PairSpec, ShotView, create_samplers, unseen_fraction
from dataprep.paths import safe_name
from dataprep.progress import progress
from dataprep.dataset.schemas import FRAMES, IMAGE, PAIRS, SCHEMA_VERSION, SCHEMAS, image_value
from dataprep.storage import BuildLock, Storage, is_url, local_input, local_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

#: The stage adapter, as "module:attribute"; payloads carry it to the workers (which may be spawned, not forked),
#: so another adapter (a test stand-in, a GPU pipeline) is chosen by setting this before ``build``.
PIPELINE = "dataprep.build.pipeline:StagePipeline"


def make_pipeline(config: BuildConfig, factory: str | None = None):
    module, _, attribute = (factory or PIPELINE).partition(":")
    return getattr(importlib.import_module(module), attribute)(config)


# --------------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Source:
    """One input: a video/GIF file or a folder of frames."""

    path: str
    video_id: str
    sha256: str
    kind: str  # 'video' or 'frames'

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "video_id": self.video_id, "sha256": self.sha256, "kind": self.kind}


def resolve_source(path: str | os.PathLike) -> Source:
    """Hash a source; a folder's hash covers its image files' names and contents (sorted). ``path`` may be a URL
    (:mod:`dataprep.storage`): its bytes are read here once to hash them, and workers copy it to their cache."""
    local = local_path(path)
    where = Storage(path)
    name = Path(local).name if local is not None else str(path).rstrip("/").rpartition("/")[2]
    if where.isdir():
        images = [f for f in where.listdir() if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise file_error(path, "folder holds no image frames (.png, .jpg, ...)")
        digest = hashlib.sha256()
        for image in images:
            digest.update(f"{image}\0{hashlib.sha256(where.read_bytes(image)).hexdigest()}\n".encode())
        sha, kind = digest.hexdigest(), "frames"
    elif local is not None and Path(local).is_file():
        sha, kind = sha256_file(local), "video"
    elif local is None and where.exists():
        sha, kind = sha256_stream(where.fs.open(where.path())), "video"
    else:
        raise file_error(path, "no such file or folder")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem if kind == "video" else name).strip("_") or "source"
    location = str(Path(local).resolve()) if local is not None else where.location
    return Source(location, f"{stem}-{sha[:8]}", sha, kind)


# ---------------------------------------------------------------------------------------------- splits
def assign_split(config: BuildConfig, video_id: str, shot_start: int) -> str:
    """'train' / 'val' / 'test' from a hash of (split seed, video, shot start); per video when split.by='video'."""
    key = f"{config.split.seed}/{video_id}" + (f"/{shot_start}" if config.split.by == "shot" else "")
    u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64
    if u < config.split.train:
        return "train"
    if u < config.split.train + config.split.val:
        return "val"
    return "test"


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from the build seed and names (stable across processes, unlike hash())."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


# ---------------------------------------------------------------------------------------------- output
class ShardWriter:
    """Streams rows of one table into ``<folder>/<unit>.<nnn>.parquet`` shards of at most ``shard_size`` rows
    (``folder`` in ``storage``).

    Each shard is written as ``<name>.tmp`` and committed (renamed) when closed, so a reader never sees half a
    file.
    """

    ROW_GROUP = 64  # rows buffered before a row group is written: bounds memory, keeps reads efficient

    def __init__(self, storage: Storage, folder: str, unit: str, schema: pa.Schema, shard_size: int):
        self.storage, self.folder, self.unit, self.schema, self.shard_size = storage, folder, unit, schema, shard_size
        storage.makedirs(folder)
        self.files: list[str] = []
        self.rows = 0
        self._buffer: list[dict] = []
        self._writer: pq.ParquetWriter | None = None
        self._tmp: str | None = None
        self._in_shard = 0

    def add(self, row: dict) -> None:
        self._buffer.append(row)
        self.rows += 1
        self._in_shard += 1
        if len(self._buffer) >= self.ROW_GROUP or self._in_shard >= self.shard_size:
            self._flush()
        if self._in_shard >= self.shard_size:
            self._close_shard()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self._tmp = f"{self.folder}/{self.unit}.{len(self.files):03d}.parquet.tmp"
            self._writer = pq.ParquetWriter(self.storage.path(self._tmp), self.schema, compression="zstd",
                                            filesystem=self.storage.arrow_filesystem)
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        self._writer.write_table(table)
        self._buffer = []

    def _close_shard(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            final = self._tmp[: -len(".tmp")]
            self.storage.commit(self._tmp, final)
            self.files.append(final.rpartition("/")[2])
            self._writer, self._tmp = None, None
        self._in_shard = 0

    def close(self) -> list[str]:
        self._close_shard()
        return self.files

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
        if self._tmp is not None:
            self.storage.remove(self._tmp)


class SplitShardWriter:
    """A :class:`ShardWriter` per split: rows go to ``<folder>/<unit>.<split>.<nnn>.parquet``, so every shard
    holds one split and a split is a set of files (what the dataset card's ``data_files`` name for
    Hugging Face ``datasets``)."""

    def __init__(self, storage: Storage, folder: str, unit: str, schema: pa.Schema, shard_size: int):
        self.storage, self.folder, self.unit, self.schema, self.shard_size = storage, folder, unit, schema, shard_size
        self._writers: dict[str, ShardWriter] = {}

    def add(self, row: dict) -> None:
        split = row["split"]
        if split not in self._writers:
            self._writers[split] = ShardWriter(self.storage, self.folder, f"{self.unit}.{split}", self.schema,
                                               self.shard_size)
        self._writers[split].add(row)

    def close(self) -> list[str]:
        return sorted(name for writer in self._writers.values() for name in writer.close())

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.abort()


def remove_unit_files(out: Storage, unit: str) -> None:
    """Delete every shard, temporary file and marker a unit may have left.

    ``unit`` may come from a manifest: it is checked to be a plain name first, so a tampered key cannot reach
    ``glob``/``remove`` outside ``out``.
    """
    safe_name(unit, "unit key", out / "meta/info.json")
    for name in (out.glob("data/frames", f"{unit}.") + out.glob("data/pairs", f"{unit}.")
                 + out.glob("meta/units", f"{unit}.done.json")):
        out.remove(name)


# ------------------------------------------------------------------------------------------ unit work
class _Timer:
    def __init__(self):
        self.seconds: Counter = Counter()

    def __call__(self, stage: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[stage] += time.perf_counter() - self.t0

        return _Span()


def build_task(payload: dict) -> Any:
    """Executor task of a build: ``payload["task"]`` is 'detect' (:func:`detect_task`), 'unit'
    (:func:`process_unit`) or 'warm' (:func:`warm_task`)."""
    return {"detect": detect_task, "unit": process_unit, "warm": warm_task}[payload["task"]](payload)


def warm_task(payload: dict) -> None:
    """Executor task: make a worker ready while others detect shots (imports, the pipeline's per-source prep)."""
    config = config_from_dict(payload["config"])
    pipeline = make_pipeline(config, payload.get("pipeline"))
    create_samplers(config.samplers)
    prepare = getattr(pipeline, "prepare", None)
    if prepare is not None:
        for path, sha256 in payload["paths"]:
            try:
                prepare(local_input(path, sha256))
            except Exception:  # only a head start: the unit that needs it reports any problem
                pass


def detect_task(payload: dict) -> dict:
    """Executor task: shot detection of one source, cached as meta/shots/<video_id>.json."""
    t0 = time.perf_counter()
    config = config_from_dict(payload["config"])
    result = make_pipeline(config, payload.get("pipeline")).detect(local_input(payload["path"], payload["sha256"]))
    result.update(input=payload["path"], seconds=time.perf_counter() - t0)  # the source, not a cached copy
    Storage(payload["out"]).write_text(f"meta/shots/{payload['video_id']}.json", json.dumps(result, indent=1))
    return {"n_frames": result.get("n_frames"), "fps": result.get("fps"), "seconds": result["seconds"]}


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


def process_unit(payload: dict) -> dict:
    """Executor task: process the shots of one unit and write its shards and marker. Returns its counts."""
    out = Storage(payload["out"])
    unit = payload["unit"]
    config = config_from_dict(payload["config"])
    video_id = payload["video_id"]
    shots: list[dict] = payload["shots"]
    remove_unit_files(out, unit)
    if config.run.workers > 1:
        # Parallelism comes from the workers; OpenCV's own thread pool in each of them only oversubscribes
        # the cores (measured: 2 workers were slower than 1 on 2 cores until this).
        cv2.setNumThreads(1)
    timer = _Timer()
    t_start = time.perf_counter()
    with timer("setup"):
        pipeline = make_pipeline(config, payload.get("pipeline"))
        samplers = create_samplers(config.samplers)
        described = pipeline.describe()
    compression = config.output.png_compression
    frames_writer = SplitShardWriter(out, "data/frames", unit, FRAMES, config.output.shard_size)
    pairs_writer = SplitShardWriter(out, "data/pairs", unit, PAIRS, config.output.shard_size * 8)
    shot_of: dict[int, dict] = {}
    for shot in shots:
        for i in range(shot["start"], shot["end"]):
            shot_of[i] = shot
    first, last = min(s["start"] for s in shots), max(s["end"] for s in shots)
    dropped = set(payload.get("dropped", []))
    run_start: dict[int, int] | None = None
    if payload.get("held") is not None:
        run_start = {i: a for a, b in payload["held"] for i in range(a, b)}
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
        path = local_input(payload["path"], payload["sha256"])
        frames = pipeline.frames(path, first, last, n_frames=payload.get("n_frames"))
        while True:
            with timer("decode"):
                item = next(frames, None)
                if item is not None:
                    index, timestamp, image = item
                    if index not in shot_of or index in dropped:  # not in a kept shot, or dark/faded (Shi 4.1)
                        continue
                    rgb = fit_frame(to_rgb(image), *config.frames.box(), config.frames.resize)
            if item is None:
                break
            shot = shot_of[index]
            if state is None or state.shot_id != shot["shot_id"]:
                if state is not None:
                    finish_shot(state)
                state = _ShotState(shot["shot_id"], shot["start"], shot["split"])
            with timer("held"):
                if run_start is not None:
                    # id = first stored frame of the detector's run (its first frame may have been dropped)
                    group = state.run_first.setdefault(run_start.get(index, index), index)
                else:
                    group = _held_group(state, rgb, index, config.frames.held_threshold)
            with timer("sketch"):
                sketch = pipeline.sketch(rgb)
            with timer("field"):
                field = pipeline.distance_field(sketch)
            with timer("components"):
                labels, table = pipeline.components(sketch, rgb)
            with timer("encode"):
                colour_png = encode_png(rgb, compression, "colour")
                labels_png = encode_png(labels, compression, "components")
                row = {
                    "frame_key": f"{video_id}/{index:06d}", "video_id": video_id, "shot_id": state.shot_id,
                    "shot_start": state.start, "frame_index": index, "timestamp": timestamp,
                    "split": state.split, "held_group": group, "width": rgb.shape[1], "height": rgb.shape[0],
                    "colour": image_value(colour_png), "sketch": image_value(encode_png(sketch, compression, "sketch")),
                    "distance_field": image_value(encode_png(field, compression, "distance_field")),
                    "components": image_value(labels_png), "component_table": table,
                    "extractor": described["extractor"], "extractor_params": described["extractor_params"],
                    "field": described["field"], "seed": derive_seed(config.seed, video_id, index),
                }
            with timer("write"):
                frames_writer.add(row)
            state.indices.append(index)
            state.groups.append(group)
            state.colour_png[index], state.labels_png[index], state.tables[index] = colour_png, labels_png, table
            _keep_raw(state, index, rgb, labels)
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
    out.write_text(f"meta/units/{unit}.done.json", json.dumps(result, indent=1))
    return result


def _mine(samplers, s: _ShotState, video_id: str, config: BuildConfig) -> list[PairSpec]:
    tolerance = config.unseen_colour_tolerance
    view = ShotView(video_id, s.shot_id, s.indices, s.groups, seed=derive_seed(config.seed, video_id, s.start),
                    unseen=lambda r, t: unseen_fraction(s.tables[r], s.tables[t], tolerance))
    specs: list[PairSpec] = []
    for sampler in samplers:
        specs.extend(sampler.sample(view))
    return specs


# -------------------------------------------------------------------------------------------- planning
def plan_units(config: BuildConfig, source: Source, detection: dict) -> list[dict]:
    """Units of one source from its shot detection: kept shots grouped into ranges of ~run.frames_per_unit."""
    kept = []
    for shot_id, shot in enumerate(detection["shots"]):
        if shot.get("kept", True) and shot["end"] > shot["start"]:
            kept.append({"shot_id": shot_id, "start": int(shot["start"]), "end": int(shot["end"]),
                         "split": assign_split(config, source.video_id, int(shot["start"]))})
    limit = config.run.frames_per_unit
    groups: list[list[dict]] = []
    for shot in kept:
        if groups and (limit == 0 or sum(s["end"] - s["start"] for s in groups[-1]) + shot["end"] - shot["start"]
                       <= limit):
            groups[-1].append(shot)
        else:
            groups.append([shot])
    held = detection.get("held_groups")
    dropped = sorted(int(d["frame"]) for d in detection.get("dropped_frames", []))
    units = []
    for g in groups:
        first, last = g[0]["start"], g[-1]["end"]
        units.append({
            "unit": f"{source.video_id}.{g[0]['shot_id']:04d}-{g[-1]['shot_id']:04d}", "video_id": source.video_id,
            "path": source.path, "sha256": source.sha256, "shots": g,
            "dropped": [i for i in dropped if first <= i < last], "n_frames": detection.get("n_frames"),
            # held runs [start, end) from the detector; None -> the unit computes them (frames.held_threshold)
            "held": None if held is None else [r for r in held if r[0] < last and r[1] > first],
        })
    return units


def _dataset_identity(config: BuildConfig, sources: Sequence[Source]) -> dict:
    """What makes two builds the same dataset (``config_hash``, ``sources``), plus what explains a mismatch."""
    return {"config_hash": config_hash(config), "sources": sorted(s.sha256 for s in sources),
            "config": config.to_dict(), "source_names": {s.sha256: Path(s.path).name for s in sources}}


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _difference(existing: dict, identity: dict) -> str:
    """How the existing dataset (its manifest) differs from the requested build, in words:
    the config keys that differ (existing value -> requested), or the sources on one side only."""
    old_sources = {s.get("sha256"): Path(str(s.get("path", s.get("video_id")))).name
                   for s in existing.get("sources", [])}
    new_sources = identity["source_names"]
    if set(old_sources) != set(new_sources):
        parts = []
        if only_old := [old_sources[k] for k in old_sources if k not in new_sources]:
            parts.append(f"only the existing dataset has {', '.join(sorted(only_old))}")
        if only_new := [new_sources[k] for k in new_sources if k not in old_sources]:
            parts.append(f"only this build has {', '.join(sorted(only_new))}")
        return "its sources differ (" + "; ".join(parts) + ")"
    old_config = _flatten({k: v for k, v in existing.get("config", {}).items() if k != "run"})
    new_config = _flatten({k: v for k, v in identity["config"].items() if k != "run"})
    changed = [f"{key} {old_config.get(key, '(unset)')!r} -> {new_config.get(key, '(unset)')!r}"
               for key in sorted(set(old_config) | set(new_config)) if old_config.get(key) != new_config.get(key)]
    if not changed:  # same settings but another config hash: written by another toolkit version
        changed = [f"config hash {str(existing.get('config_hash'))[:12]} -> {identity['config_hash'][:12]}"]
    return "its config differs (existing -> this build: " + ", ".join(changed) + ")"


#: Where ``--overwrite`` keeps the dataset it replaces until the new build has produced frames.
REPLACED = ".celbench-replaced"


def _check_output(out: Storage, identity: dict, resume: bool, overwrite: bool) -> Manifest | None:
    """Refuse to mix datasets: returns the existing manifest to resume, or None for a fresh build (the caller
    then sets an existing dataset aside when ``overwrite``, :func:`_set_aside`). Reads only."""
    if out.exists() and not out.isdir():
        raise file_error(str(out), "output exists and is not a folder")
    existing = Manifest.load(out)
    # what is there besides the lock of this build
    occupied = ([n for n in out.listdir() if n != REPLACED] not in ([], ["meta"])
                or out.listdir("meta") not in ([], ["lock.json"]))
    if overwrite:
        if existing is None and occupied:
            raise file_error(str(out), "refusing to overwrite a non-empty folder that is not a celbench dataset")
        return None
    if existing is None:
        if occupied:
            raise file_error(str(out), "output folder is not empty and holds no celbench dataset (meta/info.json)")
        return None
    if existing.data.get("schema_version") != SCHEMA_VERSION:
        raise file_error(str(out), f"holds a dataset of schema version {existing.data.get('schema_version')} "
                                   f"(this toolkit writes {SCHEMA_VERSION}); use another --out or --overwrite")
    old = {"config_hash": existing.data.get("config_hash"),
           "sources": sorted(s["sha256"] for s in existing.data.get("sources", []))}
    if old != {key: identity[key] for key in old}:
        raise file_error(str(out), f"holds a different dataset: {_difference(existing.data, identity)}; "
                                   "use another --out, or --overwrite to replace it")
    if not resume:
        raise file_error(str(out), "already holds this dataset; use --resume to finish it or --overwrite to rebuild")
    return existing


def _set_aside(out: Storage) -> None:
    """``--overwrite``: move the dataset in ``out`` (all but the lock this build holds) into :data:`REPLACED`.

    It is deleted once the new build has produced frames and put back by :func:`_restore` if the rebuild fails,
    so a failing rebuild never costs the dataset it was to replace.
    """
    out.remove_tree(REPLACED)  # left by an earlier --overwrite that was killed: the dataset it replaced
    names = [name for name in ("data", "report.html", "report.png", "README.md") if out.exists(name)]
    names += [f"meta/{name}" for name in (out.listdir("meta") if out.isdir("meta") else [])
              if f"meta/{name}" != BuildLock.NAME]
    for name in names:
        out.move(name, f"{REPLACED}/{name}")


def _restore(out: Storage) -> None:
    """Undo a fresh build that failed as a whole: delete what it wrote, give back a dataset it was to replace."""
    for name in ("data", "report.html", "report.png", "README.md"):
        out.remove_tree(name)
    for name in out.listdir("meta") if out.isdir("meta") else []:
        if f"meta/{name}" != BuildLock.NAME:
            out.remove_tree(f"meta/{name}")
    if out.isdir(REPLACED):
        for top in out.listdir(REPLACED):
            inner = out.listdir(f"{REPLACED}/{top}") if top == "meta" else [None]
            for name in inner:
                relative = top if name is None else f"{top}/{name}"
                out.move(f"{REPLACED}/{relative}", relative)
        out.remove_tree(REPLACED)


class EmptyBuild(CelbenchError):
    """Every source failed or none gave a usable frame; the build leaves nothing behind."""


@dataclass
class BuildReport:
    out: Path | str  # a URL stays a string
    manifest: dict
    failed: list[str]


def build(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, config: BuildConfig, *,
          resume: bool = False, overwrite: bool = False,
          log: Callable[[str], None] | None = None) -> BuildReport:
    """Build (or resume) a dataset from ``inputs`` into ``out``; see the module docstring."""
    t_build = time.perf_counter()
    shown = str(out) if is_url(out) else Path(out)
    out = Storage(out)
    if not inputs:
        raise CelbenchError("no inputs given")
    sources = [resolve_source(p) for p in inputs]
    ids = Counter(s.video_id for s in sources)
    if any(n > 1 for n in ids.values()):
        raise CelbenchError(f"the same source is given twice: {', '.join(k for k, n in ids.items() if n > 1)}")
    executor = EXECUTORS.get(config.run.executor).from_run_config(config.run)
    # The whole config (samplers, stage names and parameters) is checked here, before anything is deleted or
    # written: a worker failing on it later would already have cost the dataset that --overwrite replaces.
    create_samplers(config.samplers)
    pipeline = make_pipeline(config)
    if hasattr(pipeline, "check"):
        pipeline.check()
    identity = _dataset_identity(config, sources)
    created = not out.exists()
    restored = False
    # One driver per output: a second one would redo and delete the first one's units under its feet. A lock
    # already there is looked at first, so a second driver hears that a build runs, not that the folder is odd.
    lock = BuildLock(out, log)
    try:
        executor.start()
        if out.exists(BuildLock.NAME):
            lock.acquire()
        existing = _check_output(out, identity, resume, overwrite)
        if not lock.held:
            lock.acquire()
        if overwrite:
            _set_aside(out)
        try:
            report = _build_locked(sources, out, shown, config, existing, identity, executor, log, t_build)
        except BaseException as error:
            # A rebuild that fails gives the replaced dataset back; a fresh build that produced nothing leaves
            # nothing (no manifest blocking the next build). An interrupted fresh build stays, for --resume.
            if existing is None and (out.exists(REPLACED) or isinstance(error, EmptyBuild)):
                _restore(out)
                restored = True
            raise
        out.remove_tree(REPLACED)
        return report
    finally:
        executor.close()
        lock.release()
        if restored and created:
            out.remove_empty_tree()


def _build_locked(sources: Sequence[Source], out: Storage, shown: Path | str, config: BuildConfig,
                  existing: Manifest | None, identity: dict, executor, log, t_build: float) -> BuildReport:
    """:func:`build` once it holds the output's lock."""
    if existing is not None:
        manifest = existing
    else:
        manifest = Manifest(out, {
            "format": "celbench-dataset", "schema_version": SCHEMA_VERSION, "toolkit_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "status": "building",
            "config_hash": identity["config_hash"], "config": config.to_dict(),
            "features": {name: {f.name: "image (PNG)" if f.type == IMAGE else str(f.type) for f in schema}
                         for name, schema in SCHEMAS.items()},
            "sources": [s.to_json() for s in sources], "units": {}, "counts": {}, "timings": {},
        })
    manifest.data["run"] = config.to_dict()["run"]
    manifest.save()
    payload_config = config.to_dict()

    # Shot detection (cached per source) and the units run in one executor session: a source's units are
    # queued as soon as its detection is known, so the next source's detection overlaps with this one's units,
    # and the workers are spawned once.
    t0 = time.perf_counter()
    queue = TaskQueue()
    detections: dict[str, dict] = {}
    failed: list[str] = []
    planned_keys: set[str] = set()
    shots_in: dict[str, int] = {}
    detect_seconds = 0.0
    bar = progress(total=0, desc="build", unit="shot")
    by_id = {s.video_id: s for s in sources}
    undetected = 0
    for source in sources:
        cached = f"meta/shots/{source.video_id}.json"
        if out.exists(cached):
            detections[source.video_id] = json.loads(out.read_text(cached))
        else:
            undetected += 1
            queue.put(Task(f"{source.video_id}.detect", {
                "task": "detect", "path": source.path, "sha256": source.sha256, "video_id": source.video_id,
                "out": out.location,
                "config": payload_config, "pipeline": PIPELINE}))
    workers = getattr(executor, "workers", 1)
    if getattr(executor, "keeps_workers", False) and 0 < undetected < workers:
        # Idle workers meanwhile import the stage modules and read the sources' headers (warm_task), so the
        # units start at full speed when the detections come back.
        for k in range(workers - undetected):
            queue.put(Task(f"warm-{k}", {"task": "warm", "paths": [(s.path, s.sha256) for s in sources],
                                         "config": payload_config, "pipeline": PIPELINE}))

    def queue_units(source: Source) -> None:
        _record_detection(manifest, source, detections[source.video_id], log)
        units = plan_units(config, source, detections[source.video_id])
        # Longest first: the last units to finish are short ones, so no worker idles long at the end.
        for unit in sorted(units, key=lambda u: -sum(s["end"] - s["start"] for s in u["shots"])):
            key = unit["unit"]
            planned_keys.add(key)
            if _unit_done(out, manifest, key, source.video_id):
                continue
            manifest.data["units"][key] = {"status": "pending", "video_id": source.video_id,
                                           "shots": [unit["shots"][0]["shot_id"], unit["shots"][-1]["shot_id"]],
                                           "frames": [unit["shots"][0]["start"], unit["shots"][-1]["end"]]}
            shots_in[key] = len(unit["shots"])
            bar.total += shots_in[key]
            bar.refresh()
            queue.put(Task(key, {**unit, "task": "unit", "out": out.location, "config": payload_config,
                                 "pipeline": PIPELINE}))

    def drop_stale_units() -> None:
        # A unit of an earlier plan (another run.frames_per_unit, a source gone): its rows are redone (or gone).
        for key in [k for k in manifest.data["units"] if k not in planned_keys and not k.endswith(".detect")]:
            remove_unit_files(out, key)
            del manifest.data["units"][key]

    for source in sources:
        if source.video_id in detections:
            queue_units(source)
    if not undetected:
        drop_stale_units()
    manifest.save()
    try:
        for result in executor.map(build_task, queue):
            if result.key.startswith("warm-"):
                continue
            if result.key.endswith(".detect"):
                video_id = result.key[: -len(".detect")]
                undetected -= 1
                if result.ok:
                    detections[video_id] = json.loads(out.read_text(f"meta/shots/{video_id}.json"))
                    detect_seconds += result.value["seconds"]
                    queue_units(by_id[video_id])
                else:
                    manifest.data["units"][result.key] = {"status": "failed", "video_id": video_id,
                                                          "stage": "detect", "error": result.error}
                    failed.append(result.key)
                    if log and len(sources) > 1:  # a single source's failure is the build's own error
                        log(f"{video_id}: shot detection failed: {result.error}")
                if not undetected:
                    drop_stale_units()
            else:
                bar.update(shots_in[result.key])
                _record(manifest, result, log, failed)
            manifest.save()
    finally:
        bar.close()
    _finish(manifest, detect_seconds, time.perf_counter() - t0, time.perf_counter() - t_build)
    manifest.save()
    if not manifest.data["counts"]["frames"]:
        raise EmptyBuild(f"{shown}: no frames were built: {_why_empty(manifest.data)}")
    write_card(out, manifest.data)
    return BuildReport(shown, manifest.data, sorted(k for k, u in manifest.data["units"].items()
                                                  if u.get("status") == "failed"))


def _why_empty(data: dict) -> str:
    """Why a build produced no frame, per source: its failure, else what shot detection kept of it."""
    reasons = []
    failures = {u.get("video_id"): u.get("error") for u in data["units"].values() if u.get("status") == "failed"}
    for source in data["sources"]:
        where = source.get("path", source.get("video_id"))
        failure = failures.get(source.get("video_id"))
        if failure:
            reasons.append(failure if str(where) in failure else f"{where}: {failure}")
            continue
        dropped = ", ".join(f"{n} {reason}" for reason, n in source.get("dropped_shots", {}).items())
        reasons.append(f"{where}: {source.get('n_frames', 0)} frame(s) decoded, {source.get('kept_shots', 0)} of "
                       f"{source.get('shots', 0)} shot(s) kept" + (f" (dropped: {dropped})" if dropped else "")
                       + (f"; {source['decode_error']}" if source.get("decode_error") else ""))
    return "; ".join(reasons)


def _record_detection(manifest: Manifest, source: Source, d: dict, log) -> None:
    """The manifest's entry of a detected source: frame and shot counts, what was dropped, decode errors."""
    entry = next(s for s in manifest.data["sources"] if s["sha256"] == source.sha256)
    entry["path"] = source.path
    manifest.data["units"].pop(f"{source.video_id}.detect", None)
    entry.update({"n_frames": d.get("n_frames"), "fps": d.get("fps"), "detector": d.get("detector"),
                  "shots": len(d.get("shots", [])),
                  "kept_shots": sum(1 for s in d.get("shots", []) if s.get("kept", True)),
                  "dropped_shots": dict(Counter(str(s.get("reason")) for s in d.get("shots", [])
                                                if not s.get("kept", True))),
                  "dropped_frames": len(d.get("dropped_frames", []))})
    if d.get("error"):
        # decoding stopped early (truncated/corrupt file): the frames before it are used, and it is said
        entry["decode_error"] = d["error"]
        if log:
            log(f"{source.path}: {d['error']}")


def _unit_done(out: Storage, manifest: Manifest, key: str, video_id: str) -> bool:
    """Whether a unit is complete on disk (its marker and every file it lists); recorded as done if so.

    The marker is the truth: it is written after the unit's last shard, so a unit whose marker exists is
    complete even when the build was killed before recording it in the manifest.
    """
    marker = f"meta/units/{key}.done.json"
    if not out.exists(marker):
        return False
    try:
        done = json.loads(out.read_text(marker))
        if not isinstance(done, dict) or not {"files", "sha256", "counts", "timings", "seconds"} <= set(done):
            return False
        check_manifest_structure(out / marker, {"units": {key: {**done, "status": "done"}}})
        # a shard missing, changed or truncated since (disk fault, an edit): the unit is redone
        if shard_hashes(out, done["files"]) != done["sha256"]:
            return False
    except (OSError, ValueError, CelbenchError):
        return False  # unreadable or tampered marker or shard: the unit is redone (its files deleted first)
    record = manifest.data["units"].setdefault(key, {"video_id": video_id})
    record.update({"status": "done", "files": done["files"], "sha256": done["sha256"], "counts": done["counts"],
                   "timings": done["timings"], "seconds": done["seconds"]})
    record.pop("error", None)
    return True


def _record(manifest: Manifest, result: TaskResult, log, failed: list[str]) -> None:
    unit = manifest.data["units"][result.key]
    if result.ok:
        value = result.value
        unit.update({"status": "done", "files": value["files"], "sha256": value["sha256"],
                     "counts": value["counts"], "timings": value["timings"], "seconds": value["seconds"]})
        unit.pop("error", None)
    else:
        unit.update({"status": "failed", "error": result.error})
        failed.append(result.key)
        if log:
            log(f"unit {result.key} failed: {result.error}")


def _finish(manifest: Manifest, detect_seconds: float, wall: float, total_wall: float) -> None:
    data = manifest.data
    counts: Counter = Counter()
    timings: Counter = Counter()
    for unit in data["units"].values():
        if unit.get("status") == "done":
            counts.update(unit.get("counts", {}))
            timings.update(unit.get("timings", {}))
    splits: dict[str, dict[str, int]] = defaultdict(dict)
    for split in SPLITS:
        splits[split]["frames"] = counts.get(f"frames:{split}", 0)
        splits[split]["pairs"] = counts.get(f"pairs@{split}", 0)
    kinds = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("pairs:")}
    data["counts"] = {
        "frames": counts.get("frames", 0), "shots": counts.get("shots", 0), "pairs": sum(kinds.values()),
        "pairs_by_kind": dict(sorted(kinds.items())), "splits": dict(splits),
        "units": dict(Counter(u.get("status") for u in data["units"].values())),
    }
    timings["detect"] = timings.get("detect", 0.0) + detect_seconds
    data["timings"] = {"stages_cpu_seconds": {k: round(v, 3) for k, v in sorted(timings.items())},
                       "last_run_wall_seconds": round(total_wall, 3)}
    data["status"] = "complete" if all(u.get("status") == "done" for u in data["units"].values()) else "incomplete"
