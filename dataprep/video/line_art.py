"""Artist line art given with its colour: a source whose sketches are read, not extracted.

A *line-art folder* holds, per drawing, the artist's line art, its flat colours and optionally its region map, as
paint-bucket benchmarks ship them (BasicPBC's ``line``/``gt``/``seg`` files). Files are found by kind, either in
a subfolder named after the kind (``line/0003.png``) or with the kind as a file-name prefix in the folder itself
(``line0003.png``); a drawing's files share the rest of the name (its *stem*, ``0003``), and drawings are ordered
by stem as numbers (``2`` before ``10``):

============ ============================ ==========================================================================
kind         names                        content
============ ============================ ==========================================================================
line art     ``line``, ``sketch``         dark lines on white paper, or opaque lines on a transparent background
                                          (RGBA): a pixel is line when its alpha is over 127 (RGBA) or its grey
                                          level under 128 (grey, RGB)
colour       ``gt``, ``color``, ``colour`` RGB, or RGBA composited over white (BasicPBC's transparent background)
regions      ``seg`` (optional)           BasicPBC's segment map: segment id = R * 65536 + G * 256 + B, 0 = line;
                                          when absent, regions are extracted from the line art by the build's
                                          component stage (gap closing included)
parts        ``label`` (optional)         BasicPBC's part map: part index = R * 65536 + G * 256 + B, -1 where the
                                          pixel is transparent (RGBA alpha 0: the background); one index names
                                          the same part of the character in every drawing, so two regions of
                                          two drawings correspond when their parts are equal
============ ============================ ==========================================================================

Other files (BasicPBC's ``json`` files, result folders) are ignored. Every line-art file must have a colour
file (and a region map, a part map, when the folder has any), all of one size; anything else is a
:class:`dataprep.errors.CelbenchError` naming the file, raised before a frame is read.

A region's part is the part index most of its pixels carry (:func:`region_parts`); ``dataprep build`` stores
the pairs' ``correspondences`` from them when the drawings have part maps (every reference region of the
target region's part; a part the artist split into several regions gives several entries), instead of the
certain matches it derives from colours and shapes otherwise.

A drawing is yielded as :class:`GivenLineArt`; :meth:`GivenLineArt.fitted` brings it to the stored resolution
with the geometry of :func:`dataprep.imaging.fit_frame` but nearest-neighbour sampling for all three arrays,
so flat colours stay exact and every region keeps one colour.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import cv2
import numpy as np

from dataprep.errors import CelbenchError, file_error
from dataprep.imaging import fit_frame, read_image, to_rgb

#: Names of each kind of file, as a subfolder or a file-name prefix.
KIND_NAMES = {"line": ("line", "sketch"), "colour": ("gt", "color", "colour"), "regions": ("seg",),
              "parts": ("label",)}
IMAGE_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".webp", ".jpg", ".jpeg")
#: Grey level (0-255) under which a pixel of opaque line art is a line; alpha over which an RGBA pixel is.
LINE_LEVEL = 128


class GivenLineArt(NamedTuple):
    """One drawing of a line-art folder.

    colour: (H, W, 3) uint8 sRGB; sketch: (H, W) uint8, 0 = line, 255 = paper; labels: (H, W) uint16 region map
    (0 = line, 1..N regions, consecutive) or None when the folder gives no region map; parts: (H, W) int64
    part map (-1 = background) or None when the folder gives none.
    """

    colour: np.ndarray
    sketch: np.ndarray
    labels: np.ndarray | None
    parts: np.ndarray | None = None

    def fitted(self, width: int, height: int, mode: str) -> "GivenLineArt":
        """This drawing at the stored resolution: :func:`dataprep.imaging.fit_frame` with every array sampled
        nearest-neighbour (white paper padding; a padded border is one more region)."""

        def fit(array: np.ndarray, fill: int) -> np.ndarray:
            return fit_frame(array, width, height, mode, interpolation=cv2.INTER_NEAREST, fill=fill)

        labels = None
        if self.labels is not None:
            padding = int(self.labels.max()) + 1  # the white border: a region of its own
            labels = compact_labels(fit(self.labels.astype(np.int32), padding))
        parts = None if self.parts is None else fit(self.parts.astype(np.int32), -1).astype(np.int64)
        return GivenLineArt(fit(self.colour, 255), fit(self.sketch, 255), labels, parts)


def compact_labels(codes: np.ndarray) -> np.ndarray:
    """A region map with any non-negative ids -> (H, W) uint16, 0 kept for lines, the others renumbered 1..N in
    order of id. More than 65,535 regions is a :class:`CelbenchError`."""
    ids, inverse = np.unique(codes, return_inverse=True)
    offset = 0 if ids[0] == 0 else 1
    if len(ids) - (1 - offset) > np.iinfo(np.uint16).max:
        raise CelbenchError(f"region map has {len(ids)} regions (at most 65535 fit the stored uint16 map)")
    return (inverse.reshape(codes.shape) + offset).astype(np.uint16)


def _kind_files(folder: Path) -> dict[str, dict[str, Path]]:
    """kind -> {stem: file} from subfolders named after the kind and files prefixed with it."""
    found: dict[str, dict[str, Path]] = {kind: {} for kind in KIND_NAMES}
    for kind, names in KIND_NAMES.items():
        for name in names:
            sub = folder / name
            if sub.is_dir():
                for file in sub.iterdir():
                    if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS:
                        _add(found[kind], file.stem, file)
        for file in folder.iterdir():
            if not (file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS):
                continue
            for name in names:
                match = re.fullmatch(re.escape(name) + r"[_-]?(\d[\w-]*)", file.stem, re.IGNORECASE)
                if match:
                    _add(found[kind], match.group(1), file)
    return found


def _add(files: dict[str, Path], stem: str, file: Path) -> None:
    if stem in files and files[stem] != file:
        raise file_error(file, f"two files for drawing {stem!r} (also {files[stem]})")
    files[stem] = file


def is_line_art_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder with line-art files in the layout above (a ``line``/``sketch`` subfolder, or
    ``line<stem>`` / ``sketch<stem>`` files)."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    return bool(_kind_files(folder)["line"])


def _natural(stem: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", stem))


class LineArtFolder:
    """The drawings of a line-art folder, checked at open time (see the module docstring).

    Attributes: ``path``; ``stems`` (drawing names in order); ``files``: one ``{kind: path}`` per drawing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise file_error(path, "no such folder")
        found = _kind_files(self.path)
        if not found["line"]:
            raise file_error(path, "no line-art files (a line/ or sketch/ folder, or line<N>.png files)")
        for kind in ("colour", "regions", "parts"):
            extra = sorted(set(found[kind]) - set(found["line"]), key=_natural)
            if extra:
                raise file_error(found[kind][extra[0]], f"{kind} file without a line-art file of drawing {extra[0]!r}")
        self.stems = sorted(found["line"], key=_natural)
        for stem in self.stems:
            if stem not in found["colour"]:
                raise file_error(found["line"][stem], f"line art without a colour file (gt/, color/ or colour/ "
                                                      f"{stem}.png)")
            for kind, name in (("regions", "a region map (seg/)"), ("parts", "a part map (label/)")):
                if found[kind] and stem not in found[kind]:
                    raise file_error(found["line"][stem], f"line art without {name}, while other drawings have one")
        self.files = [{kind: found[kind][stem] for kind in KIND_NAMES if stem in found[kind]} for stem in self.stems]
        self.has_regions = bool(found["regions"])
        self.has_parts = bool(found["parts"])
        for files in self.files:
            sizes = {kind: _image_size(file) for kind, file in files.items()}
            for kind in ("colour", "regions", "parts"):
                if kind in sizes and sizes[kind] != sizes["line"]:
                    (w, h), (lw, lh) = sizes[kind], sizes["line"]
                    raise file_error(files[kind], f"{kind} is {w}x{h}, its line art {files['line'].name} {lw}x{lh}")

    def __len__(self) -> int:
        return len(self.stems)

    def sha256(self) -> str:
        """Hash of every file used (kind, stem, content), in drawing order: the source's identity."""
        digest = hashlib.sha256()
        for stem, files in zip(self.stems, self.files):
            for kind, file in files.items():
                digest.update(f"{kind}\0{stem}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\n".encode())
        return digest.hexdigest()

    def read(self, index: int) -> GivenLineArt:
        """Drawing ``index`` (0-based, in stem order); an unreadable file is a :class:`CelbenchError` naming it."""
        files = self.files[index]
        line = _read(files["line"])
        colour = _read(files["colour"])
        sketch = line_art_sketch(line)
        labels = None
        if "regions" in files:
            seg = _read(files["regions"])
            codes = segment_ids(seg)
            codes[sketch == 0] = 0
            labels = compact_labels(codes)
        parts = part_ids(_read(files["parts"])) if "parts" in files else None
        return GivenLineArt(to_rgb(colour), sketch, labels, parts)

    def drawings(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, GivenLineArt]]:
        """(index, drawing) for ``start <= index < end``."""
        for index in range(start, len(self) if end is None else min(end, len(self))):
            yield index, self.read(index)


