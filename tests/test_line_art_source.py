"""Artist line art given with its colours (dataprep.video.line_art) and ``dataprep build`` on such folders.

The folders are hand-built: a few flat-coloured drawings whose lines, colours and segment maps are written
pixel by pixel, so every expected region map is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dataprep.cli import main
from dataprep.dataset.reader import DatasetReader
from dataprep.video.line_art import (LineArtFolder, compact_labels, is_line_art_folder, line_art_sketch,
                                     part_correspondences, part_ids, region_parts)

WIDTH, HEIGHT = 40, 30
PALETTE = [(250, 250, 250), (200, 40, 40), (40, 160, 60), (30, 60, 200)]


def drawing(shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line RGBA, colour RGB, BasicPBC segment ids) of a frame split by a vertical and a horizontal line.

    Regions: left, top right, bottom right (ids 1, 2, 3 before renumbering: here 7, 300, 70000 to exercise
    the R * 65536 + G * 256 + B code); the vertical line moves right by ``shift``.
    """
    x, y = 15 + shift, 12
    line = np.zeros((HEIGHT, WIDTH, 4), np.uint8)  # transparent paper
    line[:, x, 3] = 255
    line[y, x:, 3] = 255
    seg = np.zeros((HEIGHT, WIDTH), np.int64)
    seg[:, :x] = 7
    seg[:y, x + 1:] = 300
    seg[y + 1:, x + 1:] = 70000
    colour = np.zeros((HEIGHT, WIDTH, 3), np.uint8)  # lines black in the colour frame
    for code, rgb in zip((7, 300, 70000), PALETTE[1:]):
        colour[seg == code] = rgb
    return line, colour, seg


def seg_image(seg: np.ndarray) -> np.ndarray:
    return np.stack([(seg >> 16) & 255, (seg >> 8) & 255, seg & 255], axis=-1).astype(np.uint8)


