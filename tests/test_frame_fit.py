"""Whole frames: the build's default fit keeps a frame's aspect ratio, and protocols fit stored frames of any aspect
ratio to a model's input (centre crop, pad, tiles), scored against hand-computed numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from benchmark import cli
from benchmark.evaluate import evaluate
from benchmark.fit import FITS, tile_starts
from benchmark.model import load_model
from benchmark.protocol import load_protocol
from benchmark.source import Frame, MemorySource, Shot
from benchmark_toys import local_metric_factory, one_torch_thread
from dataprep.build.pipeline import decode_size
from dataprep.config import load_config
from dataprep.errors import CelbenchError
from dataprep.imaging import fit_frame, short_side_size

single_thread = pytest.fixture(autouse=True)(one_torch_thread)

PROTOCOL = {
    "name": "tiny-fit", "version": 1, "description": "copy the reference, one target per shot", "paper": "test",
    "sampler": {"kind": "interval", "strides": [1], "targets_per_reference": 2, "seed": 0},
    "inputs": ["reference_colour", "reference_sketch", "reference_field", "target_sketch", "target_field"],
    "resolution": [16, 16], "metrics": [{"name": "psnr", "settings": {}}], "primary_metric": "psnr",
    "bucket": "interval", "batch_size": 4,
}


def protocol(tmp_path, **changes):
    data = {**PROTOCOL, **changes}
    path = tmp_path / f"p{abs(hash(json.dumps(data, sort_keys=True)))}.json"
    path.write_text(json.dumps(data))
    return load_protocol(str(path))


def noise_frame(seed: int, height: int, width: int) -> Frame:
    rng = np.random.default_rng(seed)
    return Frame(colour=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                 sketch=rng.integers(0, 256, (height, width), dtype=np.uint8),
                 field=rng.random((height, width), dtype=np.float32),
                 components=rng.integers(1, 5, (height, width)).astype(np.uint16))


def source_of(sizes: list[tuple[int, int]], frames: int = 3, transform=None) -> MemorySource:
    """One shot per (height, width) of random frames; ``transform(frame)`` replaces each frame (a hand crop)."""
    frame_map, shots = {}, []
    for s, (height, width) in enumerate(sizes):
        ids = [f"s{s}/{t}" for t in range(frames)]
        for t, frame_id in enumerate(ids):
            frame = noise_frame(100 * s + t, height, width)
            frame_map[frame_id] = transform(frame) if transform else frame
        shots.append(Shot(f"s{s}", tuple(ids)))
    return MemorySource({"test": shots}, frame_map)


def copy_psnr(source: MemorySource, crop=lambda image: image) -> dict[str, float]:
    """Per sample: PSNR (scikit-image) of the reference colour against the target colour, after ``crop``."""
    samples = load_protocol_samples(source)
    return {s.sample_id: peak_signal_noise_ratio(crop(source.frame(s.target_id).colour),
                                                 crop(source.frame(s.reference_ids[0]).colour), data_range=255)
            for s in samples}


def load_protocol_samples(source):
    from benchmark.protocol import select_samples

    return select_samples(source, "test", "interval", strides=[1], targets_per_reference=2, seed=0)


class Probe:
    """copy-reference that records the spatial size and the pad content of every input it is given."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, batch):
        self.calls.append({key: value.clone() for key, value in batch.items()})
        return batch["reference_colour"][:, 0]


def scores(evaluation) -> dict[str, float]:
    return {row["sample_id"]: row["psnr"] for row in evaluation.rows}


