"""Distance fields of line art (Shi et al., TVCG 2023, section 3.1), their registry and lossless storage.

Shi et al. convert every line-art image into a distance field map before matching because line pixels are sparse
(following SketchyGAN); the paper does not state a truncation. celbench truncates at
:data:`DEFAULT_TRUNCATION` = 32 px: Shi et al.'s matching runs on features at 1/4 resolution
(section 3.2, W/4 x H/4), so 32 px is 8 feature cells, several receptive-field steps of the 3-layer encoders,
while past that distance the field is flat inside large fills and only adds dynamic range; it is a parameter.

Fields are float32 (H, W) in [0, 1]: 0 on line pixels, ``min(d, truncation) / truncation`` elsewhere, with ``d``
the Euclidean distance in pixels from the pixel centre to the nearest line-pixel centre.

Storage (:func:`encode_field` / :func:`decode_field`): uint16 ``q = round(f * 65535)``, PNG-able.
``decode(encode(f))`` differs from ``f`` by at most 0.5 / 65535 (7.6e-6), i.e. distances are kept to
``truncation / 131070`` pixels (2.4e-4 px at 32 px); ``encode(decode(q)) == q`` exactly.
"""

from __future__ import annotations

import abc
from typing import Any

import cv2
import numpy as np

from dataprep.errors import CelbenchError
from dataprep.registry import Registry

DEFAULT_TRUNCATION = 32.0
#: Sketch pixels darker than this (0..255) are line pixels.
DEFAULT_LINE_THRESHOLD = 128
FIELD_SCALE = 65535


class DistanceField(abc.ABC):
    """Line art (H, W) uint8 (0 = line, 255 = paper) -> field (H, W) float32 in [0, 1]."""

    summary: str = ""

    @property
    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-able settings for the dataset manifest."""

    @abc.abstractmethod
    def compute(self, line_mask: np.ndarray) -> np.ndarray:
        """(H, W) bool line mask -> (H, W) float32 field in [0, 1]."""

    line_threshold: int = DEFAULT_LINE_THRESHOLD

    def __call__(self, sketch: np.ndarray) -> np.ndarray:
        return self.compute(self._line_mask(sketch))

    def _line_mask(self, sketch: np.ndarray) -> np.ndarray:
        sketch = np.asarray(sketch)
        if sketch.ndim != 2 or sketch.dtype != np.uint8:
            raise CelbenchError(f"expected an (H, W) uint8 sketch, got shape {sketch.shape} dtype {sketch.dtype}")
        return sketch < self.line_threshold

    def encoded(self, sketch: np.ndarray) -> np.ndarray:
        """``encode_field(self(sketch))``: the stored uint16 form. Implementations may compute it directly."""
        return encode_field(self(sketch))


FIELDS: Registry[DistanceField] = Registry("field", entry_point_group="celbench.fields")

#: The distance field a build stores unless its config names another (``field.name``).
DEFAULT_FIELD = "euclidean"


@FIELDS.register("euclidean")
class EuclideanField(DistanceField):
    """Truncated, normalised exact Euclidean distance transform (:func:`euclidean_distance`).

    A frame without any line pixel is 1 everywhere (every pixel is at least ``truncation`` away).

    Args:
        truncation: distance in pixels mapped to 1; farther pixels are clipped to 1.
        line_threshold: sketch values below this are line pixels.
    """

    summary = "Euclidean distance to the nearest line pixel, truncated and scaled to [0, 1]"

    def __init__(self, truncation: float = DEFAULT_TRUNCATION, line_threshold: int = DEFAULT_LINE_THRESHOLD):
        if not truncation > 0:
            raise CelbenchError(f"field parameter truncation must be > 0, got {truncation}")
        if not 0 < line_threshold <= 255:
            raise CelbenchError(f"field parameter line_threshold must be in 1..255, got {line_threshold}")
        self.truncation = float(truncation)
        self.line_threshold = int(line_threshold)

    @property
    def params(self) -> dict[str, Any]:
        return {"truncation": self.truncation, "line_threshold": self.line_threshold}

    def compute(self, line_mask: np.ndarray) -> np.ndarray:
        if not line_mask.any():
            return np.ones(line_mask.shape, np.float32)
        distance = euclidean_distance(~line_mask)
        return (np.minimum(distance, self.truncation) / self.truncation).astype(np.float32)

    def encoded(self, sketch: np.ndarray) -> np.ndarray:
        """``encode_field(self(sketch))`` through a table indexed by the integer squared distance.

        Every pixel's distance is ``sqrt(n)`` for an integer ``n``, and only ``n <= truncation**2`` are not
        clipped, so the uint16 values are a lookup of ``n`` in a table made with the very same float
        operations as :meth:`compute` and :func:`encode_field` (identical output, tested).
        """
        line_mask = self._line_mask(sketch)
        if not line_mask.any():
            return np.full(line_mask.shape, FIELD_SCALE, np.uint16)
        squared = _squared_distance(~line_mask)
        if squared is None:
            return encode_field(self.compute(line_mask))
        return np.take(self._table(), squared, mode="clip")  # beyond the table: the clipped last entry

    def _table(self) -> np.ndarray:
        table = getattr(self, "_lookup", None)
        if table is None:
            n = np.arange(int(self.truncation ** 2) + 2, dtype=np.float64)  # the last entry: beyond truncation
            field = (np.minimum(np.sqrt(n), self.truncation) / self.truncation).astype(np.float32)
            table = self._lookup = encode_field(field)
        return table


def _squared_distance(mask: np.ndarray) -> np.ndarray | None:
    """Integer squared Euclidean distance (int32) from every True pixel to the nearest False one, or None
    when the image is too large for it to be exact in float32 (see :func:`euclidean_distance`) or has no False
    pixel (OpenCV then has no distance to give)."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.shape[0] ** 2 + mask.shape[1] ** 2 >= 1 << 21 or mask.all():
        return None
    root = cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # root = sqrt(n) (1 + e), |e| <= 2**-24; squared in float32 (one more rounding of 2**-24): the error is at
    # most n * (2**-23 + 2**-24) < 0.375 for n < 2**21, so rounding recovers n exactly.
    np.multiply(root, root, out=root)
    return np.rint(root, out=root).astype(np.int32)


