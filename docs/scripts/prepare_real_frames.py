"""Unpack the real shot clips of ``shared/data/real`` into frame folders for ``bench train --data frames:...``.

Writes OUT/<clip>/<index>.png (one sub-folder per shot) **outside the repository** (the frames are
copyrighted; never commit them or anything built from them except trained weights). Used for the shipped
CMFT weights (baselines/weights/MODEL_CARD.md):

    python docs/scripts/prepare_real_frames.py ../shared/data/real runs/real-frames

* ``shot-clips/tre-net/*.mp4``: the leftmost panel (x 0-409 of 2048x512) of every decoded frame.
* ``shot-clips/eisai/*.mp4``: the input panel (``panels.json`` crop box) at the frames where it changes
  (one frame per drawing; held copies dropped).
* ``frame-pairs/assets/*.png``: files sharing a prefix (``X_frame1``/``X_frame3``, ``X_00-00``/``X_00-01``,
  ``frame0001_05``...) form one folder.
``colour-shots/lvcd_sample_1`` is deliberately left out: it is the held-out real evaluation shot.
"""

from __future__ import annotations

import json
import os
import re
import sys

import cv2


def frames_of(video: str):
    capture = cv2.VideoCapture(video)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        yield frame
    capture.release()


def write(folder: str, frames) -> int:
    os.makedirs(folder, exist_ok=True)
    count = 0
    for count, frame in enumerate(frames, start=1):
        cv2.imwrite(os.path.join(folder, f"{count - 1}.png"), frame)
    return count


def main(real: str, out: str) -> None:
    tre = os.path.join(real, "shot-clips", "tre-net")
    for name in sorted(os.listdir(tre)):
        if name.endswith(".mp4"):
            n = write(os.path.join(out, "tre-" + name[:-4]), (f[:, :410] for f in frames_of(os.path.join(tre, name))))
            print(f"tre-net {name}: {n} frames")
    eisai = os.path.join(real, "shot-clips", "eisai")
    panels = json.load(open(os.path.join(eisai, "panels.json")))
    for name, info in sorted(panels.items()):
        x0, y0, x1, y1 = info["input_panel_box_xyxy"]
        keep = set(info["frame_indices_where_input_panel_changes"])
        chosen = (f[y0:y1, x0:x1] for i, f in enumerate(frames_of(os.path.join(eisai, name))) if i in keep)
        n = write(os.path.join(out, "eisai-" + name[:-4]), chosen)
        print(f"eisai {name}: {n} distinct drawings")
    assets = os.path.join(real, "frame-pairs", "assets")
    groups: dict[str, list[str]] = {}
    for name in sorted(os.listdir(assets)):
        if name.endswith(".png"):
            prefix = re.sub(r"(_frame\d+|_\d\d-\d\d|_\d\d)\.png$", "", name)
            groups.setdefault(prefix, []).append(name)
    for prefix, names in groups.items():
        if len(names) >= 2:
            n = write(os.path.join(out, "pair-" + prefix.replace(".", "_")),
                      (cv2.imread(os.path.join(assets, f)) for f in names))
            print(f"frame-pairs {prefix}: {n} frames")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
