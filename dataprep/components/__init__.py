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

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

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


#: scikit-image's Zhang-Suen removal table (``skimage.morphology.skeletonize``, method "zhang"), one digit per
#: 8-neighbourhood code (bits 1 NW, 2 N, 4 NE, 8 E, 16 SE, 32 S, 64 SW, 128 W): a set pixel is removed by the
#: first sub-iteration if its digit has bit 1, by the second if it has bit 2. Not textbook Zhang-Suen (it also
#: removes staircase corners); :func:`skeletonize` must reproduce scikit-image's skeletons exactly, so the table
#: is theirs, checked against it by the tests.
_ZHANG_SUEN_TABLE = np.frombuffer((
    "0001001300311013000000002020303300000000300000000000000020003022"
    "0000000000000000000000000000000020000000200020003000000030003020"
    "0031001300000001000000000000000131000000000000002000000000000000"
    "2313001300000001000000000000000023010001000000003301000022002000").encode(), np.uint8) - ord("0")


def _neighbourhood_tables() -> tuple[np.ndarray, np.ndarray]:
    """(256,) bool removal tables of the two sub-iterations for a set pixel, indexed by its 8 neighbours as read
    from column bytes (see :func:`skeletonize`): bits 0-2 the west column top to bottom, 3-5 the east column,
    6 the pixel above, 7 the pixel below."""
    key = np.arange(256)
    nw, w, sw, ne, e, se, n, s = ((key >> i) & 1 for i in range(8))
    code = nw + 2 * n + 4 * ne + 8 * e + 16 * se + 32 * s + 64 * sw + 128 * w
    return tuple((_ZHANG_SUEN_TABLE[code] & step).astype(bool) for step in (1, 2))


_NEIGHBOURHOOD_TABLES = _neighbourhood_tables()


