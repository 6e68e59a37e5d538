"""The build's view of the per-frame stages: one small adapter over the stage modules.

A build's workers call only :class:`StagePipeline`'s methods (made by :func:`make_pipeline`), so the stage modules (video decoding,
shot detection, sketch extraction, distance field, components, hints) can change their signatures with a change
here only. Shapes and dtypes at this boundary:

* frames: (H, W, 3) uint8 sRGB;
* sketch: (H, W) uint8, 0 = line, 255 = paper;
* distance field: (H, W) uint16 (lossless, see :mod:`dataprep.field`);
* label map: (H, W) uint16, 0 = line pixels, 1..N components, with a table of per-component dicts
  (``id, area, centroid, bbox, hu, mean_rgb``; :data:`dataprep.dataset.schemas.COMPONENT`);
* hints: (H, W, 3) uint8 sRGB and (H, W) uint8 mask (255 = hint).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from dataprep.config import BuildConfig, canonical_json
from dataprep.dataset.schemas import COMPONENT
from dataprep.errors import CelbenchError
from dataprep.imaging import short_side_size


#: The stage adapter, as "module:attribute"; tasks carry it to the workers (which may be spawned, not forked),
#: so another adapter (a test stand-in, a GPU pipeline) is chosen by setting this before
#: :func:`dataprep.build.build`.
PIPELINE = "dataprep.build.pipeline:StagePipeline"


def make_pipeline(config: BuildConfig, factory: str | None = None):
    """The stage adapter named by ``factory`` ("module:attribute", default :data:`PIPELINE`) for ``config``."""
    module, _, attribute = (factory or PIPELINE).partition(":")
    return getattr(importlib.import_module(module), attribute)(config)


DEFAULT_FOLDER_FPS = 24.0  # as dataprep.video.source: a folder of images carries no timing


def decode_size(width: int, height: int, out_width: int, out_height: int, mode: str) -> tuple[int, int] | None:
    """The size to decode a ``width`` x ``height`` video at so that :func:`fit_frame` (same ``out_width``,
    ``out_height``, ``mode``) only crops or pads, or under 'short-side' does nothing.

    None when the video is not larger than needed (no upscaling in the decoder; fit_frame enlarges).
    """
    if mode == "short-side":
        size = short_side_size(width, height, min(out_width, out_height))
        return size if size[0] * size[1] < width * height else None
    if mode == "centre-crop":
        scale = max(out_width / width, out_height / height)
        size = (max(out_width, round(width * scale)), max(out_height, round(height * scale)))
    else:
        scale = min(out_width / width, out_height / height)
        size = (min(out_width, max(1, round(width * scale))), min(out_height, max(1, round(height * scale))))
    return size if scale < 1 else None


#: Per-process caches of what every unit of a source would otherwise read again: the stream's sorted packet
#: pts (a demux pass over the whole file) and the decoded frame size. Keyed by (real path, size, mtime), so a
#: rewritten file is read afresh.
_PTS_CACHE: dict[tuple, list[int] | None] = {}
_SIZE_CACHE: dict[tuple, tuple[int, int]] = {}


def _file_key(path: str) -> tuple:
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns


def stream_pts(path: str) -> list[int] | None:
    """Sorted pts of the first video stream's packets (demux only, no decoding); None when unreadable."""
    key = _file_key(path)
    if key not in _PTS_CACHE:
        import av

        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
        except (av.FFmpegError, IndexError, ValueError):
            pts = None
        if len(_PTS_CACHE) > 64:
            _PTS_CACHE.clear()
        _PTS_CACHE[key] = pts
    return _PTS_CACHE[key]


