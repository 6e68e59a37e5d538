"""Time the component matchers on a 1080p pair, side by side, and score them on it.

    python docs/scripts/match_speed.py [--data ../shared/data/real/line-art/assets] [--repeat 3]

The pair: BasicPBC's toon-rendered frame 0242 (``line``, ``gt``, ``seg``, ``label`` files: the artist-side region
map is read, not recomputed), cropped to 1920x1080; the target is the same frame moved by a small affine motion
(rotation 1.5 degrees, shift (9, 6) px, nearest-neighbour for the region map), so its ground truth is known.
Also times the two documented limits: 5,000 regions (a 1080p grid, above ``max_assignment``) and a target with
no closed region. Prints one row per model: regions, seconds (median of ``--repeat`` calls after one warm-up),
and BasicPBC acc / pix_acc and AnimeRun match-acc on the pair, the latter twice: against the correspondences
derived from colours (``match_acc``, as ``components@2`` scores) and against the true ones the ``label`` part
maps give (``part_acc``, :func:`benchmark.metrics.component_matching.part_match_accuracy`). Not a test: timings
depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmark.metrics.component_accuracy import component_accuracy
from benchmark.metrics.component_matching import match_accuracy, part_match_accuracy
from benchmark.model import load_model
from dataprep.video.line_art import part_ids, segment_ids

MODELS = ("copy-reference", "flow-warp+vote", "match-hand", "match-graph", "match-unet", "match-graph-unet")


def read_pair(folder: Path) -> tuple[dict, dict]:
    line = cv2.imread(str(folder / "line0242.png"), cv2.IMREAD_UNCHANGED)
    seg = cv2.cvtColor(cv2.imread(str(folder / "seg0242.png")), cv2.COLOR_BGR2RGB)
    gt = cv2.cvtColor(cv2.imread(str(folder / "gt0242.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    codes = segment_ids(seg)
    label = cv2.imread(str(folder / "label0242.png"), cv2.IMREAD_UNCHANGED)
    parts = part_ids(cv2.cvtColor(label, cv2.COLOR_BGRA2RGBA if label.shape[2] == 4 else cv2.COLOR_BGR2RGB))
    is_line = line[..., 3] > 0
    codes[is_line] = 0
    colour = gt[..., :3].copy()
    colour[gt[..., 3] == 0] = 255  # BasicPBC's transparent background -> white
    colour[is_line] = 0
    rows = slice(420, 1500)
    frames = {"codes": codes[rows], "colour": colour[rows], "parts": parts[rows]}
    angle, shift = 1.5, (9, 6)
    matrix = cv2.getRotationMatrix2D((960, 540), angle, 1.0)
    matrix[:, 2] += shift

    def move(image: np.ndarray, interpolation: int) -> np.ndarray:
        return cv2.warpAffine(image, matrix, (1920, 1080), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)

    moved_codes = move(frames["codes"].astype(np.float64), cv2.INTER_NEAREST).astype(np.int64)
    moved = {"codes": moved_codes, "colour": move(frames["colour"], cv2.INTER_NEAREST),
             "parts": move(frames["parts"].astype(np.float64), cv2.INTER_NEAREST).astype(np.int64)}
    # one id per region code, shared by both frames (0 = line)
    unique = np.unique(np.concatenate([frames["codes"].ravel(), moved_codes.ravel()]))
    unique = unique[unique != 0]
    for frame in (frames, moved):
        labels = np.zeros(frame["codes"].shape, np.int64)
        inside = frame["codes"] != 0
        labels[inside] = np.searchsorted(unique, frame["codes"][inside]) + 1
        frame["labels"] = labels
    return frames, moved


def batch_of(reference: dict, target: dict) -> dict[str, torch.Tensor]:
    def sketch(labels):
        return torch.from_numpy((labels > 0).astype(np.float32))[None]

    def field(labels):
        return torch.from_numpy(cv2.distanceTransform((labels > 0).astype(np.uint8), cv2.DIST_L2, 5) / 2203.0)[None].float()

    return {"reference_colour": torch.from_numpy(reference["colour"].transpose(2, 0, 1) / 255.0).float()[None, None],
            "reference_sketch": sketch(reference["labels"])[None, None],
            "reference_field": field(reference["labels"])[None, None],
            "target_sketch": sketch(target["labels"])[None], "target_field": field(target["labels"])[None],
            "reference_components": torch.from_numpy(reference["labels"])[None, None],
            "target_components": torch.from_numpy(target["labels"])[None]}


def timed(model, batch, repeat: int) -> tuple[torch.Tensor, float]:
    output = model(batch)  # warm-up (OpenCV/torch first-call costs)
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        output = model(batch)
        seconds.append(time.perf_counter() - start)
    return output, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/real/line-art/assets")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated (default %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference, target = read_pair(Path(args.data))
    batch = batch_of(reference, target)
    n_regions = len(np.unique(target["labels"])) - 1
    print(f"pair: 1920x1080, {n_regions} target regions, {len(np.unique(reference['labels'])) - 1} reference regions")
    print(f"{'model':>16} {'seconds':>8} {'acc':>7} {'pix_acc':>7} {'match_acc':>9} {'part_acc':>8}")
    names = args.models.split(",")
    for name in names:
        model = load_model(name)
        output, seconds = timed(model, batch, args.repeat)
        prediction = (output[0].clamp(0, 1).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        scores = component_accuracy(prediction, target["colour"], target["labels"])
        matches = getattr(output, "component_matches", None)
        match = part = float("nan")
        if matches is not None:
            match = match_accuracy(matches[0].numpy(), target["labels"], target["colour"], reference["labels"],
                                   reference["colour"])["match_acc"]
            part = part_match_accuracy(matches[0].numpy(), target["labels"], target["parts"], reference["labels"],
                                       reference["parts"])["match_acc"]
        print(f"{name:>16} {seconds:8.2f} {scores['acc']:7.4f} {scores['pix_acc']:7.4f} {match:9.4f} {part:8.4f}")

    # limits: 5,000 regions (a grid of 27 x 16 px cells with 1-px lines) and no closed region
    grid = np.zeros((1080, 1920), np.int64)
    cell_rows, cell_cols = np.arange(1080) // 17, np.arange(1920) // 27
    grid[:] = cell_rows[:, None] * 72 + cell_cols[None, :] + 1
    grid[np.arange(1080) % 17 == 16, :] = 0
    grid[:, np.arange(1920) % 27 == 26] = 0
    colour = np.where(grid[..., None] > 0, np.uint8(200), np.uint8(0)).repeat(3, axis=2)
    many = {"labels": grid, "colour": colour}
    blank = {"labels": np.zeros((1080, 1920), np.int64), "colour": np.full((1080, 1920, 3), 255, np.uint8)}
    for label, pair in ((f"{len(np.unique(grid)) - 1} regions", (many, many)), ("no closed region", (many, blank))):
        for name in (n for n in names if n.startswith("match-")):
            output, seconds = timed(load_model(name), batch_of(*pair), 1)
            answered = int((output.component_matches[0] >= 0).sum())
            print(f"{label:>16} {name:>12} {seconds:8.2f} s, {answered} regions matched")


if __name__ == "__main__":
    main()