def test_short_side_keeps_the_aspect_and_rounds_the_long_side_to_eight():
    assert short_side_size(1920, 1080, 256) == (456, 256)  # 455.1 -> 456
    assert short_side_size(1080, 1920, 256) == (256, 456)
    assert short_side_size(409, 512, 256) == (256, 320)
    assert short_side_size(300, 300, 64) == (64, 64)
    assert short_side_size(100, 99, 48) == (48, 48)  # the longer side never drops below the shorter
    rgb = np.zeros((90, 160, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)  # left and right edges survive: nothing is cut
    rgb[:, -20:] = (0, 0, 255)
    stored = fit_frame(rgb, 48, 48, "short-side")
    assert stored.shape == (48, 88, 3)
    assert stored[24, 1].tolist() == [255, 0, 0] and stored[24, -2].tolist() == [0, 0, 255]
    assert fit_frame(rgb, 48, 48, "centre-crop").shape == (48, 48, 3)
    # the decoder is asked for the stored size directly, so fit_frame has nothing left to do
    assert decode_size(1920, 1080, 256, 256, "short-side") == (456, 256)
    assert decode_size(320, 180, 256, 256, "short-side") is None  # not larger than needed: no decoder upscaling
    config = load_config(None, ["frames.size=64"])
    assert config.frames.resize == "short-side" and config.frames.box() == (64, 64)
    assert load_config(None, ["frames.resize=pad", "frames.width=32"]).frames.box() == (32, 256)
    with pytest.raises(CelbenchError, match="frames.size"):
        load_config(None, ["frames.size=4"])


@pytest.mark.parametrize("length,window", [(16, 16), (17, 16), (40, 16), (456, 256), (1000, 256), (5, 16)])
def test_tiles_cover_the_frame_with_overlap_and_as_few_windows_as_possible(length, window):
    starts = tile_starts(length, window)
    assert starts[0] == 0 and starts == sorted(starts)
    assert starts[-1] + window >= length  # the last pixel is covered
    steps = np.diff(starts)
    assert all(step <= window * 7 / 8 for step in steps)  # neighbours overlap by >= 1/8 of a window
    assert all(s + window <= max(length, window) for s in starts)
    if len(starts) > 2:  # one window fewer would need steps above 7/8 of a window
        assert (length - window) / (len(starts) - 2) > window * 7 / 8
    assert (len(starts) == 1) == (length <= window)


def test_centre_crop_fit_scores_the_centre_square_of_whole_frames(tmp_path):
    """A 16x28 stored frame under a 16x16 protocol scores exactly what a dataset of its centre squares scores."""
    wide = source_of([(16, 28)])
    centre = source_of([(16, 28)], transform=lambda f: Frame(
        f.colour[:, 6:22], f.sketch[:, 6:22], f.field[:, 6:22], f.components[:, 6:22]))
    fitted = evaluate(load_model("copy-reference"), "copy", wide, protocol(tmp_path), metric_factory=local_metric_factory)
    squares = evaluate(load_model("copy-reference"), "copy", centre, protocol(tmp_path),
                       metric_factory=local_metric_factory)
    assert scores(fitted) == scores(squares) == pytest.approx(copy_psnr(centre))
    assert fitted.record.signature_fields["fit"] == "centre-crop"
    # a square dataset at the protocol's resolution is untouched by the fit (old datasets keep their numbers)
    assert scores(squares) == scores(evaluate(load_model("copy-reference"), "copy", centre,
                                              protocol(tmp_path, fit="pad"), metric_factory=local_metric_factory))


def test_pad_fit_shows_the_model_white_margins_and_scores_the_whole_frame_only(tmp_path):
    wide = source_of([(8, 16)])  # under a 16x16 input: scale 1, 4 rows of padding above and below
    probe = Probe()
    result = evaluate(probe, "probe", wide, protocol(tmp_path, fit="pad"), metric_factory=local_metric_factory)
    assert scores(result) == pytest.approx(copy_psnr(wide))  # the whole 8x16 frame, no padding scored
    batch = probe.calls[0]
    assert tuple(batch["target_sketch"].shape[-2:]) == (16, 16)
    assert float(batch["reference_colour"][..., :4, :].min()) == 1.0  # white paper above the frame
    assert float(batch["target_field"][..., 12:, :].min()) == 1.0  # no line near, below the frame
    stored = wide.frame(wide.splits["test"][0].frame_ids[0])
    assert torch.equal(batch["reference_colour"][0, 0, :, 4:12], torch.from_numpy(stored.colour).permute(2, 0, 1) / 255)
    assert result.record.signature_fields["fit"] == "pad"


def test_tiles_fit_runs_the_model_on_windows_and_scores_the_stitched_whole_frame(tmp_path):
    wide = source_of([(16, 40)])  # 16x16 windows at x = 0, 12, 24
    probe = Probe()
    result = evaluate(probe, "probe", wide, protocol(tmp_path, fit="tiles"), metric_factory=local_metric_factory)
    assert scores(result) == pytest.approx(copy_psnr(wide))  # overlaps averaged: the copy is exact
    assert len(probe.calls) == 3 and all(tuple(c["target_sketch"].shape[-2:]) == (16, 16) for c in probe.calls)
    stored = wide.frame(wide.splits["test"][0].frame_ids[0])
    third = torch.from_numpy(stored.colour[:, 24:40]).permute(2, 0, 1) / 255
    assert torch.equal(probe.calls[2]["reference_colour"][0, 0], third)

    calls: list[int] = []

    def by_window(batch):  # a different constant per window: overlaps must come out as the mean
        calls.append(len(calls))
        return torch.full((batch["target_sketch"].shape[0], 3, 16, 16), [0.0, 0.5, 1.0][len(calls) - 1])

    grey = evaluate(by_window, "windows", wide, protocol(tmp_path, fit="tiles"), metric_factory=local_metric_factory)
    assert grey.record.status == "complete" and len(calls) == 3
    target = wide.frame(wide.splits["test"][0].frame_ids[1]).colour.astype(float)
    expected = np.zeros((16, 40)) + np.array([0.0] * 12 + [0.25] * 4 + [0.5] * 8 + [0.75] * 4 + [1.0] * 12)
    prediction = np.round(expected * 255)[..., None].repeat(3, axis=2)
    mse = ((prediction - target) ** 2).mean()
    assert scores(grey)["s0/s1/f1"] == pytest.approx(10 * math.log10(255 ** 2 / mse))


def test_sources_of_different_aspect_ratios_batch_apart_at_stored_size_and_when_fitted(tmp_path):
    mixed = source_of([(16, 24), (24, 16), (16, 24)])
    stored = protocol(tmp_path, resolution="stored", batch_size=8)
    result = evaluate(load_model("copy-reference"), "copy", mixed, stored, metric_factory=local_metric_factory)
    assert result.record.status == "complete" and scores(result) == pytest.approx(copy_psnr(mixed))
    assert "fit" not in result.record.signature_fields
    for fit in ("centre-crop", "pad", "tiles"):
        fitted = evaluate(load_model("copy-reference"), "copy", mixed, protocol(tmp_path, fit=fit, batch_size=8),
                          metric_factory=local_metric_factory)
        assert fitted.record.status == "complete" and fitted.record.samples_valid == 6, fit


def test_component_labels_are_fitted_with_nearest_neighbour(tmp_path):
    frame = noise_frame(0, 16, 32)
    from benchmark.evaluate import prepare_frame

    for fit in FITS:
        prepared = prepare_frame(frame, (8, 8), fit)
        labels = set(prepared.components.unique().tolist())
        assert labels <= set(np.unique(frame.components).tolist())  # ids kept, never blended
        assert prepared.components.shape == prepared.colour.shape[-2:]
    assert prepare_frame(frame, None).components.shape == (16, 32)  # stored: nothing resampled


def test_bad_fits_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(CelbenchError, match="unknown fit 'tile'; did you mean 'tiles'"):
        protocol(tmp_path, fit="tile")
    with pytest.raises(CelbenchError, match="'fit' needs a fixed resolution"):
        protocol(tmp_path, resolution="stored", fit="pad")
    assert cli.main(["evaluate", "--model", "copy-reference", "--data", str(tmp_path), "--protocol",
                     "components@2", "--fit", "pad"]) == 2
    assert "scores frames at their stored size" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", "copy-reference", "--data", str(tmp_path), "--fit", "crop"]) == 2
    assert "unknown fit 'crop'" in capsys.readouterr().err
