"""Build configuration: one dataclass tree holding every default of ``dataprep build``.

Load order: dataclass defaults <- a YAML or TOML file (``--config``) <- ``--set key=value`` overrides (dotted keys,
values parsed as YAML scalars/lists: ``--set frames.size=128``, ``--set samplers.cmft-test.strides=[1,5]``).
An unknown key or a value of the wrong type is a :class:`~dataprep.errors.CelbenchError` naming the key.
``configs/default.yaml`` writes every default out (a test keeps it equal to the dataclasses).

Every pluggable part is one shape, ``{name, params}`` (:class:`ComponentConfig`: ``shots``, ``sketch``, ``field``,
``hints``; ``samplers`` maps each sampler's name to its params), checked by :func:`check_config` against the
registered class's signature; defaults are the components' own (their signatures, the ``DEFAULT_*`` of their
interface modules).

:func:`config_hash` is the sha256 of the canonical JSON of everything that changes the dataset's content; the
``run`` section (executor, workers) does not, so it is left out: resuming with another ``--workers`` is the same
dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from dataprep.errors import CelbenchError, file_error
from dataprep.registry import check_params, did_you_mean, parameter_defaults, type_name, type_ok
from dataprep.shots.detector import DEFAULT_DETECTOR

RESIZE_MODES = ("short-side", "centre-crop", "pad", "keep-aspect")
SPLIT_UNITS = ("shot", "video")
#: The dataset splits, in the order their fractions are given.
SPLITS = ("train", "val", "test")


@dataclass
class FramesConfig:
    """How source frames become stored frames.

    Attributes:
        size: under ``resize: short-side`` (the default), the stored frames' shorter side in pixels: the whole
            source frame is kept with its aspect ratio (a 16:9 source is stored at 456x256), the longer side
            rounded to a multiple of 8 (:data:`dataprep.imaging.SIZE_MULTIPLE`). CMFT 4.1 and Shi 4.1 train and
            test at 256x256; protocols fit the stored frames to that (``fit`` in :mod:`benchmark.protocol`).
        width, height: the stored resolution under the other modes.
        resize: 'short-side' (whole frame, aspect kept, shorter side = ``size``), 'centre-crop' (scale to cover
            width x height, crop the centre: a 16:9 frame loses 44% of its area), 'pad' (scale to fit, pad with
            white to width x height), 'keep-aspect' (scale so the longer side fits; stored size varies per source).
        crop: optional [x0, y0, x1, y1] box (pixels, x1/y1 exclusive; as ``dataprep shots --crop``) cut from
            every source frame before resizing, e.g. a comparison video's panel.
        held_threshold: mean absolute grey difference (0..255) at or below which consecutive frames count as one
            held drawing, used only when the shot detector reports no held groups (its own ``held_mad``
            definition is used otherwise, so one definition holds per dataset; see :mod:`dataprep.pairs`).
    """

    size: int = 256
    width: int = 256
    height: int = 256
    resize: str = "short-side"
    crop: list[int] | None = None
    held_threshold: float = 2.0

    def box(self) -> tuple[int, int]:
        """(width, height) given to :func:`dataprep.imaging.fit_frame`: ``size`` x ``size`` under 'short-side'
        (the frame covers that square, nothing cut), else ``width`` x ``height``."""
        return (self.size, self.size) if self.resize == "short-side" else (self.width, self.height)


@dataclass
class ComponentConfig:
    """One pluggable part: the registered component ``name`` with keyword ``params`` (its constructor's).

    Every pluggable part of a build is this shape (``sketch``, ``field``, ``hints``, ``shots``; each entry of
    ``samplers`` is a name with its parameters), checked once by :func:`check_config` against the registered
    class's signature (:meth:`dataprep.registry.Registry.check`): an unknown name or parameter, or a value of
    the wrong type, is a one-line error naming the key.
    """

    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ShotsConfig(ComponentConfig):
    """Shot detection (:func:`dataprep.shots.detect.detect_shots`): the detector ``name`` (``dataprep ls
    detectors``); ``params`` are the detector's own or the shot filters' (:class:`dataprep.shots.detect.ShotParams`:
    ``min_length`` ...). ``detector`` is the older spelling of ``name``, accepted in files and ``--set`` and kept in
    the recorded form (:meth:`BuildConfig.to_dict`)."""

    name: str = DEFAULT_DETECTOR


@dataclass
class ComponentsConfig:
    """Component extraction (:func:`dataprep.components.extract_labels`, the one labelling function, so no
    name): ``params`` are its keywords (``max_gap``, ``line_threshold``)."""

    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SplitConfig:
    """Train/val/test assignment: hash-based and deterministic, per ``by`` unit ('shot' or 'video').

    Attributes:
        by: the unit that is never divided between splits.
        train, val, test: fractions, summing to 1.
        seed: changes the assignment without changing anything else.
    """

    by: str = "shot"
    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    seed: int = 0


@dataclass
class OutputConfig:
    """Parquet layout.

    Attributes:
        shard_size: at most this many frames per frames Parquet file (a unit writes one or more shards).
        png_compression: zlib level 0..9 of the stored PNGs (1 = fast; PNG is lossless at every level). The PNG
            filter and zlib strategy are chosen per column (:data:`dataprep.imaging.PNG_OPTIONS`).
    """

    shard_size: int = 1000
    png_compression: int = 1


@dataclass
class RunConfig:
    """How the build runs (not part of the config hash: it does not change the dataset).

    Attributes:
        executor: name in :data:`dataprep.build.executor.EXECUTORS` ('local' process pool, 'serial', 'ray').
        workers: processes for the 'local' executor; for 'ray', units run at once across the cluster (at most
            twice as many are submitted: the back-pressure that keeps the driver's memory bounded).
        address: 'ray' only: '' = a private Ray instance on this machine, 'auto' = the cluster this machine
            joined with ``ray start``, ``ray://host:port`` = a remote cluster.
        cpus_per_task: 'ray' only: CPUs each task reserves on its node.
        memory_per_task_mb: 'ray' only: memory each task reserves on its node (MiB; 0 = none declared). A unit at
            256 x 256 holds up to 64 MiB of decoded frames per shot plus the decoder's; 1 GiB leaves room for 1080p.
        frames_per_unit: work units are runs of whole shots of about this many frames (a longer shot is a unit
            of its own), so one long video still keeps every worker busy; 0 = one unit per source. Units run
            longest first; 100 (about 6 MB of Parquet per unit at 256 x 256) keeps both workers busy to the end
            on a clip of a few hundred frames (200 left one worker idle for the last ~0.5 s of a 743-frame clip).
    """

    executor: str = "local"
    workers: int = 2
    frames_per_unit: int = 100
    address: str = ""
    cpus_per_task: float = 1.0
    memory_per_task_mb: int = 1024


#: The samplers a build mines with unless its config says otherwise (CMFT 4.1 and 4.2, Shi et al. 4.1 and 4.3).
DEFAULT_SAMPLERS = ("train-window", "cmft-test", "shi-seq", "shi-long")


def _default_samplers() -> dict[str, dict[str, Any]]:
    """Each default sampler with its signature's defaults (:func:`dataprep.registry.parameter_defaults`), less
    its :attr:`~dataprep.pairs.Sampler.unrecorded_defaults`: the numbers live in the sampler classes alone."""
    from dataprep.pairs import SAMPLERS

    defaults = {}
    for name in DEFAULT_SAMPLERS:
        factory = SAMPLERS.get(name)
        defaults[name] = {key: value for key, value in parameter_defaults(factory).items()
                          if key not in factory.unrecorded_defaults}
    return defaults


def _default_part(constant: str) -> ComponentConfig:
    """The stage a build uses unless its config names another: ``constant`` ("module:NAME"), the ``DEFAULT_*`` of
    the stage's interface module (imported on use: those modules pull in OpenCV, which reading a config does not
    need)."""
    module, _, name = constant.partition(":")
    return ComponentConfig(getattr(importlib.import_module(module), name))


@dataclass
class BuildConfig:
    """Everything ``dataprep build`` needs besides its inputs. See each section's class."""

    frames: FramesConfig = dataclasses.field(default_factory=FramesConfig)
    shots: ShotsConfig = dataclasses.field(default_factory=ShotsConfig)
    sketch: ComponentConfig = dataclasses.field(
        default_factory=lambda: _default_part("dataprep.sketch.extractor:DEFAULT_EXTRACTOR"))
    field: ComponentConfig = dataclasses.field(default_factory=lambda: _default_part("dataprep.field:DEFAULT_FIELD"))
    components: ComponentsConfig = dataclasses.field(default_factory=ComponentsConfig)
    hints: ComponentConfig = dataclasses.field(default_factory=lambda: _default_part("dataprep.hints:DEFAULT_HINTS"))
    unseen_colour_tolerance: float = 24.0
    samplers: dict[str, dict[str, Any]] = dataclasses.field(default_factory=_default_samplers)
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The recorded form: what a dataset's manifest stores as its ``config`` and :func:`config_hash` hashes.

        It is the form datasets have been recorded in since the first schema, so a dataset built before the
        ``{name, params}`` shape keeps its config hash (``--resume`` works on it): the shot detector is recorded
        as ``shots.detector``. :func:`config_from_dict` reads it back; :func:`default_yaml` writes ``shots.name``.
        """
        data = dataclasses.asdict(self)
        data["shots"] = {"detector": data["shots"].pop("name"), **data["shots"]}
        return data


#: Older spellings of keys, accepted wherever a config is read (files, ``--set``, a manifest's recorded form).
KEY_ALIASES = {(ShotsConfig, "detector"): "name"}


def _merge(obj: Any, data: dict[str, Any], prefix: str) -> None:
    """Merge ``data`` into dataclass ``obj`` in place, checking keys and types."""
    if not isinstance(data, dict):
        raise CelbenchError(f"config key {prefix.rstrip('.') or '<root>'}: expected a mapping")
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        key = KEY_ALIASES.get((type(obj), key), key)
        dotted = f"{prefix}{key}"
        if key not in names:
            hint = did_you_mean(dotted, [prefix + str(n) for n in names], n=1, cutoff=0.6)
            raise CelbenchError(f"unknown config key {dotted}{hint}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, dotted + ".")
        elif key == "samplers" and isinstance(obj, BuildConfig):
            setattr(obj, key, _merge_samplers(current, value, dotted))
        else:
            if hints[key] is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if isinstance(current, dict) and isinstance(value, dict):
                value = {**current, **value}  # parameter dicts merge key by key (file, then each --set)
            if not type_ok(value, hints[key]):
                raise CelbenchError(f"config key {dotted}: expected {type_name(hints[key])}, "
                                    f"got {type(value).__name__} {value!r}")
            setattr(obj, key, value)


def _merge_samplers(current: dict, value: Any, dotted: str) -> dict:
    """Sampler sections, merged parameter by parameter: a mapping name -> parameters, or a list of
    ``{name, params}`` entries. A sampler set to ``null`` (``--set samplers.shi-long=null``) is switched off.
    Names and parameters are checked with the rest of the config (:func:`check_config`)."""
    if isinstance(value, list):
        if not all(isinstance(entry, dict) and set(entry) <= {"name", "params"} and "name" in entry
                   for entry in value):
            raise CelbenchError(f"config key {dotted}: expected a list of {{name, params}} entries")
        value = {entry["name"]: entry.get("params") or {} for entry in value}
    if not isinstance(value, dict):
        raise CelbenchError(f"config key {dotted}: expected a mapping of sampler name -> parameters")
    merged = {k: dict(v) for k, v in current.items()}
    for name, params in value.items():
        if params is None:
            merged.pop(name, None)
            continue
        if not isinstance(params, dict):
            raise CelbenchError(f"config key {dotted}.{name}: expected a mapping of parameters")
        merged[name] = {**merged.get(name, {}), **params}
    return merged


def check_config(config: BuildConfig) -> None:
    """Check every pluggable part of ``config`` against its registered class's signature (names, parameters and
    their types; :meth:`dataprep.registry.Registry.check`), the one place a build config's parts are checked.
    :func:`load_config` calls it, and the builder before it deletes or writes anything (a config may be made in
    code)."""
    from dataprep.components import extract_labels
    from dataprep.field import FIELDS
    from dataprep.hints import HINTS
    from dataprep.pairs import SAMPLERS
    from dataprep.shots.detect import ShotParams
    from dataprep.shots.detector import load_detectors
    from dataprep.sketch.extractors import EXTRACTORS

    set_params = {k: v for k, v in config.shots.params.items() if v is not None}  # None: the default (detect_shots)
    load_detectors().check(config.shots.name, set_params, "shots.name", "shots.params",
                           extra=typing.get_type_hints(ShotParams))
    for section, registry in (("sketch", EXTRACTORS), ("field", FIELDS), ("hints", HINTS)):
        part = getattr(config, section)
        registry.check(part.name, part.params, f"{section}.name", f"{section}.params")
    check_params(extract_labels, config.components.params, "components.params", "component extraction",
                 given=("sketch",))
    if not config.samplers:
        raise CelbenchError("config key samplers: at least one sampler is needed")
    for name, params in config.samplers.items():
        factory = SAMPLERS.check(name, params, f"samplers.{name}", f"samplers.{name}")
        if factory.needs != "frames":  # lone targets or stored pairs: nothing a build can mine
            raise CelbenchError(f"config key samplers.{name}: sampler {name!r} is for evaluation only "
                                f"(it needs {factory.needs}); a build mines with samplers that draw "
                                "reference/target pairs from a shot's frames")


def _check(config: BuildConfig) -> None:
    if config.frames.resize not in RESIZE_MODES:
        raise CelbenchError(f"config key frames.resize: expected one of {', '.join(RESIZE_MODES)}, "
                            f"got {config.frames.resize!r}")
    if config.frames.width < 8 or config.frames.height < 8 or config.frames.size < 8:
        raise CelbenchError("config key frames.size/width/height: must be >= 8 pixels")
    crop = config.frames.crop
    if crop is not None and (len(crop) != 4 or crop[2] <= crop[0] or crop[3] <= crop[1] or min(crop) < 0):
        raise CelbenchError("config key frames.crop: expected [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
    if config.split.by not in SPLIT_UNITS:
        raise CelbenchError(f"config key split.by: expected one of {', '.join(SPLIT_UNITS)}, got {config.split.by!r}")
    fractions = (config.split.train, config.split.val, config.split.test)
    if min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise CelbenchError(f"config key split: train + val + test must be 1 with none negative, got {fractions}")
    if config.output.shard_size < 1:
        raise CelbenchError("config key output.shard_size: must be >= 1")
    if not 0 <= config.output.png_compression <= 9:
        raise CelbenchError("config key output.png_compression: must be 0..9")
    if config.run.workers < 1:
        raise CelbenchError("config key run.workers: must be >= 1")
    if config.run.cpus_per_task <= 0 or config.run.memory_per_task_mb < 0:
        raise CelbenchError("config key run.cpus_per_task must be > 0 and run.memory_per_task_mb >= 0")
    if config.run.frames_per_unit < 0:
        raise CelbenchError("config key run.frames_per_unit: must be >= 0")
    check_config(config)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML (.yaml/.yml) or TOML (.toml) config file into a dict."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise file_error(path, f"cannot read config ({error.strerror})") from None
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except Exception as error:  # parse errors of either format
        raise file_error(path, f"invalid config ({str(error).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise file_error(path, "invalid config (top level must be a mapping)")
    return data


def parse_override(text: str) -> dict[str, Any]:
    """``a.b.c=value`` -> ``{"a": {"b": {"c": value}}}``; value parsed as YAML (``1``, ``0.5``, ``[1,5]``, ``x``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise CelbenchError(f"--set {text!r}: expected key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> BuildConfig:
    """Defaults <- file <- ``--set`` overrides, validated."""
    config = BuildConfig()
    if path is not None:
        _merge(config, read_config_file(path), "")
    for text in overrides:
        _merge(config, parse_override(text), "")
    _check(config)
    return config


def config_from_dict(data: dict[str, Any]) -> BuildConfig:
    """A config from a (resolved) dict such as the manifest's ``config``."""
    config = BuildConfig()
    _merge(config, data, "")
    _check(config)
    return config


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(config: BuildConfig) -> str:
    """sha256 (hex) of the canonical JSON of the config without its ``run`` section."""
    data = config.to_dict()
    data.pop("run")
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def default_yaml() -> str:
    """The defaults as YAML (``configs/default.yaml``)."""
    header = ("# celbench dataset build: every default written out (dataprep/config.py is the source;\n"
              "# tests/test_config.py keeps the two equal). Use with --config, override with --set key=value.\n")
    return header + yaml.safe_dump(dataclasses.asdict(BuildConfig()), sort_keys=False, default_flow_style=False)


if __name__ == "__main__":
    print(default_yaml(), end="")
