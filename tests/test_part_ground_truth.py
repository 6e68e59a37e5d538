"""True correspondences on built datasets: ``frames.component_parts`` (schema 1.1) from BasicPBC ``label/`` part
maps, scored by ``components@2``'s match metrics; a dataset of schema 1.0 still validates, loads and scores (with
the colour-derived ground truth, as before).

The drawings are the hand-built ones of ``test_line_art_source.py``: a left region (red, part 11) and two right
regions split by a horizontal line (green and blue) that are one part (70012), the vertical line moving 2 px
right per drawing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from benchmark.evaluate import evaluate
from benchmark.parquet_source import ParquetSource
from benchmark.protocol import load_protocol
from dataprep.cli import main
from dataprep.dataset.manifest import shard_files
from dataprep.dataset.reader import DatasetReader, read_shard
from dataprep.dataset.schemas import READABLE_SCHEMAS, SCHEMA_VERSION
from dataprep.dataset.validate import ValidationError, validate
from dataprep.hashing import sha256_file

from benchmark_toys import one_torch_thread
from test_line_art_source import write_folder

single_thread = pytest.fixture(autouse=True)(one_torch_thread)

SETS = ["frames.width=40", "frames.height=30", "frames.resize=keep-aspect", "run.executor=serial",
        "split.train=0", "split.val=0", "split.test=1"]


def build(tmp_path: Path, with_parts: bool = True) -> Path:
    write_folder(tmp_path / "clip", n=2, with_parts=with_parts)
    out = tmp_path / "ds"
    assert main(["build", str(tmp_path / "clip"), "--out", str(out), *[a for s in SETS for a in ("--set", s)]]) == 0
    return out


def downgrade_to_1_0(out: Path) -> None:
    """Rewrite a dataset as schema 1.0 wrote it: no ``component_parts`` column, 1.0 in every shard's and the
    manifest's metadata, the manifest's shard hashes updated."""
    info = json.loads((out / "meta" / "info.json").read_text())
    for table in ("frames", "pairs"):
        for path in shard_files(out, table):
            content = pq.read_table(path)
            if "component_parts" in content.column_names:
                content = content.drop_columns(["component_parts"])
            pq.write_table(content.cast(READABLE_SCHEMAS["1.0"][table]), path)
            for unit in info["units"].values():
                if f"{table}/{path.name}" in unit["sha256"]:
                    unit["sha256"][f"{table}/{path.name}"] = sha256_file(path)
    info["schema_version"] = "1.0"
    (out / "meta" / "info.json").write_text(json.dumps(info))


class SwappedMatcher:
    """Copies the reference; answers region 1 -> 1, 2 -> 3, 3 -> 2 (the two right regions swapped)."""

    def __call__(self, batch):
        output = batch["reference_colour"][:, 0].clone()
        output.component_matches = torch.tensor([[-1, 1, 3, 2]] * len(output))
        return output


def score(out: Path):
    source = ParquetSource(out)
    try:
        return evaluate(SwappedMatcher(), "swapped", source, load_protocol("components@2")).record
    finally:
        source.close()


def test_part_maps_are_stored_per_component_and_scored_as_true_correspondences(tmp_path):
    out = build(tmp_path)
    reader = DatasetReader(out)
    assert json.loads((out / "meta" / "info.json").read_text())["schema_version"] == SCHEMA_VERSION == "1.1"
    for cells in reader.frames:
        np.testing.assert_array_equal(reader.frame(cells["frame_key"]).parts, [-2, 11, 70012, 70012])
    record = score(out)
    # one pair (drawings 0 -> 1, gap 1). Parts: region 1 (part 11) -> 1 right; 2 and 3 are both part 70012,
    # so 2 -> 3 and 3 -> 2 are right too: 3/3, every region valid (no invalid ones: NaN -> None)
    assert record.samples_valid == 1
    assert record.metric("match-acc").value == pytest.approx(1.0)
    assert record.metric("match-valid-acc").value == pytest.approx(1.0)
    assert record.metric("match-invalid-acc").value is None
    assert record.metric("match-acc").settings["ground_truth_pairs"] == {"parts": 1, "colours": 0}
    # the copied colours: the left region grows by 2 columns (30 px) but keeps red; all three are right
    assert record.metric("component-acc").value == pytest.approx(1.0)


def test_without_part_maps_the_column_is_null_and_colours_give_the_ground_truth(tmp_path):
    out = build(tmp_path, with_parts=False)
    assert read_shard(shard_files(out, "frames")[0], "frames", ["component_parts"]).column(0).null_count == 2
    record = score(out)
    # colours: each region's certain match is its own id (red, green, blue, one each): 1 -> 1 right, 2 -> 3 and
    # 3 -> 2 wrong: 1/3; all three have a match
    assert record.metric("match-acc").value == pytest.approx(1 / 3)
    assert record.metric("match-valid-acc").value == pytest.approx(1 / 3)
    assert record.metric("match-acc").settings["ground_truth_pairs"] == {"parts": 0, "colours": 1}


def test_a_schema_1_0_dataset_still_validates_loads_and_scores(tmp_path):
    out = build(tmp_path)
    pairs_before = [cells["correspondences"] for _, _, cells in DatasetReader(out).pairs(["correspondences"])]
    downgrade_to_1_0(out)
    frames_shard = shard_files(out, "frames")[0]
    assert "component_parts" not in pq.read_schema(frames_shard).names
    validate(out)
    reader = DatasetReader(out)
    assert [cells["correspondences"] for _, _, cells in reader.pairs(["correspondences"])] == pairs_before
    frame = reader.frame(reader.frames[0]["frame_key"])
    assert frame.parts is None and frame.components.max() == 3
    # the column added since comes back as nulls, in the current schema's place
    everything = read_shard(frames_shard, "frames")
    assert everything.column_names == READABLE_SCHEMAS[SCHEMA_VERSION]["frames"].names
    assert everything.column("component_parts").null_count == 2
    record = score(out)
    # no parts in 1.0: the colour-derived ground truth, as in the test above (1/3)
    assert record.status == "complete"
    assert record.metric("match-acc").value == pytest.approx(1 / 3)
    assert record.metric("match-acc").settings["ground_truth_pairs"] == {"parts": 0, "colours": 1}
    assert record.metric("component-acc").value == pytest.approx(1.0)


def test_a_shard_of_another_version_than_the_manifest_is_invalid(tmp_path):
    out = build(tmp_path)
    info = json.loads((out / "meta" / "info.json").read_text())
    info["schema_version"] = "1.0"
    (out / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValidationError, match="schema version 1.1, the manifest says 1.0"):
        validate(out)
    info["schema_version"] = "0.9"
    (out / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValidationError, match="schema version 0.9, this toolkit reads 1.0, 1.1"):
        validate(out)


def test_resume_of_a_schema_1_0_dataset_is_refused_with_one_line_saying_what_to_do(tmp_path, capsys):
    out = build(tmp_path)
    downgrade_to_1_0(out)
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    capsys.readouterr()
    command = ["build", str(tmp_path / "clip"), "--out", str(out), *[a for s in SETS for a in ("--set", s)]]
    assert main([*command, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"dataprep: error: {out}: holds a dataset of schema version 1.0, this toolkit writes "
                          f"{SCHEMA_VERSION}")
    assert "--resume cannot finish it" in err and "--overwrite" in err and "another --out" in err
    # nothing was written or deleted: the 1.0 dataset is still there, valid and readable
    assert {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    validate(out)
    # without --resume the same refusal, less the resume clause; --overwrite rebuilds it as the current schema
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "schema version 1.0" in err and "--resume" not in err
    assert main([*command, "--overwrite"]) == 0
    assert json.loads((out / "meta" / "info.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert "component_parts" in pq.read_schema(shard_files(out, "frames")[0]).names
    validate(out)
