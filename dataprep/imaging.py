"""Image helpers of the dataset builder: channel normalisation, resizing modes, PNG bytes.

All functions take and return numpy arrays; colour images are (H, W, 3) uint8 sRGB in RGB order (OpenCV's BGR is
converted at the PNG boundary only).
"""

from __future__ import annotations

import os
import zlib

import cv2
import numpy as np

from dataprep.errors import CelbenchError


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any decoded frame -> (H, W, 3) uint8 RGB.

    Grey (H, W) or (H, W, 1) is replicated; RGBA is composited over white (anime cels with transparent
    background are drawn on paper); 16-bit input is scaled to 8 bits.
    """
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise CelbenchError(f"unsupported frame dtype {array.dtype}")
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        over_white = array[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(over_white + 0.5, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    raise CelbenchError(f"unsupported frame shape {array.shape}")


#: Under ``frames.resize=short-side`` the long side of a stored frame is rounded to a multiple of this, so a
#: network that halves the resolution three times (most U-Nets here) takes a whole stored frame without padding;
#: the aspect ratio moves by at most 4 px over the long side (456 instead of 455.1 for 16:9 at 256: 0.2%).
SIZE_MULTIPLE = 8


def short_side_size(width: int, height: int, short_side: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """(width, height) of a ``width`` x ``height`` frame scaled so its shorter side is ``short_side``, the longer
    side scaled by the same factor and rounded to the nearest multiple of ``multiple`` (never below
    ``short_side``). A square frame gives ``short_side`` x ``short_side``; 1920x1080 at 256 gives 456x256."""
    if width <= 0 or height <= 0:
        raise CelbenchError(f"frame size {width}x{height}: must be positive")
    short, long_ = min(width, height), max(width, height)
    if long_ == short:
        return short_side, short_side
    long_side = max(short_side, multiple * round(long_ * short_side / short / multiple))
    return (long_side, short_side) if width > height else (short_side, long_side)


def resize_image(image: np.ndarray, width: int, height: int, labels: bool = False) -> np.ndarray:
    """``image`` resized to exactly ``width`` x ``height``: area interpolation when shrinking (no aliasing of thin
    lines), bilinear when enlarging, nearest neighbour for ``labels`` (region ids are not quantities). Any dtype
    OpenCV resizes ((H, W) or (H, W, C)); returned unchanged when the size already matches."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if labels:
        interpolation = cv2.INTER_NEAREST
    else:
        interpolation = cv2.INTER_AREA if width * height < w * h else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def fit_frame(rgb: np.ndarray, width: int, height: int, mode: str, interpolation: int | None = None,
              fill: int = 255) -> np.ndarray:
    """Resize an RGB frame to the stored resolution.

    Args:
        rgb: (H, W, 3) uint8 (or any (H, W[, C]) array OpenCV resizes, with ``interpolation``).
        width, height: the target box; under 'short-side' ``min(width, height)`` is the shorter side.
        mode: 'short-side' (the whole frame, aspect kept, shorter side = ``min(width, height)``, longer side
            rounded to :data:`SIZE_MULTIPLE`, see :func:`short_side_size`), 'centre-crop' (scale to cover width x
            height, crop the centre), 'pad' (scale to fit inside, centre on white), 'keep-aspect' (scale so it fits
            inside width x height; output keeps the aspect ratio).
        interpolation: an OpenCV flag; default area interpolation when shrinking (no aliasing of thin lines),
            bilinear when enlarging. Label maps and flat colours use ``cv2.INTER_NEAREST``.
        fill: value of the padding ('pad'): 255 = white.
    """
    h, w = rgb.shape[:2]
    if mode == "short-side":
        size = short_side_size(w, h, min(width, height))
        if interpolation is None:
            return np.ascontiguousarray(resize_image(rgb, *size))
        return rgb if size == (w, h) else np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interpolation))
    if mode == "centre-crop":
        scale = max(width / w, height / h)
        new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    elif mode in ("pad", "keep-aspect"):
        scale = min(width / w, height / h)
        new_w, new_h = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
    else:
        raise CelbenchError(f"unknown resize mode {mode!r}")
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = rgb if (new_w, new_h) == (w, h) else cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    if mode == "centre-crop":
        x0, y0 = (new_w - width) // 2, (new_h - height) // 2
        return np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])
    if mode == "pad":
        canvas = np.full((height, width) + resized.shape[2:], fill, dtype=resized.dtype)
        x0, y0 = (width - new_w) // 2, (height - new_h) // 2
        canvas[y0:y0 + new_h, x0:x0 + new_w] = resized
        return canvas
    return np.ascontiguousarray(resized)


