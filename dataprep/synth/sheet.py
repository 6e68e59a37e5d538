"""Contact sheet of a synthetic clip: colour frames, their line art and label maps."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dataprep.visual import colorize_labels, image_grid


def contact_sheet(frames: Sequence, cell: int = 180) -> np.ndarray:
    """(H, W, 3) uint8 RGB grid with one column per frame and rows colour / line art / regions."""
    cols = [f"frame {f.index} (shot {f.shot})" for f in frames]
    rows = [[f.image for f in frames], [f.line_art for f in frames], [colorize_labels(f.labels) for f in frames]]
    return image_grid(rows, row_titles=["colour", "line art", "regions"], col_titles=cols, cell=cell)
