"""Video sources: decoded frames of a container, an animated GIF or a folder of numbered images.

``open_video(path, crop=None, size=None)`` is the one entry point the pipeline uses. It checks the input
eagerly (the first frame is decoded at open time, unless ``check=False``), so a missing file, a non-video
file, a zero-frame video, an unreadable GIF or a crop box outside the frame fail at once with one line naming
the file.

Iterating a :class:`VideoSource` streams :class:`Frame` tuples ``(index, time, image)``:

- ``index``: 0-based count of *decoded* frames. Variable-frame-rate input does not shift indices, and no
  frame-rate conversion happens (the convention of the real data's ``*.cuts.json``).
- ``time``: presentation time in seconds from the container's pts (``index / fps`` where a frame has no
  pts, and for image folders).
- ``image``: (H, W, 3) uint8 RGB, after the crop then the optional downscale to ``size``.

Iterating holds one decoded frame at a time. :meth:`VideoSource.map` gives the same frames with a per-frame
function applied, decoding independent keyframe segments on several threads where the codec allows
(:mod:`dataprep.video.segments`; a bounded number of frames in flight). A file that is corrupt or truncated
half-way yields the frames that decoded, then stops and records the problem in ``source.error`` (one line);
callers must check it, so nothing is silently dropped.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, TypeVar

import cv2
import numpy as np

from dataprep.errors import CelbenchError, file_error
from dataprep.imaging import read_image

#: Container extensions read with PyAV (anything else that FFmpeg can open works too).
CONTAINER_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".ts")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Frame rate assumed for a folder of images (they carry no timing).
DEFAULT_FOLDER_FPS = 24.0

Crop = tuple[int, int, int, int]
Size = tuple[int, int]
T = TypeVar("T")


class Frame(NamedTuple):
    """One decoded frame: ``index`` (0-based decode order), ``time`` (seconds), ``image`` (H, W, 3) uint8 RGB."""

    index: int
    time: float
    image: np.ndarray


class VideoSource(ABC):
    """A re-iterable stream of :class:`Frame`.

    Attributes:
        path: the input path as given.
        fps: average frame rate (frames per second) reported by the container.
        n_frames: frame count from the container header, or None when the header has none.
        width, height: size of the yielded images (after crop and downscale).
        error: None, or a one-line description of why decoding stopped early (set after iteration).
    """

    def __init__(self, path: str | os.PathLike, crop: Crop | None, size: Size | None,
                 max_width: int | None = None):
        self.path = os.fspath(path)
        self.max_width = max_width
        self.crop = tuple(int(v) for v in crop) if crop is not None else None
        self.size = (int(size[0]), int(size[1])) if size is not None else None
        if self.size is not None and (self.size[0] < 1 or self.size[1] < 1):
            raise file_error(self.path, f"output size {self.size[0]}x{self.size[1]} must be positive")
        self.error: str | None = None
        self.fps: float = 0.0
        self.n_frames: int | None = None
        self.source_width = self.source_height = 0
        self._first: Iterator[Frame] | None = None

    @abstractmethod
    def _decode(self) -> Iterator[Frame]:
        """Yield decoded frames; on a mid-stream failure set ``self.error`` and return."""

    def _open_checked(self, keep: bool = True) -> None:
        """Decode the first frame now so bad input fails at open time; ``keep`` it for the first iteration."""
        frames = self._decode()
        first = next(frames, None)
        if first is None:
            raise file_error(self.path, self.error or "no frames (zero-frame video)")
        if not keep:
            frames.close()
        self.source_height, self.source_width = first.image.shape[:2]
        if self.crop is not None:
            self._check_crop()
        if self.size is None and self.max_width:
            self.size = self._max_width_size(self.source_width, self.source_height)
        out = self._finish(first.image)
        self.height, self.width = out.shape[:2]
        if not keep:
            return

        def chain() -> Iterator[Frame]:
            yield first
            yield from frames

        self._first = chain()

    def _max_width_size(self, width: int, height: int) -> Size | None:
        if self.crop is not None:
            x0, y0, x1, y1 = self.crop
            width, height = x1 - x0, y1 - y0
        if width < 1 or height < 1:
            return None
        size = scaled_size(width, height, self.max_width)
        return None if size == (width, height) else size

    def _check_crop(self) -> None:
        x0, y0, x1, y1 = self.crop
        w, h = self.source_width, self.source_height
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise file_error(self.path, f"crop box {x0},{y0},{x1},{y1} is outside the {w}x{h} frame "
                             f"(need 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h})")

    def _finish(self, image: np.ndarray) -> np.ndarray:
        if self.crop is not None:
            x0, y0, x1, y1 = self.crop
            image = image[y0:y1, x0:x1]
        if self.size is not None and (image.shape[1], image.shape[0]) != self.size:
            # INTER_AREA averages source pixels: the right filter for shrinking, no aliasing.
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image)

    def __iter__(self) -> Iterator[Frame]:
        if self._first is not None:
            frames, self._first = self._first, None
        else:
            self.error = None
            frames = self._decode()
        for frame in frames:
            yield Frame(frame.index, frame.time, self._finish(frame.image))

    def map(self, fn: Callable[[np.ndarray], T], workers: int = 1) -> Iterator[tuple[int, float, T]]:
        """``(index, time, fn(image))`` for every frame, in order: what iterating gives, with ``fn`` applied.

        ``fn`` may run on up to ``workers`` threads at once (sources that can decode in parallel do:
        :class:`ContainerSource`), so it must be a pure function of the frame; it should be where the per-frame
        work is, since it runs beside the decoder. Indices, times and ``error`` are those of a sequential decode.
        """
        for frame in self:
            yield frame.index, frame.time, fn(frame.image)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path!r}, {self.width}x{self.height}, fps={self.fps:.3f}, "
                f"n_frames={self.n_frames})")


class ContainerSource(VideoSource):
    """Video files (mp4, mkv, webm, avi, mov, ...) and animated GIFs, decoded with PyAV (FFmpeg).

    Iterating decodes with FFmpeg's frame/slice threads (``threads``); :meth:`map` with several workers decodes
    keyframe segments side by side instead. Without a crop, the downscale to ``size`` happens in FFmpeg's swscale
    during the colour conversion (``VideoFrame.reformat``), so full-resolution RGB frames are never built; with a
    crop the full frame is converted, cropped, then resized.
    """

    def __init__(self, path, crop=None, size=None, threads: int = 0, max_width: int | None = None,
                 sampling: str = "area", check: bool = True):
        super().__init__(path, crop, size, max_width)
        if sampling not in SAMPLINGS:
            raise CelbenchError(f"unknown sampling {sampling!r} (choose from {', '.join(SAMPLINGS)})")
        self.threads = threads
        self._handover = None
        self.sampling = sampling
        import av
        import av.video.reformatter

        self._av = av
        self.is_gif = Path(self.path).suffix.lower() == ".gif" or _has_gif_magic(self.path)
        container = self._open_container()
        keep_open = False
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.fps = float(rate) if rate else 0.0
            self.n_frames = int(stream.frames) if stream.frames else None
            self._duration = (float(stream.duration * stream.time_base)
                              if stream.duration and stream.time_base else
                              (container.duration / 1e6 if container.duration else None))
            self._stride = 0
            if self.size is None and self.max_width and stream.width and stream.height:
                # known before decoding, so every frame (the first too) is shrunk by the same filter
                self.size = self._max_width_size(stream.width, stream.height)
                if self.size is not None and sampling == "stride" and self.crop is None:
                    # "at most max_width": the stride sample itself is the frame, no resize afterwards
                    self._stride = -(-stream.width // self.max_width)
                    self.size = stride_sampled_size(stream.width, stream.height, self._stride)
            elif self.size is not None and sampling == "stride" and self.crop is None:
                self._stride = max(1, min(stream.width // self.size[0], stream.height // self.size[1]))
            if self.fps <= 0:
                self.fps = 24.0 if not self.is_gif else 10.0
            if check or not (stream.width and stream.height):
                # The check decodes the first frame from this container, on one thread: FFmpeg's thread pool
                # (and frame threading's delay of several packets) is not worth it for one frame. Every iteration
                # then decodes afresh, with the decoder threads asked for; the checked frame is not kept.
                stream.thread_count = 1
                self._handover = (container, stream)
                self._open_checked(keep=False)
            else:
                # The header's frame size stands for the first frame's; this container is the first decode's.
                self.source_width, self.source_height = stream.width, stream.height
                if self.crop is not None:
                    self._check_crop()
                self.width, self.height = self.size or (
                    (self.crop[2] - self.crop[0], self.crop[3] - self.crop[1]) if self.crop else
                    (self.source_width, self.source_height))
                self._handover = self._configure(container, stream)
                keep_open = True
        finally:
            if not keep_open:
                self._handover = None
                container.close()

    def _problem(self, error: Exception, started: bool = False) -> str:
        text = str(getattr(error, "strerror", None) or error).strip().splitlines()[0] if str(error) else type(error).__name__
        text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
        if self.is_gif:
            return f"unreadable GIF ({text})"
        return f"corrupt data ({text})" if started else f"not a video file or corrupt ({text})"

    def _open_container(self):
        av = self._av
        try:
            container = av.open(self.path, metadata_errors="ignore")
        except av.error.EOFError:
            raise file_error(self.path, "no frames (zero-frame video, or cut off inside its header)") from None
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
            raise file_error(self.path, self._problem(error)) from None
        if not container.streams.video:
            container.close()
            kind = "unreadable GIF (no image stream)" if self.is_gif else "not a video file (no video stream)"
            raise file_error(self.path, kind)
        if getattr(container.streams.video[0], "codec_context", None) is None:  # a codec id FFmpeg cannot decode
            container.close()
            raise file_error(self.path, "not a video file or corrupt (no decoder for its video stream)")
        return container

    def _open_stream(self):
        """``(container, video stream)`` opened afresh (at open time: the header's container), the decoder set up
        for :attr:`sampling`."""
        if self._handover is not None:
            container, stream = self._handover
            self._handover = None
            return container, stream
        container = self._open_container()
        return self._configure(container, container.streams.video[0])

    def _configure(self, container, stream):
        stream.thread_type = "AUTO"
        stream.thread_count = self.threads
        if self.sampling == "stride":
            stream.codec_context.options = dict(ANALYSIS_DECODER_OPTIONS)
        return container, stream

    def _frame_converter(self, finish: bool = True) -> Callable[[object], np.ndarray]:
        """``convert(av_frame) -> image`` as iterating yields it: stride sample or swscale, then (``finish``) the
        crop and resize of :meth:`_finish`.

        Each call makes a converter of its own, so threads decoding in parallel do not share one.
        """
        # swscale can shrink while converting when there is no crop: far cheaper than full-size RGB.
        direct = self.crop is None and self.size is not None
        width, height = self.size if direct else (None, None)
        # One reformatter for the whole stream: PyAV's frame.reformat() rebuilds the swscale context on
        # every call, which costs more than decoding (measured 3x slower on a 640x480 clip).
        reformatter = self._av.video.reformatter.VideoReformatter()
        stride = self._stride if direct and self._stride > 1 else 0
        finish = self._finish if finish else (lambda image: image)

        def convert(av_frame) -> np.ndarray:
            if stride and av_frame.format.name in _I420_FORMATS:
                return finish(stride_sample_i420(av_frame, stride))
            return finish(reformatter.reformat(av_frame, width, height, "rgb24", interpolation="AREA").to_ndarray())

        return convert

    def _decode(self) -> Iterator[Frame]:
        for index, time, image in self._decode_converted(self._frame_converter(finish=False)):
            yield Frame(index, time, image)

    def _decode_converted(self, convert: Callable[[object], T], skip: int = 0,
                          opened: tuple | None = None) -> Iterator[tuple[int, float, T]]:
        """Sequential decode: ``(index, time, convert(av_frame))``; frames before index ``skip`` are not converted.

        ``opened``: a ``(container, stream)`` from :meth:`_open_stream` not read yet (else one is opened here).
        """
        av = self._av
        container, stream = opened or self._open_stream()
        index = 0
        last_time = None
        try:
            try:
                for av_frame in container.decode(stream):
                    time = float(av_frame.time) if av_frame.time is not None else index / self.fps
                    if index >= skip:
                        yield index, time, convert(av_frame)
                    index += 1
                    last_time = time
            except av.error.EOFError:
                pass  # the demuxer met the end of data while decoding: same as a normal end
            except (av.FFmpegError, ValueError, MemoryError) as error:
                self._stopped_by(error, index)
                return
            self.error = self._truncation_problem(index, last_time)
        finally:
            container.close()

    def _stopped_by(self, error: Exception, index: int) -> None:
        problem = self._problem(error, started=index > 0)
        self.error = f"decoding stopped after {index} frames: {problem}" if index else problem

    def map(self, fn: Callable[[np.ndarray], T], workers: int = 1) -> Iterator[tuple[int, float, T]]:
        """See :meth:`VideoSource.map`. With ``workers`` >= 2 and a codec whose keyframes are independent
        (H.264/HEVC IDR, VP8/VP9, intra-only codecs), segments between keyframes are decoded side by side, each on
        a single-threaded decoder, and ``fn`` runs on those threads (:mod:`dataprep.video.segments`); otherwise
        this is a sequential decode. Should a segment not decode as it would sequentially (checked frame by
        frame), the rest of the video is decoded sequentially; nothing is yielded twice or skipped.
        """
        from dataprep.video.segments import DecodeError, Mismatch, parallel_map

        self.error = None
        convert = self._frame_converter
        opened = self._open_stream()
        segments = None
        if workers >= 2:
            segments = parallel_map(*opened, self._open_stream, lambda: _composed(fn, convert()), workers)
        if segments is None:  # one container either way: a stream that cannot be split is decoded from it
            yield from self._decode_converted(_composed(fn, convert()), opened=opened)
            return
        index = 0
        last_time = None
        for item in segments:
            if isinstance(item, Mismatch):
                yield from self._decode_converted(_composed(fn, convert()), skip=index)
                return
            if isinstance(item, DecodeError):
                self._stopped_by(item.error, index)
                return
            time, value = item
            time = time if time is not None else index / self.fps
            yield index, time, value
            index += 1
            last_time = time
        self.error = self._truncation_problem(index, last_time)

    def _truncation_problem(self, decoded: int, last_time: float | None) -> str | None:
        """FFmpeg ends quietly at a cut-off file; compare with what the header promised."""
        if decoded == 0:
            return "no frames (zero-frame video)"
        if self.n_frames is not None and decoded < self.n_frames:
            return f"decoded only {decoded} of {self.n_frames} frames (file truncated or corrupt)"
        if self.n_frames is None and self._duration and last_time is not None and self.fps > 0:
            # Container without a frame count (mkv, webm): the header's duration is the promise.
            missing = self._duration - (last_time + 1.0 / self.fps)
            if missing > 2.0 / self.fps + 0.05:
                return (f"stream ends at {last_time:.3f} s but the header says {self._duration:.3f} s "
                        f"(file truncated or corrupt)")
        return None


#: Decoder output formats :func:`stride_sample_i420` reads directly (planar 4:2:0, limited or full range).
_I420_FORMATS = {"yuv420p", "yuvj420p"}
#: How a container source shrinks frames: ``area`` averages (swscale AREA; for pixels that are kept),
#: ``stride`` samples every n-th pixel of the decoded planes (for analysis such as histograms only) and
#: decodes with :data:`ANALYSIS_DECODER_OPTIONS`.
SAMPLINGS = ("area", "stride")
#: FFmpeg decoder options of the analysis decode (``sampling="stride"``): skip the in-loop deblocking filter
#: and allow non-bit-exact shortcuts. Every frame is still decoded (no frame is skipped, so per-frame tests
#: such as the flash guard see them all); the pictures only differ from an exact decode by faint block edges,
#: which do not move a colour histogram (docs/shots.md). H.264 decodes about 25% faster. Never used for
#: frames whose pixels are stored.
ANALYSIS_DECODER_OPTIONS = {"skip_loop_filter": "all", "flags2": "+fast"}


def stride_sample_i420(frame, stride: int) -> np.ndarray:
    """Every ``stride``-th pixel of a decoded 4:2:0 frame as (h, w, 3) uint8 RGB, without swscale.

    The planes are read in place from the decoder's buffers and only the sampled pixels are converted
    (BT.601), so the cost does not grow with the source resolution the way a full conversion does.
    Sampling keeps the original pixel values (a random-like sample of the frame's colours), which is what
    a colour histogram needs; it aliases edges, so it is never used for pixels that are stored.
    """
    planes = frame.planes
    y = np.frombuffer(planes[0], np.uint8).reshape(-1, planes[0].line_size)
    u = np.frombuffer(planes[1], np.uint8).reshape(-1, planes[1].line_size)
    v = np.frombuffer(planes[2], np.uint8).reshape(-1, planes[2].line_size)
    width, height = stride_sampled_size(frame.width, frame.height, stride)
    ch, cw = height // 2, width // 2
    i420 = np.empty((ch * 3, cw * 2), np.uint8)
    i420[: 2 * ch] = y[: 2 * ch * stride : stride, : 2 * cw * stride : stride]
    i420[2 * ch : 2 * ch + ch // 2] = u[: ch * stride : stride, : cw * stride : stride].reshape(ch // 2, 2 * cw)
    i420[2 * ch + ch // 2 :] = v[: ch * stride : stride, : cw * stride : stride].reshape(ch // 2, 2 * cw)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


def stride_sampled_size(width: int, height: int, stride: int) -> Size:
    """(width, height) of :func:`stride_sample_i420` output: both even, the chroma height even too."""
    return (width // 2 // stride) * 2, ((height // 2 // stride) // 2 * 2) * 2


class ImageFolderSource(VideoSource):
    """A folder of numbered images (``0.png, 1.png, ..., 10.png`` sort numerically, not as strings).

    Images are read with OpenCV; every image must have the size of the first. ``fps`` is not stored in
    a folder, so it is a parameter (default :data:`DEFAULT_FOLDER_FPS`).
    """

    def __init__(self, path, crop=None, size=None, fps: float = DEFAULT_FOLDER_FPS, max_width: int | None = None):
        super().__init__(path, crop, size, max_width)
        self.files = sorted((p for p in Path(self.path).iterdir()
                             if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()), key=_natural_key)
        if not self.files:
            raise file_error(self.path, f"folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.fps = float(fps)
        self.n_frames = len(self.files)
        self._open_checked()

    def _decode(self) -> Iterator[Frame]:
        shape = None
        for index, file in enumerate(self.files):
            image = read_image(file, cv2.IMREAD_COLOR)
            if image is None:
                self.error = f"decoding stopped after {index} frames: {file.name}: unreadable image"
                return
            if shape is not None and image.shape != shape:
                self.error = (f"decoding stopped after {index} frames: {file.name} is "
                              f"{image.shape[1]}x{image.shape[0]}, earlier images {shape[1]}x{shape[0]}")
                return
            shape = image.shape
            yield Frame(index, index / self.fps, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def folder_images(path: str | os.PathLike, crop: Crop | None = None, start: int = 0,
                  end: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(index, image) of a frame folder's images ``start <= index < end`` in :class:`ImageFolderSource`'s order,
    each with its own size and channels: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or uint16, cut to
    ``crop``. Unlike the folder source, images may differ in size; an unreadable one is a CelbenchError."""
    for index, file in enumerate(ImageFolderSource(path).files):
        if index < start:
            continue
        if end is not None and index >= end:
            break
        image = read_image(file)
        if image is None:
            raise file_error(file, "unreadable image")
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        if crop is not None:
            image = image[crop[1]:crop[3], crop[0]:crop[2]]
        yield index, image


def _natural_key(path: Path) -> tuple:
    parts = re.split(r"(\d+)", path.stem)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts) + (path.suffix,)


def _has_gif_magic(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(6) in (b"GIF87a", b"GIF89a")
    except OSError:
        return False


def parse_crop(text: str) -> Crop:
    """Parse ``"x0,y0,x1,y1"`` (pixels, x1/y1 exclusive) into a tuple of ints."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise CelbenchError(f"crop {text!r} must be four integers x0,y0,x1,y1")
    return values  # type: ignore[return-value]


def open_video(path: str | os.PathLike, crop: Crop | None = None, size: Size | None = None,
               fps: float | None = None, threads: int = 0, max_width: int | None = None,
               sampling: str = "area", check: bool = True) -> VideoSource:
    """Open a video file, animated GIF or folder of numbered images.

    Args:
        path: file or folder.
        crop: optional box ``(x0, y0, x1, y1)`` in source pixels, x1/y1 exclusive, applied before ``size``.
        size: optional output ``(width, height)``; frames are shrunk with area averaging.
        fps: frame rate for an image folder (ignored for files, which carry their own).
        threads: decoder threads for containers (0 = FFmpeg's choice).
        max_width: instead of ``size``: shrink (after the crop) to at most this width, aspect kept,
            dimensions even (see :func:`scaled_size`).
        sampling: how containers shrink frames without a crop (see :data:`SAMPLINGS`): ``"area"`` for frames
            whose pixels are kept, ``"stride"`` for analysis only (shot detection): several times cheaper, and
            decoded with :data:`ANALYSIS_DECODER_OPTIONS` (with or without a crop).
        check: decode a container's first frame now, so that a file whose frames do not decode fails here.
            With False only the header is read (missing, empty, non-video, zero-stream and bad-crop inputs
            still fail here); a caller that reads the frames once anyway saves a decode, and must itself
            treat "no frame decoded" (``error`` set, nothing yielded) as unusable input.

    Raises:
        CelbenchError: one line naming the file: missing, not a video, zero frames, unreadable GIF,
            crop box outside the frame.
    """
    p = Path(path)
    if not p.exists():
        raise file_error(path, "no such file or folder")
    if p.is_dir():
        return ImageFolderSource(path, crop, size, fps=fps or DEFAULT_FOLDER_FPS, max_width=max_width)
    if p.stat().st_size == 0:
        raise file_error(path, "empty file (not a video)")
    return ContainerSource(path, crop, size, threads=threads, max_width=max_width, sampling=sampling, check=check)


def decode_workers() -> int:
    """Default number of decoding threads: the cores this process may use (at most 8)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def scaled_size(width: int, height: int, max_width: int | None) -> Size:
    """``(width, height)`` shrunk so the width is at most ``max_width``, aspect kept, both even and >= 2."""
    if not max_width or width <= max_width:
        return width, height
    new_h = max(2, int(round(height * max_width / width / 2)) * 2)
    return max_width, new_h


__all__ = ["Frame", "VideoSource", "ContainerSource", "ImageFolderSource", "open_video", "parse_crop",
           "scaled_size", "decode_workers"]


def _composed(fn: Callable[[np.ndarray], T], convert: Callable[[object], np.ndarray]) -> Callable[[object], T]:
    return lambda av_frame: fn(convert(av_frame))
