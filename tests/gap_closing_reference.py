"""The plain one-by-one statement of ``dataprep.components.close_gaps``, the reference its vectorised
implementation is tested against: a breadth-first walk per tip in Python, ``scipy.ndimage.binary_dilation``
for the own stroke, endpoints taken in order with each step-2 join drawn before the next endpoint looks.
(This is the implementation celbench used before the vectorised one, kept here only as a test oracle.)"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from dataprep.components import open_ends

EIGHT = ndimage.generate_binary_structure(2, 2)


def skeleton_steps(skeleton, start, max_steps):
    steps_to = {start: 0}
    queue = deque([start])
    height, width = skeleton.shape
    while queue:
        row, col = queue.popleft()
        steps = steps_to[(row, col)]
        if steps == max_steps:
            continue
        for d_row in (-1, 0, 1):
            for d_col in (-1, 0, 1):
                nxt = (row + d_row, col + d_col)
                if (0 <= nxt[0] < height and 0 <= nxt[1] < width and skeleton[nxt]
                        and nxt not in steps_to):
                    steps_to[nxt] = steps + 1
                    queue.append(nxt)
    return steps_to


def outward_direction(steps_to, end, near=3, far=6):
    body = [pixel for pixel, steps in steps_to.items() if near <= steps <= far]
    if not body:
        return None
    direction = end - np.mean(body, axis=0)
    norm = float(np.hypot(*direction))
    return direction / norm if norm > 0 else None


def close_gaps_reference(lines, max_gap=8.0, same_stroke_factor=3.0, join_to_lines=True, max_angle=45.0,
                         pair_max_angle=75.0):
    lines = np.asarray(lines, bool)
    closed = lines.copy()
    if max_gap <= 0 or not lines.any():
        return closed
    skeleton, ends, tip_radius = open_ends(lines)  # shared: skeleton, endpoints and their widths
    if len(ends) == 0:
        return closed
    max_steps = int(np.ceil(same_stroke_factor * max_gap))
    canvas = closed.view(np.uint8)
    walks = {}

    def steps_from(i):
        if i not in walks:
            walks[i] = skeleton_steps(skeleton, (int(ends[i, 0]), int(ends[i, 1])), max_steps)
        return walks[i]

    def draw(a, b):
        cv2.line(canvas, (int(a[1]), int(a[0])), (int(b[1]), int(b[0])), 1, 1, cv2.LINE_8)

    candidates = []
    for a, b in cKDTree(ends).query_pairs(max_gap + 1 + 2 * float(tip_radius.max())):
        gap = float(np.hypot(*(ends[a] - ends[b]))) - 1 - tip_radius[a] - tip_radius[b]
        if gap <= max_gap:
            candidates.append((gap, min(a, b), max(a, b)))
    pair_cos = float(np.cos(np.radians(pair_max_angle)))

    def faces(tip, other):
        direction = outward_direction(steps_from(tip), ends[tip])
        join = (ends[other] - ends[tip]).astype(np.float64)
        return direction is None or join @ direction >= pair_cos * float(np.hypot(*join))

    used = set()
    for _, a, b in sorted(candidates):
        if a in used or b in used or (int(ends[b, 0]), int(ends[b, 1])) in steps_from(a):
            continue
        if faces(a, b) and faces(b, a):
            used.update((a, b))
            draw(ends[a], ends[b])
    if join_to_lines:
        cos_limit = float(np.cos(np.radians(max_angle)))
        for i in range(len(ends)):
            if i in used:
                continue
            end = ends[i]
            direction = outward_direction(steps_from(i), end)
            if direction is None:
                continue
            half = max(max_steps, int(np.ceil(max_gap + tip_radius[i])) + 2)
            top, left = max(end[0] - half, 0), max(end[1] - half, 0)
            window = closed[top:end[0] + half + 1, left:end[1] + half + 1]
            seed = np.zeros_like(window)
            seed[end[0] - top, end[1] - left] = True
            own = ndimage.binary_dilation(seed, EIGHT, iterations=max_steps, mask=window)
            targets = np.argwhere(window & ~own) + (top, left)
            if len(targets) == 0:
                continue
            offsets = targets - end
            distance = np.hypot(offsets[:, 0], offsets[:, 1])
            ok = (distance - 1 - tip_radius[i] <= max_gap) & ((offsets @ direction) >= cos_limit * distance)
            if ok.any():
                draw(end, targets[np.flatnonzero(ok)[np.argmin(distance[ok])]])
    return closed
