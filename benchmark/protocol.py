"""Evaluation protocols: versioned data files ``benchmark/protocols/<name>@<version>.json``.

A protocol pins everything that decides which numbers come out, so ``name@version`` means the same
thing forever (change a protocol by adding a new version file, never by editing one):

- ``sampler``: how samples are drawn from the shots of a split (kind + its settings + seed): a sampler of
  :data:`dataprep.pairs.SAMPLERS`, the one registry of pair samplers the build and training use too;
- ``inputs``: which batch keys the model receives (:mod:`benchmark.model`);
- ``resolution``: ``[height, width]`` of the model's input, or ``"stored"``: frames are scored at the
  dataset's stored size, nothing resampled (paint-bucket metrics compare regions, which resizing would merge
  or split; frames of different sizes go in different batches);
- ``fit``: with a fixed resolution, how a stored frame of any aspect ratio is fitted to it (:mod:`benchmark.fit`:
  ``centre-crop``, the default, ``pad`` or ``tiles``); recorded in every result's signature;
- ``metrics``: ``[{"name", "settings", "optional"}]``, computed per sample (or per bucket for
  distribution metrics such as FID); ``primary_metric`` ranks the leaderboard;
- ``bucket``: the sample attribute results are broken down by (``interval`` for CMFT, ``k`` for Shi);
- ``average``: optional sample attribute to average within first (``clip``: BasicPBC averages its
  accuracies per clip, then over clips); without it, the mean is over samples;
- ``hints``: the colour-hint simulation when ``hints`` is an input: ``{"name", "params", "seed"}``, a sampler of
  :data:`dataprep.hints.HINTS` (the one the dataset build uses), so every model sees exactly the same hints
  (see :class:`HintSpec` and :func:`draw_hints`).

The samplers follow the papers (:mod:`dataprep.pairs.selection`): ``interval`` is CMFT section 4.2, ``kref`` Shi
et al. TVCG 2023 sections 4.1 and 4.6, ``pairs`` reference/target pairs at a fixed gap (component accuracy),
``single`` lone targets and ``hint-budgets`` the same targets once per hint budget; ``dataset-pairs`` takes the
pairs ``dataprep build`` mined, by kind (the CMFT test sequences ``cmft-test@S``, with the builder's held-drawing
and unseen-region filters).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import CelbenchError, file_error
from dataprep.pairs import SAMPLERS, ShotView
from dataprep.registry import did_you_mean

from benchmark.fit import DEFAULT_FIT, FITS
from benchmark.source import SampleSource, SampleSpec, empty_split_hint

PROTOCOL_DIR = Path(__file__).resolve().parent / "protocols"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    settings: dict[str, Any]
    optional: bool = False


#: ``hints`` keys of protocol files written before the block named its sampler (``hints@1``) -> parameters of
#: :class:`dataprep.hints.ClippedGaussianGeometricHints`, the formulation those files always meant.
LEGACY_HINT_KEYS = {"geometric_p": "p", "max_patch": "max_size", "location_sigma": "sigma_fraction",
                    "min_points": "min_count"}
LEGACY_HINT_SAMPLER = "gaussian-geometric-clip"


@dataclass(frozen=True)
class HintSpec:
    """The hint simulation of a protocol: sampler ``name`` of :data:`dataprep.hints.HINTS` with ``params``,
    and the base ``seed`` of every sample's generator."""

    name: str
    params: dict[str, Any]
    seed: int = 0

    @classmethod
    def parse(cls, block: dict[str, Any]) -> "HintSpec":
        block = dict(block)
        seed = int(block.pop("seed", 0))
        if "name" in block:
            name, params = block.pop("name"), dict(block.pop("params", {}))
            if block:
                raise ValueError(f"unknown hints keys {sorted(block)}")
            return cls(str(name), params, seed)
        unknown = sorted(set(block) - set(LEGACY_HINT_KEYS))
        if unknown:
            raise ValueError(f"unknown hints keys {unknown}")
        return cls(LEGACY_HINT_SAMPLER, {LEGACY_HINT_KEYS[k]: v for k, v in block.items()}, seed)

    def sampler(self):
        """The :class:`dataprep.hints.HintSampler` (CelbenchError for an unknown name or bad parameters)."""
        from dataprep.hints import HINTS

        try:
            return HINTS.create(self.name, **self.params)
        except TypeError as error:
            raise CelbenchError(f"hint sampler {self.name!r}: {error}") from None