def skeletonize(lines: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) bool skeleton, the same as ``skimage.morphology.skeletonize(lines)`` (Zhang-Suen).

    scikit-image scans every pixel of the image in each of the 8-25 sub-iterations a real frame takes, though
    after the first two only a few pixels change. Here each sub-iteration looks up only candidate pixels
    (flat indices), as in scikit-image in parallel: every candidate's neighbourhood is read before any pixel of
    the sub-iteration is removed. While many pixels go, the candidates are all set pixels (the removed ones
    dropped each time); once the last two sub-iterations removed few, only the set 8-neighbours of their
    removals: any other pixel has the neighbourhood it had two sub-iterations ago, when the same rule kept it.
    Stops after two sub-iterations in a row removed nothing: a fixed point of both rules, so the skeleton is the
    one scikit-image reaches when a whole iteration removes nothing.

    The image is held as one byte per pixel for its 3-pixel column (bit 0 the pixel above, 1 the pixel, 2 the
    pixel below) in a zero-padded (H + 2, W + 2) uint8 array, so three byte reads give a whole neighbourhood.
    """
    lines = np.ascontiguousarray(lines, bool)
    height, width = lines.shape
    if not lines.any():
        return np.zeros((height, width), bool)
    stride = width + 2
    size = (height + 2) * stride
    buffer = np.zeros(size, np.uint8)
    inner = buffer.reshape(height + 2, stride)[1:height + 1, 1:width + 1]
    pixels = lines.view(np.uint8)
    np.left_shift(pixels, 1, out=inner)
    inner[1:] |= pixels[:-1]
    inner[:-1] |= pixels[1:] << 2
    neighbours = np.array([-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1], np.intp)

    def sub_iteration(candidates: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(removed (N,) bool per candidate, removed (M,) flat indices) of one sub-iteration over set pixels
        ``candidates`` (N,) intp; removes them."""
        own = buffer[candidates]
        key = buffer[candidates - 1] | (buffer[candidates + 1] << 3) | ((own & 1) << 6) | ((own & 4) << 5)
        hit = _NEIGHBOURHOOD_TABLES[step].take(key)
        removed = candidates[hit]
        buffer[removed + stride] &= 0xFE
        buffer[removed] &= 0xFD
        buffer[removed - stride] &= 0xFB
        return hit, removed

    flat = np.flatnonzero(lines)  # bool input: numpy's fast path, then moved into the padded layout
    candidates = flat + 2 * (flat // width) + stride + 1
    step, before = 0, None
    while True:
        hit, removed = sub_iteration(candidates, step)
        step ^= 1
        if before is not None:
            if not len(before) and not len(removed):
                return (inner & 2) != 0
            # listing the neighbours costs 8 entries per removal; 4 * 8 measured fastest on real frames
            if 4 * 8 * (len(before) + len(removed)) < len(candidates):
                break
        before = removed
        candidates = candidates[~hit]
    first = np.empty(size, np.intp)  # deduplicates neighbour lists without sorting
    while len(before) or len(removed):
        around = (np.concatenate((before, removed))[:, None] + neighbours).reshape(-1)
        around = around[(buffer[around] & 2) != 0]
        order = np.arange(len(around))
        first[around] = order  # whichever write of a repeated index stays, exactly one of its entries matches
        before, (_, removed) = removed, sub_iteration(around[first[around] == order], step)
        step ^= 1
    return (inner & 2) != 0


def skeleton_endpoints(skeleton: np.ndarray) -> np.ndarray:
    """(N, 2) int (row, col) of skeleton pixels with exactly one 8-neighbour on the skeleton (in raster order)."""
    skeleton = np.ascontiguousarray(skeleton, bool)
    # the pixel itself + its 8 neighbours (an unnormalised 3 x 3 box sum, exact in uint8): 2 on an endpoint
    counts = cv2.boxFilter(skeleton.view(np.uint8), -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT) \
        if skeleton.size else np.zeros(skeleton.shape, np.uint8)
    flat = np.flatnonzero((counts == 2) & skeleton)
    return np.stack(np.divmod(flat, max(skeleton.shape[1], 1)), axis=1)


def _tip_half_widths(lines: np.ndarray, ends: np.ndarray, radius: int = 6) -> np.ndarray:
    """Euclidean distance from each of ``ends`` (line pixels) to the nearest paper pixel; the frame border is line.

    Equal to ``ndimage.distance_transform_edt(np.pad(lines, 1, constant_values=True))`` at ``ends``
    (:func:`dataprep.field.euclidean_distance` gives the same values), but only looks at rings of pixels around
    each tip, nearest ring first, and stops for a tip at the first ring holding a paper pixel: most tips of thin
    strokes are settled by their four direct neighbours. Tips with no paper pixel within ``radius`` (wide
    strokes) fall back to the full transform.
    """
    if len(ends) == 0:
        return np.zeros(0)
    padded = np.pad(np.asarray(lines, bool), radius, constant_values=True)
    flat = padded.ravel()
    centre = (ends[:, 0] + radius) * padded.shape[1] + ends[:, 1] + radius
    nearest = np.zeros(len(ends), np.int64)  # squared distance to the nearest paper pixel; 0 = none found yet
    pending = np.arange(len(ends))
    for squared, offsets in _rings(radius, padded.shape[1]):
        paper = ~flat[centre[pending, None] + offsets]
        hit = paper.any(axis=1)
        nearest[pending[hit]] = squared
        pending = pending[~hit]
        if len(pending) == 0:
            break
    widths = np.sqrt(nearest.astype(np.float64))
    if len(pending):
        full = euclidean_distance(np.pad(lines, 1, constant_values=True))[1:-1, 1:-1]
        widths[pending] = full[ends[pending, 0], ends[pending, 1]]
    return widths


@lru_cache(maxsize=8)
def _rings(radius: int, stride: int) -> list[tuple[int, np.ndarray]]:
    """(squared distance, flat offsets in an image of row length ``stride``) of the pixels at each squared
    distance 1..radius**2 from a centre pixel, nearest first."""
    rows, cols = np.mgrid[-radius:radius + 1, -radius:radius + 1].reshape(2, -1)
    squared = rows ** 2 + cols ** 2
    return [(int(s), rows[squared == s] * stride + cols[squared == s])
            for s in np.unique(squared[(squared > 0) & (squared <= radius * radius)])]


# ---------------------------------------------------------------------------------------------------------------
# Bit-packed windows: the breadth-first walks of gap closing (a few hundred tips per real frame, each exploring
# up to ``same_stroke_factor * max_gap`` steps) run for all tips at once on square windows stored as 64-bit words,
# window row by window row, the tips along the last axis (contiguous), so one 8-neighbour growth step of every
# walk is a handful of numpy operations on contiguous blocks.

_ONE, _TOP = np.uint64(1), np.uint64(63)


def _pack_windows(mask: np.ndarray, centres: np.ndarray, radius: int) -> np.ndarray:
    """(2r+1, K, N) uint64, K = ceil((2r+1) / 64): the (2r+1)-square windows of the (H, W) bool ``mask`` around
    ``centres`` ((N, 2) int (row, col)); bit b of word k of window row i of window n is
    ``mask[row_n - r + i, col_n - r + 64k + b]``, 0 outside the frame and beyond column 2r."""
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    size = 2 * radius + 1
    n_words = -(-size // 64)
    padded = np.zeros((height + 2 * radius, width + 2 * radius + 64 * (n_words + 1)), bool)
    padded[radius:radius + height, radius:radius + width] = mask
    packed = np.packbits(padded, axis=1, bitorder="little").reshape(-1)
    n_bytes = packed.size // padded.shape[0]
    # every byte read as the first byte of a little-endian uint64 (an unaligned view, no copy)
    words = np.ndarray((packed.size - 7,), dtype="<u8", buffer=packed, strides=(1,))
    # the byte holding window row i / column 0 (padded coordinates: the centre's row and column)
    start = (np.arange(size) * n_bytes)[:, None] + (centres[:, 0] * n_bytes + centres[:, 1] // 8)
    shift = (centres[:, 1] % 8).astype(np.uint64)
    out = np.empty((size, n_words, len(centres)), np.uint64)
    low = np.take(words, start)
    for k in range(n_words):
        high = np.take(words, start + 8 * (k + 1))
        # (high << (64 - shift)) in two steps, as shifting a uint64 by 64 is undefined
        out[:, k] = (low >> shift) | ((high << (_TOP - shift)) << _ONE)
        low = high
    tail = size - 64 * (n_words - 1)
    if tail < 64:
        out[:, -1] &= np.uint64((1 << tail) - 1)
    return out


def _bits(words: np.ndarray, index: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """bool: bit (rows, cols) of window ``index`` of packed ``words`` (arrays broadcast together)."""
    cols = np.asarray(cols)
    word = words[rows, cols >> 6, index]
    return ((word >> (cols & 63).astype(np.uint64)) & _ONE).astype(bool)


def _unpack(words: np.ndarray, size: int) -> np.ndarray:
    """(R, K, N) packed windows -> (N, R, size) bool."""
    rows = np.ascontiguousarray(np.moveaxis(words, 2, 0)).astype("<u8", copy=False)
    bits = np.unpackbits(rows.view(np.uint8), axis=-1, bitorder="little")
    return bits[..., :size].astype(bool)


def _dilate_rows(x: np.ndarray, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """One 8-neighbour dilation of packed windows (R, K, N) (bits pushed past the window edge are dropped), into
    ``out`` (new if None; ``scratch`` is a buffer of the same shape)."""
    out = np.empty_like(x) if out is None else out
    h = np.empty_like(x) if scratch is None else scratch
    np.left_shift(x, _ONE, out=h)
    h |= x
    np.right_shift(x, _ONE, out=out)
    h |= out
    if x.shape[1] > 1:  # carries between the words of a row
        h[:, 1:] |= x[:, :-1] >> _TOP
        h[:, :-1] |= x[:, 1:] << _TOP
    np.copyto(out, h)
    out[1:] |= h[:-1]
    out[:-1] |= h[1:]
    return out


def _grow(reach: np.ndarray, mask: np.ndarray, first_step: int, last_step: int, target: int | None = None) -> None:
    """Steps ``first_step..last_step`` of breadth-first walks from the window centres, in place: after step s,
    ``reach`` holds the pixels of ``mask`` joined to the centre by an 8-connected path of at most s steps in
    ``mask`` (the pixels of ``scipy.ndimage.binary_dilation(seed, iterations=s, mask=mask)``). Only the rows a
    walk can have reached are touched.

    With ``target`` = t, only what the walk reaches in the central (2t+1)-square by ``last_step`` is kept
    exact, with every pixel on a path of at most ``last_step`` steps that ends there (a subset of the full walk:
    rows farther from the centre than such a path can go in the steps left are not grown any more).
    """
    if reach.shape[1] == 1:  # windows of at most 64 columns (gap closing's at the defaults): one word per row
        _grow_narrow(reach, mask, first_step, last_step, target)
    else:
        _grow_words(reach, mask, first_step, last_step, target)


def _grow_words(reach: np.ndarray, mask: np.ndarray, first_step: int, last_step: int,
                target: int | None = None) -> None:
    """:func:`_grow` for windows of any number of words per row."""
    n_rows, centre = reach.shape[0], reach.shape[0] // 2
    # row i + 1 of ``across``: row i of reach dilated along the row; rows 0 and n_rows + 1 stay empty
    across = np.zeros((n_rows + 2, *reach.shape[1:]), reach.dtype)
    scratch = np.empty_like(reach)
    for step in range(first_step, last_step + 1):
        # a pixel reached at this step matters if it is within target + (last_step - step) rows of the centre;
        # one row more so that those rows see all their neighbours
        span = step if target is None else min(step, target + last_step - step + 1)
        low, high = max(centre - span, 0), min(centre + span + 1, n_rows)
        source = slice(max(low - 1, 0), min(high + 1, n_rows))
        rows, spread = reach[source], across[source.start + 1:source.stop + 1]
        np.left_shift(rows, _ONE, out=spread)
        spread |= rows
        np.right_shift(rows, _ONE, out=scratch[source])
        spread |= scratch[source]
        if reach.shape[1] > 1:  # carries between the words of a row
            spread[:, 1:] |= rows[:, :-1] >> _TOP
            spread[:, :-1] |= rows[:, 1:] << _TOP
        out = scratch[low:high]
        np.bitwise_or(across[low:high], across[low + 2:high + 2], out=out)
        out |= across[low + 1:high + 1]
        np.bitwise_and(out, mask[low:high], out=reach[low:high])


def _grow_narrow(reach: np.ndarray, mask: np.ndarray, first_step: int, last_step: int, target: int | None) -> None:
    """:func:`_grow` for windows of one word per row (R, 1, N): the same steps, in fewer numpy calls (the rows
    OR-ed across first, then along, which is the same dilation)."""
    n_rows, n = reach.shape[0], reach.shape[2]
    centre = n_rows // 2
    # rows 1..n_rows of ``padded``: the walk (2-D, one word per window row and window); rows 0 and n_rows + 1
    # stay empty, so every row has two neighbours
    padded = np.zeros((n_rows + 2, n), reach.dtype)
    padded[1:-1] = reach[:, 0]
    walls = mask[:, 0]
    vertical = np.empty((n_rows, n), reach.dtype)
    shifted = np.empty((n_rows, n), reach.dtype)
    for step in range(first_step, last_step + 1):
        span = step if target is None else min(step, target + last_step - step + 1)
        low, high = max(centre - span, 0), min(centre + span + 1, n_rows)
        v, s = vertical[low:high], shifted[low:high]
        np.bitwise_or(padded[low:high], padded[low + 2:high + 2], out=v)
        v |= padded[low + 1:high + 1]
        np.left_shift(v, _ONE, out=s)
        s |= v
        np.right_shift(v, _ONE, out=v)
        v |= s
        np.bitwise_and(v, walls[low:high], out=padded[low + 1:high + 1])
    reach[:, 0] = padded[1:-1]


def _run_starts(values: np.ndarray) -> np.ndarray:
    """bool mask of the first element of each run of equal values in ``values`` (1-D; sorted: of each value)."""
    starts = np.empty(len(values), bool)
    starts[:1] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return starts


def _seed(windows: np.ndarray) -> np.ndarray:
    """Packed windows like ``windows`` holding only their centre pixel."""
    radius = windows.shape[0] // 2
    reach = np.zeros_like(windows)
    reach[radius, radius >> 6] = _ONE << np.uint64(radius & 63)
    return reach


def _walks(mask: np.ndarray, starts: np.ndarray, steps: int, target: int | None = None) -> np.ndarray:
    """Packed windows of radius ``steps``: the pixels of ``mask`` reachable from each of ``starts`` in at most
    ``steps`` 8-connected steps through ``mask`` (exact within ``target`` rows and columns of the start, see
    :func:`_grow`)."""
    windows = _pack_windows(mask, starts, steps)
    reach = _seed(windows)
    _grow(reach, windows, 1, steps, target)
    return reach


_BYTE_BITS = np.array([bin(b).count("1") for b in range(256)], np.uint8)


def _popcount_bytes(words: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 of ``words`` (uint8, same shape), from a table of the bits of each byte."""
    as_bytes = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return _BYTE_BITS[as_bytes].reshape(*np.shape(words), 8).sum(axis=-1, dtype=np.uint8)


#: set bits per uint64 word: ``np.bitwise_count`` (numpy >= 2.0), else the byte table
_popcount = getattr(np, "bitwise_count", _popcount_bytes)

#: word masks of the bit positions b whose bit k is set, k = 0..5
_COLUMN_BIT_MASKS = tuple(np.uint64(sum(1 << b for b in range(64) if b >> k & 1)) for k in range(6))


def _outward_directions(skeleton: np.ndarray, ends: np.ndarray, max_steps: int, near: int = 3,
                        far: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """((N, 2) float64 unit vectors, (N,) bool defined): per tip, from the stroke's body towards the tip, the body
    being the skeleton pixels ``near..min(far, max_steps)`` steps back along the skeleton (a tip whose stroke is
    too short has no direction). ``end - mean(body)`` normalised, in the float operations of ``np.mean``."""
    directions = np.zeros((len(ends), 2))
    last = min(far, max_steps)
    if len(ends) == 0 or last < near:
        return directions, np.zeros(len(ends), bool)
    windows = _pack_windows(skeleton, ends, last)
    reach = _seed(windows)
    _grow(reach, windows, 1, near - 1)
    inner = reach.copy()
    _grow(reach, windows, near, last)
    body = (reach & ~inner)[:, 0]  # (R, N) words: 2 last + 1 < 64 columns
    per_row = _popcount(body).astype(np.int64)
    count = per_row.sum(axis=0)
    # sum of the columns of a row's bits: bit b adds b = sum over k of 2**k (bit k of b)
    column_sum = sum((_popcount(body & mask).astype(np.int64) << k).sum(axis=0)
                     for k, mask in enumerate(_COLUMN_BIT_MASKS[:(2 * last).bit_length()]))
    offsets = np.arange(-last, last + 1)
    # the body's coordinate sums are exact integers, so sum / count is np.mean's float64 result
    sum_rows = count * ends[:, 0] + offsets @ per_row
    sum_cols = count * ends[:, 1] + column_sum - last * count
    defined = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.stack([sum_rows / count, sum_cols / count], axis=1)
        direction = ends - mean
        norm = np.hypot(direction[:, 0], direction[:, 1])
        defined &= norm > 0
        directions[defined] = direction[defined] / norm[defined, None]
    return directions, defined


def _faces(ends: np.ndarray, directions: np.ndarray, defined: np.ndarray, tips: np.ndarray, others: np.ndarray,
           cos_limit: float) -> np.ndarray:
    """Per pair: the join from ``tips`` to ``others`` is within the tip's direction cone (``join @ direction >=
    cos_limit * |join|``), or the tip has no direction. Where the two-term dot product is not the same in every
    evaluation order (see :func:`_dot`) and lies within a few ulps of the limit, it is evaluated with ``@``."""
    join = (ends[others] - ends[tips]).astype(np.float64)
    limit = cos_limit * np.hypot(join[:, 0], join[:, 1])
    dot, unsure = _dot(join[:, 0], join[:, 1], directions[tips, 0], directions[tips, 1], limit)
    result = dot >= limit
    for i in np.flatnonzero(unsure & defined[tips]):
        result[i] = join[i] @ directions[tips[i]] >= cos_limit * float(np.hypot(*join[i]))
    return result | ~defined[tips]


def _dot(rows: np.ndarray, cols: np.ndarray, along_rows: np.ndarray, along_cols: np.ndarray,
         limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rows * along_rows + cols * along_cols`` (integer-valued ``rows``, ``cols``) and where comparing it with
    ``limit`` could come out otherwise with another evaluation of the same dot product.

    BLAS (behind ``@``) may fuse a multiply-add or sum in another order; the results then differ by an ulp or
    so, but only when a product is inexact and the other non-zero. Such sums within :data:`_TIE` of ``limit``
    are flagged, so the caller can decide them with the reference expression.
    """
    first, second = rows * along_rows, cols * along_cols
    dot = first + second
    close = np.abs(dot - limit) <= _TIE * (np.abs(first) + np.abs(second))
    near = np.flatnonzero(close)
    if len(near):
        rows, cols, along_rows, along_cols = (a[near] if np.shape(a) == dot.shape else
                                              np.broadcast_to(a, dot.shape)[near]
                                              for a in (rows, cols, along_rows, along_cols))
        exact = (_product_error(rows, along_rows) == 0) & (_product_error(cols, along_cols) == 0)
        close[near] = ~exact & (first[near] != 0) & (second[near] != 0)
    return dot, close


def _product_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b - fl(a * b)`` exactly (Dekker's two-product; ``a`` integer-valued below 2**26)."""
    split = 134217729.0 * b  # 2**27 + 1
    high = split - (split - b)
    product = a * b
    return (a * high - product) + a * (b - high)


#: Relative width of the band around a cone limit where a dot product is decided by the reference expression.
_TIE = 2.0 ** -46


def open_ends(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The open stroke ends of (H, W) bool line art that :func:`close_gaps` works on: (skeleton (H, W) bool,
    tips (N, 2) int (row, col), tip radii (N,) float64).

    Tips are skeleton endpoints not within about a stroke half-width of the frame border (such a stroke continues
    outside the picture). A tip's radius is its distance to the nearest paper pixel minus 1 (0 for 1-px strokes):
    skeleton tips sit about half a stroke width inside the stroke ends, so subtracting it makes a distance between
    tips the empty span between the drawn strokes, whatever their width.
    """
    skeleton = skeletonize(lines)
    ends = skeleton_endpoints(skeleton)
    # Distance to the nearest paper pixel; the frame border counts as line, so tips at the border stay "inside".
    tip_half_width = _tip_half_widths(lines, ends)
    height, width = lines.shape
    border_distance = np.min([ends[:, 0], ends[:, 1], height - 1 - ends[:, 0], width - 1 - ends[:, 1]], axis=0) \
        if len(ends) else np.zeros(0)
    keep = border_distance > tip_half_width + 1  # skeletons stop short of the border by about a half-width
    return skeleton, ends[keep], tip_half_width[keep] - 1.0


def close_gaps(lines: np.ndarray, max_gap: float = 8.0, same_stroke_factor: float = 3.0,
               join_to_lines: bool = True, max_angle: float = 45.0, pair_max_angle: float = 75.0) -> np.ndarray:
    """Close small gaps in line art (after Fourey et al. 2018, which Dang et al. 2020 use before labelling).

    1. Endpoints (skeleton pixels with one 8-neighbour) of :func:`skeletonize` (scikit-image's Zhang-Suen
       skeleton) are paired greedily, closest first, each endpoint at most once. A pair is joined by a straight
       8-connected 1-px line when the gap between the strokes is at most ``max_gap`` pixels (the tip distance,
       minus 1, minus each stroke's half-width at its tip: the number of empty pixels between two 1-px stroke
       ends on a row) and the two tips are not within ``same_stroke_factor * max_gap`` steps of each other along
       the skeleton (otherwise they are the two ends of one short stroke and joining them would invent a
       region), and the join leaves each tip within ``pair_max_angle`` degrees of its stroke's outward direction
       (so two strokes ending side by side are not tied together; tips of strokes too short to have a direction
       pass).
    2. With ``join_to_lines``, each endpoint left unpaired is joined to the nearest line pixel that is within
       ``max_gap`` of it, lies within ``max_angle`` degrees of the stroke's outward direction, and is not part of
       its own stroke (not reachable from the tip through line pixels in ``same_stroke_factor * max_gap``
       steps). This closes strokes that stop short of another stroke, and T-junctions broken at the junction.
       Endpoints are taken in raster order of their tips, each seeing the joins made before it.

    Tips within about a stroke half-width of the frame border are not open ends: the stroke continues outside the
    picture. Fourey et al. additionally weigh candidate joins by curvature; this is a simpler, local version.

    The walks along strokes run for all tips at once on bit-packed windows, and the joins of step 2 are first
    found for every endpoint on the line art of step 1, then redone, until nothing changes, for the endpoints an
    earlier endpoint's join can affect (a joined pixel next to their walk or in their search disc): the result
    is that of taking the endpoints one by one.

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
    skeleton, ends, tip_radius = open_ends(lines)
    if len(ends) == 0:
        return closed
    max_steps = int(np.ceil(same_stroke_factor * max_gap))
    directions, defined = _outward_directions(skeleton, ends, max_steps)
    canvas = closed.view(np.uint8)

    # Step 1: candidate pairs closest first (ties by index), then greedily.
    search = max_gap + 1 + 2 * float(tip_radius.max())
    pairs = cKDTree(ends).query_pairs(search, output_type="ndarray").reshape(-1, 2)  # rows (a, b), a < b
    first, second = pairs[:, 0], pairs[:, 1]
    step = ends[first] - ends[second]
    gap = np.hypot(step[:, 0], step[:, 1]) - 1 - tip_radius[first] - tip_radius[second]
    close = gap <= max_gap
    first, second, gap = first[close], second[close], gap[close]
    order = np.lexsort((second, first, gap))
    first, second = first[order], second[order]
    pair_cos_limit = float(np.cos(np.radians(pair_max_angle)))
    allowed = (~_same_stroke(skeleton, ends, first, second, max_steps)
               & _faces(ends, directions, defined, first, second, pair_cos_limit)
               & _faces(ends, directions, defined, second, first, pair_cos_limit))
    used = [False] * len(ends)
    joined = []
    for a, b in zip(first[allowed].tolist(), second[allowed].tolist()):
        if used[a] or used[b]:
            continue
        used[a] = used[b] = True
        joined.append((a, b))
    if joined:  # each pair a 2-point open polyline: the pixels of cv2.line(tip a, tip b), in one call
        cv2.polylines(canvas, np.ascontiguousarray(ends[np.array(joined)][:, :, ::-1], dtype=np.int32), False, 1, 1,
                      cv2.LINE_8)

    if join_to_lines:
        tips = np.flatnonzero(~np.array(used) & defined)
        if len(tips):
            joins = _LineJoins(closed, ends[tips], directions[tips], tip_radius[tips], max_gap, max_steps,
                               max_angle)
            rows, cols = joins.solve()
            closed[rows, cols] = True
    return closed


def _same_stroke(skeleton: np.ndarray, ends: np.ndarray, first: np.ndarray, second: np.ndarray,
                 max_steps: int) -> np.ndarray:
    """Per pair of tips: whether ``second`` is within ``max_steps`` 8-connected steps of ``first`` along the
    skeleton. Tips on different skeleton pieces are not; two tips of a piece of at most ``max_steps + 1`` pixels
    are; the rest is walked."""
    result = np.zeros(len(first), bool)
    if len(first) == 0 or max_steps < 1:
        return result
    # only equal pieces and piece sizes matter here, not the numbering: Grana's algorithm is the fastest with stats
    _, piece, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(skeleton.view(np.uint8), 8, cv2.CV_32S,
                                                                       cv2.CCL_GRANA)
    piece_size = stats[:, cv2.CC_STAT_AREA]
    piece_a, piece_b = piece[ends[first, 0], ends[first, 1]], piece[ends[second, 0], ends[second, 1]]
    same = piece_a == piece_b
    result[same & (piece_size[piece_a] <= max_steps + 1)] = True
    walk = np.flatnonzero(same & (piece_size[piece_a] > max_steps + 1))
    if len(walk):
        starts, which = np.unique(first[walk], return_inverse=True)
        offset = ends[second[walk]] - ends[first[walk]]
        reach = _walks(skeleton, ends[starts], max_steps, int(np.abs(offset).max()))
        offset += max_steps
        inside = (offset >= 0).all(axis=1) & (offset <= 2 * max_steps).all(axis=1)
        result[walk[inside]] = _bits(reach, which[inside], offset[inside, 0], offset[inside, 1])
    return result


@lru_cache(maxsize=16)
def _search_discs(radius: int, max_angle: float, bins: int = 32) -> tuple[np.ndarray, ...]:
    """Offsets to look at around a tip, nearest first (equal distances in raster order: ``np.argmin`` over the
    raster-ordered pixels of a window picks the first), per direction sector, with the lines drawn to them.

    Returns ``rows, cols, distances`` (M,) of every offset with both coordinates within ``radius`` (the centre
    excluded), ``distances = np.hypot(rows, cols)``; ``table`` (bins, L) of their indices (-1 = none): row s
    lists, in that order, the offsets whose angle is within ``max_angle`` degrees (plus a margin) of some
    direction of sector s (angles ``-pi + s * 2 pi / bins`` up to the next sector); ``index`` (2r+1, 2r+1):
    the index of offset (row + r, col + r); ``line`` (M, P, 2) and ``line_length`` (M,): the pixel offsets that
    ``cv2.line(..., LINE_8)`` draws from (0, 0) to each offset (translation-invariant), padded with (0, 0).
    """
    rows, cols = np.mgrid[-radius:radius + 1, -radius:radius + 1].reshape(2, -1)
    centre = (rows == 0) & (cols == 0)
    rows, cols = rows[~centre], cols[~centre]
    distances = np.hypot(rows, cols)
    order = np.lexsort((cols, rows, distances))
    rows, cols, distances = rows[order], cols[order], distances[order]
    angle = np.arctan2(rows, cols)
    sector = 2 * np.pi / bins
    start = -np.pi + sector * np.arange(bins)
    from_start = np.angle(np.exp(1j * (angle[None, :] - start[:, None])))  # wrapped to (-pi, pi]
    from_end = np.angle(np.exp(1j * (angle[None, :] - start[:, None] - sector)))
    inside = (from_start >= 0) & (from_end <= 0)
    member = inside | (np.minimum(np.abs(from_start), np.abs(from_end)) <= np.radians(max_angle) + 1e-6)
    table = np.full((bins, int(member.sum(axis=1).max())), -1, np.int64)
    for s in range(bins):
        found = np.flatnonzero(member[s])
        table[s, :len(found)] = found
    index = np.full((2 * radius + 1, 2 * radius + 1), -1, np.int64)
    index[rows + radius, cols + radius] = np.arange(len(rows))
    size = 4 * radius + 1
    canvas = np.zeros((size, size), np.uint8)
    drawn = []
    for row, col in zip(rows.tolist(), cols.tolist()):
        canvas[:] = 0
        cv2.line(canvas, (2 * radius, 2 * radius), (2 * radius + col, 2 * radius + row), 1, 1, cv2.LINE_8)
        drawn.append(np.argwhere(canvas) - 2 * radius)
    line_length = np.array([len(d) for d in drawn])
    line = np.zeros((len(rows), int(line_length.max()), 2), np.int64)
    for i, d in enumerate(drawn):
        line[i, :len(d)] = d
    for array in (rows, cols, distances, table, index, line, line_length):
        array.setflags(write=False)
    return rows, cols, distances, table, index, line, line_length


class _LineJoins:
    """Step 2 of :func:`close_gaps` for all its endpoints: joins to the nearest stroke ahead.

    The reference order takes endpoints one by one, each on the line art including the joins of the endpoints
    before it. Here every endpoint is solved on the line art of step 1 at once; then, until nothing changes, the
    endpoints that a changed join of an earlier endpoint touches (a drawn pixel next to the pixels their walk
    reached, or within their search cone; no other pixel can change their answer) are solved again on the line
    art with the joins of the endpoints before them. That is the one-by-one result: an endpoint never touched by
    an earlier join sees what it would see in order.
    """

    def __init__(self, closed: np.ndarray, ends: np.ndarray, directions: np.ndarray, tip_radius: np.ndarray,
                 max_gap: float, max_steps: int, max_angle: float):
        self.closed, self.ends, self.directions, self.tip_radius = closed, ends, directions, tip_radius
        self.max_gap, self.max_steps = max_gap, max_steps
        self.cos_limit = float(np.cos(np.radians(max_angle)))
        # the reference's window: half-size max(max_steps, ceil(max_gap + tip radius) + 2)
        self.half = np.maximum(max_steps, np.ceil(max_gap + tip_radius).astype(np.int64) + 2)
        self.disc = int(np.floor(max_gap + 1 + tip_radius.max())) + 1  # + 1: no offset lost to rounding
        self.radius = int(max(max_steps + 1, self.disc, self.half.max()))
        (self.rows, self.cols, self.distances, table, self.index, self.line,
         self.line_length) = _search_discs(self.disc, float(max_angle))
        angle = np.arctan2(directions[:, 0], directions[:, 1])
        sector = np.clip(((angle + np.pi) / (2 * np.pi / len(table))).astype(np.int64), 0, len(table) - 1)
        # offsets are in order of distance: those beyond max_gap of every tip (the disc's corners) are never
        # candidates (a margin of 1e-9 against rounding in the gap test)
        within = int(np.searchsorted(self.distances, max_gap + 1 + tip_radius.max() + 1e-9, side="right"))
        table = np.where(table < within, table, -1)
        table = table[:, :max(int((table >= 0).sum(axis=1).max()), 1)]
        self.search = table[sector]  # (N, L) offset indices per endpoint
        # where each entry's bit is in a packed window (R, K, n) seen as (R * K, n): word and bit
        entry = np.maximum(self.search, 0)
        rows, cols = self.rows[entry] + self.radius, self.cols[entry] + self.radius
        self.search_word = rows * (-(-(2 * self.radius + 1) // 64)) + (cols >> 6)
        self.search_bit = (cols & 63).astype(np.uint64)
        self.base = _pack_windows(closed, ends, self.radius)  # (R, K, N)
        self.frame = closed.shape

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the pixels the joins add to the line art: those ``cv2.line(..., LINE_8)`` draws from
        each endpoint to its target, less those already line. ``pick`` then holds each endpoint's target (an
        offset index, -1 = none)."""
        n = len(self.ends)
        self.pick = np.full(n, -1, np.int64)  # index of the target's offset, -1 = no join
        self.influence = np.zeros_like(self.base)
        # the pixels the current joins add to the line art of step 1: owner endpoint, row, col
        self.drawn = (np.zeros(0, np.int64),) * 3
        pending = np.arange(n)
        while len(pending):
            before = self.pick[pending]
            self._solve(pending, self._windows(pending))
            changed = pending[self.pick[pending] != before]
            if not len(changed):
                break
            old = self.drawn
            redone = np.zeros(n, bool)
            redone[changed] = True
            keep = ~redone[old[0]]
            new = self._new_pixels(changed)
            self.drawn = tuple(np.concatenate([a[keep], b]) for a, b in zip(old, new))
            gone = tuple(a[~keep] for a in old)
            pending = self._touched(gone, new)
        return self.drawn[1], self.drawn[2]

    def _new_pixels(self, endpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(owner, row, col) of the pixels the joins of ``endpoints`` add to the line art of step 1."""
        endpoints = endpoints[self.pick[endpoints] >= 0]
        offsets = self.line[self.pick[endpoints]]  # (n, P, 2)
        length = self.line_length[self.pick[endpoints]]
        drawn = np.arange(offsets.shape[1]) < length[:, None]
        owner = np.repeat(endpoints, length)
        pixels = offsets[drawn] + self.ends[owner]
        new = ~self.closed[pixels[:, 0], pixels[:, 1]]
        return owner[new], pixels[new, 0], pixels[new, 1]

    def _pixels_near(self, pixels: tuple[np.ndarray, np.ndarray, np.ndarray], endpoints: np.ndarray):
        """(endpoint, row offset, col offset, index in ``pixels``) of each of ``pixels`` (owner, row, col) within
        the window of each of ``endpoints`` (sorted) whose owner comes before the endpoint."""
        owner, rows, cols = pixels
        if not len(endpoints) or not len(owner):
            return (np.zeros(0, np.int64),) * 4
        # the pixels sorted by column block (blocks as wide as a window, so a window spans at most two) and row
        # within a block: per endpoint and block, the pixels within ``radius`` rows are a range of that order;
        # those of the ranges within ``radius`` columns and owned by an earlier endpoint are kept
        r = self.radius
        span = 2 * r + 1
        stride = self.frame[0] + span  # key = block * stride + row + r; a window's rows stay inside its block's
        key = (cols // span) * stride + rows + r
        by_key = np.argsort(key, kind="stable")
        sorted_key = key[by_key]
        centres = self.ends[endpoints]
        block = (centres[:, 1] - r) // span  # the block of the window's first column (-1: none there), and the next
        first = np.concatenate([block * stride + centres[:, 0], (block + 1) * stride + centres[:, 0]])
        low = np.searchsorted(sorted_key, first, side="left")
        count = np.searchsorted(sorted_key, first + 2 * r, side="right") - low
        which = np.repeat(np.arange(2 * len(endpoints)) % len(endpoints), count)
        point = by_key[np.arange(len(which)) - np.repeat(np.cumsum(count) - count - low, count)]
        endpoint = endpoints[which]
        col_offset = cols[point] - centres[which, 1]
        keep = (np.abs(col_offset) <= r) & (owner[point] < endpoint)
        point, endpoint = point[keep], endpoint[keep]
        return endpoint, rows[point] - self.ends[endpoint, 0], col_offset[keep], point

    def _windows(self, endpoints: np.ndarray) -> np.ndarray:
        """Packed line art around ``endpoints``: step 1's plus the joins of the endpoints before each."""
        windows = self.base[:, :, endpoints]
        endpoint, rows, cols, _ = self._pixels_near(self.drawn, endpoints)
        if len(endpoint):
            row, col = rows + self.radius, cols + self.radius
            np.bitwise_or.at(windows, (row, col >> 6, np.searchsorted(endpoints, endpoint)),
                             _ONE << (col & 63).astype(np.uint64))
        return windows

    def _touched(self, gone: tuple[np.ndarray, np.ndarray, np.ndarray],
                 new: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Endpoints whose answer a pixel (owner, row, col) of joins ``gone`` or ``new`` before them could change:
        next to their walk, or in their search cone (a superset: the cone test with a margin).

        An endpoint without a target has all its candidates on its own stroke; a pixel added outside its cone
        only lengthens its walk, so its candidates stay on its own stroke: only removed pixels next to its walk
        count for it.
        """
        pixels = tuple(np.concatenate([a, b]) for a, b in zip(gone, new))
        endpoint, rows, cols, which = self._pixels_near(pixels, np.arange(len(self.ends)))
        added = which >= len(gone[0])
        distance = np.hypot(rows, cols)
        direction = self.directions[endpoint]
        ahead = rows * direction[:, 0] + cols * direction[:, 1] >= self.cos_limit * distance - 1e-9 * (distance + 1)
        in_cone = ahead & (distance - 1 - self.tip_radius[endpoint] <= self.max_gap)
        # a pixel after the current target in search order changes nothing unless it changes the walk (offsets
        # index the search disc in search order; a pixel within max_gap is inside it)
        near = np.flatnonzero(in_cone)
        pick = self.pick[endpoint[near]]
        in_cone[near] = (pick < 0) | (self.index[rows[near] + self.disc, cols[near] + self.disc] <= pick)
        walk = _bits(self.influence, endpoint, rows + self.radius, cols + self.radius)
        # a path of at most max_steps steps through a pixel c rows or columns away from the tip that ends at a
        # candidate no farther than the target (search order is by distance) has 2 c - distance <= max_steps
        pick = self.pick[endpoint]
        farthest = np.where(pick >= 0, self.distances[pick], self.disc)
        walk &= 2 * np.maximum(np.abs(rows), np.abs(cols)) <= self.max_steps + farthest
        touches = in_cone | (walk & ~(added & (pick < 0)))
        return np.unique(endpoint[touches])

    def _solve(self, endpoints: np.ndarray, windows: np.ndarray) -> None:
        """Join targets of ``endpoints`` on their packed ``windows``; sets ``pick`` and ``influence``.

        An endpoint's target is its first candidate (a line pixel of its search cone within ``max_gap``, in search
        order) off its own stroke (not reached by the walk of ``max_steps`` steps from the tip). Endpoints without
        candidates have no target whatever their walk reaches, so only the others walk, and only as far as the
        walk can still come back into the search disc (:func:`_grow` with a target). ``influence``: the pixels
        next to the walk (a changed pixel elsewhere cannot change what the walk reaches in the disc); empty for
        endpoints without candidates, as only a pixel in their cone can change their answer.
        """
        r = self.radius
        entry, index, row, col, tie = self._candidates(endpoints, windows)
        self.pick[endpoints] = -1
        self.influence[:, :, endpoints] = 0
        # ``entry`` is sorted (candidates come endpoint by endpoint): positions in ``endpoints`` with candidates
        starts = _run_starts(entry)
        walking = entry[starts]
        entry = np.cumsum(starts) - 1
        if not len(walking):
            return
        windows = windows[:, :, walking]
        reach = _seed(windows)
        _grow(reach, windows, 1, self.max_steps, self.disc)
        self.influence[:, :, endpoints[walking]] = _dilate_rows(reach)
        outside = np.flatnonzero(~_bits(reach, entry, row + r, col + r))
        first = outside[_run_starts(entry[outside])]  # each walking endpoint's first candidate off its stroke
        which = entry[first]
        self.pick[endpoints[walking[which]]] = index[first]
        for j in which[tie[first]].tolist():
            self.pick[endpoints[walking[j]]] = self._reference(endpoints[walking[j]], windows[:, :, j:j + 1],
                                                               reach[:, :, j:j + 1])

    def _candidates(self, endpoints: np.ndarray, windows: np.ndarray):
        """Candidates of ``endpoints``, in search order per endpoint: (position in ``endpoints``, offset index,
        row offset, col offset, tie) of every line pixel of the search cone within ``max_gap``, the cone being
        taken with the tie margin of :func:`_dot`; ``tie``: its dot product is that close to the limit (the pixel
        is then decided by :meth:`_reference`)."""
        search = self.search[endpoints]
        n = len(endpoints)
        word = np.take(windows.reshape(-1), self.search_word[endpoints] * n + np.arange(n)[:, None])
        word >>= self.search_bit[endpoints]
        word &= _ONE
        entry, slot = np.nonzero((word != 0) & (search >= 0))
        index = search[entry, slot]
        rows, cols, distances = self.rows[index], self.cols[index], self.distances[index]
        gap = distances - 1 - self.tip_radius[endpoints[entry]]
        direction = self.directions[endpoints[entry]]
        limit = self.cos_limit * distances
        dot, tie = _dot(rows, cols, direction[:, 0], direction[:, 1], limit)
        keep = (gap <= self.max_gap) & ((dot >= limit) | tie)
        return entry[keep], index[keep], rows[keep], cols[keep], tie[keep]

    def _reference(self, i: int, window: np.ndarray, reach: np.ndarray) -> int:
        """One endpoint's target offset index in the float operations of the one-by-one implementation (for dot
        products near the cone limit): its window without its own stroke, ``offsets @ direction`` over all of it."""
        r, half, end = self.radius, int(self.half[i]), self.ends[i]
        top, left = max(end[0] - half, 0), max(end[1] - half, 0)
        bottom, right = min(end[0] + half + 1, self.frame[0]), min(end[1] + half + 1, self.frame[1])
        rows = slice(r - (end[0] - top), r + (bottom - end[0]))
        cols = slice(r - (end[1] - left), r + (right - end[1]))
        free = _unpack(window[rows] & ~reach[rows], 2 * r + 1)[0, :, cols]
        targets = np.argwhere(free) + (top, left)
        offsets = targets - end
        distance = np.hypot(offsets[:, 0], offsets[:, 1])
        gap = distance - 1 - self.tip_radius[i]
        ok = (gap <= self.max_gap) & ((offsets @ self.directions[i]) >= self.cos_limit * distance)
        if not ok.any():
            return -1
        row, col = offsets[np.flatnonzero(ok)[np.argmin(distance[ok])]]
        return int(self.index[row + self.disc, col + self.disc])


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
    key = labels.ravel()[starts]
    keep = key > 0
    starts, ends, key = starts[keep], ends[keep], key[keep]
    run_label = key.astype(np.int64)
    if len(run_label) == 0:
        return columns
    row = starts // width
    first_col = starts - row * width
    stop_col = ends - row * width  # exclusive
    n = int(run_label.max()) + 1
    # runs grouped by label, in raster order within a label (a stable sort): first and last run, column extent
    order = np.argsort(key if key.dtype.itemsize <= 2 else run_label, kind="stable")  # 16 bits: a radix sort
    grouped = run_label[order]
    group_start = np.flatnonzero(np.concatenate([[True], grouped[1:] != grouped[:-1]]))
    present = grouped[group_start]
    first_run = order[group_start]
    last_run = order[np.append(group_start[1:], len(order)) - 1]
    top = np.zeros(n, np.int64)
    bottom = np.zeros(n, np.int64)
    left = np.full(n, width, np.int64)
    right = np.zeros(n, np.int64)
    top[present] = row[first_run]
    bottom[present] = row[last_run] + 1
    left[present] = np.minimum.reduceat(first_col[order], group_start)
    right[present] = np.maximum.reduceat(stop_col[order], group_start)

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
    above = row * integral.shape[1]  # flat index of the integral's row ``row`` (the one above the run)
    below = above + integral.shape[1]
    corners = np.take(integral.reshape(-1, 3), np.stack([below + stop_col, below + first_col, above + stop_col,
                                                         above + first_col]), axis=0)
    run_colour = (corners[0] - corners[1]) - (corners[2] - corners[3])
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
