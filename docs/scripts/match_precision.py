"""Precision/recall of dataprep.components.match_components against the procedural generator's truth.

    python docs/scripts/match_precision.py [--seeds 8] [--size 256] [--extractor xdog] [--ambiguity-ratio 0.3]
                                           [--max-gap 8]

For each seed: a 2-shot clip of 8 frames per shot; frame pairs (0, 3) and (2, 7) of each shot. A component's true
part is the generator region id covering most of its pixels (SynthFrame.labels). A predicted pair is correct when
both components have the same true part. Recall = correct pairs / components of frame b (>= min_area pixels)
whose true part also covers a component of frame a (an upper bound on what any matcher could pair).
"""

from __future__ import annotations

import argparse

import numpy as np

from dataprep.components import extract_components, match_components
from dataprep.sketch.extractors import EXTRACTORS
from dataprep.synth import SynthClip, SynthConfig


def majority_region(labels: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    out = {}
    for component in np.unique(labels[labels > 0]):
        ids, counts = np.unique(truth[labels == component], return_counts=True)
        out[int(component)] = int(ids[counts.argmax()])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--extractor", default="truth", help="'truth' (generator line art) or an extractor name")
    parser.add_argument("--min-area", type=int, default=12)
    parser.add_argument("--ambiguity-ratio", type=float, default=0.3)
    parser.add_argument("--max-gap", type=float, default=8.0)
    args = parser.parse_args()
    extractor = None if args.extractor == "truth" else EXTRACTORS.create(args.extractor)
    correct = wrong = possible = 0
    for seed in range(args.seeds):
        clip = SynthClip(SynthConfig(width=args.size, height=args.size, shots=2, shot_length=(8, 8), seed=seed))
        frames = list(clip.frames())
        for shot in range(2):
            in_shot = [f for f in frames if f.shot == shot]
            for fa, fb in [(in_shot[0], in_shot[3]), (in_shot[2], in_shot[7])]:
                sides = []
                for f in (fa, fb):
                    sketch = f.line_art if extractor is None else extractor(f.image)
                    labels, comps = extract_components(sketch, f.image, max_gap=args.max_gap)
                    sides.append(({c.id: c for c in comps}, majority_region(labels, f.labels)))
                (comps_a, region_a), (comps_b, region_b) = sides
                for id_a, id_b in match_components(list(comps_a.values()), list(comps_b.values()),
                                                   fa.image.shape[:2], min_area=args.min_area,
                                                   ambiguity_ratio=args.ambiguity_ratio):
                    correct += region_a[id_a] == region_b[id_b]
                    wrong += region_a[id_a] != region_b[id_b]
                parts_a = {region_a[i] for i, c in comps_a.items() if c.area >= args.min_area}
                possible += sum(c.area >= args.min_area and region_b[i] in parts_a for i, c in comps_b.items())
    pairs = correct + wrong
    print(f"line art: {args.extractor}; pairs {pairs}; precision {correct / max(pairs, 1):.4f}; "
          f"recall {correct / max(possible, 1):.4f} ({correct}/{possible})")


if __name__ == "__main__":
    main()
