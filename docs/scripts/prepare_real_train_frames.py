"""Unpack single-shot clips of ``shared/data/real-train`` into frame folders for ``bench train --data frames:...``.

Writes OUT/<clip>/<index>.png (one sub-folder per shot) **outside the repository** (the frames are
copyrighted; never commit them or anything built from them except trained weights). Used for the shipped
``shi-warp`` weights (baselines/pretrained/MODEL_CARD.md)::

    python docs/scripts/prepare_real_train_frames.py ../shared/data/real-train DATA/real-train-frames

Only clips that are one shot (per the folder's README) are taken, with their crop boxes; held copies of a
drawing (mean absolute difference to the last kept frame under 2 of 255 levels) are dropped, so consecutive
frames are consecutive drawings, as the Shi et al. clips (``pairs=kref``) expect. Nothing of ``shared/data/real``
(the evaluation material) is read.
"""

from __future__ import annotations

import os
import sys

import av
import cv2
import numpy as np

SAKUGA = "KytraScript_SakugaDataset/assets"
ANITA = "zhenglinpan_AnitaDataset/assets"
#: (output name, path under real-train, crop box x0, y0, x1, y1 or None)
CLIPS = [
    ("sakuga-bluefat", f"{SAKUGA}/gif/bluefat_and_his_friends-Scene-0011_1_fps14.gif", None),
    ("sakuga-miraiinai", f"{SAKUGA}/gif/miraiinaimiraiwawatashigahoshikunainnda-Scene-0011_1_fps14.gif", None),
    ("sakuga-naruto", f"{SAKUGA}/gif/naruto_doushida-Scene-0101_1_fps14.gif", None),
    ("sakuga-sakura", f"{SAKUGA}/gif/sakura.gif", (52, 0, 373, 240)),
    ("sakuga-118197", f"{SAKUGA}/gif_taxonomy/118197-Scene-0101_1_fps10.gif", None),
    ("sakuga-191848", f"{SAKUGA}/gif_taxonomy/191848-Scene-0011_1_fps10.gif", None),
    ("sakuga-216931", f"{SAKUGA}/gif_taxonomy/216931-Scene-0011_1_fps10.gif", None),
    ("sakuga-140633", "KytraScript_SakugaDataset/download/download/140633.mp4", None),
    ("anita-02", f"{ANITA}/02.gif", None),
    ("anita-00161", f"{ANITA}/00161_1_fps10.gif", None),
    ("anita-071", f"{ANITA}/071_1_fps10.gif", None),
]
HELD_DIFFERENCE = 2.0


def decode(path: str):
    """RGB uint8 frames of a GIF or video (PyAV)."""
    with av.open(path) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def main(real_train: str, out: str) -> None:
    for name, relative, box in CLIPS:
        path = os.path.join(real_train, relative)
        if not os.path.isfile(path):
            print(f"skip {relative}: not found")
            continue
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        kept, last = 0, None
        for rgb in decode(path):
            if box is not None:
                x0, y0, x1, y1 = box
                rgb = rgb[y0:y1, x0:x1]
            if last is not None and np.abs(rgb.astype(np.int16) - last).mean() < HELD_DIFFERENCE:
                continue
            last = rgb.astype(np.int16)
            cv2.imwrite(os.path.join(folder, f"{kept}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            kept += 1
        print(f"{name}: {kept} distinct drawings")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
