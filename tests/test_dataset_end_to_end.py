"""``dataprep build`` with the real stages (video decoding, shot detection, sketches, fields, components, hints)
on a generated clip with known shots and held drawings, and on the real anime frames when present."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataprep.build import build
from dataprep.dataset.manifest import shard_files
from dataprep.config import load_config
from dataprep.dataset.validate import validate

SMALL = ["frames.size=64", "samplers.train-window.width=10", "run.frames_per_unit=20"]


def table(out, name) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in shard_files(out, name)])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from dataprep.synth import SynthClip, SynthConfig

    root = tmp_path_factory.mktemp("clip")
    synth = SynthClip(SynthConfig(width=128, height=96, shots=2, shot_length=(16, 20), seed=5, pan=False))
    synth.write(root, codec="h264")
    return root / "video.mp4", synth.truth


def test_real_stages_build_a_valid_dataset_that_follows_the_clip(clip, tmp_path):
    video, truth = clip
    out = tmp_path / "ds"
    report = build([video], out, load_config(None, SMALL + ["run.workers=2"]))
    assert report.failed == []
    validate(out)
    frames = table(out, "frames").to_pylist()
    # shots found by the detector are the generator's shots (every shot here is long enough to be kept)
    starts = sorted({f["shot_start"] for f in frames})
    assert starts == [s["start"] for s in truth["shots"]]
    # frames of one held drawing share a held group; frames of different drawings do not
    drawing = truth["drawings"]
    by_group = defaultdict(set)
    for f in frames:
        by_group[(f["shot_id"], f["held_group"])].add(drawing[f["frame_index"]])
    assert all(len(d) == 1 for d in by_group.values())
    runs = sum(1 for i in range(truth["n_frames"]) if i in [s["start"] for s in truth["shots"]]
               or drawing[i] != drawing[i - 1])
    assert len(by_group) <= runs * 1.1  # and the runs are found (H.264 noise may split one in ten)
    tables = {f["frame_key"]: {c["id"] for c in f["component_table"]} for f in frames}
    pairs = table(out, "pairs").to_pylist()
    assert pairs and any(p["correspondences"] for p in pairs)
    for p in pairs:
        ref = p["reference_keys"][0]
        assert all(c["ref_id"] in tables[ref] and c["tgt_id"] in tables[p["target_key"]]
                   for c in p["correspondences"])
    # CMFT test sequences never use a target identical to (same held drawing as) the reference
    group = {f["frame_key"]: (f["shot_id"], f["held_group"]) for f in frames}
    for p in pairs:
        if p["kind"].startswith("cmft-test@"):
            assert group[p["reference_keys"][0]] != group[p["target_key"]]


def test_real_anime_frames_build_and_validate(real_data, tmp_path):
    folder = real_data / "colour-shots" / "lvcd_sample_1"
    out = tmp_path / "lvcd"
    report = build([folder], out, load_config(None, ["frames.size=96", "run.executor=serial"]))
    assert report.failed == []
    validate(out)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["counts"]["frames"] == 75  # 0.png..74.png, one shot, nothing dropped
    frames = table(out, "frames").to_pylist()
    assert len({f["held_group"] for f in frames}) < 75  # the shot holds drawings (README)


def test_folder_of_mixed_sizes_grey_and_rgba_frames_with_real_stages(tmp_path):
    import cv2
    import numpy as np

    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(0)
    shapes = [(60, 80, 3), (64, 64), (50, 100, 4), (60, 80, 3)]
    for index, shape in enumerate(shapes):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        if len(shape) == 3 and shape[2] == 4:
            image[..., 3] = 255
        cv2.imwrite(str(folder / f"{index}.png"), image)
    out = tmp_path / "ds"
    config = load_config(None, ["frames.size=32", "shots.params.min_length=1",
                                "shots.params.static_mse=0", "shots.params.faded_colourfulness=0",
                                "shots.params.faded_contrast=0", "run.executor=serial"])
    assert build([folder], out, config).failed == []
    validate(out)
    detection = json.loads(next((out / "meta" / "shots").glob("*.json")).read_text())
    assert detection["n_frames"] == 4 and "mixed" in detection["note"]
    assert len(table(out, "frames")) == 4


def test_units_entered_by_seeking_get_the_frames_of_a_full_decode(clip):
    import numpy as np

    from dataprep.build.pipeline import seek_frames
    from dataprep.video.source import open_video

    video, truth = clip
    size = (48, 36)
    full = [(i, t, im) for i, t, im in open_video(video, size=size)]
    assert len(full) == truth["n_frames"]
    for start, end in [(1, 5), (17, 30), (len(full) - 3, None)]:
        seeking = seek_frames(str(video), None, size, start, end, len(full))
        assert seeking is not None
        got = list(seeking)
        want = full[start:end]
        assert [g[0] for g in got] == [w[0] for w in want]
        assert all(abs(g[1] - w[1]) < 1e-6 and np.array_equal(g[2], w[2]) for g, w in zip(got, want))
        cropped = list(seek_frames(str(video), (8, 4, 72, 52), (32, 24), start, end, len(full)))
        reference = [im for i, _, im in open_video(video, crop=(8, 4, 72, 52), size=(32, 24))][start:end]
        assert all(np.array_equal(g[2], r) for g, r in zip(cropped, reference))
    assert seek_frames(str(video), None, size, 3, 6, len(full) + 1) is None  # counts disagree: no seeking


@pytest.mark.parametrize("name", ["onepiece_demo.mp4", "vinland_saga.gif"])
def test_seeking_into_real_clips_matches_a_full_decode(real_data, name):
    import numpy as np

    from dataprep.build.pipeline import seek_frames
    from dataprep.video.source import open_video

    path = real_data / "cut-clips" / name
    size = (64, 48)
    full = list(open_video(path, size=size))
    start = len(full) // 2 + 1
    seeking = seek_frames(str(path), None, size, start, start + 8, len(full))
    assert seeking is not None
    got = list(seeking)
    assert [g[0] for g in got] == list(range(start, start + 8))
    assert all(np.array_equal(g[2], w[2]) for g, w in zip(got, full[start:start + 8]))


def test_last_frame_gives_the_last_output_only_while_the_inputs_are_equal():
    from dataprep.build.pipeline import LastFrame

    memo, calls = LastFrame(), []

    def double(array):
        calls.append(1)
        return array * 2

    first = np.arange(6, dtype=np.uint8).reshape(2, 3)
    out = memo(lambda: double(first), first)
    assert not out.flags.writeable  # shared with the next frames: nobody may change it
    again = first.copy()  # equal values, another array: reused
    assert memo(lambda: double(again), again) is out and len(calls) == 1
    other = first.copy()
    other[0, 0] = 9
    assert memo(lambda: double(other), other)[0, 0] == 18 and len(calls) == 2
    assert memo(lambda: double(other.astype(np.int16)), other.astype(np.int16)).dtype == np.int16  # dtype counts
    assert len(calls) == 3
    # the inputs are kept as copies: an array changed in place after the call is not taken for the old one
    changing = np.zeros(3, np.uint8)
    memo(lambda: double(changing), changing)
    changing[0] = 1
    assert memo(lambda: double(changing), changing)[0] == 2 and len(calls) == 5
    # several inputs: all must be equal
    memo(lambda: double(first), first, "colour")
    assert len(calls) == 6
    memo(lambda: double(first), first, "sketch")
    assert len(calls) == 7


def _build_with_and_without_reuse(inputs, config, tmp_path, monkeypatch) -> tuple[list[dict], int]:
    """Build ``inputs`` as usual and with every frame computed (``LastFrame`` off); assert the datasets are
    identical byte for byte. Returns the frames table (build order) and the gap-closing + labelling calls of
    the first build."""
    import dataprep.build.pipeline as build_pipeline
    from dataprep import components
    from tests.dataset_fakes import dataset_bytes

    calls = []
    extract_labels = components.extract_labels
    with monkeypatch.context() as patch:
        patch.setattr(components, "extract_labels",
                      lambda sketch, **params: calls.append(1) or extract_labels(sketch, **params))
        build(inputs, tmp_path / "reused", config)
        reused_calls = len(calls)
        patch.setattr(build_pipeline.LastFrame, "__call__", lambda self, compute, *given: compute())
        calls.clear()
        build(inputs, tmp_path / "computed", config)
    frames = sorted(table(tmp_path / "reused", "frames").to_pylist(), key=lambda f: (f["video_id"], f["frame_index"]))
    assert len(calls) == len(frames)  # without the reuse: once per frame
    assert dataset_bytes(tmp_path / "reused") == dataset_bytes(tmp_path / "computed")
    return frames, reused_calls


def test_held_drawings_reuse_the_last_frames_work_and_write_the_same_bytes(tmp_path, monkeypatch):
    """A held drawing repeats its frame exactly (here: PNG frames of the generator, which holds drawings for
    several frames); the stages then hand back the last frame's sketch, field, label map, table and PNG bytes
    (``LastFrame``), and the dataset is the one that computing every frame gives, byte for byte."""
    from dataprep.components import LINE_THRESHOLD
    from dataprep.imaging import decode_png
    from tests.dataset_fakes import write_synth_frames

    folder = tmp_path / "clip"
    write_synth_frames(folder, seed=2, shots=1, width=96, height=64, shot_length=(24, 24))
    frames, calls = _build_with_and_without_reuse([folder], load_config(None, SMALL + ["run.executor=serial"]),
                                                  tmp_path, monkeypatch)
    masks = [decode_png(f["sketch"]["bytes"]) < LINE_THRESHOLD for f in frames]
    runs = 1 + sum(not np.array_equal(a, b) for a, b in zip(masks, masks[1:]))
    assert len(frames) == 24 and 1 < runs < 24  # the clip holds its drawings
    assert calls == runs  # gap closing and labelling once per run of equal line masks


def test_held_frames_of_real_tv_anime_are_reused_with_identical_output(real_data, tmp_path, monkeypatch):
    """On real TV anime (an eisai shot, its input panel scaled to the stored size) held frames come out equal
    (codec noise averages away when scaled down): the build skips their gap closing, and the dataset is the one
    computing every frame gives."""
    panels = json.loads((real_data / "shot-clips" / "eisai" / "panels.json").read_text())
    name = "konobi_s01e012__000339.mp4"
    config = load_config(None, ["run.executor=serial",
                                f"frames.crop={json.dumps(panels[name]['input_panel_box_xyxy'])}"])
    frames, calls = _build_with_and_without_reuse([real_data / "shot-clips" / "eisai" / name], config, tmp_path,
                                                  monkeypatch)
    assert len(frames) > 100 and calls < 0.75 * len(frames)
