"""Planning a build: splits, seeds, and the units of work a source's shot detection gives.

A unit is a range of a source's kept shots (``run.frames_per_unit`` frames at most, a whole shot at least); it is
the smallest piece of work an executor runs and the smallest piece a resumed build redoes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from dataprep.build.sources import Source
from dataprep.config import BuildConfig


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


@dataclass(frozen=True)
class ShotPlan:
    """A kept shot of a unit: frames ``start <= index < end`` of its source, all in ``split``."""

    shot_id: int
    start: int
    end: int
    split: str

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class UnitPlan:
    """One unit of work: which shots of which source it processes, and what detection said of its frames.

    Attributes:
        key: the unit's name in the manifest, its shards and its marker (``<video_id>.<first>-<last shot>``).
        path, sha256: the source (a path or URL; its content hash, which workers check their cached copy against).
        shots: the kept shots, in order.
        dropped: frame indices inside the unit that detection dropped (dark, faded: Shi 4.1).
        n_frames: the source's frame count when known (lets the decoder seek), else None.
        held: held-drawing runs ``[start, end)`` overlapping the unit, from the detector; None when the detector
            reports none (the unit then finds them itself with ``frames.held_threshold``).
    """

    key: str
    video_id: str
    path: str
    sha256: str
    shots: tuple[ShotPlan, ...]
    dropped: tuple[int, ...] = ()
    n_frames: int | None = None
    held: tuple[tuple[int, int], ...] | None = None

    @property
    def frames(self) -> int:
        """Frames the unit covers (its shots' lengths summed)."""
        return sum(shot.frames for shot in self.shots)


def plan_units(config: BuildConfig, source: Source, detection: dict[str, Any]) -> list[UnitPlan]:
    """Units of one source from its shot detection: kept shots grouped into ranges of ~run.frames_per_unit."""
    kept = []
    for shot_id, shot in enumerate(detection["shots"]):
        if shot.get("kept", True) and shot["end"] > shot["start"]:
            kept.append(ShotPlan(shot_id, int(shot["start"]), int(shot["end"]),
                                 assign_split(config, source.video_id, int(shot["start"]))))
    limit = config.run.frames_per_unit
    groups: list[list[ShotPlan]] = []
    for shot in kept:
        if groups and (limit == 0 or sum(s.frames for s in groups[-1]) + shot.frames <= limit):
            groups[-1].append(shot)
        else:
            groups.append([shot])
    held = detection.get("held_groups")
    dropped = sorted(int(d["frame"]) for d in detection.get("dropped_frames", []))
    units = []
    for g in groups:
        first, last = g[0].start, g[-1].end
        units.append(UnitPlan(
            key=f"{source.video_id}.{g[0].shot_id:04d}-{g[-1].shot_id:04d}", video_id=source.video_id,
            path=source.path, sha256=source.sha256, shots=tuple(g),
            dropped=tuple(i for i in dropped if first <= i < last), n_frames=detection.get("n_frames"),
            held=None if held is None else tuple((int(a), int(b)) for a, b in held if a < last and b > first),
        ))
    return units
