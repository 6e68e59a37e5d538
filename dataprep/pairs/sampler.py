"""The pair-sampler interface: which frames of a shot become (references -> target) samples.

One interface serves every layer: the dataset build mines pairs with it (:mod:`dataprep.build.unit`), evaluation
protocols select their samples with it (:mod:`benchmark.protocol`, the ``sampler`` block of a protocol file), and
training draws its frame pairs with it (:mod:`baselines.datasets`). A sampler is a class with a ``kind`` and
:meth:`Sampler.sample`, registered by name in :data:`SAMPLERS`; its keyword arguments are its settings (the build
config's ``samplers.NAME``, a protocol's ``sampler`` block). Pairs never cross a shot boundary (CMFT section 4.1:
frames of two shots "may not be strongly correlated and mislead the training process").

A shot is seen as a :class:`ShotView`: its frame ids in time order (source frame indices in a build, the frame
ids of a dataset in evaluation, positions in training) with each frame's held-drawing group.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np

from dataprep.errors import CelbenchError
from dataprep.registry import Registry


@dataclass(frozen=True)
class PairSpec:
    """One sample: ``references`` (frame ids, time order; empty for lone targets) -> ``target`` (a frame id).

    Attributes:
        kind: what drew it (``cmft-test@5``, ``shi-long@3``, ``interval``, ...).
        sequence_id: the sequence (shot, sampler, start) it belongs to.
        position: its target's position in the sequence.
        attributes: what evaluation buckets results by (``interval``, ``k``, ``gap``, ``hints``, ...).
        name: the sample's id; empty: ``<sequence_id>/<target>`` (an integer target as 6 digits: the build's
            pair key).
    """

    kind: str
    sequence_id: str
    position: int
    references: tuple[Hashable, ...]
    target: Hashable
    attributes: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def interval(self) -> int:
        """Target index minus the first reference's index, in frames (integer frame ids only)."""
        return self.target - self.references[0]

    @property
    def sample_id(self) -> str:
        if self.name:
            return self.name
        return f"{self.sequence_id}/{self.target:06d}" if isinstance(self.target, int) else f"{self.sequence_id}/{self.target}"


@dataclass
class ShotView:
    """What a sampler sees of one shot.

    Attributes:
        video_id: source id (used in sequence ids).
        shot_id: shot number in the video.
        frame_indices: the shot's frame ids in time order (source frame indices in a build; any hashable ids).
        held_groups: per frame, the id of the first frame of its held run (same length).
        seed: per-shot seed for random choices (derived from the build seed, video and shot).
        unseen: optional ``(reference_index, target_index) -> fraction`` of the target's area that is unseen in
            the reference (:func:`dataprep.pairs.mining.unseen_fraction`); None disables the unseen-region filter.
        name: the shot's stable name, which seeds samplers that draw per shot with their own ``seed``
            (evaluation: a dataset's shot id); default ``<video_id>/<shot_id>``.
    """

    video_id: str
    shot_id: int
    frame_indices: list[Hashable]
    held_groups: list[Hashable]
    seed: int = 0
    unseen: Callable[[Hashable, Hashable], float] | None = None
    name: str = ""
    group_of: dict[Hashable, Hashable] = field(init=False, repr=False)

    def __post_init__(self):
        if len(self.frame_indices) != len(self.held_groups):
            raise ValueError("frame_indices and held_groups differ in length")
        self.group_of = dict(zip(self.frame_indices, self.held_groups))
        self.name = self.name or f"{self.video_id}/{self.shot_id}"

    @classmethod
    def of(cls, name: str, frame_ids: Sequence[Hashable], drawings: Sequence[int] | None = None) -> "ShotView":
        """A shot known by ``name`` with ``frame_ids``; ``drawings`` optionally numbers each frame's drawing
        (equal consecutive numbers: one held drawing), else every frame is its own drawing."""
        ids = list(frame_ids)
        groups: list[Hashable] = []
        for i, frame in enumerate(ids):
            held = drawings is not None and i > 0 and drawings[i] == drawings[i - 1]
            groups.append(groups[-1] if held else frame)
        return cls(name, 0, ids, groups, name=name)

    def frames(self, collapse_held: bool) -> list[Hashable]:
        """The shot's frame ids, keeping only each held run's first frame when ``collapse_held``."""
        if not collapse_held:
            return list(self.frame_indices)
        return [i for i, g in zip(self.frame_indices, self.held_groups) if i == g]

    def identical(self, a: Hashable, b: Hashable) -> bool:
        """Frames ``a`` and ``b`` show the same held drawing."""
        return self.group_of[a] == self.group_of[b]

    def rng(self, seed: int, *salt: int) -> np.random.Generator:
        """A generator seeded by ``seed`` and the shot's name (not its position, so adding shots never changes
        another shot's draws)."""
        return np.random.default_rng([seed, zlib.crc32(self.name.encode()), *salt])


#: What a sampler needs (:attr:`Sampler.needs`): 'frames' (a shot's frames: usable by the build, evaluation and
#: training; every sample has a reference), 'targets' (lone targets without references: evaluation only), or
#: 'stored-pairs' (the pairs a built dataset holds, selected by kind: evaluation of built datasets only).
NEEDS = ("frames", "targets", "stored-pairs")


class Sampler:
    """Turns a shot into samples. Subclasses set ``kind`` and implement :meth:`sample`."""

    kind = "sampler"
    needs = "frames"
    #: Parameters a build config's default entry for this sampler leaves out (the sampler then runs them at their
    #: signature default): parameters added after datasets were built with it, whose default reproduces what it
    #: did before, so those datasets keep their config hash (:mod:`dataprep.config`).
    unrecorded_defaults: tuple[str, ...] = ()

    def sample(self, shot: ShotView) -> list[PairSpec]:
        raise NotImplementedError


SAMPLERS: Registry[Sampler] = Registry("sampler", entry_point_group="celbench.samplers")


def create_samplers(config: Mapping[str, Mapping[str, Any]]) -> list[Sampler]:
    """Instantiate the samplers named by ``config`` (name -> parameters); bad parameters name the key."""
    out = []
    for name, params in config.items():
        factory = SAMPLERS.get(name)
        try:
            out.append(factory(**params))
        except TypeError as error:
            raise CelbenchError(f"samplers.{name}: {error}") from None
    return out


def kref_positions(sequence_length: int, k: int) -> list[int]:
    """Shi et al. 4.6: the K positions that divide a sequence into K-1 segments (K=1: the first frame)."""
    if k == 1:
        return [0]
    return sorted({int(round(p)) for p in np.linspace(0, sequence_length - 1, k)})
