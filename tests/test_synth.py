"""The procedural cel-animation generator: determinism, ground truth consistency, written video."""

from __future__ import annotations

import hashlib
import json

import av
import cv2
import numpy as np
import pytest

from dataprep.cli import main as dataprep_main
from dataprep.synth import SynthClip, SynthConfig

SMALL = SynthConfig(width=128, height=96, shots=3, shot_length=(14, 20), seed=3, fade=True, flash=True)


def digest(clip: SynthClip) -> str:
    h = hashlib.sha256(json.dumps(clip.truth, sort_keys=True).encode())
    for f in clip.frames():
        h.update(f.image.tobytes() + f.line_art.tobytes() + f.labels.tobytes())
    return h.hexdigest()


def plain_frames(clip: SynthClip):
    """Frames without fade or flash effects (their colours are deliberately altered)."""
    truth = clip.truth
    altered = set(truth["flashes"])
    for a, b in truth["gradual_transitions"]:
        altered.update(range(a, b + 1))
    return [f for f in clip.frames() if f.index not in altered]


def test_same_seed_is_byte_identical_and_seed_matters():
    assert digest(SynthClip(SMALL)) == digest(SynthClip(SMALL))
    other = SynthConfig(**{**SMALL.__dict__, "seed": 4})
    assert digest(SynthClip(other)) != digest(SynthClip(SMALL))


def test_truth_describes_shots_cuts_fades_and_flashes():
    truth = SynthClip(SMALL).truth
    shots = truth["shots"]
    assert shots[0]["start"] == 0 and shots[-1]["end"] == truth["n_frames"]
    assert all(a["end"] == b["start"] for a, b in zip(shots, shots[1:]))
    assert truth["cuts"] == [s["start"] for s in shots[1:]]
    (fade_start, fade_end), = truth["gradual_transitions"]
    fade_cut = next(c for c in truth["cuts"] if fade_start < c <= fade_end)
    assert fade_cut not in truth["hard_cuts"] and len(truth["hard_cuts"]) == len(truth["cuts"]) - 1
    assert len(truth["flashes"]) == 1 and truth["flashes"][0] not in truth["cuts"]
    assert len(truth["drawings"]) == truth["n_frames"]


def test_line_art_is_the_dark_outline_of_the_rendered_frame():
    clip = SynthClip(SMALL)
    for f in plain_frames(clip):
        dark = f.image.max(axis=-1) < 40
        line = f.line_art == 0
        overlap = (dark & line).sum()
        assert overlap / line.sum() >= 0.95 and overlap / dark.sum() >= 0.95, f.index
        assert set(np.unique(f.line_art)) <= {0, 255}
        assert np.array_equal(line, f.labels == 0)


def test_every_region_has_one_flat_colour_matching_the_table():
    clip = SynthClip(SMALL)
    regions = clip.truth["regions"]
    checked = 0
    for f in plain_frames(clip):
        for rid in np.unique(f.labels):
            if rid == 0 or not regions[str(rid)]["flat"]:
                continue
            colours = np.unique(f.image[f.labels == rid], axis=0)
            assert colours.tolist() == [regions[str(rid)]["rgb"]], (f.index, rid)
            checked += 1
    assert checked > 100


def test_correspondences_are_consistent_within_shots_and_held_frames():
    clip = SynthClip(SMALL)
    truth = clip.truth
    shot_of_region = {int(k): v["shot"] for k, v in truth["regions"].items()}
    previous = {}
    moved = appeared = 0
    seen_by_shot: dict[int, list[set]] = {}
    for f in clip.frames():
        ids = set(np.unique(f.labels).tolist()) - {0}
        assert {shot_of_region[i] for i in ids} == {f.shot}  # ids never leak across shots
        seen_by_shot.setdefault(f.shot, []).append(ids)
        key = (f.shot, f.drawing)
        if key in previous:  # held drawing: identical truth
            labels, line_art = previous[key]
            assert np.array_equal(labels, f.labels) and np.array_equal(line_art, f.line_art)
        elif (f.shot, f.drawing - 1) in previous:
            moved += not np.array_equal(previous[(f.shot, f.drawing - 1)][0], f.labels)
        previous[key] = (f.labels, f.line_art)
    for sets in seen_by_shot.values():
        appeared += len(set.union(*sets) - set.intersection(*sets)) > 0  # parts appear and disappear
    assert moved > 5 and appeared >= 1
    assert any(s["hold"] > 1 for s in truth["shots"])


