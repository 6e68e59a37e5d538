"""docs/scripts/upscale_real_1080p.py: the 1080p proxy clips the build benchmark uses (docs/stages.md)."""

from __future__ import annotations

import importlib.util
import json
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dataprep.synth.video_writer import VideoWriter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def upscale_script():
    spec = importlib.util.spec_from_file_location("upscale_real_1080p", ROOT / "docs/scripts/upscale_real_1080p.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_to_1080p_covers_the_frame_and_crops_the_centre(upscale_script):
    # a 4:3 frame: red top quarter, green middle half, blue bottom quarter -> scaled to 1920 x 1440 and
    # cropped to rows 180..1260, so the bands become rows 0..179 red, 180..899 green, 900..1079 blue
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:12, :, 0] = 255
    frame[12:36, :, 1] = 255
    frame[36:, :, 2] = 255
    big = upscale_script.to_1080p(frame)
    assert big.shape == (1080, 1920, 3) and big.dtype == np.uint8
    # Lanczos rings for a few source pixels (30 output rows each) beside a band edge: look at rows away from it
    assert (big[:60, :, 0] >= 250).all() and (big[:60, :, 1:] <= 5).all()
    assert (big[300:780, :, 1] >= 250).all() and (big[300:780, :, 0::2] <= 5).all()
    assert (big[1020:, :, 2] >= 250).all() and (big[1020:, :, :2] <= 5).all()
    assert big[179, 0, 0] > big[181, 0, 0] and big[899, 0, 2] < big[901, 0, 2]  # edges where expected
    # a portrait panel keeps its full width
    assert upscale_script.to_1080p(np.full((512, 409, 3), 7, np.uint8)).shape == (1080, 1920, 3)


def test_upscale_writes_every_frame_of_the_cropped_panel(upscale_script, tmp_path):
    source = tmp_path / "clip.mp4"
    with VideoWriter(source, "h264", 96, 48, Fraction(24)) as writer:
        for value in (40, 120, 200):
            frame = np.zeros((48, 96, 3), np.uint8)
            frame[:, :48] = value  # the left panel is flat grey, the right one black
            writer.write(frame)
    out = tmp_path / "clip_1080p.mp4"
    assert upscale_script.upscale(source, (0, 0, 48, 48), out) == 3
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 3
    assert all(f.shape == (1080, 1920, 3) for f in frames)
    # only the grey panel is left, and each frame keeps its order (lossy codec: within a few levels)
    assert [int(np.median(f)) for f in frames] == pytest.approx([40, 120, 200], abs=4)
    assert all(f.min() > 20 for f in frames)


def test_missing_real_folder_is_a_clear_error(upscale_script, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["upscale_real_1080p.py", "--real", str(tmp_path / "nope"),
                                      "--out", str(tmp_path / "out")])
    assert upscale_script.main() == 2
    assert "real-data folder not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_real_clip_list_matches_the_build_benchmark(upscale_script):
    real = ROOT.parent / "shared" / "data" / "real"
    if not real.is_dir():
        pytest.skip("../shared/data/real is absent (real anime clips are not part of the repository)")
    clips = upscale_script.real_clips(real)
    panels = json.loads((real / "shot-clips" / "eisai" / "panels.json").read_text())
    assert len(clips) == 1 + len(panels) + 6 and all(path.exists() for path, _ in clips)
