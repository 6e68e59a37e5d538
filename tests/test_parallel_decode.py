"""Parallel keyframe-segment decoding (dataprep.video.segments): the same frames as a sequential decode, or a fallback."""

from __future__ import annotations

import threading
import time

import av
import numpy as np
import pytest

import dataprep.video.segments as parallel_decode
from dataprep.errors import CelbenchError
from dataprep.shots.detect import detect_shots
from dataprep.video.source import ContainerSource, open_video
from video_fixtures import coded_frames, write_video


def encode(path, frames, codec, options=None, pix_fmt=None):
    """A clip with a keyframe every 12 frames (segments of 24 frames, as MIN_SEGMENT_PACKETS is 16)."""
    return write_video(path, frames, codec=codec, options=options, gop=12, pix_fmt=pix_fmt)


def moving_frames(n=60):
    """Frames that change every frame (a bar, a ramp), so a frame taken from the wrong place shows."""
    return coded_frames(n, 96, 128)


CODECS = {
    # name: (encoder, container suffix, encoder options)
    "h264": ("libx264", ".mp4", {"preset": "ultrafast", "bf": "2", "sc_threshold": "0"}),
    "h264-annexb": ("libx264", ".ts", {"preset": "ultrafast", "bf": "2", "sc_threshold": "0"}),
    "hevc": ("libx265", ".mkv", {"preset": "ultrafast", "x265-params": "keyint=12:min-keyint=12:open-gop=0:bframes=3:log-level=none"}),
    "vp9": ("libvpx-vp9", ".webm", {"deadline": "realtime", "cpu-used": "8"}),
    "mjpeg": ("mjpeg", ".mkv", {}),
}


def spy_segments(monkeypatch) -> list:
    """Record every segment the parallel decoder starts."""
    made = []
    original = parallel_decode._Segment

    class Counted(original):
        __slots__ = ()

        def __init__(self, depth):
            super().__init__(depth)
            made.append(self)

    monkeypatch.setattr(parallel_decode, "_Segment", Counted)
    return made


def checksum(image: np.ndarray) -> tuple:
    return image.shape, int(image.astype(np.int64).sum()), int(image[0, 0, 0])


@pytest.mark.parametrize("name", sorted(CODECS))
@pytest.mark.parametrize("sampling", ["stride", "area"])
def test_parallel_map_gives_the_sequential_frames(name, sampling, tmp_path, monkeypatch):
    encoder, suffix, options = CODECS[name]
    pix_fmt = "yuvj420p" if encoder == "mjpeg" else None
    path = encode(tmp_path / f"clip{suffix}", moving_frames(), encoder, options, pix_fmt=pix_fmt)
    size = {"max_width": 64, "sampling": sampling}
    sequential = [(i, t, checksum(im)) for i, t, im in open_video(path, **size)]
    segments = spy_segments(monkeypatch)
    source = open_video(path, **size)
    parallel = list(source.map(checksum, workers=3))
    assert len(sequential) == 60 and source.error is None
    assert [(i, t, c) for i, t, c in parallel] == sequential
    assert len(segments) >= 3  # really decoded in pieces (keyframes every 12 frames, 16+ packets a segment)


def test_open_gop_keyframes_are_not_segment_boundaries(tmp_path, monkeypatch):
    """HEVC with open GOPs: its CRA keyframes have leading pictures that need the previous GOP."""
    options = {"preset": "ultrafast", "x265-params": "keyint=12:min-keyint=12:open-gop=1:bframes=3:log-level=none"}
    path = encode(tmp_path / "open.mkv", moving_frames(), "libx265", options)
    keyframes = 0
    with av.open(str(path)) as container:
        keyframes = sum(p.is_keyframe for p in container.demux(video=0) if p.size)
    assert keyframes >= 4
    segments = spy_segments(monkeypatch)
    sequential = [(i, checksum(im)) for i, _, im in open_video(path)]
    assert [(i, c) for i, _, c in open_video(path).map(checksum, workers=2)] == sequential
    assert len(segments) == 1  # only IDR pictures open a segment: one segment, decoded as a whole


def test_a_segment_that_needs_the_previous_one_falls_back_to_sequential(tmp_path, monkeypatch):
    """Forced splits at open-GOP keyframes: the decoder drops the leading pictures, the order check sees it, and
    the rest is decoded sequentially: the caller still gets every frame once, in order."""
    options = {"preset": "ultrafast", "x265-params": "keyint=12:min-keyint=12:open-gop=1:bframes=3:log-level=none"}
    path = encode(tmp_path / "open.mkv", moving_frames(), "libx265", options)
    sequential = [(i, t, checksum(im)) for i, t, im in open_video(path)]
    monkeypatch.setattr(parallel_decode, "MIN_SEGMENT_PACKETS", 1)
    monkeypatch.setattr(parallel_decode, "segment_rule", lambda context: lambda packet: packet.is_keyframe)
    resumed = []
    original = ContainerSource._decode_converted

    def spy(self, convert, skip=0):
        resumed.append(skip)
        return original(self, convert, skip)

    monkeypatch.setattr(ContainerSource, "_decode_converted", spy)
    source = open_video(path)
    assert list(source.map(checksum, workers=2)) == sequential
    assert source.error is None
    assert resumed and resumed[-1] > 0  # the fallback took over after the verified frames


def test_detect_shots_does_not_depend_on_the_number_of_threads(tmp_path):
    from dataprep.synth import SynthClip, SynthConfig

    out = SynthClip(SynthConfig(width=320, height=180, shots=4, seed=3, fade=True, flash=True)).write(
        tmp_path / "c", truth_images=False)
    one = detect_shots(out / "video.mp4", workers=1).to_json()
    for workers in (2, 3):
        assert detect_shots(out / "video.mp4", workers=workers).to_json() == one


