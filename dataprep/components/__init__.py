"""Line-enclosed components of a sketch, their features, and certain correspondences between two frames.

Follows the component pipeline of the Cinnamon papers (Dang et al., SIGGRAPH 2020 posters, "Correspondence
Neural Network for Line Art Colorization"; Do et al., ICPR 2020, "Anime Sketch Colorization by Component-based
Matching"):

1. :func:`close_gaps`: open strokes are closed first (Dang et al. use Fourey et al. 2018): the line art is
   skeletonised, skeleton endpoints are found, and pairs of endpoints closer than ``max_gap`` that are not the
   two ends of one short stroke are joined by a straight 1-px line.
2. :func:`label_components`: connected regions of non-line pixels, 4-connected (the dual of 8-connected lines,
   so a diagonal 1-px stroke separates regions), as a uint16 label map with 0 on line pixels.
3. :func:`component_features`: per component area, centroid, bounding box, the 7 Hu moments (Dang et al. use
   Hu moments as shape features) and the mean colour of the colour frame over the component.
4. :func:`match_components`: ground-truth correspondences between the components of two frames of a shot from
   colour, shape and position, "keeping only certainly correct matches" (Dang et al., section 2): same mean colour
   within a tolerance, bounded motion and size change, and a mutual-best, unambiguous match on a shape+position
   cost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from dataprep.errors import CelbenchError
from dataprep.field import euclidean_distance

#: Sketch pixels darker than this (0..255) are line pixels.
LINE_THRESHOLD = 128
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
EIGHT_CONNECTED = ndimage.generate_binary_structure(2, 2)


def line_mask(sketch: np.ndarray, threshold: int = LINE_THRESHOLD) -> np.ndarray:
    """(H, W) uint8 sketch (0 = line, 255 = paper) -> (H, W) bool, True on line pixels."""
    sketch = np.asarray(sketch)
    if sketch.ndim != 2 or sketch.dtype != np.uint8:
        raise CelbenchError(f"expected an (H, W) uint8 sketch, got shape {sketch.shape} dtype {sketch.dtype}")
    return sketch < threshold


def skeleton_endpoints(skeleton: np.ndarray) -> np.ndarray:
    """(N, 2) int (row, col) of skeleton pixels with exactly one 8-neighbour on the skeleton."""
    skeleton = np.asarray(skeleton, bool)
    # 3x3 box sum (the pixel and its 8 neighbours; outside the frame counts 0): exact small integers.
    neighbours = cv2.filter2D(skeleton.view(np.uint8), -1, np.ones((3, 3), np.float32),
                              borderType=cv2.BORDER_CONSTANT)
    return np.argwhere(skeleton & (neighbours == 2))


def _tip_half_widths(lines: np.ndarray, ends: np.ndarray, radius: int = 6) -> np.ndarray:
    """Euclidean distance from each of ``ends`` (line pixels) to the nearest paper pixel; the frame border is line.

    Equal to ``ndimage.distance_transform_edt(np.pad(lines, 1, constant_values=True))`` at ``ends`` (what it
    was computed with before; :func:`dataprep.field.euclidean_distance` gives the same values), but only looks at a ``radius`` window around each tip: a paper pixel found at
    distance <= ``radius`` is the nearest one (anything outside the window is farther); tips of wider strokes
    fall back to the full transform.
    """
    if len(ends) == 0:
        return np.zeros(0)
    padded = np.pad(lines, radius, constant_values=True)
    offsets = np.stack(np.mgrid[-radius:radius + 1, -radius:radius + 1], axis=-1).reshape(-1, 2)
    squared = (offsets ** 2).sum(axis=1)
    centre = ends + radius
    paper = ~padded[centre[:, None, 0] + offsets[None, :, 0], centre[:, None, 1] + offsets[None, :, 1]]
    nearest = np.where(paper, squared[None, :], np.iinfo(np.int64).max).min(axis=1)
    found = nearest <= radius * radius
    widths = np.sqrt(np.where(found, nearest, 0).astype(np.float64))
    if not found.all():
        full = euclidean_distance(np.pad(lines, 1, constant_values=True))[1:-1, 1:-1]
        widths[~found] = full[ends[~found, 0], ends[~found, 1]]
    return widths


def _skeleton_steps(skeleton: np.ndarray, start: tuple[int, int], max_steps: int,
                    lookup: bytes | None = None) -> dict[tuple[int, int], int]:
    """Skeleton pixels within ``max_steps`` 8-connected steps of ``start`` -> their step count (breadth-first).

    ``lookup``: ``np.pad(skeleton, 1).tobytes()``, made once per frame by the caller (bytes indexing is several
    times faster than numpy scalar indexing); the padding's zeros stand for the outside of the frame.
    """
    height, width = skeleton.shape
    if lookup is None:
        lookup = np.pad(np.asarray(skeleton, bool), 1).tobytes()
    stride = width + 2
    neighbours = [(d_row, d_col, d_row * stride + d_col) for d_row in (-1, 0, 1) for d_col in (-1, 0, 1)]
    steps_to = {start: 0}
    queue = deque([(start[0], start[1], (start[0] + 1) * stride + start[1] + 1)])
    while queue:
        row, col, flat = queue.popleft()
        steps = steps_to[(row, col)]
        if steps == max_steps:
            continue
        for d_row, d_col, d_flat in neighbours:
            if lookup[flat + d_flat]:
                nxt = (row + d_row, col + d_col)
                if nxt not in steps_to:
                    steps_to[nxt] = steps + 1
                    queue.append((nxt[0], nxt[1], flat + d_flat))
    return steps_to


def _outward_direction(steps_to: dict[tuple[int, int], int], end: np.ndarray,
                       near: int = 3, far: int = 6) -> np.ndarray | None:
    """Unit vector from the stroke's body towards its tip (mean of skeleton pixels ``near..far`` steps back)."""
    body = [pixel for pixel, steps in steps_to.items() if near <= steps <= far]
    if not body:
        return None
    direction = end - np.mean(body, axis=0)
    norm = float(np.hypot(*direction))
    return direction / norm if norm > 0 else None


