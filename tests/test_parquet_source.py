"""bench evaluate on a dataset written by dataprep build (stages faked, as in the dataset's own tests)."""

from __future__ import annotations

import pytest

from benchmark import cli
from benchmark.parquet_source import ParquetSource
from benchmark.record import read_record
from benchmark_toys import one_torch_thread

import dataprep.build as dataprep_build
import dataprep.build.pipeline as build_pipeline
from dataprep.config import load_config
from tests.dataset_fakes import write_synth_frames

single_thread = pytest.fixture(autouse=True)(one_torch_thread)
SMALL = ["frames.width=48", "frames.height=48", "run.frames_per_unit=40", "run.executor=serial",
         "split.train=0", "split.val=0", "split.test=1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    write_synth_frames(root / "clip", seed=2, shots=2, width=64, height=48, shot_length=(12, 14))
    patch = pytest.MonkeyPatch()
    patch.setattr(build_pipeline, "PIPELINE", "tests.dataset_fakes:FakePipeline")
    try:
        report = dataprep_build.build([root / "clip"], root / "ds", load_config(None, SMALL))
    finally:
        patch.undo()
    assert report.failed == []
    return root / "ds"


def test_parquet_source_reads_shots_frames_and_mined_pairs(dataset):
    source = ParquetSource(dataset)
    shots = source.shots("test")
    assert len(shots) == 2 and all(len(s.frame_ids) >= 12 for s in shots)
    frame = source.frame(shots[0].frame_ids[0])
    assert frame.colour.shape == (48, 48, 3) and frame.sketch.dtype.name == "uint8"
    assert 0 <= frame.field.min() and frame.field.max() <= 1 and frame.components.ndim == 2
    pairs = source.pairs("test", ["cmft-test"])
    assert pairs and all(p.attributes["kind"].startswith("cmft-test@") for p in pairs)
    assert all(p.attributes["interval"] == p.attributes["stride"] * p.attributes["position"] for p in pairs)


def test_evaluate_cli_on_a_built_dataset(dataset, tmp_path, capsys):
    out = tmp_path / "flow.json"
    assert cli.main(["evaluate", "--model", "flow-warp", "--data", str(dataset), "--protocol", "cmft-interval@1",
                     "--out", str(out), "-q"]) == 0
    record = read_record(out)
    assert record.status == "complete" and record.samples_valid > 0
    assert record.dataset["manifest_sha256"] == ParquetSource(dataset, validate=False).manifest_hash
    assert set(record.metric("psnr").buckets) <= {"1", "2", "3", "4", "5", "10", "15", "20", "30", "40"}


@pytest.mark.parametrize("protocol", ["cmft-interval@1", "shi-kref@1"])  # mined pairs; shots
def test_empty_split_error_says_how_to_fix_it(dataset, tmp_path, capsys, protocol):
    code = cli.main(["evaluate", "--model", "copy-reference", "--data", str(dataset), "--protocol", protocol,
                     "--split", "val", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'val'" in err
    assert "this dataset has test 2 shots; score another split with --split test, or rebuild with " \
           "`dataprep build INPUT... --out DIR --split val`" in err
    assert not (tmp_path / "r.json").exists()


def test_dataset_failing_validation_is_a_one_line_error(dataset, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    shard = sorted((broken / "data" / "frames").glob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[: len(shard.read_bytes()) // 2])
    code = cli.main(["evaluate", "--model", "copy-reference", "--data", str(broken), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and "dataset failed validation" in err and err.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def test_dataset_hash_ignores_build_dates_and_timings_but_not_content(dataset):
    import json

    from dataprep.dataset.manifest import manifest_hash

    manifest = json.loads((dataset / "meta" / "info.json").read_text())
    rerun = {**manifest, "created": "2030-01-01T00:00:00+00:00", "timings": {"wall": 1.0}}
    rerun["units"] = {k: {**u, "seconds": 99.0} for k, u in manifest["units"].items()}
    rerun["sources"] = [{**source, "path": "/elsewhere/clip"} for source in manifest["sources"]]
    assert manifest_hash(rerun) == manifest_hash(manifest)
    assert manifest_hash({**manifest, "counts": {**manifest["counts"], "frames": 1}}) != manifest_hash(manifest)
    assert manifest_hash({**manifest, "config_hash": "0" * 64}) != manifest_hash(manifest)
