"""Build config (dataprep.config) and dataset schemas (dataprep.dataset.schemas)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dataprep.config import BuildConfig, config_from_dict, config_hash, default_yaml, load_config
from dataprep.errors import CelbenchError
from dataprep.imaging import decode_png, encode_png, fit_frame, to_rgb
from dataprep.dataset.schemas import FRAMES, PAIRS, SCHEMA_VERSION, image_value, markdown, schema_version_of

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_default_yaml_equals_the_dataclass_defaults():
    shipped = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert shipped == dataclasses.asdict(BuildConfig())
    assert load_config(ROOT / "configs" / "default.yaml") == BuildConfig()
    assert yaml.safe_load(default_yaml()) == shipped


def test_defaults_follow_the_papers():
    config = BuildConfig()
    assert (config.frames.width, config.frames.height) == (256, 256)
    assert config.samplers["train-window"]["width"] == 40 and config.samplers["train-window"]["stride"] == 5
    assert config.samplers["cmft-test"]["strides"] == [1, 5, 10] and config.samplers["cmft-test"]["length"] == 5
    assert config.samplers["shi-seq"]["length"] == 8 and config.samplers["shi-long"]["references"] == 3


def test_yaml_toml_and_overrides_merge_in_order(tmp_path):
    (tmp_path / "c.yaml").write_text("frames:\n  width: 128\nsplit:\n  by: video\n")
    (tmp_path / "c.toml").write_text("[frames]\nwidth = 64\nresize = 'pad'\n[samplers.cmft-test]\nstrides = [2]\n")
    a = load_config(tmp_path / "c.yaml", ["frames.height=96", "samplers.shi-seq.length=6"])
    assert (a.frames.width, a.frames.height, a.split.by) == (128, 96, "video")
    assert a.samplers["shi-seq"] == {"length": 6, "stride": 8, "collapse_held": True}
    b = load_config(tmp_path / "c.toml", ["frames.width=32"])
    assert (b.frames.width, b.frames.resize, b.samplers["cmft-test"]["strides"]) == (32, "pad", [2])
    assert "shi-long" not in load_config(None, ["samplers.shi-long=null"]).samplers
    merged = load_config(None, ["shots.params.threshold=150", "shots.params.min_length=4"])
    assert merged.shots.params == {"threshold": 150, "min_length": 4}


@pytest.mark.parametrize("override, key", [
    ("frames.widht=3", "frames.widht"),
    ("frames.width=wide", "frames.width"),
    ("frames.width=1.5", "frames.width"),
    ("split.train=yes", "split.train"),
    ("output.nope=1", "output.nope"),
    ("samplers.cmft-test.stride=1", "samplers.cmft-test.stride"),
    ("samplers.cmft-test.strides=5", "samplers.cmft-test.strides"),
    ("samplers.shi-seq.length=8.5", "samplers.shi-seq.length"),
    ("samplers.no-such.length=8", "samplers.no-such"),
    ("frames.resize=stretch", "frames.resize"),
])
def test_unknown_key_or_wrong_type_names_the_key(override, key):
    with pytest.raises(CelbenchError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("frames: [1, 2\n")
    with pytest.raises(CelbenchError, match="bad.yaml: invalid config"):
        load_config(bad)
    (tmp_path / "typo.toml").write_text("[frames]\nwitdh = 3\n")
    with pytest.raises(CelbenchError, match="frames.witdh"):
        load_config(tmp_path / "typo.toml")


def test_config_hash_is_stable_and_ignores_run_settings():
    base = config_hash(BuildConfig())
    assert base == config_hash(load_config(None, []))
    assert config_hash(load_config(None, ["run.workers=7", "run.executor=serial"])) == base
    assert config_hash(load_config(None, ["frames.width=128"])) != base
    assert len(base) == 64 and int(base, 16) >= 0


def test_schema_round_trip_through_parquet(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    field = np.arange(80, dtype=np.uint16).reshape(8, 10) * 800
    row = {"frame_key": "v/000001", "video_id": "v", "shot_id": 0, "shot_start": 0, "frame_index": 1,
           "timestamp": 1 / 24, "split": "train", "held_group": 0, "width": 10, "height": 8,
           "colour": image_value(encode_png(rgb)), "sketch": image_value(encode_png(rgb[:, :, 0])),
           "distance_field": image_value(encode_png(field)), "components": image_value(encode_png(field // 800)),
           "component_table": [{"id": 1, "area": 5, "centroid": [1.5, 2.0], "bbox": [0, 0, 2, 3],
                                "hu": [0.1] * 7, "mean_rgb": [1.0, 2.0, 3.0]}],
           "extractor": "xdog", "extractor_params": "{}", "field": "euclidean", "seed": 7}
    pq.write_table(pa.Table.from_pylist([row], schema=FRAMES), tmp_path / "f.parquet")
    back = pq.read_table(tmp_path / "f.parquet")
    assert back.schema.remove_metadata().equals(FRAMES.remove_metadata())
    assert schema_version_of(back.schema) == SCHEMA_VERSION
    got = back.to_pylist()[0]
    assert np.array_equal(decode_png(got["colour"]["bytes"]), rgb)
    assert np.array_equal(decode_png(got["distance_field"]["bytes"]), field)  # 16-bit lossless
    assert got["component_table"][0]["hu"] == [0.1] * 7
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError, KeyError)):
        pa.Table.from_pylist([{**row, "component_table": [{"id": 1, "area": 5, "centroid": [1.0],
                                                           "bbox": [0, 0, 1, 1], "hu": [0.0] * 7,
                                                           "mean_rgb": [0.0] * 3}]}], schema=FRAMES)
    assert "held_group" in markdown() and "pair_key" in markdown()
    assert json.loads(PAIRS.metadata[b"huggingface"])["info"]["features"]["hints"] == {"_type": "Image"}


def test_docs_dataset_md_is_generated_from_the_schemas():
    assert (ROOT / "docs" / "dataset.md").read_text() == markdown()


def test_to_rgb_handles_grey_rgba_and_16_bit():
    grey = np.full((2, 3), 7, np.uint8)
    assert to_rgb(grey).shape == (2, 3, 3) and (to_rgb(grey) == 7).all()
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = [10, 20, 30, 255]  # opaque
    rgba[0, 1] = [10, 20, 30, 0]  # transparent -> white paper
    assert to_rgb(rgba).tolist() == [[[10, 20, 30], [255, 255, 255]]]
    assert to_rgb(np.full((1, 1), 65535, np.uint16)).tolist() == [[[255, 255, 255]]]


def test_fit_frame_modes():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 50:150] = 255  # a white centre band, black sides
    crop = fit_frame(image, 64, 64, "centre-crop")  # scaled to 64x128, centre 64 columns = the white band
    assert crop.shape == (64, 64, 3) and crop.min() == 255
    pad = fit_frame(image, 64, 64, "pad")  # scaled to 32x64, padded with white above and below
    assert pad.shape == (64, 64, 3) and (pad[:16] == 255).all() and (pad[32, :8] == 0).all()
    keep = fit_frame(image, 64, 64, "keep-aspect")
    assert keep.shape == (32, 64, 3)


def test_the_default_config_hash_is_the_one_existing_datasets_were_built_with():
    # computed by main f3cd2c2 (before the {name, params} shape): a change here would refuse their --resume
    assert config_hash(BuildConfig()) == "4932f7616b3ae4c23a45f1f87eeb26af4293741dc9cb0a70ed2512d0e26ed396"
    assert BuildConfig().to_dict()["shots"] == {"detector": "histogram-mse", "params": {}}


@pytest.mark.parametrize("override, message", [
    ("sketch.name=xdg", r"config key sketch\.name: unknown extractor 'xdg'; did you mean 'xdog'"),
    ("sketch.params.sigmma=1", r"unknown config key sketch\.params\.sigmma: extractor 'xdog' takes no parameter "
                               r"'sigmma'; did you mean 'sigma'"),
    ("sketch.params.sigma=abc", r"config key sketch\.params\.sigma: expected float, got str 'abc'"),
    ("field.params.truncaton=2", r"field\.params\.truncaton.*did you mean 'truncation'"),
    ("hints.params.p=[1]", r"config key hints\.params\.p: expected float, got list"),
    ("shots.name=histogram-mes", r"config key shots\.name: unknown detector.*did you mean 'histogram-mse'"),
    ("shots.params.min_lenght=3", r"shots\.params\.min_lenght.*did you mean 'min_length'"),
    ("shots.params.threshold=high", r"config key shots\.params\.threshold: expected float"),
    ("components.params.max_gapp=2", r"components\.params\.max_gapp.*did you mean 'max_gap'"),
    ("samplers.train-window.widht=3", r"samplers\.train-window\.widht.*did you mean 'width'"),
    ("samplers.cmft-test.collapse_held=1", r"samplers\.cmft-test\.collapse_held: expected bool, got int"),
    ("samplers.interval.seed=1", r"config key samplers\.interval: sampler 'interval' needs strides"),
])
def test_every_pluggable_part_is_checked_against_its_registered_signature(override, message):
    with pytest.raises(CelbenchError, match=message) as error:
        load_config(None, [override])
    assert "\n" not in str(error.value)


def test_older_spellings_read_as_the_name_params_shape(tmp_path):
    assert load_config(None, ["shots.detector=content"]) == load_config(None, ["shots.name=content"])
    (tmp_path / "list.yaml").write_text("samplers:\n  - name: shi-seq\n    params: {length: 6}\n  - name: interval\n"
                                        "    params: {strides: [2]}\n")
    (tmp_path / "map.yaml").write_text("samplers:\n  shi-seq: {length: 6}\n  interval: {strides: [2]}\n")
    assert load_config(tmp_path / "list.yaml") == load_config(tmp_path / "map.yaml")
    recorded = load_config(None, ["shots.name=content", "shots.params.threshold=30"]).to_dict()
    assert recorded["shots"] == {"detector": "content", "params": {"threshold": 30}}
    assert config_from_dict(recorded) == load_config(None, ["shots.name=content", "shots.params.threshold=30"])


def test_sampler_defaults_are_the_sampler_signatures():
    from dataprep.pairs import SAMPLERS
    from dataprep.registry import parameter_defaults

    for name, params in BuildConfig().samplers.items():
        defaults = parameter_defaults(SAMPLERS.get(name))
        assert params == {k: v for k, v in defaults.items() if k not in SAMPLERS.get(name).unrecorded_defaults}
    assert "references" not in BuildConfig().samplers["shi-seq"]  # runs at its default, 2, unrecorded