# PSNR floors: 4:2:0 chroma subsampling smears thin black lines on saturated fills at 128x96.
@pytest.mark.parametrize("codec, min_psnr", [("h264", 24.0), ("mjpeg", 18.0), ("ffv1", 45.0)])
def test_written_video_decodes_to_the_truth(tmp_path, codec, min_psnr):
    clip = SynthClip(SMALL)
    out = clip.write(tmp_path / "clip", codec=codec)
    truth = json.loads((out / "truth.json").read_text())
    rendered = [f.image for f in clip.frames()]
    with av.open(str(out / truth["video"])) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == truth["n_frames"] == len(rendered)
    capture = cv2.VideoCapture(str(out / truth["video"]))
    n_cv = 0
    while capture.read()[0]:
        n_cv += 1
    assert n_cv == truth["n_frames"]
    def mse(a, b):
        return np.mean((a.astype(np.float64) - b) ** 2)

    for i, d in enumerate(decoded):  # decoded frame i is rendered frame i, not a neighbour
        assert 10 * np.log10(255 ** 2 / max(mse(d, rendered[i]), 1e-9)) > min_psnr, i
        for j in (i - 1, i + 1):
            if 0 <= j < len(rendered) and mse(rendered[j], rendered[i]) > 50:
                assert mse(d, rendered[i]) < mse(d, rendered[j]), (i, j)
    for cut in truth["hard_cuts"]:
        jump = np.mean((decoded[cut].astype(np.float64) - decoded[cut - 1]) ** 2)
        assert jump > 200, cut
    line_art = cv2.imread(str(out / "line_art" / "000000.png"), cv2.IMREAD_UNCHANGED)
    labels = cv2.imread(str(out / "labels" / "000000.png"), cv2.IMREAD_UNCHANGED)
    first = next(clip.frames())
    assert labels.dtype == np.uint16 and np.array_equal(labels, first.labels)
    assert np.array_equal(line_art, first.line_art)


def test_full_hd_frame_renders():
    clip = SynthClip(SynthConfig(width=1920, height=1080, shots=1, shot_length=(2, 2)))
    frame = next(clip.frames())
    assert frame.image.shape == (1080, 1920, 3) and frame.labels.dtype == np.uint16
    assert (frame.line_art == 0).mean() > 0.005


def test_cli_writes_video_truth_and_contact_sheet(tmp_path, capsys):
    out = tmp_path / "demo"
    assert dataprep_main(["synth", "--out", str(out), "--shots", "4", "--seed", "0",
                          "--width", "96", "--height", "64", "--shot-length", "8,10"]) == 0
    assert {"video.mp4", "truth.json", "cuts.json", "contact_sheet.png", "line_art", "labels"} <= {
        p.name for p in out.iterdir()}
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape[0] > 300 and sheet.std() > 20
    assert "4 shots" in capsys.readouterr().out
    assert len(json.loads((out / "truth.json").read_text())["shots"]) == 4
    # an existing output is not replaced by accident
    assert dataprep_main(["synth", "--out", str(out)]) == 2


@pytest.mark.parametrize("args, message", [
    (["--width", "-8"], "frame size"),
    (["--codec", "xvid"], "unknown codec"),
    (["--shots", "0"], "shots"),
    (["--height", "33"], "must be even"),
])
def test_bad_input_is_one_line_error_and_no_output(tmp_path, capsys, args, message):
    out = tmp_path / "x"
    assert dataprep_main(["synth", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unwritable_output_dir(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if (locked / "probe").parent.stat().st_uid == 0 and __import__("os").geteuid() == 0:
            target = "/proc/celbench/out"  # root ignores permissions; /proc is never writable
        else:
            target = str(locked / "out")
        assert dataprep_main(["synth", "--out", target, "--shots", "1"]) == 2
        err = capsys.readouterr().err
        assert target in err and "cannot" in err
    finally:
        locked.chmod(0o700)
