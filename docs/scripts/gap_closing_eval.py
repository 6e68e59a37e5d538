"""How well does gap closing restore regions when strokes are broken?

    python docs/scripts/gap_closing_eval.py [--seeds 10] [--holes 30] [--hole 5]

Takes the generator's closed line art, erases ``--holes`` random ``--hole`` x ``--hole`` squares centred on line
pixels (gaps of about that width), then labels components with ``close_gaps(max_gap=G)`` for several G. A true
region (SynthFrame.labels id, >= 12 px, one per connected piece) counts as recovered when some component overlaps
it with IoU >= 0.9. Prints the recovered fraction per G, for the intact and the broken line art.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage

from dataprep.components import FOUR_CONNECTED, close_gaps, label_components
from dataprep.synth import SynthClip, SynthConfig


def break_strokes(lines: np.ndarray, holes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    broken = lines.copy()
    on_line = np.argwhere(lines)
    for row, col in on_line[rng.choice(len(on_line), size=min(holes, len(on_line)), replace=False)]:
        broken[max(row - size // 2, 0):row - size // 2 + size, max(col - size // 2, 0):col - size // 2 + size] = False
    return broken


def recovered_fraction(labels: np.ndarray, truth: np.ndarray, min_area: int = 12) -> tuple[int, int]:
    found = total = 0
    for region_id in np.unique(truth[truth > 0]):
        pieces, n = ndimage.label(truth == region_id, structure=FOUR_CONNECTED)
        for piece in range(1, n + 1):
            mask = pieces == piece
            area = int(mask.sum())
            if area < min_area:
                continue
            total += 1
            ids, counts = np.unique(labels[mask], return_counts=True)
            best = ids[counts.argmax()]
            if best == 0:
                continue
            union = area + int((labels == best).sum()) - int(counts.max())
            found += counts.max() / union >= 0.9
    return found, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--holes", type=int, default=30)
    parser.add_argument("--hole", type=int, default=5)
    parser.add_argument("--gaps", type=float, nargs="+", default=[0, 4, 8, 12, 16])
    args = parser.parse_args()
    results = {(kind, gap): [0, 0] for kind in ("intact", "broken") for gap in args.gaps}
    for seed in range(args.seeds):
        frame = next(iter(SynthClip(SynthConfig(width=256, height=256, shots=1, shot_length=(2, 2),
                                                seed=seed)).frames()))
        lines = frame.line_art < 128
        broken = break_strokes(lines, args.holes, args.hole, np.random.default_rng(seed))
        for kind, art in (("intact", lines), ("broken", broken)):
            for gap in args.gaps:
                found, total = recovered_fraction(label_components(close_gaps(art, gap)), frame.labels)
                results[kind, gap][0] += found
                results[kind, gap][1] += total
    for (kind, gap), (found, total) in results.items():
        print(f"{kind:6s} max_gap {gap:4.0f}: regions recovered {found / total:.3f} ({found}/{total})")


if __name__ == "__main__":
    main()
