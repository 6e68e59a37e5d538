"""Shot detection (Shi et al. Sec. 4.1): histogram normalisation, cuts on generated clips, filters, CLI, real clips."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dataprep.cli import main
from dataprep.shots.detector import DETECTORS, load_detectors
from dataprep.shots.detectors.histogram_mse import histogram_mse, rgb_histogram
from dataprep.shots.detect import detect_shots, load_truth, score_cuts
from dataprep.synth import SynthClip, SynthConfig
from video_fixtures import write_video


@pytest.fixture(scope="module")
def synth_clip(tmp_path_factory):
    """4 shots with a fade through black and a flash; hard cuts, fade range and flash frame known."""
    clip = SynthClip(SynthConfig(width=128, height=96, shots=4, shot_length=(14, 20), seed=3, fade=True,
                                 flash=True, holds=(2, 3)))
    out = clip.write(tmp_path_factory.mktemp("synth") / "clip", codec="h264", truth_images=False)
    return out, clip


def test_rgb_histogram_matches_numpy_and_is_resolution_independent():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    expected = np.concatenate([np.histogram(image[..., c], bins=256, range=(0, 256))[0] for c in range(3)])
    np.testing.assert_allclose(rgb_histogram(image, reference_pixels=2000), expected * 2000 / 2000)
    # same picture at 2x the size (nearest-neighbour: identical colour fractions) -> identical vector
    big = np.repeat(np.repeat(image, 2, 0), 2, 1)
    np.testing.assert_allclose(rgb_histogram(big), rgb_histogram(image))


def test_histogram_mse_same_at_two_sizes(synth_clip):
    out, clip = synth_clip
    frames = [f.image for f in clip.frames(0, 30)]
    scores = {}
    for size in [(128, 96), (320, 240)]:
        resized = [cv2.resize(f, size, interpolation=cv2.INTER_NEAREST) for f in frames]
        hists = [rgb_histogram(f) for f in resized]
        scores[size] = np.array([histogram_mse(a, b) for a, b in zip(hists, hists[1:])])
    big = scores[(320, 240)]
    assert big.max() > 200  # the clip has real changes, so the comparison means something
    np.testing.assert_allclose(scores[(128, 96)], big, rtol=0.05, atol=2.0)


def test_histogram_mse_paper_formula_by_hand():
    a, b = np.zeros(768), np.zeros(768)
    a[0], b[1] = 10.0, 10.0
    assert histogram_mse(a, b) == pytest.approx((100 + 100) / 768)


def test_cuts_exact_on_generated_clip_with_fade_and_flash(synth_clip):
    out, clip = synth_clip
    truth = clip.truth
    result = detect_shots(out / "video.mp4")
    assert result.n_frames == truth["n_frames"]
    fade_ranges = truth["gradual_transitions"]
    hard = [c for c in result.cuts if not any(a <= c <= b for a, b in fade_ranges)]
    assert hard == truth["hard_cuts"]  # exact: the frames at a cut land in the right shot
    for a, b in fade_ranges:  # a fade gives at most one cut, never a burst
        assert sum(a <= c <= b for c in result.cuts) <= 1
    for flash in truth["flashes"]:
        assert flash not in result.cuts and flash + 1 not in result.cuts
    score = score_cuts(result.cuts, json.loads((out / "cuts.json").read_text()))
    assert score["f1"] == 1.0


def test_flash_and_fade_guards_are_what_prevents_false_cuts(tmp_path):
    # hand-built: shot A (grey ramp), one white flash frame, A again, a 6-frame fade to black, shot B
    h, w = 48, 64
    ramp = np.tile(np.linspace(30, 220, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    other = np.zeros((h, w, 3), np.uint8)
    other[:, :, 2] = np.tile(np.linspace(60, 250, h, dtype=np.uint8)[:, None], (1, w))
    other[:, :, 0] = 90
    frames = [ramp] * 10 + [np.full((h, w, 3), 250, np.uint8)] + [ramp] * 10
    frames += [(ramp * (1 - k / 6)).astype(np.uint8) for k in range(1, 7)] + [other] * 10
    path = write_video(tmp_path / "guards.mkv", frames)
    assert detect_shots(path).cuts == [27]  # the cut lands where B starts, nothing at the flash or fade
    unguarded = detect_shots(path, max_flash_frames=0, tone_r2=2.0).cuts
    assert 10 in unguarded and 11 in unguarded  # without the guards the flash makes two cuts


def test_held_drawings_do_not_make_moving_shot_static(tmp_path):
    clip = SynthClip(SynthConfig(width=96, height=64, shots=2, shot_length=(24, 24), seed=5, holds=(3,),
                                 pan=False))
    out = clip.write(tmp_path / "held", codec="ffv1", truth_images=False)
    result = detect_shots(next(out.glob("video.*")))
    assert [s.kept for s in result.shots] == [True, True]
    # held groups equal runs of the generator's drawing numbers (length >= 2)
    drawings = [f.drawing for f in clip.frames()]
    runs, start = [], 0
    for i in range(1, len(drawings) + 1):
        if i == len(drawings) or drawings[i] != drawings[start]:
            if i - start >= 2:
                runs.append([start, i])
            start = i
    assert result.held_groups == runs


def test_static_short_and_dark_shots_are_dropped_with_reasons(tmp_path):
    h, w = 48, 64
    rng = np.random.default_rng(1)
    still = rng.integers(40, 220, (h, w, 3), dtype=np.uint8)
    scene = np.zeros((h, w, 3), np.uint8)
    scene[..., 1] = np.tile(np.linspace(0, 250, w, dtype=np.uint8), (h, 1))
    moving = []
    for i in range(12):  # a box sliding over a gradient: it hides different gradient colours each frame
        frame = scene.copy()
        frame[8:40, 3 * i:3 * i + 22] = (250, 250, 40)
        moving.append(frame)
    short = [(np.flipud(moving[0]) // 2 + np.array([100, 0, 50], np.uint8)).astype(np.uint8)] * 4
    dark = [np.clip(still // 20 + i, 0, 255).astype(np.uint8) for i in range(10)]
    path = write_video(tmp_path / "filters.mkv", [still] * 12 + moving + short + dark)
    result = detect_shots(path)
    assert result.cuts == [12, 24, 28]
    assert [(s.start, s.end, s.kept, s.reason) for s in result.shots] == [
        (0, 12, False, "static"), (12, 24, True, None), (24, 28, False, "short"),
        (28, 38, False, "dark_or_faded")]
    assert {d["frame"] for d in result.dropped_frames if d["reason"] == "dark"} == set(range(28, 38))
    assert detect_shots(path, min_length=3).shots[2].reason == "static"  # 4 identical frames


def test_result_json_schema(synth_clip):
    out, _ = synth_clip
    data = detect_shots(out / "video.mp4").to_json()
    assert {"input", "n_frames", "fps", "detector", "params", "cuts", "shots"} <= set(data)
    assert data["detector"] == "histogram-mse" and data["params"]["min_length"] == 8
    assert data["shots"][0]["start"] == 0 and data["shots"][-1]["end"] == data["n_frames"]
    assert [s["start"] for s in data["shots"][1:]] == data["cuts"]
    assert set(data["shots"][0]) == {"start", "end", "kept", "reason"}
    json.dumps(data)


def test_score_cuts_by_hand():
    truth = {"hard_cuts": [10, 20, 30], "probable_cuts": [40], "gradual_transitions": [[50, 55]]}
    s = score_cuts([11, 19, 41, 52, 60], truth)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["missed"] == [30] and s["false_positives"] == [60]


@pytest.mark.parametrize("name", [n for n in load_detectors().names() if n != "transnetv2"])
def test_every_detector_finds_the_cuts_of_a_plain_clip(name, tmp_path_factory):
    clip = SynthClip(SynthConfig(width=96, height=64, shots=3, shot_length=(20, 24), seed=7))
    out = clip.write(tmp_path_factory.mktemp(name) / "c", codec="ffv1", truth_images=False)
    cuts = detect_shots(next(out.glob("video.*")), detector=name).cuts
    assert score_cuts(cuts, clip.truth)["recall"] == 1.0 and all(isinstance(c, int) for c in cuts)


def test_unknown_detector_suggests():
    with pytest.raises(Exception, match="did you mean 'histogram-mse'"):
        DETECTORS.get("histogram_mse")


# ---- CLI ------------------------------------------------------------------------------------------------

def test_cli_shots_json_and_truth(synth_clip, capsys):
    out, clip = synth_clip
    code = main(["shots", str(out / "video.mp4"), "--json", "--truth", str(out / "cuts.json")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["score"]["f1"] == 1.0 and data["n_frames"] == clip.n_frames


def make_bad_inputs(folder):
    """Every bad input of issue 3, as (argv, file named in the error)."""
    from video_fixtures import coded_frames

    text = folder / "notes.mp4"
    text.write_text("not a video\n" * 50)
    full = write_video(folder / "full.mp4", coded_frames(48), codec="mpeg4")
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    empty = write_video(folder / "empty.mkv", [])
    gif = folder / "broken.gif"
    gif.write_bytes(b"GIF89a" + bytes(range(256)))
    ok = write_video(folder / "ok.mkv", coded_frames(4))
    return [(["shots", str(folder / "missing.mp4")], folder / "missing.mp4"), (["shots", str(text)], text),
            (["shots", str(truncated)], truncated), (["shots", str(empty)], empty), (["shots", str(gif)], gif),
            (["shots", str(ok), "--crop", "0,0,100,10"], ok)]


def test_cli_bad_inputs_one_line_exit_2_no_output(tmp_path, capsys):
    for argv, named in make_bad_inputs(tmp_path):
        assert main(argv + ["--json"]) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "", argv
        assert captured.err.count("\n") == 1 and captured.err.startswith(f"dataprep: error: {named}: "), argv
        assert "Traceback" not in captured.err


def test_cli_corrupt_half_way_processes_decoded_part_and_fails(tmp_path, capsys):
    clip = SynthClip(SynthConfig(width=64, height=48, shots=3, shot_length=(16, 16), seed=2))
    out = clip.write(tmp_path / "c", codec="ffv1", truth_images=False)
    video = next(out.glob("video.*"))
    data = video.read_bytes()
    bad = tmp_path / "half.mkv"
    bad.write_bytes(data[: len(data) * 7 // 10])
    assert main(["shots", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert 16 < result["n_frames"] < 48 and result["cuts"][0] == 16
    assert "truncated or corrupt" in result["error"] and str(bad) in captured.err


def test_cli_ls_and_speed(synth_clip, capsys):
    assert main(["ls", "detectors"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ["histogram-mse", "content", "adaptive", "histogram", "hash"])
    out, _ = synth_clip
    assert main(["speed", str(out / "video.mp4"), "--detectors", "histogram-mse", "--json", "-q"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert any(r["what"].startswith("detect histogram-mse") and r["fps"] > 0 for r in rows)


# ---- real anime clips (skipped when the data is absent) --------------------------------------------------

def test_real_one_piece_cut(real_data):
    clips = real_data / "cut-clips"
    result = detect_shots(clips / "onepiece_demo.mp4")
    assert result.n_frames == 181
    assert score_cuts(result.cuts, load_truth(clips / "onepiece_demo.cuts.json"))["f1"] == 1.0
    assert [s.kept for s in result.shots] == [True, True]


def test_real_vinland_left_half(real_data):
    clips = real_data / "cut-clips"
    tp = fp = fn = 0
    for name in ["vinland_saga.gif", "vinland_1.gif", "vinland_3.gif"]:
        result = detect_shots(clips / name, crop=(0, 0, 640, 360))
        s = score_cuts(result.cuts, load_truth(clips / "vinland.cuts.json", name))
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    assert 2 * tp / (2 * tp + fp + fn) == 1.0


def test_real_held_drawings_on_cropped_input_panel(real_data):
    folder = real_data / "shot-clips" / "eisai"
    info = json.loads((folder / "panels.json").read_text())["konobi_s01e007__000282.mp4"]
    result = detect_shots(folder / "konobi_s01e007__000282.mp4", crop=tuple(info["input_panel_box_xyxy"]))
    assert result.cuts == [] and result.shots[0].kept  # one shot, drawings held ~9 frames: not static
    held = {i for start, end in result.held_groups for i in range(start + 1, end)}
    assert [i for i in range(result.n_frames) if i not in held] == info["frame_indices_where_input_panel_changes"]


def test_cli_threshold_goes_to_each_detectors_own_parameter(synth_clip, capsys):
    out, _ = synth_clip
    assert main(["shots", str(out / "video.mp4"), "--detector", "adaptive", "--threshold", "4.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["detector"]["adaptive_threshold"] == 4.5
    assert main(["shots", str(out / "video.mp4"), "--threshold", "1e9", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"]["detector"]["threshold"] == 1e9 and data["cuts"] == []


def test_cli_process_exit_status_and_stderr(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "missing.mp4"
    out = subprocess.run([sys.executable, "-m", "dataprep", "shots", str(missing)], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"dataprep: error: {missing}: no such file or folder\n"


def test_luma_stats_match_numpy_definitions():
    """Mean luma (Rec. 601), its standard deviation and Hasler-Suesstrunk colourfulness, against numpy."""
    from dataprep.shots.detect import _luma_stats

    rng = np.random.default_rng(3)
    for image in (rng.integers(0, 256, (48, 64, 3), np.uint8), np.full((10, 12, 3), (200, 40, 90), np.uint8)):
        r, g, b = (image[..., c].astype(np.float64) for c in range(3))
        luma, rg, yb = 0.299 * r + 0.587 * g + 0.114 * b, r - g, 0.5 * (r + g) - b
        colourfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
        np.testing.assert_allclose(_luma_stats(image), (luma.mean(), luma.std(), colourfulness), rtol=1e-5, atol=1e-4)
