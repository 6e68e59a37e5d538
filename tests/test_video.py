"""Video sources: formats, frame indexing and timing, crop/downscale, and every bad input of issue 3."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from dataprep.errors import CelbenchError
from dataprep.video.source import open_video, parse_crop
from video_fixtures import coded_frames, write_video


def test_lossless_video_round_trip(tmp_path):
    frames = coded_frames(10)
    source = open_video(write_video(tmp_path / "a.mkv", frames))
    assert (source.width, source.height, source.n_frames) in [(64, 48, 10), (64, 48, None)]
    assert source.fps == pytest.approx(24.0)
    decoded = list(source)
    assert [f.index for f in decoded] == list(range(10))
    assert [f.time for f in decoded] == pytest.approx([i / 24 for i in range(10)], abs=1e-3)  # mkv: ms pts
    for f, original in zip(decoded, frames):
        assert f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3)
        np.testing.assert_array_equal(f.image, original)
    assert source.error is None
    assert len(list(source)) == 10  # re-iterable


def test_variable_frame_rate_keeps_decode_order_indices(tmp_path):
    pts = [0, 1, 2, 5, 6, 10, 11]  # gaps: a VFR stream
    source = open_video(write_video(tmp_path / "vfr.mkv", coded_frames(7), pts=pts))
    decoded = list(source)
    assert [f.index for f in decoded] == list(range(7))
    assert [f.time for f in decoded] == pytest.approx([p / 24 for p in pts], abs=1e-3)
    assert [int(f.image[0, 0, 0]) for f in decoded] == [(i * 7) % 256 for i in range(7)]


def test_crop_then_downscale_matches_numpy_and_opencv(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(3)]
    path = write_video(tmp_path / "r.mkv", frames)
    cropped = list(open_video(path, crop=(8, 4, 40, 36)))
    np.testing.assert_array_equal(cropped[1].image, frames[1][4:36, 8:40])
    small = list(open_video(path, crop=(8, 4, 40, 36), size=(16, 16)))
    expected = cv2.resize(frames[2][4:36, 8:40], (16, 16), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(small[2].image, expected)
    # decoder-side downscale without crop (swscale area filter) is close to OpenCV's area resize
    direct = list(open_video(path, size=(32, 24)))
    reference = cv2.resize(frames[0], (32, 24), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(direct[0].image.astype(int) - reference).mean() < 3


def test_gif_and_image_folder(tmp_path):
    frames = coded_frames(12)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(frames):  # names that sort wrongly as strings: 0, 1, 10, 11, 2, ...
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    source = open_video(folder, fps=12)
    assert source.n_frames == 12 and source.fps == 12
    assert [int(f.image[0, 0, 0]) for f in source] == [(i * 7) % 256 for i in range(12)]

    gif = tmp_path / "a.gif"
    Image.fromarray(frames[0]).save(gif, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:4]],
                                    duration=100, loop=0)
    decoded = list(open_video(gif))
    assert len(decoded) == 4 and decoded[-1].time == pytest.approx(0.3)


def test_parse_crop():
    assert parse_crop("0,0,640,360") == (0, 0, 640, 360)
    with pytest.raises(CelbenchError, match="four integers"):
        parse_crop("0,0,640")


# ---- bad input: one line naming the file and the problem -------------------------------------------------

def assert_one_line(error: CelbenchError, path, words: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{os.fspath(path)}: ")
    assert words in message


def test_missing_file(tmp_path):
    with pytest.raises(CelbenchError) as info:
        open_video(tmp_path / "nope.mp4")
    assert_one_line(info.value, tmp_path / "nope.mp4", "no such file")


def test_non_video_file(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is text, not a video\n" * 20)
    with pytest.raises(CelbenchError) as info:
        open_video(path)
    assert_one_line(info.value, path, "not a video")


def test_truncated_video_header(tmp_path):
    # A plain MP4 keeps its index (moov) at the end: cut in half, nothing is decodable.
    path = write_video(tmp_path / "full.mp4", coded_frames(48), codec="mpeg4")
    data = path.read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CelbenchError) as info:
        open_video(bad)
    assert_one_line(info.value, bad, "corrupt")


def test_zero_frame_video(tmp_path):
    path = write_video(tmp_path / "empty.mkv", [])
    with pytest.raises(CelbenchError) as info:
        open_video(path)
    assert_one_line(info.value, path, "zero-frame")


def test_unreadable_gif(tmp_path):
    path = tmp_path / "broken.gif"
    path.write_bytes(b"GIF89a" + bytes(range(256)) * 2)
    with pytest.raises(CelbenchError) as info:
        open_video(path)
    assert_one_line(info.value, path, "unreadable GIF")


def test_crop_outside_frame(tmp_path):
    path = write_video(tmp_path / "a.mkv", coded_frames(2))
    for crop in [(0, 0, 65, 48), (10, 10, 5, 20), (-1, 0, 10, 10)]:
        with pytest.raises(CelbenchError) as info:
            open_video(path, crop=crop)
        assert_one_line(info.value, path, "outside the 64x48 frame")


def test_corrupt_half_way_yields_decoded_part_and_reports(tmp_path):
    path = write_video(tmp_path / "full.mkv", coded_frames(48))
    data = path.read_bytes()
    bad = tmp_path / "half.mkv"
    bad.write_bytes(data[: len(data) * 6 // 10])
    source = open_video(bad)
    decoded = list(source)
    assert 5 < len(decoded) < 48
    assert [int(f.image[0, 0, 0]) for f in decoded] == [(i * 7) % 256 for i in range(len(decoded))]
    assert source.error is not None and "truncated or corrupt" in source.error


def test_garbage_in_the_middle_stops_with_an_error_not_silently(tmp_path):
    path = write_video(tmp_path / "full.mkv", coded_frames(60, 96, 128), codec="libx264")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbled.mkv"
    bad.write_bytes(bytes(data))
    source = open_video(bad)
    decoded = list(source)
    # either decoding stops with an error, or every promised frame came out: never fewer frames and no error
    assert len(decoded) == 60 or (source.error is not None and len(decoded) < 60)
    assert len(decoded) == 60 or "corrupt" in source.error


def test_image_folder_with_unreadable_image_half_way(tmp_path):
    for i, image in enumerate(coded_frames(6)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), image)
    (tmp_path / "003.png").write_bytes(b"not a png")
    source = open_video(tmp_path)
    assert len(list(source)) == 3
    assert "003.png: unreadable image" in source.error


def test_stride_sampling_keeps_true_colours_and_respects_max_width(tmp_path):
    """The analysis path samples the decoder's planes directly; it must return the frame's real colours."""
    from dataprep.synth import SynthClip, SynthConfig

    clip = SynthClip(SynthConfig(width=640, height=360, shots=1, shot_length=(6, 6)))
    out = clip.write(tmp_path / "c")
    sampled = list(open_video(out / "video.mp4", max_width=256, sampling="stride"))
    assert len(sampled) == 6
    for frame, truth in zip(sampled, clip.frames()):
        h, w = frame.image.shape[:2]
        assert w <= 256 and frame.image.shape[2] == 3
        stride = -(-640 // 256)
        expected = truth.image[: h * stride : stride, : w * stride : stride].astype(int)
        error = np.abs(frame.image.astype(int) - expected)
        assert np.median(error) <= 2 and np.mean(error) < 6  # only coding noise, mostly at outlines


def test_only_the_analysis_decode_takes_decoder_shortcuts(tmp_path):
    """Stored frames (area sampling) are bit-exact with a plain FFmpeg decode; the analysis decode
    (stride sampling) skips the deblocking filter, which changes pixels only slightly."""
    import av

    from dataprep.synth import SynthClip, SynthConfig

    out = SynthClip(SynthConfig(width=320, height=180, shots=1, shot_length=(8, 8))).write(tmp_path / "c")
    with av.open(str(out / "video.mp4")) as container:
        plain = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    stored = [f.image for f in open_video(out / "video.mp4", sampling="area")]
    assert len(stored) == len(plain) == 8
    for a, b in zip(stored, plain):
        np.testing.assert_array_equal(a, b)
    analysed = [f.image for f in open_video(out / "video.mp4", max_width=320, sampling="stride")]
    reference = [f.image for f in open_video(out / "video.mp4", max_width=320, sampling="area")]
    for a, b in zip(analysed, reference):
        assert a.shape == b.shape
        assert np.mean(np.abs(a.astype(int) - b.astype(int))) < 3  # faint block edges, same picture