def close_gaps(lines: np.ndarray, max_gap: float = 8.0, same_stroke_factor: float = 3.0,
               join_to_lines: bool = True, max_angle: float = 45.0, pair_max_angle: float = 75.0) -> np.ndarray:
    """Close small gaps in line art (after Fourey et al. 2018, which Dang et al. 2020 use before labelling).

    1. Endpoints (skeleton pixels with one 8-neighbour) of ``skimage.morphology.skeletonize(lines)`` are paired
       greedily, closest first, each endpoint at most once. A pair is joined by a straight 8-connected 1-px line
       when the gap between the strokes is at most ``max_gap`` pixels (the tip distance, minus 1, minus each
       stroke's half-width at its tip: the number of empty pixels between two 1-px stroke ends on a row) and the
       two tips are not within ``same_stroke_factor * max_gap`` steps of each other along the skeleton
       (otherwise they are the two ends of one short stroke and joining them would invent a region), and the
       join leaves each tip within ``pair_max_angle`` degrees of its stroke's outward direction (so two strokes
       ending side by side are not tied together; tips of strokes too short to have a direction pass).
    2. With ``join_to_lines``, each endpoint left unpaired is joined to the nearest line pixel that is within
       ``max_gap`` of it, lies within ``max_angle`` degrees of the stroke's outward direction, and is not part of
       its own stroke (not reachable from the tip through line pixels in ``same_stroke_factor * max_gap``
       steps). This closes strokes that stop short of another stroke, and T-junctions broken at the junction.

    Tips within about a stroke half-width of the frame border are not open ends: the stroke continues outside the
    picture. Fourey et al. additionally weigh candidate joins by curvature; this is a simpler, local version.

    Args:
        lines: (H, W) bool, True on line pixels.
        max_gap: largest gap in pixels that is closed (0 disables gap closing).
        same_stroke_factor: see above.
        join_to_lines: also join unpaired endpoints to nearby strokes (step 2).
        max_angle: half-angle in degrees of the cone in which step 2 looks for a stroke.
        pair_max_angle: largest angle in degrees between a pair join and either tip's outward direction.

    Returns:
        (H, W) bool line mask with the joins added (``lines`` itself is not modified).
    """
    lines = np.asarray(lines, bool)
    closed = lines.copy()
    if max_gap <= 0 or not lines.any():
        return closed
    skeleton = skeletonize(lines)
    ends = skeleton_endpoints(skeleton)
    # Distance to the nearest paper pixel; the frame border counts as line, so tips at the border stay "inside".
    tip_half_width = _tip_half_widths(lines, ends)
    # A stroke whose tip touches the frame border continues outside the picture: it is not an open end.
    height, width = lines.shape
    border_distance = np.min([ends[:, 0], ends[:, 1], height - 1 - ends[:, 0], width - 1 - ends[:, 1]], axis=0) \
        if len(ends) else np.zeros(0)
    keep = border_distance > tip_half_width + 1  # skeletons stop short of the border by about a half-width
    ends, tip_half_width = ends[keep], tip_half_width[keep]
    if len(ends) == 0:
        return closed
    # Skeleton tips sit about half a stroke width inside the stroke ends; subtracting that radius (0 for
    # 1-px strokes) makes the distance the empty span between the drawn strokes, whatever their width.
    tip_radius = tip_half_width - 1.0
    max_steps = int(np.ceil(same_stroke_factor * max_gap))
    canvas = closed.view(np.uint8)
    steps_cache: dict[int, dict[tuple[int, int], int]] = {}
    lookup = np.pad(skeleton, 1).tobytes()

    def steps_from(index: int) -> dict[tuple[int, int], int]:
        if index not in steps_cache:
            steps_cache[index] = _skeleton_steps(skeleton, (int(ends[index, 0]), int(ends[index, 1])), max_steps,
                                                 lookup)
        return steps_cache[index]

    def draw(a: np.ndarray, b: np.ndarray) -> None:
        cv2.line(canvas, (int(a[1]), int(a[0])), (int(b[1]), int(b[0])), 1, 1, cv2.LINE_8)

    used: set[int] = set()
    search = max_gap + 1 + 2 * float(tip_radius.max())
    candidates = []
    for a, b in cKDTree(ends).query_pairs(search):
        gap = float(np.hypot(*(ends[a] - ends[b]))) - 1 - tip_radius[a] - tip_radius[b]
        if gap <= max_gap:
            candidates.append((gap, min(a, b), max(a, b)))
    pair_cos_limit = float(np.cos(np.radians(pair_max_angle)))

    def faces(tip: int, other: int) -> bool:
        direction = _outward_direction(steps_from(tip), ends[tip])
        join = (ends[other] - ends[tip]).astype(np.float64)
        return direction is None or join @ direction >= pair_cos_limit * float(np.hypot(*join))

    for _, a, b in sorted(candidates):
        if a in used or b in used or (int(ends[b, 0]), int(ends[b, 1])) in steps_from(a):
            continue
        if not (faces(a, b) and faces(b, a)):
            continue
        used.update((a, b))
        draw(ends[a], ends[b])

    if join_to_lines:
        cos_limit = float(np.cos(np.radians(max_angle)))
        for index in range(len(ends)):
            if index in used:
                continue
            end = ends[index]
            direction = _outward_direction(steps_from(index), end)
            if direction is None:
                continue  # a dot or a stroke too short to have a direction
            half = max(max_steps, int(np.ceil(max_gap + tip_radius[index])) + 2)
            top, left = max(end[0] - half, 0), max(end[1] - half, 0)
            window = closed[top:end[0] + half + 1, left:end[1] + half + 1]
            seed = np.zeros_like(window)
            seed[end[0] - top, end[1] - left] = True
            own_stroke = ndimage.binary_dilation(seed, EIGHT_CONNECTED, iterations=max_steps, mask=window)
            targets = np.argwhere(window & ~own_stroke) + (top, left)
            if len(targets) == 0:
                continue
            offsets = targets - end
            distance = np.hypot(offsets[:, 0], offsets[:, 1])
            gap = distance - 1 - tip_radius[index]
            ok = (gap <= max_gap) & ((offsets @ direction) >= cos_limit * distance)
            if ok.any():
                draw(end, targets[np.flatnonzero(ok)[np.argmin(distance[ok])]])
    return closed


