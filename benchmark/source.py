"""Where evaluation frames come from: the abstract *sample source* behind ``bench evaluate``.

The runner never reads files itself. It asks a :class:`SampleSource` for the shots of a split (ordered
frame ids) and for individual frames; protocols (:mod:`benchmark.protocol`) decide which frames form
the reference/target samples. A dataset format is supported by one thin adapter class: the Parquet
datasets written by ``dataprep build`` are read by :mod:`benchmark.parquet_source`; tests and the demo
also use :class:`MemorySource`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from dataprep.errors import CelbenchError


@dataclass(frozen=True)
class Frame:
    """One frame of a shot, as stored in a dataset (full resolution; the runner resizes).

    Attributes:
        colour: (H, W, 3) uint8 RGB, the ground-truth colouring.
        sketch: (H, W) uint8 line art, 255 = paper, 0 = line.
        field: (H, W) float32 distance field of the line art (the dataset's own normalisation).
        components: optional (H, W) integer label map, 0 = line pixels; equal ids in two frames of a
            shot are the same part (ground-truth correspondence).
        hints: optional (H, W, 4) float32 RGB hint colours in [0, 1] + mask (1 = hint).
        parts: optional (L + 1,) int64 part of each component id (-2 = no part: the line label 0, ids absent):
            two frames' components correspond when their parts are equal (a dataset's ``component_parts``,
            :class:`dataprep.dataset.reader.StoredFrame`). None when the source knows no parts; the
            ``components@2`` match metrics then derive the correspondences from the colours.
    """

    colour: np.ndarray
    sketch: np.ndarray
    field: np.ndarray
    components: np.ndarray | None = None
    hints: np.ndarray | None = None
    parts: np.ndarray | None = None


@dataclass(frozen=True)
class Shot:
    """A shot: ``frame_ids`` in temporal order (ids are opaque strings unique in the source).

    ``drawings`` optionally gives each frame's drawing (held-group) number: equal consecutive numbers
    are held frames showing one drawing (anime on twos/threes).
    """

    shot_id: str
    frame_ids: tuple[str, ...]
    drawings: tuple[int, ...] | None = None

    def distinct_drawings(self) -> "Shot":
        """The shot with held frames collapsed to the first frame of each drawing."""
        if self.drawings is None:
            return self
        keep = [i for i, d in enumerate(self.drawings) if i == 0 or d != self.drawings[i - 1]]
        return Shot(self.shot_id, tuple(self.frame_ids[i] for i in keep), tuple(self.drawings[i] for i in keep))


@dataclass(frozen=True)
class SampleSpec:
    """One evaluation sample: reference frame ids (may be empty), one target, and attributes
    (``interval``, ``stride``, ``k``, ``kind``, ...) that protocols bucket results by."""

    sample_id: str
    reference_ids: tuple[str, ...]
    target_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


def kind_matches(kind: str, wanted: Sequence[str]) -> bool:
    """``cmft-test@5`` matches ``cmft-test@5``, and ``cmft-test`` (or ``cmft-test@``) matches every stride."""
    return any(kind == w or kind.split("@")[0] == w.rstrip("@") and "@" not in w.rstrip("@") for w in wanted)


class SampleSource(ABC):
    """A dataset seen by the benchmark. Subclasses implement :meth:`shots` and :meth:`frame`.

    ``manifest_hash`` identifies the dataset content (the SHA-256 of its manifest, ``meta/info.json``
    for Parquet datasets); it goes into every result record and its signature.
    """

    manifest_hash: str = ""
    location: str = ""

    @abstractmethod
    def shots(self, split: str) -> list[Shot]:
        """The shots of ``split`` in a stable order; an unknown split raises CelbenchError."""

    @abstractmethod
    def frame(self, frame_id: str) -> Frame:
        """Load one frame."""

    def frame_size(self, frame_id: str) -> tuple[int, int]:
        """(height, width) of a stored frame; the default loads it, sources that index sizes override this."""
        return tuple(self.frame(frame_id).colour.shape[:2])

    def pairs(self, split: str, kinds: Sequence[str]) -> list[SampleSpec]:
        """Samples the dataset builder mined (``dataprep build`` pair kinds such as ``cmft-test@5``),
        in a stable order. Sources without mined pairs raise CelbenchError."""
        raise CelbenchError(f"{self.location}: this dataset has no mined pairs (needed: {', '.join(kinds)})")

    def split_sizes(self) -> dict[str, int]:
        """Number of shots per split (for error messages); empty when the source cannot tell cheaply."""
        return {}

    def close(self) -> None:
        """Release files; the default holds none."""


def empty_split_hint(source: SampleSource, split: str) -> str:
    """The fix for a split without samples, to append to an error: which splits hold shots, and how to
    score another or rebuild the dataset with every shot in ``split`` (a small set split 80/10/10 by
    shot often leaves the test split empty)."""
    sizes = {name: count for name, count in sorted(source.split_sizes().items()) if count}
    if not sizes:
        return ""
    have = ", ".join(f"{name} {count} shot{'s' * (count != 1)}" for name, count in sizes.items())
    others = [name for name in sizes if name != split]
    fixes = [f"score another split with --split {others[0]}"] if others else []
    if others or split not in sizes:
        fixes.append(f"rebuild with `dataprep build INPUT... --out DIR --split {split}` to put every shot in it")
    return f" (this dataset has {have}" + (f"; {', or '.join(fixes)}" if fixes else "") + ")"


@dataclass
class MemorySource(SampleSource):
    """Frames held in memory: ``splits[split] = [Shot, ...]`` and ``frames[frame_id] = Frame``."""

    splits: Mapping[str, Sequence[Shot]]
    frames: Mapping[str, Frame]
    manifest: Mapping = field(default_factory=dict)
    location: str = "<memory>"
    mined: Mapping[str, Sequence[SampleSpec]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Hash what defines the numbers: the manifest plus every pixel, so a changed frame is a new dataset.
        digest = hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode())
        for split in sorted(self.splits):
            for shot in self.splits[split]:
                digest.update(f"{split}/{shot.shot_id}".encode())
                for frame_id in shot.frame_ids:
                    frame = self.frames[frame_id]
                    digest.update(frame_id.encode())
                    for array in (frame.colour, frame.sketch, frame.field, frame.components, frame.hints):
                        if array is not None:
                            digest.update(np.ascontiguousarray(array).tobytes())
        for split in sorted(self.mined):
            for spec in self.mined[split]:
                digest.update(json.dumps([spec.sample_id, spec.reference_ids, spec.target_id, spec.attributes],
                                         sort_keys=True).encode())
        self.manifest_hash = digest.hexdigest()

    def shots(self, split: str) -> list[Shot]:
        if split not in self.splits:
            raise CelbenchError(f"{self.location}: no split {split!r}{empty_split_hint(self, split)}")
        return list(self.splits[split])

    def split_sizes(self) -> dict[str, int]:
        return {name: len(shots) for name, shots in self.splits.items()}

    def frame(self, frame_id: str) -> Frame:
        return self.frames[frame_id]

    def pairs(self, split: str, kinds: Sequence[str]) -> list[SampleSpec]:
        if not self.mined:
            return super().pairs(split, kinds)
        return [spec for spec in self.mined.get(split, ()) if kind_matches(str(spec.attributes.get("kind")), kinds)]