def draw_hints(spec: HintSpec, sample: SampleSpec, colour: np.ndarray, sampler=None) -> np.ndarray:
    """The ``hints`` input for one sample: (4, H, W) float32, RGB in [0, 1] + mask (1 = hint).

    ``colour``: the target at protocol resolution, (H, W, 3) uint8 RGB. A sample with a ``hints`` attribute
    (the ``hint-budgets`` sampler) gets exactly that many patches from a generator seeded by its *target frame*,
    so the budgets of one frame are nested; any other sample gets the sampler's own count from a generator
    seeded by its sample id.
    """
    from dataprep.hints import hint_channels

    sampler = sampler or spec.sampler()
    count = sample.attributes.get("hints")
    key = sample.sample_id if count is None else sample.target_id
    patches = sampler.draw(colour, [spec.seed, zlib.crc32(key.encode())], None if count is None else int(count))
    return hint_channels(patches, *colour.shape[:2])


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
    hints: HintSpec | None = None
    average: str | None = None
    fit: str = DEFAULT_FIT  # how stored frames are fitted to ``resolution`` (benchmark.fit); unused when stored

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def select(self, source: SampleSource, split: str) -> list[SampleSpec]:
        """The samples of this protocol in ``source``'s ``split`` (deterministic: seeded per shot)."""
        return select_samples(source, split, **self.sampler)


def select_samples(source: SampleSource, split: str, kind: str, **settings: Any) -> list[SampleSpec]:
    """The samples the sampler ``kind`` of :data:`dataprep.pairs.SAMPLERS` (with ``settings``) draws from
    ``source``'s ``split``: shot by shot from the frames, or the pairs a built dataset holds (``dataset-pairs``,
    sorted by sample id)."""
    try:
        sampler = SAMPLERS.create(kind, **settings)
    except TypeError as error:
        raise CelbenchError(f"sampler {kind!r}: {error}") from None
    if sampler.needs == "stored-pairs":
        samples = sorted(source.pairs(split, sampler.kinds), key=lambda s: s.sample_id)
        if not samples:
            raise CelbenchError(f"{source.location}: split {split!r} has no pairs of kind {', '.join(sampler.kinds)}"
                                f"{empty_split_hint(source, split)}")
        return samples
    return [SampleSpec(spec.sample_id, tuple(spec.references), spec.target, dict(spec.attributes))
            for shot in source.shots(split)
            for spec in sampler.sample(ShotView.of(shot.shot_id, shot.frame_ids, shot.drawings))]


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
            batch_size=int(data.get("batch_size", 8)),
            hints=HintSpec.parse(data["hints"]) if data.get("hints") is not None else None,
            average=data.get("average"), fit=str(data.get("fit", DEFAULT_FIT)),
            content_sha256=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest())
    except (KeyError, TypeError, ValueError) as error:
        raise file_error(path, f"not a valid protocol file ({type(error).__name__}: {error})") from None
    if protocol.primary_metric not in {m.name for m in metrics}:
        raise file_error(path, f"primary_metric {protocol.primary_metric!r} is not one of its metrics")
    if protocol.fit not in FITS:
        raise file_error(path, FITS.unknown_message(protocol.fit))
    if protocol.resolution is None and "fit" in data:
        raise file_error(path, "'fit' needs a fixed resolution: frames scored at their stored size are not fitted")
    settings = {k: v for k, v in protocol.sampler.items() if k != "kind"}
    try:
        SAMPLERS.check(str(protocol.sampler.get("kind")), settings, "sampler.kind", "sampler", label="protocol key")
    except CelbenchError as error:
        raise file_error(path, str(error)) from None
    if protocol.hints is not None:
        from dataprep.hints import HINTS

        if protocol.hints.name not in HINTS:
            raise file_error(path, HINTS.unknown_message(protocol.hints.name))
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