def label_components(lines: np.ndarray) -> np.ndarray:
    """(H, W) bool line mask -> (H, W) uint16 labels: 0 on lines, 1..N on 4-connected non-line regions.

    Labels are numbered in raster order of each region's first pixel (as ``scipy.ndimage.label``, which this
    used before; ``cv2.connectedComponents`` gives the same numbering and is what runs now).
    """
    paper = np.ascontiguousarray(~np.asarray(lines, bool))
    if paper.size == 0:
        return np.zeros(paper.shape, np.uint16)
    count, labels = cv2.connectedComponents(paper.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    if count - 1 > np.iinfo(np.uint16).max:
        raise CelbenchError(f"{count - 1} components do not fit a uint16 label map; the sketch is too fragmented")
    return labels.astype(np.uint16)


@dataclass(frozen=True)
class Component:
    """Features of one component (pixel coordinates: row = y down, col = x right).

    id: label in the label map (1..N). area: pixels. centroid: (row, col) mean pixel position.
    bbox: (min_row, min_col, max_row, max_col), max exclusive (as skimage regionprops).
    hu: the 7 Hu moments of the binary component mask from ``cv2.HuMoments`` (x = column, y = row; hu[6] has the
    opposite sign of skimage's ``moments_hu`` on the same mask, which uses (row, col)).
    mean_rgb: mean colour (R, G, B) in 0..255 of the colour frame over the component.
    """

    id: int
    area: int
    centroid: tuple[float, float]
    bbox: tuple[int, int, int, int]
    hu: tuple[float, ...]
    mean_rgb: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def component_features(labels: np.ndarray, rgb: np.ndarray) -> list[Component]:
    """Features of components 1..max(labels) that are present, in id order.

    Args:
        labels: (H, W) integer label map, 0 = line.
        rgb: (H, W, 3) uint8 RGB colour frame.
    """
    columns = component_columns(labels, rgb)
    return [Component(id=i, area=a, centroid=tuple(c), bbox=tuple(b), hu=tuple(h), mean_rgb=tuple(m))
            for i, a, c, b, h, m in zip(*(columns[k] for k in ("id", "area", "centroid", "bbox", "hu",
                                                               "mean_rgb")))]


def component_columns(labels: np.ndarray, rgb: np.ndarray) -> dict[str, list]:
    """:func:`component_features` as columns of Python values (``id, area, centroid, bbox, hu, mean_rgb``).

    Vectorised over the horizontal runs of equal labels (a few thousand on a 256 x 256 cel frame, not 65536
    pixels, and no per-component pass over the image): per run, the closed-form sums of ``x**p`` over its
    columns give exact integer raw moments of every component mask in its bounding box's coordinates, prefix
    sums along rows give its colour sums; then OpenCV's own formulas (``cv::moments``' central and normalised
    moments, ``cv::HuMoments``) run in the same order of float operations, so ``hu`` is bit-identical to
    ``cv2.HuMoments(cv2.moments(mask, binaryImage=True))`` of the cropped mask, as computed before.
    """
    labels = np.asarray(labels)
    rgb = np.asarray(rgb)
    if rgb.shape[:2] != labels.shape or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise CelbenchError(f"colour frame {rgb.shape} does not match label map {labels.shape}")
    columns: dict[str, list] = {"id": [], "area": [], "centroid": [], "bbox": [], "hu": [], "mean_rgb": []}
    height, width = labels.shape
    if labels.size == 0:
        return columns
    change = np.empty(labels.shape, bool)
    change[:, 0] = True  # every row starts a run, so runs never span rows
    np.not_equal(labels[:, 1:], labels[:, :-1], out=change[:, 1:])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], labels.size)
    run_label = labels.ravel()[starts].astype(np.int64)
    keep = run_label > 0
    starts, ends, run_label = starts[keep], ends[keep], run_label[keep]
    if len(run_label) == 0:
        return columns
    row = starts // width
    first_col = starts - row * width
    stop_col = ends - row * width  # exclusive
    n = int(run_label.max()) + 1
    present, first_run = np.unique(run_label, return_index=True)  # runs are in raster order
    last_run = len(run_label) - 1 - np.unique(run_label[::-1], return_index=True)[1]
    top = np.zeros(n, np.int64)
    bottom = np.zeros(n, np.int64)
    left = np.full(n, width, np.int64)
    right = np.zeros(n, np.int64)
    top[present] = row[first_run]
    bottom[present] = row[last_run] + 1
    np.minimum.at(left, run_label, first_col)
    np.maximum.at(right, run_label, stop_col)

    # Local coordinates (cv2.moments' x = column, y = row, from the crop's corner); exact int64 arithmetic.
    y = row - top[run_label]
    a = first_col - left[run_label]
    b = stop_col - left[run_label]

    def power_sums(k: np.ndarray) -> tuple[np.ndarray, ...]:
        """sum of x**p over x in 0..k-1 for p = 0..3 (Faulhaber)."""
        s1 = k * (k - 1) // 2
        return k, s1, (k - 1) * k * (2 * k - 1) // 6, s1 * s1

    s0, s1, s2, s3 = (hi - lo for hi, lo in zip(power_sums(b), power_sums(a)))
    y2 = y * y

    def total(weights: np.ndarray) -> np.ndarray:
        # integers below 2**53 summed in float64: exact whatever the order
        return np.bincount(run_label, weights=weights, minlength=n)

    m00, m10, m01 = total(s0), total(s1), total(s0 * y)
    m20, m11, m02 = total(s2), total(s1 * y), total(s0 * y2)
    m30, m21, m12, m03 = total(s3), total(s2 * y), total(s1 * y2), total(s0 * y2 * y)
    hu = _hu_moments(*(m[present] for m in (m00, m10, m01, m20, m11, m02, m30, m21, m12, m03)))
    size = m00[present]
    # centroid in frame coordinates: exact sums / area
    sum_row = m01[present] + top[present] * size
    sum_col = m10[present] + left[present] * size
    # colour sums of the runs from the integral image (exact integers: int32 while they cannot overflow)
    integral = cv2.integral(np.ascontiguousarray(rgb, dtype=np.uint8),
                            sdepth=cv2.CV_32S if labels.size * 255 < 2**31 else cv2.CV_64F)
    run_colour = ((integral[row + 1, stop_col] - integral[row + 1, first_col])
                  - (integral[row, stop_col] - integral[row, first_col]))
    colour = np.stack([total(run_colour[:, c])[present] for c in range(3)], axis=1)
    columns["id"] = present.tolist()
    columns["area"] = size.astype(np.int64).tolist()
    columns["centroid"] = np.stack([sum_row / size, sum_col / size], axis=1).tolist()
    columns["bbox"] = np.stack([top[present], left[present], bottom[present], right[present]], axis=1).tolist()
    columns["hu"] = hu.tolist()
    columns["mean_rgb"] = (colour / size[:, None]).tolist()
    return columns