def _image_size(file: Path) -> tuple[int, int]:
    """(width, height) of an image file: from a PNG's header, else by decoding it."""
    with open(file, "rb") as f:
        head = f.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    image = _read(file)
    return image.shape[1], image.shape[0]


def _read(file: Path) -> np.ndarray:
    """An image file as decoded (grey, RGB or RGBA, 8 or 16 bits, channels in RGB order)."""
    image = read_image(file)
    if image is None:
        raise file_error(file, "unreadable image")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return image


def line_art_sketch(line: np.ndarray) -> np.ndarray:
    """Line art as decoded (grey (H, W), RGB or RGBA, uint8) -> (H, W) uint8 sketch, 0 = line, 255 = paper.

    RGBA with any transparent pixel: line where alpha > 127 (BasicPBC draws lines, shading boundaries in colour
    too, opaque on a transparent background); otherwise line where the grey level is under 128.
    """
    if line.dtype == np.uint16:
        line = (line >> 8).astype(np.uint8)
    if line.ndim == 3 and line.shape[2] == 4 and (line[:, :, 3] < 255).any():
        is_line = line[:, :, 3] >= LINE_LEVEL
    else:
        grey = line if line.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(line[:, :, :3]), cv2.COLOR_RGB2GRAY)
        is_line = grey < LINE_LEVEL
    return np.where(is_line, 0, 255).astype(np.uint8)