#: PNG filter and zlib strategy per kind of stored image (names as the dataset columns). Every choice is
#: lossless; they only trade encoding time against size. Measured on 60 frames of a 1080p synthetic clip
#: stored at 256 x 256, zlib level 1, OpenCV 5.0 (mean ms per image / kB), against OpenCV's default of
#: adaptive filtering with the default strategy:
#:
#: ========== ======================== ================ ================
#: column     choice                   this             default
#: ========== ======================== ================ ================
#: colour     up filter, RLE           1.07 ms, 34.9 kB 2.26 ms, 38.2 kB
#: sketch     up filter, RLE           0.22 ms, 3.2 kB  0.49 ms, 5.0 kB
#: components up filter, RLE           0.36 ms, 5.1 kB  0.90 ms, 6.1 kB
#: distance   no filter, default       0.78 ms, 22.1 kB 1.80 ms, 31.4 kB
#: hints      no filter, RLE           0.36 ms, 0.7 kB  1.35 ms, 1.2 kB
#: hint_mask  no filter, RLE           0.10 ms, 0.2 kB  0.43 ms, 0.5 kB
#: ========== ======================== ================ ================
#:
#: Flat cel colours and label maps are runs of equal pixels (the "up" filter turns rows equal to the row above
#: into zeros, RLE codes runs fast); the distance field is a smooth 16-bit ramp whose bytes deflate best
#: unfiltered; hints are almost all zeros. ``None`` (any other image): OpenCV's defaults.
PNG_OPTIONS: dict[str, tuple[str, str]] = {
    "colour": ("up", "rle"),
    "sketch": ("up", "rle"),
    "components": ("up", "rle"),
    "distance_field": ("none", "default"),
    "hints": ("none", "rle"),
    "hint_mask": ("none", "rle"),
}
_FILTERS = {"none": "IMWRITE_PNG_FILTER_NONE", "sub": "IMWRITE_PNG_FILTER_SUB", "up": "IMWRITE_PNG_FILTER_UP",
            "paeth": "IMWRITE_PNG_FILTER_PAETH", "all": "IMWRITE_PNG_ALL_FILTERS"}
_STRATEGIES = {"default": "IMWRITE_PNG_STRATEGY_DEFAULT", "filtered": "IMWRITE_PNG_STRATEGY_FILTERED",
               "rle": "IMWRITE_PNG_STRATEGY_RLE", "huffman": "IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY"}


def png_params(compression: int = 1, kind: str | None = None) -> list[int]:
    """``cv2.imencode`` parameters: zlib level ``compression`` and the filter/strategy of :data:`PNG_OPTIONS`."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
    if kind is not None:
        png_filter, strategy = PNG_OPTIONS[kind]
        params += [cv2.IMWRITE_PNG_STRATEGY, getattr(cv2, _STRATEGIES[strategy])]
        if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10; older versions keep their default filter
            params += [cv2.IMWRITE_PNG_FILTER, getattr(cv2, _FILTERS[png_filter])]
    return params


def encode_png(image: np.ndarray, compression: int = 1, kind: str | None = None) -> bytes:
    """PNG bytes of (H, W) uint8/uint16 grey or (H, W, 3) uint8 RGB (lossless).

    ``kind`` (a key of :data:`PNG_OPTIONS`) picks the PNG filter and zlib strategy for that kind of image; the
    decoded pixels are the same whatever it is.
    """
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", array, png_params(compression, kind))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_damage(data: bytes) -> str | None:
    """Why ``data`` is not a well-formed PNG (signature, chunk lengths, CRC-32 of every chunk, IEND), else None.

    Checked before libpng sees the bytes: on a damaged file libpng prints its own "libpng error: ..." lines to
    the process's stderr, beside celbench's one-line error. CRC-32 runs at memory speed, a few percent of a decode.
    """
    if data[:8] != PNG_SIGNATURE:
        return "no PNG signature"
    view = memoryview(data)
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return f"chunk {bytes(view[pos + 4:pos + 8])!r} cut off"
        if zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(view[end - 4:end], "big"):
            return f"CRC mismatch in chunk {bytes(view[pos + 4:pos + 8])!r}"
        if view[pos + 4:pos + 8] == b"IEND":
            return None
        pos = end
    return "no IEND chunk (truncated)"


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray | None:
    """``cv2.imread(path, flags)`` (None when unreadable), except that a damaged PNG is refused before libpng
    writes to stderr (:func:`png_damage`)."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return None
    if data[:8] == PNG_SIGNATURE and png_damage(data):
        return None
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_png`: grey (H, W) uint8/uint16 or (H, W, 3) uint8 RGB.

    Raises ValueError when the bytes are not a decodable image.
    """
    damage = png_damage(data)
    if damage:
        raise ValueError(f"not a decodable PNG ({damage})")
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError("not a decodable PNG")
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB if array.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return array