def test_function_errors_reach_the_caller_and_threads_stop(tmp_path):
    path = encode(tmp_path / "clip.mp4", moving_frames(), "libx264", CODECS["h264"][2])
    before = threading.active_count()

    def explode(image):
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError, match="boom"):
        list(open_video(path).map(explode, workers=2))
    assert wait_for_threads(before)


def test_stopping_early_stops_every_thread(tmp_path):
    path = encode(tmp_path / "clip.mp4", moving_frames(), "libx264", CODECS["h264"][2])
    before = threading.active_count()
    frames = open_video(path).map(lambda image: image.shape, workers=2)
    assert [next(frames)[0] for _ in range(5)] == [0, 1, 2, 3, 4]
    frames.close()
    assert wait_for_threads(before)


def wait_for_threads(count: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count() <= count


def test_segments_in_flight_are_bounded(tmp_path, monkeypatch):
    """A slow caller: the reader never runs more than workers + 1 segments ahead (memory stays bounded)."""
    path = encode(tmp_path / "clip.mp4", moving_frames(120), "libx264", CODECS["h264"][2])
    segments = spy_segments(monkeypatch)
    monkeypatch.setattr(parallel_decode, "DEFAULT_DEPTH", 4)
    seen = 0
    for index, _, _ in open_video(path).map(lambda image: None, workers=2):
        seen = index + 1
        time.sleep(0.002)
        done = seen // 12  # segments fully read (one per 12-frame GOP; 16+ packets make a segment of 24 here)
        assert len(segments) <= done + 2 + 1
    assert seen == 120 and len(segments) == 5


def test_corrupt_half_way_reports_like_the_sequential_decode(tmp_path):
    path = encode(tmp_path / "clip.mkv", moving_frames(96), "libx264", CODECS["h264"][2])  # index up front
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    source = open_video(cut)
    frames = list(source.map(lambda image: int(image[0, 0, 0]), workers=2))
    sequential = open_video(cut)
    assert [(i, t, int(im[0, 0, 0])) for i, t, im in sequential] == frames
    assert 24 < len(frames) < 96  # several segments' worth decoded in parallel, then the end of the data
    assert source.error == sequential.error and "truncated or corrupt" in source.error


def test_undecodable_frames_fail_detection_with_one_line(tmp_path):
    """With the header-only open of shot detection, a file whose frames never decode still fails cleanly."""
    path = encode(tmp_path / "clip.mp4", moving_frames(24), "libx264", CODECS["h264"][2])
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat") + 4
    data[mdat:] = bytes(len(data) - mdat)  # every coded picture zeroed, the header intact
    bad = tmp_path / "zeroed.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(CelbenchError) as info:
        detect_shots(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def avcc(*nals: bytes, length_size: int = 4) -> bytes:
    return b"".join(len(n).to_bytes(length_size, "big") + n for n in nals)


def test_nal_unit_types_of_hand_built_packets():
    sps, pps, idr, slice_ = b"\x67\x42\x00", b"\x68\xce", b"\x65\x88\x84\x00", b"\x41\x9a\x00"
    assert list(parallel_decode._nal_types(avcc(sps, pps, idr), 4, hevc=False)) == [7, 8, 5]
    assert list(parallel_decode._nal_types(avcc(slice_, length_size=2), 2, hevc=False)) == [1]
    annexb = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x01" + idr
    assert list(parallel_decode._nal_types(annexb, None, hevc=False)) == [7, 8, 5]
    # HEVC: type in bits 1-6 of the first header byte: IDR_W_RADL (19) = 0x26, CRA (21) = 0x2a
    assert list(parallel_decode._nal_types(avcc(b"\x26\x01\xaf", b"\x2a\x01\x00"), 4, hevc=True)) == [19, 21]
    # extradata: avcC keeps lengthSizeMinusOne in byte 4, hvcC in byte 21; Annex B has no avcC/hvcC box
    assert parallel_decode._length_size(b"\x01\x64\x00\x1e\xff\xe1", hevc=False) == 4
    assert parallel_decode._length_size(b"\x01\x64\x00\x1e\xfd\xe1", hevc=False) == 2
    assert parallel_decode._length_size(bytes([1] + [0] * 20 + [0x0f]), hevc=True) == 4
    assert parallel_decode._length_size(b"\x00\x00\x00\x01\x67", hevc=False) is None


def test_next_segment_starts_while_the_previous_is_still_decoding(tmp_path, monkeypatch):
    """The reader queues a whole segment's packets and goes on, so the next worker need not wait for the first
    one to work through its packets (a queue of a few packets serialised the workers)."""
    path = encode(tmp_path / "clip.mp4", moving_frames(120), "libx264", CODECS["h264"][2])
    segments = spy_segments(monkeypatch)
    monkeypatch.setattr(parallel_decode, "DEFAULT_DEPTH", 2)  # the first worker stalls after two results
    frames = open_video(path).map(lambda image: None, workers=2)
    next(frames)
    deadline = time.monotonic() + 5.0  # the reader needs about a millisecond; it never gets there if it waits
    while len(segments) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(segments) >= 2
    assert sum(1 for _ in frames) == 119


def test_packet_budget_bounds_the_queue_and_keeps_the_frames(tmp_path, monkeypatch):
    path = encode(tmp_path / "clip.mp4", moving_frames(), "libx264", CODECS["h264"][2])
    sequential = [(i, t, checksum(im)) for i, t, im in open_video(path)]
    monkeypatch.setattr(parallel_decode, "PACKET_BUDGET", 1)  # one packet at a time
    assert list(open_video(path).map(checksum, workers=2)) == sequential
