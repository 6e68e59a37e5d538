"""The mining samplers of a build (CMFT, Shi et al.), used by training too, and the filters they rely on.

Registered samplers (parameters are keyword arguments, all configurable under ``samplers`` in the build config):

* ``train-window``: CMFT section 4.1 training pairs. A window of ``width`` = 40 frames slides over the shot with
  ``stride`` = 5; the window's first and last frame form one pair (reference = first).
* ``cmft-test``: CMFT section 4.2 test protocol. For each stride S in ``strides`` = (1, 5, 10): 5 frames at
  stride S (span 4S + 1 frames), the first is the reference, the other 4 are targets (intervals S..4S). The start is
  drawn at random (seeded per shot); candidate sequences are dropped when a target is *identical* to the reference
  (same held drawing, see :func:`held_groups`) or has *large unseen regions* (:func:`unseen_fraction` above
  ``max_unseen``), and the next random start is tried; ``sequences_per_shot`` are kept.
* ``shi-seq``: Shi et al. (TVCG 2023) section 4.1: 8 successive frames; the first and last are references, the 6
  intermediate frames targets. Windows tile the shot with ``stride`` = 8 (non-overlapping).
* ``shi-long``: Shi et al. section 4.3 "Number of reference images": a whole (long) shot is divided into segments
  by K = 3 equally spaced reference frames (first and last included); every in-between frame is a target whose
  references are the two frames bounding its segment.

**Held frames.** Anime holds one drawing for 2-3 video frames ("on twos/threes"); consecutive video frames are then
identical. Each frame carries ``held_group`` = the frame index of the first frame of its run of identical drawings.
With ``collapse_held`` a sampler first keeps only the first frame of each held run, so "consecutive" means
consecutive *distinct drawings* (default for the Shi samplers, whose 8-frame sequences would otherwise often be
3 drawings). Without it (default for the CMFT samplers, whose strides are in video frames as in the paper) a pair
whose target shares the reference's held group is dropped, because it teaches or tests nothing.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from dataprep.errors import CelbenchError
from dataprep.pairs.sampler import SAMPLERS, PairSpec, Sampler, ShotView, kref_positions


def _sequence_id(shot: ShotView, kind: str, first: int) -> str:
    return f"{shot.video_id}/{kind}/{first:06d}"


@SAMPLERS.register("train-window")
class TrainWindow(Sampler):
    """CMFT section 4.1 sliding window: pair (first, last) frame of each window of ``width`` frames.

    Args:
        width: window width in frames (CMFT: 40); the pair's interval is ``width - 1``.
        stride: window step in frames (CMFT: 5).
        collapse_held: count frames as distinct drawings (see module doc); default False as in the paper.
    """

    kind = "train-window"

    def __init__(self, width: int = 40, stride: int = 5, collapse_held: bool = False):
        if width < 2 or stride < 1:
            raise CelbenchError(f"train-window: width must be >= 2 and stride >= 1 (got {width}, {stride})")
        self.width, self.stride, self.collapse_held = width, stride, collapse_held

    def sample(self, shot: ShotView) -> list[PairSpec]:
        frames = shot.frames(self.collapse_held)
        out = []
        for start in range(0, len(frames) - self.width + 1, self.stride):
            first, last = frames[start], frames[start + self.width - 1]
            if shot.identical(first, last):
                continue
            out.append(PairSpec(self.kind, _sequence_id(shot, self.kind, first), 1, (first,), last))
        return out


@SAMPLERS.register("all-pairs")
class AllPairs(Sampler):
    """Every pair of a shot's frames at most ``max_interval`` frames apart, for training on short real shots:
    a shot of n frames gives about ``2 * max_interval * n`` pairs where ``train-window`` gives one per window.
    Frame ids must be frame indices (intervals are their differences).

    Args:
        max_interval: largest frame distance of a pair (between the two references with ``references=2``).
        backwards: also the pair with the later frame as the reference (colouring backwards is the same task).
        references: 1 (pairs), or 2: every frame strictly between two frames at most ``max_interval`` apart is a
            target of those two (Shi et al. section 4.1: the references bracket the frames they colour).

    Pairs come frame by frame in time order: for each frame a, each later frame b within reach, (a -> b) then
    (b -> a); with two references, the targets between a and b in time order. ``position`` is the target's
    frame offset from the first reference.
    """

    kind = "all-pairs"

    def __init__(self, max_interval: int = 10, backwards: bool = True, references: int = 1):
        if max_interval < 1 or references not in (1, 2):
            raise CelbenchError(f"all-pairs: max_interval must be >= 1 and references 1 or 2 "
                                f"(got {max_interval}, {references})")
        self.max_interval, self.backwards, self.references = max_interval, backwards, references

    def sample(self, shot: ShotView) -> list[PairSpec]:
        frames = shot.frames(collapse_held=False)
        kind = self.kind if self.references == 1 else f"{self.kind}@2"
        sequence = {frame: _sequence_id(shot, kind, frame) for frame in frames}  # one per reference frame
        out = []
        for i, first in enumerate(frames):
            for j in range(i + 1, len(frames)):
                last = frames[j]
                if last - first > self.max_interval:
                    break
                if self.references == 2:
                    out += [PairSpec(kind, f"{sequence[first]}-{last:06d}", target - first, (first, last), target)
                            for target in frames[i + 1:j]]
                    continue
                out.append(PairSpec(kind, sequence[first], last - first, (first,), last))
                if self.backwards:
                    out.append(PairSpec(kind, sequence[last], first - last, (last,), first))
        return out


@SAMPLERS.register("cmft-test")
class CMFTTest(Sampler):
    """CMFT section 4.2 test sequences: 5 frames at stride S, first = reference, 4 targets.

    Args:
        strides: the strides S to mine (CMFT tables 1-3: 1, 5, 10); kind is ``cmft-test@S``.
        length: frames per sequence including the reference (CMFT: 5).
        sequences_per_shot: accepted sequences per shot and stride (CMFT: one random sequence per shot).
        max_unseen: drop a sequence when any target has more than this fraction of its component area
            unseen in the reference (:func:`unseen_fraction`); CMFT gives no number, 0.25 is ours.
        collapse_held: see module doc; default False (strides in video frames, as the paper).
    """

    kind = "cmft-test"

    def __init__(self, strides: Sequence[int] = (1, 5, 10), length: int = 5, sequences_per_shot: int = 1,
                 max_unseen: float = 0.25, collapse_held: bool = False):
        if length < 2 or any(s < 1 for s in strides) or sequences_per_shot < 1:
            raise CelbenchError("cmft-test: length must be >= 2, strides >= 1, sequences_per_shot >= 1")
        self.strides, self.length = tuple(int(s) for s in strides), length
        self.sequences_per_shot, self.max_unseen, self.collapse_held = sequences_per_shot, max_unseen, collapse_held

    def accepts(self, shot: ShotView, frames: list[int]) -> bool:
        """False when a target is identical to the reference or has large unseen regions (CMFT 4.2)."""
        reference = frames[0]
        for target in frames[1:]:
            if shot.identical(reference, target):
                return False
            if shot.unseen is not None and shot.unseen(reference, target) > self.max_unseen:
                return False
        return True

    def sample(self, shot: ShotView) -> list[PairSpec]:
        frames = shot.frames(self.collapse_held)
        out = []
        for stride in self.strides:
            kind = f"{self.kind}@{stride}"
            span = (self.length - 1) * stride + 1
            starts = list(range(0, len(frames) - span + 1))
            random.Random(f"{shot.seed}/{kind}").shuffle(starts)
            kept = 0
            for start in starts:
                if kept == self.sequences_per_shot:
                    break
                sequence = frames[start:start + span:stride]
                if not self.accepts(shot, sequence):
                    continue
                kept += 1
                sid = _sequence_id(shot, kind, sequence[0])
                out += [PairSpec(kind, sid, pos, (sequence[0],), t) for pos, t in enumerate(sequence[1:], 1)]
        return out


@SAMPLERS.register("shi-seq")
class ShiSequence(Sampler):
    """Shi et al. section 4.1: ``length`` = 8 successive frames; the ``references`` frames that divide it
    (:func:`~dataprep.pairs.sampler.kref_positions`: first and last for 2) are references, the others targets.

    Args:
        length: frames per sequence (Shi: 8).
        stride: step between sequence starts (default 8: sequences tile the shot without overlap).
        collapse_held: see module doc; default True.
        references: K references per sequence (Shi's training: 2, the first and last frame).
    """

    kind = "shi-seq"
    unrecorded_defaults = ("references",)

    def __init__(self, length: int = 8, stride: int = 8, collapse_held: bool = True, references: int = 2):
        if length < 3 or stride < 1 or references < 1:
            raise CelbenchError(f"shi-seq: length must be >= 3, stride >= 1 and references >= 1 "
                                f"(got {length}, {stride}, {references})")
        self.length, self.stride, self.collapse_held = length, stride, collapse_held
        self.positions = kref_positions(length, references)

    def sample(self, shot: ShotView) -> list[PairSpec]:
        frames = shot.frames(self.collapse_held)
        out = []
        for start in range(0, len(frames) - self.length + 1, self.stride):
            sequence = frames[start:start + self.length]
            refs = tuple(sequence[p] for p in self.positions)
            sid = _sequence_id(shot, self.kind, refs[0])
            out += [PairSpec(self.kind, sid, pos, refs, t) for pos, t in enumerate(sequence)
                    if pos not in self.positions]
        return out


@SAMPLERS.register("shi-long")
class ShiLong(Sampler):
    """Shi et al. section 4.3: a whole shot coloured from K equally spaced references (Shi choose K = 3).

    Reference positions are ``round(i * (n - 1) / (K - 1))`` for i = 0..K-1 over the shot's n frames; each other
    frame is a target referenced by the two references bounding its segment (K = 1: the first frame only).

    Args:
        references: K (Shi: 1..5 studied, 3 chosen).
        min_length: shots shorter than this (in frames, after collapsing) are skipped ("long sequences" only).
        collapse_held: see module doc; default True.
    """

    kind = "shi-long"

    def __init__(self, references: int = 3, min_length: int = 16, collapse_held: bool = True):
        if references < 1:
            raise CelbenchError(f"shi-long: references must be >= 1 (got {references})")
        self.references, self.min_length, self.collapse_held = references, min_length, collapse_held

    def sample(self, shot: ShotView) -> list[PairSpec]:
        frames = shot.frames(self.collapse_held)
        n = len(frames)
        if n < max(self.min_length, self.references + 1, 2):
            return []
        kind = f"{self.kind}@{self.references}"
        if self.references == 1:
            positions = [0]
        else:
            positions = sorted({round(i * (n - 1) / (self.references - 1)) for i in range(self.references)})
        sid = _sequence_id(shot, kind, frames[0])
        out = []
        for pos in range(n):
            if pos in positions:
                continue
            before = max(p for p in positions if p < pos)
            after = [p for p in positions if p > pos]
            refs = (frames[before],) + ((frames[after[0]],) if after else ())
            out.append(PairSpec(kind, sid, pos, refs, frames[pos]))
        return out


def held_groups(frames: Sequence[np.ndarray], threshold: float) -> list[int]:
    """Held-drawing runs of consecutive frames: per frame, the position of its run's first frame.

    A frame joins the current run when the mean absolute difference between it and the run's first frame
    (grey, 0..255, same shape) is at most ``threshold``; comparing with the run's first frame rather than the
    previous one stops slow pans from chaining into one run. Positions are list positions (callers map them to
    frame indices).

    Args:
        frames: grey or colour uint8 images of one shot, in time order, equal shapes.
        threshold: mean absolute difference (0..255) at or below which two frames are the same drawing.
    """
    groups: list[int] = []
    anchor: np.ndarray | None = None
    for i, frame in enumerate(frames):
        current = frame.astype(np.int16)
        if anchor is not None and float(np.abs(current - anchor).mean()) <= threshold:
            groups.append(groups[-1])
        else:
            anchor = current
            groups.append(i)
    return groups


def unseen_fraction(reference: Sequence[dict], target: Sequence[dict], colour_tolerance: float = 24.0) -> float:
    """Fraction of the target's component area whose colour does not occur in the reference.

    Our definition of CMFT 4.2's "large unseen regions": a target component (entry of the frames table's
    ``component_table``: ``area``, ``mean_rgb``) is *unseen* when no reference component's mean colour lies within
    ``colour_tolerance`` (Euclidean distance in 0..255 sRGB) of its mean colour; i.e. its colour cannot be copied
    from the reference. Returns unseen area / total area in [0, 1] (0 for a target without components).
    """
    total = float(sum(c["area"] for c in target))
    if total == 0:
        return 0.0
    if not reference:
        return 1.0
    ref_rgb = np.asarray([c["mean_rgb"] for c in reference], dtype=np.float64)
    unseen = 0.0
    for c in target:
        distance = np.sqrt(((ref_rgb - np.asarray(c["mean_rgb"], dtype=np.float64)) ** 2).sum(axis=1)).min()
        if distance > colour_tolerance:
            unseen += c["area"]
    return unseen / total
