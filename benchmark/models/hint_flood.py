"""``hint-flood``: the floor of hint-based colourisation, a paint bucket poured from every hint.

Cel colouring is region filling, so the least a hint tool can do with N colour hints is: give each
line-enclosed region of the target (``target_components``, label > 0) the colour of the hint(s) that fall
inside it (per-channel median of its hint pixels: one hint, or the majority of several), and give a region
without a hint the colour of the hint pixel nearest to it (smallest Euclidean distance from any of the
region's pixels; ties go to the first region pixel in raster order). Line pixels (label 0) stay as drawn:
the grey of the target sketch. With no hint at all every region is :data:`NEUTRAL_GREY`.

None of the papers reports it; it shows what the hints alone give, so a learned model earns only what it
adds beyond them (``yuan`` must beat it at every hint budget of ``hints@2``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from benchmark.model import Batch, no_weights, register_model
from benchmark.models.vote import _region_medians

#: Colour of every region when there is no hint (RGB in [0, 1]): flat mid grey, no guess at a hue.
NEUTRAL_GREY = 0.5


def flood_hints(hints: np.ndarray, labels: np.ndarray, sketch: np.ndarray) -> np.ndarray:
    """Flood one frame's regions with its hint colours (see the module docstring).

    Args:
        hints: (4, H, W) float RGB hint colours in [0, 1] and mask (> 0.5 = hint pixel).
        labels: (H, W) integer component labels, 0 = line pixels.
        sketch: (H, W) float line art in [0, 1] (0 = line, 1 = paper); the colour of line pixels.

    Returns:
        (3, H, W) float32 RGB in [0, 1].
    """
    labels = np.asarray(labels).astype(np.int64)
    out = np.repeat(np.asarray(sketch, np.float32)[None], 3, axis=0)
    regions = labels > 0
    if not regions.any():
        return out
    hint_pixels = np.asarray(hints[3]) > 0.5
    if not hint_pixels.any():
        out[:, regions] = NEUTRAL_GREY
        return out
    n_labels = int(labels.max()) + 1
    colour = np.asarray(hints[:3], np.float32)
    fill = np.full((3, n_labels), np.nan)
    # Regions holding hints: the per-channel median of their hint pixels.
    inside = hint_pixels & regions
    if inside.any():
        fill = np.stack([_region_medians(colour[c][inside], labels[inside], n_labels) for c in range(3)])
    # The rest: the colour of the hint pixel nearest to the region.
    distance, (rows, cols) = ndimage.distance_transform_edt(~hint_pixels, return_indices=True)
    missing = [int(label) for label in np.unique(labels[regions]) if np.isnan(fill[0, label])]
    if missing:
        positions = ndimage.minimum_position(distance, labels, missing)
        for label, (y, x) in zip(missing, positions):
            fill[:, label] = colour[:, rows[y, x], cols[y, x]]
    out[:, regions] = fill[:, labels[regions]].astype(np.float32)
    return out


class HintFlood:
    """``batch -> (B, 3, H, W)`` float RGB in [0, 1], from ``hints``, ``target_components`` and ``target_sketch``."""

    requires = ("hints", "target_components", "target_sketch")

    def __call__(self, batch: Batch) -> torch.Tensor:
        hints = batch["hints"].detach().float().cpu().numpy()
        labels = batch["target_components"].detach().cpu().numpy()
        sketch = batch["target_sketch"].detach().float().cpu().numpy()[:, 0]
        out = np.stack([flood_hints(hints[b], labels[b], sketch[b]) for b in range(hints.shape[0])])
        return torch.from_numpy(out).to(batch["hints"].device)


@register_model("hint-flood")
def hint_flood(weights: str | None = None, device: torch.device | None = None) -> HintFlood:
    """Floor: each target region takes the colour of the hint(s) inside it, else of the nearest hint."""
    no_weights("hint-flood", weights)
    return HintFlood()
