"""Evaluation protocols: versioned data files ``benchmark/protocols/<name>@<version>.json``.

A protocol pins everything that decides which numbers come out, so ``name@version`` means the same
thing forever (change a protocol by adding a new version file, never by editing one):

- ``sampler``: how samples are drawn from the shots of a split (kind + its settings + seed), see
  :data:`SAMPLERS`;
- ``inputs``: which batch keys the model receives (:mod:`benchmark.model`);
- ``resolution``: ``[height, width]`` every image is resized to, or ``"stored"``: frames are scored at the
  dataset's stored size, nothing resampled (paint-bucket metrics compare regions, which resizing would merge
  or split);
- ``metrics``: ``[{"name", "settings", "optional"}]``, computed per sample (or per bucket for
  distribution metrics such as FID); ``primary_metric`` ranks the leaderboard;
- ``bucket``: the sample attribute results are broken down by (``interval`` for CMFT, ``k`` for Shi);
- ``average``: optional sample attribute to average within first (``clip``: BasicPBC averages its
  accuracies per clip, then over clips); without it, the mean is over samples;
- ``hints``: settings of the colour-hint simulation when ``hints`` is an input (see
  :func:`simulate_hints`), so every model sees exactly the same hints.

The samplers follow the papers: ``interval`` is CMFT section 4.2 (five continuous frames at stride S
per shot, the first is the reference, intervals ``iv = S * j``); ``kref`` is Shi et al. TVCG 2023
sections 4.1 and 4.6 (eight successive frames, K references at the points that divide the sequence);
``pairs`` takes reference/target pairs at a fixed gap (component accuracy); ``single`` takes lone
targets (hint-based colourisation); ``dataset-pairs`` takes the pairs ``dataprep build`` mined, by kind
(the CMFT test sequences ``cmft-test@S``, with the builder's held-drawing and unseen-region filters).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dataprep.errors import CelbenchError, file_error
from dataprep.registry import Registry, did_you_mean

from benchmark.source import SampleSource, SampleSpec, Shot, empty_split_hint

PROTOCOL_DIR = Path(__file__).resolve().parent / "protocols"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    settings: dict[str, Any]
    optional: bool = False


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    description: str
    paper: str
    sampler: dict[str, Any]
    inputs: tuple[str, ...]
    resolution: tuple[int, int] | None  # None: the dataset's stored size
    metrics: tuple[MetricSpec, ...]
    primary_metric: str
    bucket: str | None
    content_sha256: str
    batch_size: int = 8
    hints: dict[str, Any] | None = None
    average: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def select(self, source: SampleSource, split: str) -> list[SampleSpec]:
        """The samples of this protocol in ``source``'s ``split`` (deterministic: seeded per shot)."""
        settings = dict(self.sampler)
        kind = settings.pop("kind")
        return SAMPLERS.get(kind)(source, split, **settings)


SAMPLERS: Registry[Callable[..., list[SampleSpec]]] = Registry("sampler")


def _shot_rng(seed: int, shot: Shot, *salt: int) -> np.random.Generator:
    # Seeded by the shot id (not its position), so adding shots never changes another shot's samples.
    return np.random.default_rng([seed, zlib.crc32(shot.shot_id.encode()), *salt])


@SAMPLERS.register("dataset-pairs")
def dataset_pairs_sampler(source: SampleSource, split: str, kinds: list[str]) -> list[SampleSpec]:
    """The pairs ``dataprep build`` mined, of the given kinds (``cmft-test@5``; ``cmft-test`` = every
    stride). The builder applies the papers' filters (held drawings, large unseen regions), so this is
    the sampler to use on built datasets; the frame-level samplers below need only shots."""
    samples = sorted(source.pairs(split, kinds), key=lambda s: s.sample_id)
    if not samples:
        raise CelbenchError(f"{source.location}: split {split!r} has no pairs of kind {', '.join(kinds)}"
                            f"{empty_split_hint(source, split)}")
    return samples


