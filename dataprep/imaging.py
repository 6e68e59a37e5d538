"""Image helpers of the dataset builder: channel normalisation, resizing modes, PNG bytes.

All functions take and return numpy arrays; colour images are (H, W, 3) uint8 sRGB in RGB order (OpenCV's BGR is
converted at the PNG boundary only).
"""

from __future__ import annotations

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


def fit_frame(rgb: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """Resize an RGB frame to the stored resolution.

    Args:
        rgb: (H, W, 3) uint8.
        width, height: target size.
        mode: 'centre-crop' (scale to cover width x height, crop the centre), 'pad' (scale to fit inside,
            centre on white), 'keep-aspect' (scale so it fits inside width x height; output keeps the aspect ratio).

    Area interpolation when shrinking (no aliasing of thin lines), bilinear when enlarging.
    """
    h, w = rgb.shape[:2]
    if mode == "centre-crop":
        scale = max(width / w, height / h)
        new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    elif mode in ("pad", "keep-aspect"):
        scale = min(width / w, height / h)
        new_w, new_h = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
    else:
        raise CelbenchError(f"unknown resize mode {mode!r}")
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = rgb if (new_w, new_h) == (w, h) else cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    if mode == "centre-crop":
        x0, y0 = (new_w - width) // 2, (new_h - height) // 2
        return np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])
    if mode == "pad":
        canvas = np.full((height, width, 3), 255, dtype=np.uint8)
        x0, y0 = (width - new_w) // 2, (height - new_h) // 2
        canvas[y0:y0 + new_h, x0:x0 + new_w] = resized
        return canvas
    return np.ascontiguousarray(resized)


def encode_png(image: np.ndarray, compression: int = 1) -> bytes:
    """PNG bytes of (H, W) uint8/uint16 grey or (H, W, 3) uint8 RGB (lossless)."""
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_png`: grey (H, W) uint8/uint16 or (H, W, 3) uint8 RGB.

    Raises ValueError when the bytes are not a decodable image.
    """
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError("not a decodable PNG")
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB if array.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return array