def segment_ids(seg: np.ndarray) -> np.ndarray:
    """BasicPBC segment map (RGB(A) uint8, id = R * 65536 + G * 256 + B, or a grey map of ids) -> (H, W) int64."""
    if seg.ndim == 2:
        return seg.astype(np.int64)
    rgb = seg[:, :, :3].astype(np.int64)
    return (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]


def part_ids(label: np.ndarray) -> np.ndarray:
    """BasicPBC part map (RGB(A) uint8, index = R * 65536 + G * 256 + B; RGBA alpha 0 = background) -> (H, W)
    int64 part indices, -1 on the background (BasicPBC's ``paint.utils.labelpng_2_np``)."""
    parts = segment_ids(label)
    if label.ndim == 3 and label.shape[2] == 4:
        parts[label[:, :, 3] == 0] = -1
    return parts


def region_parts(labels: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """(L + 1,) int64: entry ``r`` = the part index most pixels of region ``r`` of ``labels`` ((H, W) int, 0 =
    line, L = its largest id) carry in ``parts`` ((H, W) int64); ties go to the smaller index; line (0) and ids
    with no pixel get -2 (no part)."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    parts = np.asarray(parts, dtype=np.int64).ravel()
    out = np.full(int(labels.max(initial=0)) + 1, -2, np.int64)
    inside = labels > 0
    if not inside.any():
        return out
    pairs, counts = np.unique(np.stack([labels[inside], parts[inside]]), axis=1, return_counts=True)
    # per region, the pair with the most pixels: sort by (region, -count, part) and keep each region's first
    order = np.lexsort((pairs[1], -counts, pairs[0]))
    regions, first = np.unique(pairs[0][order], return_index=True)
    out[regions] = pairs[1][order][first]
    return out


def part_correspondences(reference_parts: np.ndarray, target_parts: np.ndarray) -> list[tuple[int, int]]:
    """(reference id, target id) of every pair of regions of one part, from two :func:`region_parts` arrays;
    sorted by target id, then reference id."""
    by_part: dict[int, list[int]] = {}
    for reference_id in np.flatnonzero(reference_parts > -2):
        by_part.setdefault(int(reference_parts[reference_id]), []).append(int(reference_id))
    return [(r, int(t)) for t in np.flatnonzero(target_parts > -2) for r in by_part.get(int(target_parts[t]), [])]