@SAMPLERS.register("interval")
def interval_sampler(source: SampleSource, split: str, strides: list[int], targets_per_reference: int = 4,
                     seed: int = 0) -> list[SampleSpec]:
    """CMFT section 4.2: per shot and stride S, ``targets_per_reference + 1`` continuous frames at
    stride S starting at a random frame; the first colours the others at intervals S, 2S, ...
    Shots too short for a stride are skipped for that stride."""
    samples = []
    for shot in source.shots(split):
        for stride in strides:
            span = stride * targets_per_reference
            if len(shot.frame_ids) <= span:
                continue
            start = int(_shot_rng(seed, shot, stride).integers(0, len(shot.frame_ids) - span))
            reference = shot.frame_ids[start]
            for j in range(1, targets_per_reference + 1):
                samples.append(SampleSpec(f"{shot.shot_id}/s{stride}/f{j}", (reference,),
                                          shot.frame_ids[start + stride * j],
                                          {"stride": stride, "frame": j, "interval": stride * j}))
    return samples


def kref_positions(sequence_length: int, k: int) -> list[int]:
    """Shi et al. 4.6: the K frames that divide a sequence into K-1 segments (K=1: the first frame)."""
    if k == 1:
        return [0]
    return sorted({int(round(p)) for p in np.linspace(0, sequence_length - 1, k)})


@SAMPLERS.register("kref")
def kref_sampler(source: SampleSource, split: str, sequence_length: int = 8, ks: list[int] = (1, 2, 3, 4, 5),
                 collapse_held: bool = True, seed: int = 0) -> list[SampleSpec]:
    """Shi et al. sections 4.1/4.6: eight successive frames per shot (random start); for each K the
    reference frames divide the sequence and every other frame is a target. With ``collapse_held``,
    held frames (one drawing shown on twos/threes) count once, so targets are real new drawings."""
    samples = []
    for shot in source.shots(split):
        if collapse_held:
            shot = shot.distinct_drawings()
        if len(shot.frame_ids) < sequence_length:
            continue
        start = int(_shot_rng(seed, shot).integers(0, len(shot.frame_ids) - sequence_length + 1))
        sequence = shot.frame_ids[start:start + sequence_length]
        for k in ks:
            positions = kref_positions(sequence_length, k)
            references = tuple(sequence[p] for p in positions)
            for position in range(sequence_length):
                if position not in positions:
                    samples.append(SampleSpec(f"{shot.shot_id}/k{k}/t{position}", references, sequence[position],
                                              {"k": k, "position": position}))
    return samples


@SAMPLERS.register("pairs")
def pairs_sampler(source: SampleSource, split: str, gap: int = 1, pairs_per_shot: int = 4,
                  collapse_held: bool = True, seed: int = 0, gaps: list[int] | None = None) -> list[SampleSpec]:
    """Reference/target pairs ``gap`` drawings apart in one shot (or, with ``gaps``, at each of those gaps,
    drawn independently per gap), up to ``pairs_per_shot`` per shot and gap at random (seeded) positions; for
    component accuracy, which needs ground-truth correspondence. With ``collapse_held`` a gap counts distinct
    drawings, not video frames. Each sample carries ``gap`` and ``clip`` (the shot id) attributes; the
    reference frame of a pair is never its target, so it is never scored."""
    samples = []
    for shot in source.shots(split):
        if collapse_held:
            shot = shot.distinct_drawings()
        for step in (gaps if gaps is not None else [gap]):
            n_pairs = len(shot.frame_ids) - step
            if n_pairs <= 0:
                continue
            rng = _shot_rng(seed, shot, step)
            starts = sorted(rng.choice(n_pairs, size=min(pairs_per_shot, n_pairs), replace=False).tolist())
            for start in starts:
                samples.append(SampleSpec(f"{shot.shot_id}/g{step}/{start}", (shot.frame_ids[start],),
                                          shot.frame_ids[start + step], {"gap": step, "clip": shot.shot_id}))
    return samples


@SAMPLERS.register("single")
def single_sampler(source: SampleSource, split: str, frames_per_shot: int = 4, seed: int = 0) -> list[SampleSpec]:
    """Lone targets (no reference): up to ``frames_per_shot`` random (seeded) frames per shot."""
    samples = []
    for shot in source.shots(split):
        rng = _shot_rng(seed, shot)
        count = min(frames_per_shot, len(shot.frame_ids))
        for index in sorted(rng.choice(len(shot.frame_ids), size=count, replace=False).tolist()):
            samples.append(SampleSpec(f"{shot.shot_id}/{index}", (), shot.frame_ids[index], {}))
    return samples


def available_protocols() -> list[str]:
    """Every ``name@version`` shipped, sorted."""
    return sorted(path.stem for path in PROTOCOL_DIR.glob("*@*.json"))


