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
from typing import Mapping, Sequence

import numpy as np


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
    """

    colour: np.ndarray
    sketch: np.ndarray
    field: np.ndarray
    components: np.ndarray | None = None
    hints: np.ndarray | None = None


@dataclass(frozen=True)
class Shot:
    """A shot: ``frame_ids`` in temporal order (ids are opaque strings unique in the source)."""

    shot_id: str
    frame_ids: tuple[str, ...]


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

    def close(self) -> None:
        """Release files; the default holds none."""


@dataclass
class MemorySource(SampleSource):
    """Frames held in memory: ``splits[split] = [Shot, ...]`` and ``frames[frame_id] = Frame``."""

    splits: Mapping[str, Sequence[Shot]]
    frames: Mapping[str, Frame]
    manifest: Mapping = field(default_factory=dict)
    location: str = "<memory>"

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
        self.manifest_hash = digest.hexdigest()

    def shots(self, split: str) -> list[Shot]:
        from dataprep.errors import CelbenchError

        if split not in self.splits:
            raise CelbenchError(f"{self.location}: no split {split!r} (have: {', '.join(sorted(self.splits))})")
        return list(self.splits[split])

    def frame(self, frame_id: str) -> Frame:
        return self.frames[frame_id]
