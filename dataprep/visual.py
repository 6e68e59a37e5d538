"""Pictures for people: label maps in colour and labelled image grids (contact sheets, reports)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def colorize_labels(labels: np.ndarray, line_rgb: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """(H, W) integer label map -> (H, W, 3) uint8 RGB, a stable pseudo-random colour per label; 0 = line."""
    ids = labels.astype(np.uint32)
    # a multiplicative hash spreads neighbouring ids to unrelated colours
    h = (ids * np.uint32(2654435761)) & np.uint32(0xFFFFFF)
    rgb = np.stack([(h >> 16) & 255, (h >> 8) & 255, h & 255], axis=-1).astype(np.uint8)
    rgb = (rgb // 2 + 96).astype(np.uint8)  # keep away from the line colour
    rgb[labels == 0] = line_rgb
    return rgb


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Gray (H, W) or RGB (H, W, 3) of any numeric dtype -> (H, W, 3) uint8 RGB (floats taken in [0, 1])."""
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float32) * (255 if image.dtype.kind == "f" else 1), 0, 255)
        image = image.astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_titles: Sequence[str] = (),
               col_titles: Sequence[str] = (), cell: int = 160, pad: int = 4) -> np.ndarray:
    """Lay out images (any size, gray or RGB) in a grid of ``cell``-pixel squares with titles.

    Returns (H, W, 3) uint8 RGB on a white background.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    font, row_scale, col_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0.42
    # the left margin fits the longest row title, so titles are never cut
    left = max((cv2.getTextSize(str(t), font, row_scale, 1)[0][0] + 12 for t in row_titles), default=0)
    top = 22 if col_titles else 0
    sheet = np.full((top + n_rows * (cell + pad) + pad, left + n_cols * (cell + pad) + pad, 3), 255, np.uint8)
    for c, title in enumerate(col_titles):
        text = str(title)
        while len(text) > 1 and cv2.getTextSize(text, font, col_scale, 1)[0][0] > cell:  # keep within its column
            text = text[:-1]
        cv2.putText(sheet, text, (left + pad + c * (cell + pad), 16), font, col_scale, (0, 0, 0), 1, cv2.LINE_AA)
    for r, row in enumerate(rows):
        y0 = top + pad + r * (cell + pad)
        if r < len(row_titles):
            cv2.putText(sheet, str(row_titles[r]), (4, y0 + cell // 2), font, row_scale, (0, 0, 0), 1, cv2.LINE_AA)
        for c, image in enumerate(row):
            rgb = as_rgb(image)
            h, w = rgb.shape[:2]
            s = cell / max(h, w)
            resized = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
                                 if s < 1 else cv2.INTER_NEAREST)
            x0 = left + pad + c * (cell + pad)
            rh, rw = resized.shape[:2]
            oy, ox = (cell - rh) // 2, (cell - rw) // 2
            sheet[y0 + oy:y0 + oy + rh, x0 + ox:x0 + ox + rw] = resized
    return sheet
