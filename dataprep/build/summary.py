"""The manifest's account of a build: a new manifest, each source's detection, each unit's outcome, the totals."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any, Sequence

from dataprep import __version__
from dataprep.build.markers import MARKER_KEYS
from dataprep.build.sources import Source
from dataprep.config import SPLITS, BuildConfig
from dataprep.dataset.manifest import Manifest
from dataprep.dataset.schemas import IMAGE, SCHEMA_VERSION, SCHEMAS
from dataprep.storage import Storage


def new_manifest(out: Storage, config: BuildConfig, sources: Sequence[Source], config_hash: str) -> Manifest:
    """The manifest of a fresh build (status 'building', no units yet)."""
    return Manifest(out, {
        "format": "celbench-dataset", "schema_version": SCHEMA_VERSION, "toolkit_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "status": "building",
        "config_hash": config_hash, "config": config.to_dict(),
        "features": {name: {f.name: "image (PNG)" if f.type == IMAGE else str(f.type) for f in schema}
                     for name, schema in SCHEMAS.items()},
        "sources": [s.to_json() for s in sources], "units": {}, "counts": {}, "timings": {},
    })


def why_empty(data: dict) -> str:
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


def record_detection(manifest: Manifest, source: Source, d: dict, log) -> None:
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



def record_done(manifest: Manifest, key: str, video_id: str, done: dict[str, Any]) -> None:
    """Record a complete unit (its marker's content ``done``: :data:`~dataprep.build.markers.MARKER_KEYS`)."""
    record = manifest.data["units"].setdefault(key, {"video_id": video_id})
    record.update({"status": "done", **{name: done[name] for name in MARKER_KEYS}})
    record.pop("error", None)


def record_failed(manifest: Manifest, key: str, error: str) -> None:
    """Record a failed unit (planned, so already in the manifest); ``error`` is one line."""
    manifest.data["units"][key].update({"status": "failed", "error": error})


def record_failed_detection(manifest: Manifest, source: Source, error: str) -> None:
    """Record a source whose shot detection failed, as a unit ``<video_id>.detect`` of stage 'detect'."""
    manifest.data["units"][f"{source.video_id}.detect"] = {"status": "failed", "video_id": source.video_id,
                                                          "stage": "detect", "error": error}


def finish(manifest: Manifest, detect_seconds: float, total_wall: float) -> None:
    """The totals of a build from its units' records: counts per table, split and pair kind, CPU seconds per
    stage (plus ``detect_seconds`` of this run's shot detection), this run's wall time, and the status
    ('complete' when every unit is done, else 'incomplete')."""
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