def _hu_moments(m00, m10, m01, m20, m11, m02, m30, m21, m12, m03) -> np.ndarray:
    """(N, 7) Hu moments from raw moment arrays, operation for operation as OpenCV's ``cv::moments``
    (``completeMomentState``) and ``cv::HuMoments`` compute them (bit-identical results, tested)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_m00 = np.where(np.abs(m00) > np.finfo(np.float64).eps, 1.0 / np.where(m00 == 0, 1.0, m00), 0.0)
    cx = m10 * inv_m00
    cy = m01 * inv_m00
    mu20 = m20 - m10 * cx
    mu11 = m11 - m10 * cy
    mu02 = m02 - m01 * cy
    mu30 = m30 - cx * (3 * mu20 + cx * m10)
    twice_mu11 = mu11 + mu11
    mu21 = m21 - cx * (twice_mu11 + cx * m01) - cy * mu20
    mu12 = m12 - cy * (twice_mu11 + cy * m10) - cx * mu02
    mu03 = m03 - cy * (3 * mu02 + cy * m01)
    s2 = inv_m00 * inv_m00
    s3 = s2 * np.sqrt(np.abs(inv_m00))
    nu20, nu11, nu02 = mu20 * s2, mu11 * s2, mu02 * s2
    nu30, nu21, nu12, nu03 = mu30 * s3, mu21 * s3, mu12 * s3, mu03 * s3
    t0 = nu30 + nu12
    t1 = nu21 + nu03
    q0, q1 = t0 * t0, t1 * t1
    n4 = 4 * nu11
    s = nu20 + nu02
    d = nu20 - nu02
    hu = np.empty((len(m00), 7))
    hu[:, 0] = s
    hu[:, 1] = d * d + n4 * nu11
    hu[:, 3] = q0 + q1
    hu[:, 5] = d * (q0 - q1) + n4 * t0 * t1
    t0 = t0 * (q0 - 3 * q1)
    t1 = t1 * (3 * q0 - q1)
    q0 = nu30 - 3 * nu12
    q1 = 3 * nu21 - nu03
    hu[:, 2] = q0 * q0 + q1 * q1
    hu[:, 4] = q0 * t0 + q1 * t1
    hu[:, 6] = q1 * t0 - q0 * t1
    return hu


def features_table(components: list[Component]) -> dict[str, np.ndarray]:
    """Column arrays of :func:`component_features` output, for tabular storage (one row per component).

    id uint16 (N,), area int64 (N,), centroid float64 (N, 2), bbox int32 (N, 4), hu float64 (N, 7),
    mean_rgb float32 (N, 3).
    """
    return {
        "id": np.array([c.id for c in components], np.uint16),
        "area": np.array([c.area for c in components], np.int64),
        "centroid": np.array([c.centroid for c in components], np.float64).reshape(-1, 2),
        "bbox": np.array([c.bbox for c in components], np.int32).reshape(-1, 4),
        "hu": np.array([c.hu for c in components], np.float64).reshape(-1, 7),
        "mean_rgb": np.array([c.mean_rgb for c in components], np.float32).reshape(-1, 3),
    }


def extract_labels(sketch: np.ndarray, max_gap: float = 8.0, line_threshold: int = LINE_THRESHOLD) -> np.ndarray:
    """Sketch -> uint16 label map after gap closing (the first half of :func:`extract_components`)."""
    return label_components(close_gaps(line_mask(sketch, line_threshold), max_gap))


def extract_components(sketch: np.ndarray, rgb: np.ndarray, max_gap: float = 8.0,
                       line_threshold: int = LINE_THRESHOLD) -> tuple[np.ndarray, list[Component]]:
    """Sketch + colour frame -> (uint16 label map after gap closing, component features)."""
    labels = extract_labels(sketch, max_gap, line_threshold)
    return labels, component_features(labels, rgb)


def log_hu(hu: np.ndarray) -> np.ndarray:
    """Hu moments on a log scale, ``sign(h) * log10(|h|)`` (0 stays 0), so their magnitudes are comparable."""
    hu = np.asarray(hu, np.float64)
    out = np.zeros_like(hu)
    nonzero = np.abs(hu) > 1e-30
    out[nonzero] = np.sign(hu[nonzero]) * np.log10(np.abs(hu[nonzero]))
    return out


def match_components(components_a: list[Component], components_b: list[Component], shape: tuple[int, int],
                     colour_tolerance: float = 12.0, min_area: int = 12, max_shift: float = 0.2,
                     max_area_ratio: float = 2.0, ambiguity_ratio: float = 0.3,
                     position_weight: float = 1.0, area_weight: float = 1.0,
                     shape_weight: float = 0.25) -> list[tuple[int, int]]:
    """Certain correspondences between the components of two frames of one shot.

    A pair (a, b) is a candidate when both have at least ``min_area`` pixels, their mean colours differ by at
    most ``colour_tolerance`` in every channel (flat cel paint: one part has one colour; the tolerance absorbs
    compression noise and anti-aliased borders), their centroids are at most ``max_shift`` * image diagonal
    apart, and their areas differ by at most a factor ``max_area_ratio``. Candidates are scored by::

        cost = position_weight * |centroid_a - centroid_b| / (0.1 * diagonal)
             + area_weight * |log2(area_a / area_b)|
             + shape_weight * mean(|log_hu(a)[:6] - log_hu(b)[:6]|)

    (hu[6] is skipped: it flips sign under reflection and is numerically tiny for near-symmetric shapes). A pair
    is kept only when each is the other's lowest-cost candidate and, on both sides, the runner-up candidate
    (if any) costs more than ``best / ambiguity_ratio``, i.e. the match is unambiguous. Symmetric same-colour
    parts (two eyes, two legs) are the main source of wrong matches; the default 0.3 keeps precision above 0.95
    on the procedural generator's ground truth (docs/stages.md gives the measurement); 0 keeps only pairs whose
    colour is unique among the candidates on both sides.

    Args:
        components_a, components_b: features from :func:`component_features`.
        shape: (H, W) of the frames.

    Returns:
        Sorted list of (id_a, id_b) pairs, each id at most once.
    """
    return match_arrays(MatchArrays.of(components_a), MatchArrays.of(components_b), shape,
                        colour_tolerance=colour_tolerance, min_area=min_area, max_shift=max_shift,
                        max_area_ratio=max_area_ratio, ambiguity_ratio=ambiguity_ratio,
                        position_weight=position_weight, area_weight=area_weight, shape_weight=shape_weight)


@dataclass(frozen=True)
class MatchArrays:
    """What :func:`match_components` needs of one frame's components, as arrays (one row per component)."""

    id: np.ndarray  # (N,) int
    mean_rgb: np.ndarray  # (N, 3) float64
    centroid: np.ndarray  # (N, 2) float64
    area: np.ndarray  # (N,) float64
    log_hu: np.ndarray  # (N, 6) float64: log_hu(hu)[:, :6]

    @classmethod
    def of(cls, components) -> "MatchArrays":
        """From :class:`Component` objects or component-table rows (dicts with the same keys)."""
        rows = [c if isinstance(c, dict) else c.__dict__ for c in components]
        return cls(np.array([r["id"] for r in rows], np.int64).reshape(-1),
                   np.array([r["mean_rgb"] for r in rows], np.float64).reshape(-1, 3),
                   np.array([r["centroid"] for r in rows], np.float64).reshape(-1, 2),
                   np.array([r["area"] for r in rows], np.float64).reshape(-1),
                   log_hu(np.array([r["hu"] for r in rows], np.float64).reshape(-1, 7))[:, :6])


