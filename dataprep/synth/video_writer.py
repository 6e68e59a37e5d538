"""Encode RGB frames to a video file with PyAV (H.264 via libx264 by default)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dataprep.errors import file_error

#: codec name -> (PyAV encoder, container extension, pixel format, encoder options)
CODECS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "h264": ("libx264", "mp4", "yuv420p", {"crf": "16", "preset": "veryfast"}),
    "mpeg4": ("mpeg4", "mp4", "yuv420p", {"qscale": "2"}),
    "mjpeg": ("mjpeg", "avi", "yuvj420p", {"q": "2"}),
    "ffv1": ("ffv1", "mkv", "yuv444p", {}),
}


class VideoWriter:
    """Context manager writing (H, W, 3) uint8 RGB frames with constant frame rate ``fps``.

    Frame ``i`` gets presentation timestamp ``i / fps`` exactly, so decoders return the frames in
    order with the same indices.
    """

    def __init__(self, path: str | Path, codec: str, width: int, height: int, fps: Fraction):
        encoder, _, pix_fmt, options = CODECS[codec]
        self.path = Path(path)
        try:
            self._container = av.open(str(self.path), mode="w")
            self._stream = self._container.add_stream(encoder, rate=fps)
        except (av.FFmpegError, ValueError) as error:
            raise file_error(self.path, f"cannot open encoder {encoder!r} ({error})") from None
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = pix_fmt
        self._stream.options = dict(options)
        self._time_base = 1 / fps
        self._index = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._index
        frame.time_base = self._time_base
        self._index += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()
