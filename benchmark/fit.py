"""Frame fits: how a protocol turns a stored frame of any aspect ratio into what a model takes and what is scored.

A protocol with a fixed ``resolution`` (H, W) names a fit (``"fit"`` in its file, default ``centre-crop``;
``bench evaluate --fit`` overrides it; the record's signature names it). A fit decides two things:

- the **canvas**: the stored frame scaled (area filter when shrinking, bilinear when enlarging, nearest neighbour
  for component labels) and possibly cropped. The ground truth is scored on the canvas, so every metric sees
  exactly the pixels the canvas keeps;
- the **windows**: H x W boxes in canvas coordinates the model is run on. A window may reach past the canvas
  (``pad``); the model then sees the pad values of :data:`PAD_VALUES` there (white paper, no line within the
  field's truncation, label 0, no hint) and that part of its answer is dropped. Where windows overlap
  (``tiles``) their answers are averaged. A matcher's per-region answers (``component_matches``) are used only
  when one window is the whole canvas.

Built-in fits (``bench ls fits``):

- ``centre-crop``: scale the frame to cover H x W, keep the centre. On datasets stored at H x W (the old
  ``frames.resize=centre-crop`` default, 256 x 256) this is the identity, so their numbers do not move; on whole
  16:9 frames it scores the same centre square the old build stored.
- ``pad``: scale the frame to fit inside H x W, centre it; the whole frame is scored.
- ``tiles``: scale the frame to cover H x W (shorter side fits), cover it with the fewest H x W windows evenly
  spaced (overlapping by at least :data:`TILES_MIN_OVERLAP` of a window where more than one is needed); the whole
  frame is scored.

Adding a fit is one :class:`FrameFit` subclass with ``@FITS.register("name")``.
"""

from __future__ import annotations

import math

from dataprep.registry import Registry

#: Fill of the part of a window outside the canvas, per batch key suffix: colours and sketches are white paper,
#: a distance field is 1 (no line within its truncation), component labels 0 (no region), hints 0 (no hint);
#: any other key 0.
PAD_VALUES = {"colour": 1.0, "sketch": 1.0, "field": 1.0, "components": 0, "hints": 0.0}
#: ``tiles``: neighbouring windows share at least this fraction of a window, so a stroke cut by one window's
#: edge is seen whole by the next.
TILES_MIN_OVERLAP = 0.125

Box = tuple[int, int, int, int]  # y0, x0, height, width


class FrameFit:
    """One way of fitting a stored frame to a model input of ``resolution`` = (H, W)."""

    def scale_to(self, height: int, width: int, resolution: tuple[int, int]) -> tuple[int, int]:
        """(height, width) the stored ``height`` x ``width`` frame is resized to before :meth:`crop`."""
        raise NotImplementedError

    def crop(self, height: int, width: int, resolution: tuple[int, int]) -> Box:
        """The part of the scaled ``height`` x ``width`` frame kept as the canvas (default: all of it)."""
        return 0, 0, height, width

    def windows(self, height: int, width: int, resolution: tuple[int, int]) -> list[tuple[int, int]]:
        """Top-left corners (y, x), in canvas coordinates, of the H x W windows the model runs on for a
        ``height`` x ``width`` canvas; together they cover the canvas."""
        raise NotImplementedError

    def canvas(self, height: int, width: int, resolution: tuple[int, int]) -> tuple[tuple[int, int], Box]:
        """(scaled size, crop box) of a stored ``height`` x ``width`` frame."""
        scaled = self.scale_to(height, width, resolution)
        return scaled, self.crop(*scaled, resolution)


FITS: Registry[FrameFit] = Registry("fit", entry_point_group="celbench.fits")
DEFAULT_FIT = "centre-crop"


def scaled_size(height: int, width: int, resolution: tuple[int, int], cover: bool) -> tuple[int, int]:
    """(height, width) of a frame scaled by one factor so it covers ``resolution`` (``cover``; at least H x W)
    or fits inside it (at most H x W)."""
    out_h, out_w = resolution
    ratio = (max if cover else min)(out_h / height, out_w / width)
    scaled_h, scaled_w = max(1, round(height * ratio)), max(1, round(width * ratio))
    if cover:
        return max(out_h, scaled_h), max(out_w, scaled_w)
    return min(out_h, scaled_h), min(out_w, scaled_w)


@FITS.register("centre-crop")
class CentreCrop(FrameFit):
    """Scale to cover H x W, keep the centre (one window: the canvas)."""

    def scale_to(self, height, width, resolution):
        return scaled_size(height, width, resolution, cover=True)

    def crop(self, height, width, resolution):
        out_h, out_w = resolution
        return (height - out_h) // 2, (width - out_w) // 2, out_h, out_w

    def windows(self, height, width, resolution):
        return [(0, 0)]


@FITS.register("pad")
class Pad(FrameFit):
    """Scale to fit inside H x W; one window centred on the canvas, reaching past it on the short axis."""

    def scale_to(self, height, width, resolution):
        return scaled_size(height, width, resolution, cover=False)

    def windows(self, height, width, resolution):
        out_h, out_w = resolution
        return [(-((out_h - height) // 2), -((out_w - width) // 2))]


def tile_starts(length: int, window: int, min_overlap: float = TILES_MIN_OVERLAP) -> list[int]:
    """Starts of the fewest ``window``-long tiles, evenly spaced, covering ``0..length`` with neighbours
    overlapping by at least ``min_overlap * window`` (``length <= window``: one tile at 0)."""
    if length <= window:
        return [0]
    step_limit = window * (1 - min_overlap)
    count = 1 + math.ceil((length - window) / step_limit)
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


@FITS.register("tiles")
class Tiles(FrameFit):
    """Scale so the frame covers H x W (its shorter side fits), then H x W tiles over the whole frame."""

    def scale_to(self, height, width, resolution):
        return scaled_size(height, width, resolution, cover=True)

    def windows(self, height, width, resolution):
        out_h, out_w = resolution
        return [(y, x) for y in tile_starts(height, out_h) for x in tile_starts(width, out_w)]