def _resolution(value: Any) -> tuple[int, int] | None:
    if value == "stored":
        return None
    height, width = (int(v) for v in value)
    return height, width


def _parse(path: Path) -> Protocol:
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
        metrics = tuple(MetricSpec(m["name"], dict(m.get("settings", {})), bool(m.get("optional", False)))
                        for m in data["metrics"])
        protocol = Protocol(
            name=data["name"], version=int(data["version"]), description=data["description"],
            paper=data.get("paper", ""), sampler=dict(data["sampler"]), inputs=tuple(data["inputs"]),
            resolution=_resolution(data["resolution"]), metrics=metrics,
            primary_metric=data["primary_metric"], bucket=data.get("bucket"),
            batch_size=int(data.get("batch_size", 8)), hints=data.get("hints"), average=data.get("average"),
            content_sha256=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest())
    except (KeyError, TypeError, ValueError) as error:
        raise file_error(path, f"not a valid protocol file ({type(error).__name__}: {error})") from None
    if protocol.primary_metric not in {m.name for m in metrics}:
        raise file_error(path, f"primary_metric {protocol.primary_metric!r} is not one of its metrics")
    if protocol.sampler.get("kind") not in SAMPLERS:
        raise file_error(path, SAMPLERS.unknown_message(str(protocol.sampler.get("kind"))))
    return protocol


def load_protocol(spec: str) -> Protocol:
    """Load ``name@version``, ``name`` (its newest version) or a path to a protocol JSON file.

    Unknown names or versions raise :class:`CelbenchError` naming the closest shipped protocols.
    """
    if spec.endswith(".json") and Path(spec).is_file():
        return _parse(Path(spec))
    known = available_protocols()
    name, _, version = spec.partition("@")
    versions = sorted((int(k.partition("@")[2]) for k in known if k.partition("@")[0] == name))
    if not versions:
        names = sorted({k.partition("@")[0] for k in known})
        latest = [max((k for k in known if k.partition("@")[0] == n), key=lambda k: int(k.partition("@")[2]))
                  for n in names]
        hint = did_you_mean(spec, latest, cutoff=0.4)
        raise CelbenchError(f"unknown protocol {spec!r}{hint} (known: {', '.join(known)})")
    if not version:
        return _parse(PROTOCOL_DIR / f"{name}@{versions[-1]}.json")
    if not version.isdigit() or int(version) not in versions:
        raise CelbenchError(f"unknown version {version!r} of protocol {name!r}; did you mean "
                            f"'{name}@{versions[-1]}'? (versions: {', '.join(map(str, versions))})")
    return _parse(PROTOCOL_DIR / f"{name}@{int(version)}.json")


def simulate_hints(colour: np.ndarray, seed: int, sample_id: str, geometric_p: float = 0.125,
                   max_patch: int = 8, location_sigma: float = 0.25, min_points: int = 1) -> np.ndarray:
    """Simulated user colour hints, following Zhang et al. 2017 as used by the hints paper (section 4).

    Patch centres are drawn from a 2-D Gaussian at the image centre with standard deviation
    ``location_sigma`` * (H, W); the number of patches from a geometric distribution with
    ``geometric_p`` (at least ``min_points``); the side of each square patch uniformly from 1 to
    ``max_patch`` pixels; each patch is filled with the mean colour under it.

    Args:
        colour: (3, H, W) float RGB in [0, 1], the ground truth.
        seed, sample_id: the generator is seeded by both, so hints depend on the sample only.
    Returns:
        (4, H, W) float32: RGB hint colours (0 outside hints) and a mask channel (1 = hint).
    """
    _, height, width = colour.shape
    rng = np.random.default_rng([seed, zlib.crc32(sample_id.encode())])
    hints = np.zeros((4, height, width), dtype=np.float32)
    count = max(min_points, int(rng.geometric(geometric_p)))
    for _ in range(count):
        cy = int(np.clip(rng.normal(height / 2, location_sigma * height), 0, height - 1))
        cx = int(np.clip(rng.normal(width / 2, location_sigma * width), 0, width - 1))
        size = int(rng.integers(1, max_patch + 1))
        y0, x0 = max(0, cy - size // 2), max(0, cx - size // 2)
        y1, x1 = min(height, y0 + size), min(width, x0 + size)
        hints[:3, y0:y1, x0:x1] = colour[:, y0:y1, x0:x1].mean(axis=(1, 2))[:, None, None]
        hints[3, y0:y1, x0:x1] = 1.0
    return hints