def write(path: Path, rgb_or_rgba: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    code = cv2.COLOR_RGBA2BGRA if rgb_or_rgba.shape[-1] == 4 else cv2.COLOR_RGB2BGR
    cv2.imwrite(str(path), cv2.cvtColor(rgb_or_rgba, code))


#: BasicPBC part index of each segment code in :func:`drawing`: the two right regions are one part (say a
#: sleeve crossed by a fold line), so parts give them both as counterparts of either, which colours never do
PARTS = {7: 11, 300: 70012, 70000: 70012}


def part_image(seg: np.ndarray) -> np.ndarray:
    """BasicPBC ``label`` file: RGBA, index = R * 65536 + G * 256 + B, lines transparent (index -1)."""
    parts = np.vectorize(lambda code: PARTS.get(code, 0))(seg)
    return np.concatenate([seg_image(parts), np.where(seg > 0, 255, 0).astype(np.uint8)[..., None]], axis=-1)


def write_folder(folder: Path, n: int = 3, with_seg: bool = True, prefixed: bool = False,
                 with_parts: bool = False) -> list[tuple]:
    """BasicPBC layout (``line/0000.png``, ``gt/``, ``seg/``, with ``with_parts`` ``label/``), or its prefixed
    form (``line0000.png``)."""
    drawings = [drawing(2 * i) for i in range(n)]
    for i, (line, colour, seg) in enumerate(drawings):
        for kind, image in (("line", line), ("gt", colour), ("seg", seg_image(seg)), ("label", part_image(seg))):
            if kind == "seg" and not with_seg or kind == "label" and not with_parts:
                continue
            write(folder / (f"{kind}{i:04d}.png" if prefixed else f"{kind}/{i:04d}.png"), image)
    (folder / "label").mkdir(exist_ok=True)  # an empty part-map folder: no part maps
    return drawings


def expected_labels(seg: np.ndarray, line: np.ndarray) -> np.ndarray:
    """The region map by hand: 0 on lines, then ids renumbered 1, 2, 3 in order of segment code."""
    out = np.select([seg == 7, seg == 300, seg == 70000], [1, 2, 3], 0)
    out[line[:, :, 3] > 127] = 0
    return out


@pytest.mark.parametrize("prefixed", [False, True])
def test_a_line_art_folder_reads_lines_colours_and_segment_maps(tmp_path, prefixed):
    drawings = write_folder(tmp_path / "clip", prefixed=prefixed)
    assert is_line_art_folder(tmp_path / "clip") and not is_line_art_folder(tmp_path)
    folder = LineArtFolder(tmp_path / "clip")
    assert folder.stems == ["0000", "0001", "0002"] and folder.has_regions
    for index, given in folder.drawings():
        line, colour, seg = drawings[index]
        assert given.sketch.dtype == np.uint8 and given.labels.dtype == np.uint16
        np.testing.assert_array_equal(given.sketch == 0, line[:, :, 3] > 127)
        np.testing.assert_array_equal(given.colour, colour)
        np.testing.assert_array_equal(given.labels, expected_labels(seg, line))


def test_line_art_of_every_encoding_gives_the_same_sketch():
    lines = np.zeros((4, 5), bool)
    lines[1, 1:4] = True
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[lines] = (255, 0, 0, 255)  # BasicPBC draws shading boundaries as coloured lines
    grey = np.where(lines, 20, 240).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    for image in (rgba, grey, rgb, grey.astype(np.uint16) * 257):
        np.testing.assert_array_equal(line_art_sketch(image), np.where(lines, 0, 255))


def test_compact_labels_keeps_lines_and_renumbers_in_order():
    codes = np.array([[0, 70000, 7], [300, 7, 0]])
    np.testing.assert_array_equal(compact_labels(codes), [[0, 3, 1], [2, 1, 0]])
    np.testing.assert_array_equal(compact_labels(codes + 5), [[1, 4, 2], [3, 2, 1]])  # no line pixels


def test_fitting_a_drawing_samples_nearest_and_pads_with_a_region_of_its_own(tmp_path):
    write_folder(tmp_path / "clip", n=1)
    given = LineArtFolder(tmp_path / "clip").read(0)
    doubled = given.fitted(2 * WIDTH, 2 * HEIGHT, "keep-aspect")
    np.testing.assert_array_equal(doubled.labels, np.kron(given.labels, np.ones((2, 2), np.uint16)))
    assert {tuple(c) for c in doubled.colour.reshape(-1, 3)} == {tuple(c) for c in given.colour.reshape(-1, 3)}
    padded = given.fitted(WIDTH, 2 * HEIGHT, "pad")
    top = (2 * HEIGHT - HEIGHT) // 2
    np.testing.assert_array_equal(padded.labels[top:top + HEIGHT], given.labels)
    assert (padded.labels[:top] == 4).all() and (padded.sketch[:top] == 255).all()
    assert (padded.colour[:top] == 255).all()


@pytest.mark.parametrize("with_seg", [True, False])
def test_dataprep_build_stores_the_given_line_art_and_region_maps(tmp_path, with_seg):
    drawings = write_folder(tmp_path / "clip", with_seg=with_seg)
    out = tmp_path / "ds"
    sets = ["frames.width=40", "frames.height=30", "frames.resize=keep-aspect", "run.executor=serial",
            "split.train=0", "split.val=0", "split.test=1"]
    assert main(["build", str(tmp_path / "clip"), "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    reader = DatasetReader(out)
    assert [f["frame_index"] for f in reader.frames] == [0, 1, 2]
    assert len({f["held_group"] for f in reader.frames}) == 3 and len({f["shot_id"] for f in reader.frames}) == 1
    for cells, (line, colour, seg) in zip(reader.frames, drawings):
        stored = reader.frame(cells["frame_key"])
        np.testing.assert_array_equal(stored.sketch == 0, line[:, :, 3] > 127)
        np.testing.assert_array_equal(stored.colour, colour)
        # read from seg/, or extracted from the (closed) line art: the same three regions either way
        np.testing.assert_array_equal(stored.components, expected_labels(seg, line))
    import pyarrow.parquet as pq
    from dataprep.dataset.manifest import shard_files

    extractor = pq.read_table(shard_files(out, "frames")[0], columns=["extractor", "extractor_params"]).to_pylist()
    assert extractor[0] == {"extractor": "given",
                            "extractor_params": '{"regions":"%s"}' % ("read" if with_seg else "extracted")}


def test_part_maps_decode_and_give_each_region_its_majority_part():
    label = np.zeros((2, 3, 4), np.uint8)
    label[:, :, 3] = 255
    label[0, 0] = (1, 2, 3, 255)
    label[0, 1] = (0, 0, 9, 255)
    label[1, 2] = (5, 5, 5, 0)  # transparent: background, whatever its colour
    np.testing.assert_array_equal(part_ids(label), [[65536 + 2 * 256 + 3, 9, 0], [0, 0, -1]])
    np.testing.assert_array_equal(part_ids(label[:, :, :3])[1, 2], 5 * 65536 + 5 * 256 + 5)  # RGB: no alpha
    labels = np.array([[1, 1, 1, 0, 2, 2],
                       [1, 3, 3, 0, 2, 2]])
    parts = np.array([[4, 4, 6, 8, 6, 6],
                      [6, 7, 8, 4, 6, -1]])
    # region 1: part 4 twice, 6 twice -> the smaller, 4; region 2: 6 three times; region 3: 7 and 8 -> 7
    np.testing.assert_array_equal(region_parts(labels, parts), [-2, 4, 6, 7])
    np.testing.assert_array_equal(region_parts(np.zeros((2, 2), int), np.zeros((2, 2), int)), [-2])
    reference, target = np.array([-2, 5, 5, 7, -1]), np.array([-2, 7, 5, 9, -2])
    assert part_correspondences(reference, target) == [(3, 1), (1, 2), (2, 2)]


def test_dataprep_build_takes_correspondences_from_part_maps(tmp_path):
    drawings = write_folder(tmp_path / "clip", n=6, with_parts=True)
    folder = LineArtFolder(tmp_path / "clip")
    assert folder.has_parts
    _, given = next(folder.drawings())
    line, _, seg = drawings[0]
    expected_parts = np.vectorize(lambda code: PARTS.get(code, 0))(seg)
    expected_parts[line[:, :, 3] > 127] = -1
    np.testing.assert_array_equal(given.parts, expected_parts)
    out = tmp_path / "ds"
    sets = ["frames.width=40", "frames.height=30", "frames.resize=keep-aspect", "run.executor=serial",
            "split.train=0", "split.val=0", "split.test=1"]
    assert main(["build", str(tmp_path / "clip"), "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    pairs = [cells["correspondences"] for _, _, cells in DatasetReader(out).pairs(["correspondences"])]
    assert pairs
    # regions 1 (left, part 11), 2 and 3 (right, both part 70012): each right region has both right
    # regions of the reference as counterparts; colours alone would give the one-to-one 1-1, 2-2, 3-3
    expected = [{"ref_id": r, "tgt_id": t} for r, t in [(1, 1), (2, 2), (3, 2), (2, 3), (3, 3)]]
    assert all(c == expected for c in pairs)


def hostile(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    write_folder(folder, with_parts=name.endswith("-label"))
    if name == "missing-label":
        (folder / "label" / "0001.png").unlink()
    elif name == "smaller-label":
        write(folder / "label" / "0002.png", np.zeros((HEIGHT, WIDTH - 3, 4), np.uint8))
    if name == "no-colour":
        (folder / "gt" / "0001.png").unlink()
    elif name == "colour-without-line":
        (folder / "line" / "0002.png").unlink()
    elif name == "bigger-colour":
        write(folder / "gt" / "0001.png", np.zeros((HEIGHT + 1, WIDTH, 3), np.uint8))
    elif name == "smaller-seg":
        write(folder / "seg" / "0002.png", np.zeros((HEIGHT, WIDTH - 3, 3), np.uint8))
    elif name == "missing-seg":
        (folder / "seg" / "0000.png").unlink()
    elif name == "unreadable-line":
        (folder / "line" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return folder


@pytest.mark.parametrize("name, message", [
    ("no-colour", "line/0001.png: line art without a colour file"),
    ("colour-without-line", "gt/0002.png: colour file without a line-art file of drawing '0002'"),
    ("bigger-colour", "gt/0001.png: colour is 40x31, its line art 0001.png 40x30"),
    ("smaller-seg", "seg/0002.png: regions is 37x30, its line art 0002.png 40x30"),
    ("missing-seg", "line/0000.png: line art without a region map"),
    ("missing-label", "line/0001.png: line art without a part map"),
    ("smaller-label", "label/0002.png: parts is 37x30, its line art 0002.png 40x30"),
    ("unreadable-line", "line/0001.png: unreadable image"),
])
def test_a_hostile_line_art_folder_is_a_one_line_error_and_writes_nothing(tmp_path, capsys, name, message):
    folder = hostile(tmp_path, name)
    out = tmp_path / "ds"
    assert main(["build", str(folder), "--out", str(out), "--set", "run.executor=serial"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