def seek_frames(path: str, crop: tuple[int, int, int, int] | None, size: tuple[int, int] | None, start: int,
                end: int | None, n_frames: int, threads: int = 0) -> Iterator[tuple[int, float, np.ndarray]] | None:
    """Frames ``start <= index < end`` of a container, reached by seeking; None when that is not safe.

    ``dataprep.video.source`` numbers frames by decode count. Here a frame's index is the rank of its pts among all the
    stream's packet pts (a demux pass, :func:`stream_pts`: no decoding, once per process and file), which
    equals the decode count when every packet gives one frame; that is checked (packet count == ``n_frames``,
    pts unique), else None and the caller decodes from the start. After seeking to the keyframe before
    ``start`` the frames must arrive as start, start+1, ...; anything else raises, failing the unit loudly
    rather than mislabelling frames. Images are made as ``open_video`` makes them (decoder-side area scaling
    without crop; crop then ``cv2.INTER_AREA`` with it).
    """
    import av
    import av.video.reformatter

    pts = stream_pts(path)
    if pts is None or len(pts) != n_frames or len(set(pts)) != len(pts) or start >= len(pts):
        return None
    try:
        container = av.open(path)
        stream = container.streams.video[0]
    except (av.FFmpegError, IndexError, ValueError):
        return None
    rank = {p: i for i, p in enumerate(pts)}

    def generate() -> Iterator[tuple[int, float, np.ndarray]]:
        try:
            container.seek(pts[start], stream=stream, backward=True, any_frame=False)
            stream.thread_type = "AUTO"
            stream.thread_count = threads
            expected = None
            # One reformatter for the whole run: frame.to_ndarray(width=..., height=...) builds a new swscale
            # context per frame (measured 3.0 vs 2.0 ms per 1080p frame); the pixels are the same.
            reformatter = av.video.reformatter.VideoReformatter()
            for frame in container.decode(stream):
                index = rank.get(frame.pts)
                if index is None:
                    raise RuntimeError(f"{path}: frame with unknown pts {frame.pts} after seeking")
                if index < start:
                    continue
                if expected is None and index != start or expected is not None and index != expected:
                    raise RuntimeError(f"{path}: seeking to frame {start} gave frame {index} "
                                       f"(expected {start if expected is None else expected})")
                if end is not None and index >= end:
                    break
                if crop is None and size is not None:
                    image = reformatter.reformat(frame, size[0], size[1], "rgb24",
                                                 interpolation="AREA").to_ndarray()
                else:
                    image = frame.to_ndarray(format="rgb24")
                    if crop is not None:
                        image = image[crop[1]:crop[3], crop[0]:crop[2]]
                    if size is not None:
                        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                yield index, float(frame.time), np.ascontiguousarray(image)
                expected = index + 1
        finally:
            container.close()

    return generate()


def _create(registry, key: str, part) -> Any:
    """The component of config section ``key`` (a :class:`dataprep.config.ComponentConfig`, its name and
    parameters checked by :func:`dataprep.config.check_config`); a value its constructor refuses is a one-line
    error naming the config key."""
    try:
        return registry.create(part.name, **part.params)
    except (CelbenchError, TypeError, ValueError) as error:
        raise CelbenchError(f"config key {key}.params: {error}") from None


#: the component table's row keys, the fields of its Parquet struct (``dataprep.dataset.schemas.COMPONENT``)
TABLE_FIELDS = tuple(field.name for field in COMPONENT)


def _equal(first: Any, second: Any) -> bool:
    if isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
        return first.shape == second.shape and first.dtype == second.dtype and np.array_equal(first, second)
    return first is second


class LastFrame:
    """The last inputs and output of one per-frame function, given again while the inputs stay equal.

    Anime holds drawings for two or three video frames, and a held drawing often decodes to exactly the same
    pixels: of the 1,330 consecutive pairs of frames a default build stores from the real clips of
    ``../shared/data/real``, 394 had equal colour frames, 584 equal XDoG sketches and 663 equal line masks
    (``docs/stages.md``). Every per-frame stage is a pure function of its inputs (what makes builds reproducible),
    so for an equal input the last output is the output, bit for bit, and comparing costs microseconds against
    milliseconds of work. Call as ``memo(compute, *inputs)``: ``compute()`` runs unless every input equals the
    previous call's (arrays by shape, dtype and values; anything else by identity). The inputs are kept as
    copies, so a caller changing its array later cannot make a stale match; array outputs are made read-only,
    since the next frame may be handed the same array.
    """

    def __init__(self):
        self.inputs: tuple | None = None
        self.output: Any = None

    def __call__(self, compute, *inputs):
        if self.inputs is not None and len(inputs) == len(self.inputs) and all(
                _equal(kept, given) for kept, given in zip(self.inputs, inputs)):
            return self.output
        output = compute()
        if isinstance(output, np.ndarray):
            output.setflags(write=False)
        self.inputs = tuple(np.array(x) if isinstance(x, np.ndarray) else x for x in inputs)
        self.output = output
        return output