def euclidean_distance(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance (float64) from every True pixel to the nearest False pixel; 0 on False pixels.

    The same values as ``scipy.ndimage.distance_transform_edt(mask)`` (tested equal), computed faster (see
    docs/stages.md): ``cv2.distanceTransform`` with ``DIST_MASK_PRECISE`` (Felzenszwalb & Huttenlocher, exact) returns
    float32 ``sqrt(n)`` of the integer squared distance ``n``; ``n`` is recovered exactly by rounding the square,
    and its float64 square root taken as scipy does. Images with ``H**2 + W**2 >= 2**21`` (about 1450 px
    diagonal), where that recovery is not guaranteed, and masks without a False pixel use scipy.
    """
    squared = _squared_distance(mask)
    if squared is None:
        from scipy import ndimage  # imported here: 0.15 s that a shot-detection worker need not pay

        return ndimage.distance_transform_edt(mask)
    return np.sqrt(squared.astype(np.float64))


def encode_field(field: np.ndarray) -> np.ndarray:
    """(H, W) float field in [0, 1] -> (H, W) uint16, ``round(field * 65535)`` (see the module docstring)."""
    field = np.asarray(field)
    if field.size and (np.nanmin(field) < 0 or np.nanmax(field) > 1 or np.isnan(field).any()):
        raise CelbenchError("distance field values must be in [0, 1]")
    return np.rint(field.astype(np.float64) * FIELD_SCALE).astype(np.uint16)


def decode_field(encoded: np.ndarray) -> np.ndarray:
    """(H, W) uint16 from :func:`encode_field` -> (H, W) float32 in [0, 1]."""
    encoded = np.asarray(encoded)
    if encoded.dtype != np.uint16:
        raise CelbenchError(f"encoded distance field must be uint16, got {encoded.dtype}")
    return (encoded.astype(np.float32) / FIELD_SCALE).astype(np.float32)
