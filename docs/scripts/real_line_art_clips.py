"""Line-art folders (``line/``, ``gt/``, ``seg/``) from the real flat-coloured drawings, moved, for `dataprep build`.

    python docs/scripts/real_line_art_clips.py --real ../shared/data/real --out /tmp/line-art-clips [--frames 9]

``../shared/data/real/line-art/multigraph`` and ``suneo`` hold production drawings with flat colours, but no
target drawing there has its colours: each neighbouring drawing comes as line art only (multigraph:
``sketch/1.png`` beside ``color/2.png``; suneo: ``target_sketch.png``, ``processed_suneo1/4.png`` beside
``reference_color.png``). Component accuracy needs the target's colours, so the scored clips are made from the
coloured drawings themselves: frame 0 is the drawing as the artist made it, frames 1.. are it under a smooth
random motion that accumulates from frame to frame (an affine drift plus a low-frequency elastic field), every
array moved by the same nearest-neighbour map, so each frame's true colours and region map are known and the
regions stay the artist's. Drawings used:

* multigraph: ``test_inference/color/2.png`` and ``test_inference_2/color/17.png`` (768 x 512); their line art
  is their black (0, 0, 0) pixels, as these colour frames carry their lines;
* suneo: ``reference_sketch.png`` (the artist's line art) with ``reference_color.png``, and with
  ``processed_suneo2_color.png`` (the same drawing in another palette), 265 x 165.

Regions (``seg``) are the connected pieces (4-connected) of non-line pixels of one colour, so two flat colours
that meet without a line are two regions, as a paint bucket fills them. Each drawing gives ``--seeds`` clips
(independent motions). Every frame also gets a BasicPBC ``label`` part map: the id of the drawing's region each
pixel came from, so a region is the same part in every frame of its clip and ``dataprep build`` stores the true
correspondences (``frames.component_parts``), against which ``components@2`` scores the matchers' answers.
Output: ``OUT/<set>/<clip>/{line,gt,seg,label}/NNNN.png``, built by::

    dataprep build OUT/suneo/* --out DATA/suneo --split test \\
        --set frames.width=265 --set frames.height=165 --set frames.resize=keep-aspect
    dataprep build OUT/multigraph/* --out DATA/multigraph --split test \\
        --set frames.width=512 --set frames.height=768 --set frames.resize=keep-aspect
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from dataprep.imaging import read_image, to_rgb


def read_rgb(path: Path) -> np.ndarray:
    image = read_image(path)
    if image is None:
        raise SystemExit(f"{path}: unreadable image")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return to_rgb(image)


def colour_regions(colour: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(H, W) int64 region ids: 4-connected pieces of one colour outside the lines; 0 on lines."""
    codes = (colour[:, :, 0].astype(np.int64) << 16) | (colour[:, :, 1].astype(np.int64) << 8) | colour[:, :, 2]
    codes[line] = -1
    regions = np.zeros(codes.shape, np.int64)
    next_id = 1
    for code in np.unique(codes[~line]):
        pieces, n = ndimage.label(codes == code)
        inside = pieces > 0
        regions[inside] = pieces[inside] + next_id - 1
        next_id += n
    return regions


def motion(shape: tuple[int, int], frames: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame, the (rows, cols) source pixel of every output pixel: identity for frame 0, then an
    accumulating drift (rotation <= 1.5 deg, scale <= 1.5 %, shift <= 1.5 % of the size per frame) and an
    elastic field (Gaussian-smoothed noise, sigma 1/8 of the size, amplitude about 1 % of the size)."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    centre = np.array([h / 2, w / 2])
    angle = scale = 0.0
    shift = np.zeros(2)
    elastic = np.zeros((2, h, w))
    out = [(rows.astype(np.int64), cols.astype(np.int64))]
    for _ in range(1, frames):
        angle += rng.uniform(-1.5, 1.5) * np.pi / 180
        scale += rng.uniform(-0.015, 0.015)
        shift += rng.uniform(-0.015, 0.015, 2) * np.array([h, w])
        noise = ndimage.gaussian_filter(rng.normal(size=(2, h, w)), sigma=(0, max(h, w) / 8, max(h, w) / 8))
        elastic += noise / (np.abs(noise).max() + 1e-12) * 0.01 * max(h, w)
        c, s, k = np.cos(angle), np.sin(angle), 1.0 + scale
        dy, dx = rows - centre[0] - shift[0], cols - centre[1] - shift[1]
        src_r = (c * dy - s * dx) / k + centre[0] + elastic[0]
        src_c = (s * dy + c * dx) / k + centre[1] + elastic[1]
        out.append((np.clip(np.rint(src_r), 0, h - 1).astype(np.int64),
                    np.clip(np.rint(src_c), 0, w - 1).astype(np.int64)))
    return out


def write_clip(folder: Path, colour: np.ndarray, line: np.ndarray, frames: int, seed: int) -> None:
    regions = colour_regions(colour, line)
    for index, (rows, cols) in enumerate(motion(line.shape, frames, np.random.default_rng(seed))):
        moved_line, moved_colour, moved_regions = line[rows, cols], colour[rows, cols], regions[rows, cols]
        moved_regions[moved_line] = 0
        seg = np.stack([(moved_regions >> 16) & 255, (moved_regions >> 8) & 255, moved_regions & 255], -1)
        for kind, image in (("line", np.where(moved_line, 0, 255).astype(np.uint8)),
                            ("gt", cv2.cvtColor(moved_colour, cv2.COLOR_RGB2BGR)),
                            ("seg", cv2.cvtColor(seg.astype(np.uint8), cv2.COLOR_RGB2BGR)),
                            # the part map: the same ids (a region moved is the same part; line pixels 0)
                            ("label", cv2.cvtColor(seg.astype(np.uint8), cv2.COLOR_RGB2BGR))):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / kind / f"{index:04d}.png"), image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=9, help="frames per clip (9: pair gaps up to 8)")
    parser.add_argument("--seeds", type=int, default=3, help="clips (independent motions) per drawing")
    args = parser.parse_args()
    art = args.real / "line-art"
    drawings = {}
    for name in ("test_inference/color/2.png", "test_inference_2/color/17.png"):
        colour = read_rgb(art / "multigraph" / name)
        drawings[("multigraph", name.split("/")[0] + "-" + Path(name).stem)] = (colour, (colour == 0).all(axis=2))
    sketch = read_image(art / "suneo" / "reference_sketch.png", cv2.IMREAD_GRAYSCALE)
    for name in ("reference_color.png", "processed_suneo2_color.png"):
        drawings[("suneo", Path(name).stem)] = (read_rgb(art / "suneo" / name), sketch < 128)
    for (group, name), (colour, line) in drawings.items():
        for seed in range(args.seeds):
            folder = args.out / group / f"{name}-{seed}"
            write_clip(folder, colour, line, args.frames, seed)
            print(f"{folder}: {args.frames} frames, {len(np.unique(colour_regions(colour, line))) - 1} regions")


if __name__ == "__main__":
    main()
