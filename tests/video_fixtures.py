"""Tiny hand-built test videos (PyAV) with known content: flat colour frames, cuts, flashes, VFR timing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], fps: int = 24, codec: str = "ffv1",
                pts: list[int] | None = None, options: dict | None = None, gop: int | None = None,
                pix_fmt: str | None = None) -> Path:
    """Encode (H, W, 3) uint8 RGB ``frames``; ffv1 (bgr0) in .mkv is lossless, so decoded pixels equal the input.

    ``options`` go to the encoder, ``gop`` is its keyframe interval, ``pix_fmt`` overrides bgr0 / yuv420p.
    """
    h, w = frames[0].shape[:2] if frames else (48, 64)
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=fps, options=options or {})
    stream.width, stream.height = w, h
    stream.pix_fmt = pix_fmt or ("bgr0" if codec == "ffv1" else "yuv420p")  # bgr0: lossless RGB
    stream.time_base = Fraction(1, fps)
    if gop is not None:
        stream.codec_context.gop_size = gop
    if not frames:
        container.start_encoding()  # write the header of a stream that never gets a frame
    for i, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = pts[i] if pts is not None else i
        frame.time_base = Fraction(1, fps)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def coded_frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Frames whose pixel (0, 0) red value encodes the frame index (i * 7 mod 256); a moving bar adds structure."""
    frames = []
    for i in range(n):
        image = np.full((h, w, 3), 60, np.uint8)
        image[..., 0] = (i * 7) % 256
        image[:, 8 + (i * 3) % (w - 8)] = 255
        frames.append(image)
    return frames