class StagePipeline:
    """Stage components created once per worker from the build config.

    The frame stages (:meth:`sketch`, :meth:`distance_field`, :meth:`components`) hand back their last output when
    a frame repeats their last input (a held drawing; :class:`LastFrame`), so callers must not change the arrays
    they get (they are read-only).
    """

    def __init__(self, config: BuildConfig):
        from dataprep.sketch.extractors import EXTRACTORS
        from dataprep.field import FIELDS
        from dataprep.hints import HINTS

        self.config = config
        # One decoder thread per worker when several workers share the cores (0 = FFmpeg's choice).
        self.decoder_threads = 1 if config.run.workers > 1 else 0
        self.extractor = _create(EXTRACTORS, "sketch", config.sketch)
        self.field = _create(FIELDS, "field", config.field)
        self.hint = _create(HINTS, "hints", config.hints)
        # id(table) -> (table, its MatchArrays); holding the table keeps its id from being reused meanwhile
        self._match_cache: dict[int, tuple[list[dict], Any]] = {}
        self._last_sketch, self._last_field = LastFrame(), LastFrame()
        self._last_labels, self._last_table = LastFrame(), LastFrame()

    def check(self) -> None:
        """Raise :class:`CelbenchError` for a shot detector a worker would fail on: it is created once here, so
        its constructor's own checks (a threshold > 0) run before the builder deletes or writes anything. (Names,
        parameters and their types are checked by :func:`dataprep.config.check_config`; the other stages are
        created by ``__init__``.)"""
        from dataprep.shots.detector import DETECTORS
        from dataprep.shots.detect import _split_params

        try:
            DETECTORS.create(self.config.shots.name, **_split_params(self.config.shots.params)[1])
        except (CelbenchError, TypeError, ValueError) as error:
            raise CelbenchError(f"config key shots.params: {error}") from None

    # --- sources -------------------------------------------------------------------------------------
    def _crop(self) -> tuple[int, int, int, int] | None:
        return tuple(self.config.frames.crop) if self.config.frames.crop else None  # type: ignore[return-value]

    def detect(self, path: str) -> dict[str, Any]:
        """Shot detection (:func:`dataprep.shots.detect.detect_shots`) as JSON: ``n_frames, fps, shots: [{start, end,
        kept, reason}], held_groups: [[start, end], ...], dropped_frames: [{frame, reason}], error``.

        A folder of mixed image sizes is detected on copies padded to the stored resolution (see there).
        """
        from dataprep.shots.detect import detect_shots
        from dataprep.video.line_art import LineArtFolder, is_line_art_folder

        if is_line_art_folder(path):
            # An artist's line-art folder is one cut by construction, and each file is a drawing of its own.
            n = len(LineArtFolder(path))
            return {"input": path, "n_frames": n, "fps": DEFAULT_FOLDER_FPS, "detector": "line-art folder",
                    "params": {}, "cuts": [], "shots": [{"start": 0, "end": n, "kept": True, "reason": None}],
                    "held_groups": [[i, i + 1] for i in range(n)], "dropped_frames": [], "error": None}
        result = detect_shots(path, detector=self.config.shots.name, crop=self._crop(),
                              folder_size=self.config.frames.box(),
                              **self.config.shots.params).to_json()
        return json.loads(json.dumps(result))

    def frames(self, path: str, start: int = 0, end: int | None = None,
               n_frames: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, timestamp seconds, image) for source frames ``start <= index < end``.

        With ``n_frames`` (the decoded frame count from shot detection) a container is entered by seeking
        (:func:`seek_frames`) instead of decoding every frame before ``start``, so the units of one long video
        cost no more decoding together than the video itself.

        Containers and GIFs stream through :func:`dataprep.video.source.open_video`, shrunk by the decoder's scaler to
        just cover the stored resolution (much cheaper than full-size RGB). Folders are read here, image by
        image with their own size and channels (grey, RGB, RGBA), in ``open_video``'s numeric order, so a
        folder of mixed frames works; :func:`dataprep.imaging.to_rgb` and ``fit_frame`` normalise them.
        A line-art folder (:mod:`dataprep.video.line_art`) yields
        :class:`~dataprep.video.line_art.GivenLineArt` drawings instead of images (no crop); :meth:`fit` takes both.
        """
        from dataprep.video.line_art import LineArtFolder, is_line_art_folder
        from dataprep.video.source import folder_images, open_video

        crop = self._crop()
        if is_line_art_folder(path):
            for index, drawing in LineArtFolder(path).drawings(start, end):
                yield index, index / DEFAULT_FOLDER_FPS, drawing
            return
        if Path(path).is_dir():
            for index, image in folder_images(path, crop, start, end):
                yield index, index / DEFAULT_FOLDER_FPS, image
            return
        width, height = self._source_size(path)
        size = decode_size(width, height, *self.config.frames.box(), self.config.frames.resize)
        if start > 0 and n_frames:
            seeking = seek_frames(path, crop, size, start, end, n_frames, threads=self.decoder_threads)
            if seeking is not None:
                yield from seeking
                return
        for index, timestamp, image in open_video(path, crop=crop, size=size, threads=self.decoder_threads):
            if index < start:
                continue
            if end is not None and index >= end:
                break
            yield index, float(timestamp), image

    def _source_size(self, path: str) -> tuple[int, int]:
        """(width, height) of a container's frames after the crop (decodes the first frame once per process)."""
        from dataprep.video.source import open_video

        key = (_file_key(path), self._crop())
        if key not in _SIZE_CACHE:
            probe = open_video(path, crop=self._crop())
            if len(_SIZE_CACHE) > 64:
                _SIZE_CACHE.clear()
            _SIZE_CACHE[key] = (probe.width, probe.height)
        return _SIZE_CACHE[key]

    def prepare(self, path: str) -> None:
        """Read what every unit of ``path`` needs once (frame size, packet pts) into this process's caches; the
        builder calls it on workers that would otherwise wait while shots are detected."""
        import dataprep.components  # noqa: F401  (its imports: scipy, scikit-image, 0.3 s)

        if not Path(path).is_dir():
            self._source_size(path)
            stream_pts(path)

    # --- per frame -----------------------------------------------------------------------------------
    def fit(self, image) -> tuple[np.ndarray, Any]:
        """A decoded frame at the stored resolution: ``(rgb, given)``, ``given`` the fitted
        :class:`~dataprep.video.line_art.GivenLineArt` when the source gave the line art, else None."""
        from dataprep.imaging import fit_frame, to_rgb
        from dataprep.video.line_art import GivenLineArt

        frames = self.config.frames
        if isinstance(image, GivenLineArt):
            given = image.fitted(*frames.box(), frames.resize)
            return given.colour, given
        return fit_frame(to_rgb(image), *frames.box(), frames.resize), None

    def sketch(self, rgb: np.ndarray) -> np.ndarray:
        return self._last_sketch(lambda: np.array(self.extractor(rgb), dtype=np.uint8), rgb)

    def distance_field(self, sketch: np.ndarray) -> np.ndarray:
        return self._last_field(lambda: np.array(self.field.encoded(sketch)), sketch)

    def components(self, sketch: np.ndarray, rgb: np.ndarray,
                   labels: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
        """Label map and component table of ``sketch``; ``labels``, a region map the source gave, is used as it
        is instead of extracting one."""
        from dataprep.components import LINE_THRESHOLD, component_columns, extract_labels, line_mask

        if labels is None:
            params = self.config.components.params
            # the labels depend on the sketch only through its line mask (which held drawings repeat more often)
            mask = line_mask(sketch, params.get("line_threshold", LINE_THRESHOLD))
            labels = self._last_labels(lambda: np.array(extract_labels(sketch, **params), dtype=np.uint16), mask)
        labels = np.asarray(labels, dtype=np.uint16)

        def table() -> list[dict]:
            # Columns of plain Python values straight into row dicts (no Component objects in between).
            columns = component_columns(labels, rgb)
            return [dict(zip(TABLE_FIELDS, values)) for values in zip(*(columns[k] for k in TABLE_FIELDS))]

        return labels, self._last_table(table, labels, rgb)

    # --- per pair ------------------------------------------------------------------------------------
    def correspondences(self, reference: tuple[np.ndarray, list[dict]],
                        target: tuple[np.ndarray, list[dict]]) -> list[tuple[int, int]]:
        from dataprep.components import match_arrays

        shape = reference[0].shape[:2]
        return [(int(a), int(b)) for a, b in match_arrays(self._match_arrays(reference[1]),
                                                          self._match_arrays(target[1]), shape)]

    def _match_arrays(self, table: list[dict]):
        """A frame's table as :class:`dataprep.components.MatchArrays`, converted once for the many pairs it is
        in (see ``_match_cache``)."""
        from dataprep.components import MatchArrays

        cache = self._match_cache
        hit = cache.get(id(table))
        if hit is not None and hit[0] is table:
            return hit[1]
        arrays = MatchArrays.of(table)
        if len(cache) >= 256:
            cache.pop(next(iter(cache)))
        cache[id(table)] = (table, arrays)
        return arrays

    def hints(self, rgb: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        hints = self.hint(rgb, seed)
        return np.asarray(hints.image, dtype=np.uint8), np.asarray(hints.mask, dtype=np.uint8)

    @staticmethod
    def describe_given(given) -> dict[str, str]:
        """What :meth:`describe` says of the extractor, for a drawing whose line art was given."""
        return {"extractor": "given", "extractor_params": canonical_json(
            {"regions": "read" if given.labels is not None else "extracted"})}

    def describe(self) -> dict[str, str]:
        """Names and canonical-JSON parameters recorded with every row."""
        # The components' own params (defaults resolved), so rows say exactly what made them.
        return {
            "extractor": self.config.sketch.name,
            "extractor_params": canonical_json(self.extractor.params),
            "field": self.config.field.name,
            "hint_method": canonical_json({"name": self.config.hints.name, **self.hint.params}),
        }