def match_arrays(a: MatchArrays, b: MatchArrays, shape: tuple[int, int], colour_tolerance: float = 12.0,
                 min_area: int = 12, max_shift: float = 0.2, max_area_ratio: float = 2.0,
                 ambiguity_ratio: float = 0.3, position_weight: float = 1.0, area_weight: float = 1.0,
                 shape_weight: float = 0.25) -> list[tuple[int, int]]:
    """:func:`match_components` on :class:`MatchArrays` (precomputed once per frame when a frame is in many
    pairs)."""
    keep_a = np.flatnonzero(a.area >= min_area)
    keep_b = np.flatnonzero(b.area >= min_area)
    if not len(keep_a) or not len(keep_b):
        return []
    diagonal = float(np.hypot(*shape))
    ids_a, ids_b = a.id[keep_a].tolist(), b.id[keep_b].tolist()
    colour_a, centre_a, area_a, hu_a = a.mean_rgb[keep_a], a.centroid[keep_a], a.area[keep_a], a.log_hu[keep_a]
    colour_b, centre_b, area_b, hu_b = b.mean_rgb[keep_b], b.centroid[keep_b], b.area[keep_b], b.log_hu[keep_b]
    colour_diff = np.abs(colour_a[:, None, :] - colour_b[None, :, :]).max(axis=2)
    shift = np.linalg.norm(centre_a[:, None, :] - centre_b[None, :, :], axis=2)
    area_log_ratio = np.abs(np.log2(area_a[:, None] / area_b[None, :]))
    shape_diff = np.abs(hu_a[:, None, :] - hu_b[None, :, :]).mean(axis=2)
    valid = ((colour_diff <= colour_tolerance) & (shift <= max_shift * diagonal)
             & (area_log_ratio <= np.log2(max_area_ratio)))
    cost = (position_weight * shift / (0.1 * diagonal) + area_weight * area_log_ratio
            + shape_weight * shape_diff)
    cost = np.where(valid, cost, np.inf)

    def unambiguous_best(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: index of the best column and whether the row's best is clearly better than its runner-up."""
        if matrix.shape[1] == 1:
            best = np.zeros(matrix.shape[0], int)
            return best, np.isfinite(matrix[:, 0])
        part = np.partition(matrix, 1, axis=1)
        best = np.argmin(matrix, axis=1)
        clear = np.isfinite(part[:, 0]) & (part[:, 0] < ambiguity_ratio * part[:, 1])
        return best, clear

    best_b, clear_a = unambiguous_best(cost)
    best_a, clear_b = unambiguous_best(cost.T)
    pairs = []
    for i in np.nonzero(clear_a)[0]:
        j = best_b[i]
        if clear_b[j] and best_a[j] == i:
            pairs.append((ids_a[i], ids_b[j]))
    return sorted(pairs)
