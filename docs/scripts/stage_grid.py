"""Draw the per-frame stages side by side: colour, extractors, distance field, components, hints.

    python docs/scripts/stage_grid.py --out docs/images/sketch_grid.jpg [--hed W]  # procedural frames (committed)
    python docs/scripts/stage_grid.py --out /tmp/real.jpg FRAME.png [FRAME.png]  # your own frames (never commit
                                                                                 # grids of copyrighted frames)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from dataprep.components import extract_components
from dataprep.sketch.extractors import EXTRACTORS
from dataprep.field import FIELDS
from dataprep.hints import HINTS
from dataprep.synth import SynthClip, SynthConfig
from dataprep.visual import as_rgb, colorize_labels, image_grid

CLASSIC = ["xdog", "canny", "threshold-dark"]


def frames_from(paths: list[str]) -> list[tuple[str, np.ndarray]]:
    if paths:
        return [(Path(p).stem[:14], cv2.imread(p, cv2.IMREAD_COLOR)[:, :, ::-1].copy()) for p in paths]
    out = []
    for seed in (0, 2, 5):
        frame = next(iter(SynthClip(SynthConfig(width=256, height=256, shots=1, shot_length=(2, 2),
                                                seed=seed)).frames()))
        out.append((f"synth seed {seed}", frame.image))
    return out


def hint_picture(sketch: np.ndarray, hints, enlarge: int = 3) -> np.ndarray:
    """Hints drawn ``enlarge`` times their size, with a black border, over a faded sketch (for visibility only)."""
    view = as_rgb((255 - (255 - sketch.astype(np.float32)) * 0.25).astype(np.uint8)).copy()
    for hint in hints:
        centre_y, centre_x = hint.top + hint.size / 2, hint.left + hint.size / 2
        half = max(2, int(hint.size * enlarge / 2))
        top_left = (int(centre_x) - half, int(centre_y) - half)
        bottom_right = (int(centre_x) + half, int(centre_y) + half)
        cv2.rectangle(view, top_left, bottom_right, tuple(int(c) for c in hint.rgb), -1)
        cv2.rectangle(view, top_left, bottom_right, (0, 0, 0), 1)
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("frames", nargs="*", help="RGB frame images (default: procedural frames)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--cell", type=int, default=200)
    parser.add_argument("--hed", help="HED weights (.safetensors, see convert_hed_keras.py) to add an HED column")
    args = parser.parse_args()
    extractors = {name: EXTRACTORS.create(name) for name in CLASSIC}
    if args.hed:
        extractors["hed"] = EXTRACTORS.create("hed", weights=args.hed)
    field = FIELDS.create("euclidean")
    hints = HINTS.create("gaussian-geometric")
    rows, titles = [], []
    for title, rgb in frames_from(args.frames):
        sketches = [extractor(rgb) for extractor in extractors.values()]
        labels, _ = extract_components(sketches[0], rgb)
        hint_view = hint_picture(sketches[0], hints(rgb, seed=len(rows) + 1).hints)
        rows.append([rgb, *sketches, as_rgb(field(sketches[0])), colorize_labels(labels), hint_view])
        titles.append(title)
    sheet = image_grid(rows, row_titles=titles, cell=args.cell,
                       col_titles=["colour", *extractors, "field (xdog)", "components (xdog)", "hints (3x size)"])
    cv2.imwrite(args.out, sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {args.out} {sheet.shape[1]}x{sheet.shape[0]}")


if __name__ == "__main__":
    main()
