"""``dataprep build`` mechanics: manifest, resume, failures, splits, validation, mixed inputs, CLI.

The stage adapter is replaced by tests/dataset_fakes.FakePipeline (a few lines per stage) so these tests run
fast and test the builder, not the stages; tests/test_dataset_end_to_end.py runs the real stages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dataprep.build.pipeline as build_pipeline
from dataprep.build import build
from dataprep.dataset import keys
from dataprep.dataset.manifest import shard_files
from dataprep.dataset.schemas import SCHEMA_VERSION
from dataprep.cli import main
from dataprep.config import load_config
from dataprep.errors import CelbenchError
from dataprep.imaging import decode_png
from dataprep.dataset.validate import ValidationError, validate
from tests.dataset_fakes import write_synth_frames

SMALL = ["frames.size=48", "samplers.train-window.width=6", "samplers.cmft-test.strides=[1,2]",
         "run.frames_per_unit=10", "split.train=0.5", "split.val=0.25", "split.test=0.25"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sources")
    paths = []
    for seed in (0, 1):
        write_synth_frames(root / f"clip{seed}", seed=seed, shots=3, width=64, height=48, shot_length=(8, 12))
        paths.append(root / f"clip{seed}")
    return paths


@pytest.fixture(autouse=True)
def fake_stages(monkeypatch):
    monkeypatch.setattr(build_pipeline, "PIPELINE", "tests.dataset_fakes:FakePipeline")


def config(*extra: str, executor: str = "serial"):
    return load_config(None, SMALL + [f"run.executor={executor}", *extra])


def table(out: Path, name: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in shard_files(out, name)])


def test_build_writes_valid_dataset_with_manifest(sources, tmp_path):
    out = tmp_path / "ds"
    report = build(sources, out, config())
    assert report.failed == []
    validate(out)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["status"] == "complete" and info["schema_version"] == SCHEMA_VERSION
    assert info["features"]["frames"]["colour"] == "image (PNG)" and "interval" in info["features"]["pairs"]
    assert info["config"]["frames"]["size"] == 48 and len(info["config_hash"]) == 64
    assert info["config"]["frames"]["resize"] == "short-side"
    assert [s["sha256"] for s in info["sources"]] and all(len(s["sha256"]) == 64 for s in info["sources"])
    frames = table(out, "frames")
    n_truth = sum(json.loads((s / "truth.json").read_text())["n_frames"] for s in sources)
    assert frames.num_rows == info["counts"]["frames"] == n_truth
    assert len(info["units"]) > 2  # frames_per_unit=10 splits each source into several units
    assert set(info["timings"]["stages_cpu_seconds"]) >= {"decode", "sketch", "field", "components", "write"}
    pairs = table(out, "pairs")
    assert pairs.num_rows == info["counts"]["pairs"] > 0
    assert set(pairs.column("kind").to_pylist()) >= {"train-window", "cmft-test@1", "cmft-test@2"}
    first = frames.slice(0, 1).to_pylist()[0]
    # the default frame fit keeps the whole 64x48 source frame (shorter side frames.size=48): every stored image
    # of the frame covers the whole picture
    assert decode_png(first["colour"]["bytes"]).shape == (48, 64, 3) and (first["width"], first["height"]) == (64, 48)
    assert decode_png(first["distance_field"]["bytes"]).dtype == np.uint16
    for column in ("sketch", "distance_field", "components"):
        assert decode_png(first[column]["bytes"]).shape[:2] == (48, 64)


def test_workers_mine_with_the_config_as_given_a_disabled_sampler_stays_off(sources, tmp_path):
    # Workers get the typed config itself; re-parsing its dict onto the defaults once brought back a sampler
    # that the config had switched off, so the pairs contradicted the manifest's config.
    out = tmp_path / "ds"
    assert build(sources[:1], out, config("samplers.cmft-test=null")).failed == []
    info = json.loads((out / "meta" / "info.json").read_text())
    assert "cmft-test" not in info["config"]["samplers"]
    kinds = set(table(out, "pairs").column("kind").to_pylist())
    assert kinds and not any(kind.startswith("cmft-test") for kind in kinds)
    assert kinds == set(info["counts"]["pairs_by_kind"])


def test_splits_never_share_a_shot_and_are_deterministic(sources, tmp_path):
    build(sources, tmp_path / "a", config())
    frames = table(tmp_path / "a", "frames").to_pylist()
    split_of_shot: dict = {}
    for row in frames:
        split_of_shot.setdefault((row["video_id"], row["shot_id"]), set()).add(row["split"])
    assert all(len(s) == 1 for s in split_of_shot.values())
    assert len({next(iter(s)) for s in split_of_shot.values()}) >= 2  # 6 shots, several splits used
    for pair in table(tmp_path / "a", "pairs").to_pylist():
        assert split_of_shot[(pair["video_id"], pair["shot_id"])] == {pair["split"]}
    build(sources, tmp_path / "b", config("split.by=video"))
    by_video: dict = {}
    for row in table(tmp_path / "b", "frames").to_pylist():
        by_video.setdefault(row["video_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in by_video.values())
    again = build(sources, tmp_path / "c", config("run.frames_per_unit=0"))  # other unit layout, same splits
    assert again.failed == []
    assert sorted((r["frame_key"], r["split"]) for r in table(tmp_path / "c", "frames").to_pylist()) == \
        sorted((r["frame_key"], r["split"]) for r in frames)


def test_output_dir_holding_another_dataset_is_refused(sources, tmp_path):
    out = tmp_path / "ds"
    build(sources[:1], out, config())
    with pytest.raises(CelbenchError, match=r"different dataset: its config differs \(existing -> this build: "
                                            r"frames.size 48 -> 32\); use another --out, or --overwrite"):
        build(sources[:1], out, config("frames.size=32"), resume=True)
    with pytest.raises(CelbenchError, match=r"different dataset: its sources differ \(only this build has clip1\)"):
        build(sources, out, config(), resume=True)
    with pytest.raises(CelbenchError, match="already holds this dataset"):
        build(sources[:1], out, config())
    assert build(sources[:1], out, config("frames.size=32"), overwrite=True).failed == []
    assert decode_png(table(out, "frames").slice(0, 1).to_pylist()[0]["colour"]["bytes"]).shape == (32, 40, 3)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.txt").write_text("precious")
    for flags in ({}, {"overwrite": True}):
        with pytest.raises(CelbenchError, match="not a celbench dataset|holds no celbench dataset"):
            build(sources[:1], other, config(), **flags)
    assert (other / "thesis.txt").read_text() == "precious"


def _frame_keys(out: Path) -> list[str]:
    return table(out, "frames").column("frame_key").to_pylist()


@pytest.mark.parametrize("failure, pipeline, executor", [("disk", "DiskFullOnClip1", "serial"),
                                                         ("kill", "WorkerDiesOnClip1", "local")])
def test_failed_unit_is_recorded_others_continue_and_resume_completes(sources, tmp_path, monkeypatch,
                                                                      failure, pipeline, executor):
    monkeypatch.setattr(build_pipeline, "PIPELINE", f"tests.dataset_fakes:{pipeline}")
    monkeypatch.setenv("CELBENCH_TEST_FAIL", failure)
    out = tmp_path / "ds"
    report = build(sources, out, config(executor=executor))
    info = json.loads((out / "meta" / "info.json").read_text())
    failed = [k for k, u in info["units"].items() if u["status"] == "failed"]
    done = [k for k, u in info["units"].items() if u["status"] == "done"]
    assert failed and sorted(failed) == report.failed and all("clip1" in k for k in failed)
    assert done and all("clip0" in k for k in done)
    expected = "No space left on device" if failure == "disk" else "worker process died"
    assert all(expected in info["units"][k]["error"] for k in failed)
    assert info["status"] == "incomplete"
    assert not list((out / "data" / "frames").glob("*clip1*"))  # no partial output of failed units
    with pytest.raises(ValidationError, match="build incomplete"):
        validate(out)
    monkeypatch.delenv("CELBENCH_TEST_FAIL")
    assert build(sources, out, config(executor=executor), resume=True).failed == []
    validate(out)
    reference = tmp_path / "clean"
    build(sources, reference, config())
    keys = _frame_keys(out)
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(_frame_keys(reference))
    assert table(out, "pairs").num_rows == table(reference, "pairs").num_rows


def test_resume_after_interruption_redoes_only_unfinished_units(sources, tmp_path):
    out = tmp_path / "ds"
    build(sources, out, config())
    info = json.loads((out / "meta" / "info.json").read_text())
    victim, unrecorded = sorted(info["units"])[1:3]
    info["units"][unrecorded]["status"] = "pending"  # finished (marker written), build killed before recording
    # Simulate a unit killed mid-write: marker gone, a half-written temporary file and a stale shard left.
    (out / "meta" / "units" / f"{victim}.done.json").unlink()
    (out / "data" / "frames" / f"{victim}.000.parquet.tmp").write_bytes(b"PAR1 half")
    info["units"][victim]["status"] = "pending"
    (out / "meta" / "info.json").write_text(json.dumps(info))
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "data" / "frames").glob("*.parquet")}
    build(sources, out, config(), resume=True)
    validate(out)
    keys = _frame_keys(out)
    assert len(keys) == len(set(keys)) == info["counts"]["frames"]
    after = {p.name: p.stat().st_mtime_ns for p in (out / "data" / "frames").glob("*.parquet")}
    changed = {name for name in after if after[name] != mtimes.get(name)}
    assert changed and all(name.startswith(victim) for name in changed)


def test_validate_catches_corrupted_files(sources, tmp_path, capsys):
    out = tmp_path / "ds"
    build(sources[:1], out, config())
    assert main(["validate", str(out)]) == 0
    shard = shard_files(out, "frames")[0]
    good = shard.read_bytes()
    # a PNG cell that does not decode
    rows = pq.read_table(shard).to_pylist()
    rows[0]["sketch"]["bytes"] = b"\x89PNG not really"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(shard)), shard)
    assert main(["validate", str(out)]) == 1
    assert "sketch is not a decodable PNG" in capsys.readouterr().err
    # truncated Parquet
    shard.write_bytes(good[: len(good) // 2])
    assert main(["validate", str(out)]) == 1
    assert "unreadable Parquet" in capsys.readouterr().err
    # a row too few
    pq.write_table(pq.read_table(pa.BufferReader(good)).slice(1), shard)
    assert main(["validate", str(out)]) == 1
    assert "manifest says" in capsys.readouterr().err
    # wrong schema (a column dropped)
    pq.write_table(pq.read_table(pa.BufferReader(good)).drop_columns(["held_group"]), shard)
    assert main(["validate", str(out)]) == 1
    assert "schema differs" in capsys.readouterr().err
    shard.write_bytes(good)
    assert main(["validate", str(out)]) == 0


def test_frames_of_mixed_sizes_grey_and_rgba_in_one_folder(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rgb = np.full((60, 80, 3), (30, 60, 200), np.uint8)
    rgb[20:40, 30:50] = 0
    cv2.imwrite(str(folder / "0.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    grey = np.full((64, 64), 128, np.uint8)
    grey[10:20] = 0
    cv2.imwrite(str(folder / "1.png"), grey)
    rgba = np.zeros((50, 100, 4), np.uint8)
    rgba[..., :3] = (200, 10, 10)
    rgba[:, :50, 3] = 255  # left half opaque red, right half transparent -> paper white
    cv2.imwrite(str(folder / "2.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    out = tmp_path / "ds"
    assert build([folder], out, config("frames.resize=pad", "frames.width=48", "frames.height=48")).failed == []
    validate(out)
    frames = sorted(table(out, "frames").to_pylist(), key=lambda r: r["frame_index"])
    images = [decode_png(r["colour"]["bytes"]) for r in frames]
    assert [im.shape for im in images] == [(48, 48, 3)] * 3
    assert (images[1][24, 24] == 128).all()  # grey replicated to RGB
    assert images[2][24, 5].tolist() == [200, 10, 10] and images[2][24, 44].tolist() == [255, 255, 255]
    keep = tmp_path / "keep"
    build([folder], keep, config("frames.resize=keep-aspect", "frames.width=48", "frames.height=48"))
    sizes = sorted((r["width"], r["height"]) for r in table(keep, "frames").to_pylist())
    assert sizes == [(48, 24), (48, 36), (48, 48)]
    validate(keep)
    whole = tmp_path / "whole"  # the default: shorter side 48, aspect kept, longer side a multiple of 8
    build([folder], whole, config())
    rows = sorted(table(whole, "frames").to_pylist(), key=lambda r: r["frame_index"])
    assert [(r["width"], r["height"]) for r in rows] == [(64, 48), (48, 48), (96, 48)]
    assert [decode_png(r["components"]["bytes"]).shape for r in rows] == [(48, 64), (48, 48), (48, 96)]
    red = decode_png(rows[2]["colour"]["bytes"])
    assert red[24, 2].tolist() == [200, 10, 10] and red[24, 93].tolist() == [255, 255, 255]  # both ends kept
    validate(whole)


def test_cli_build_info_and_ls(sources, tmp_path, capsys):
    out = tmp_path / "ds"
    sets = [arg for s in SMALL for arg in ("--set", s)]
    assert main(["build", str(sources[0]), "--out", str(out), *sets, "--workers", "2", "-q"]) == 0
    assert "frames" in capsys.readouterr().out
    assert main(["build", str(sources[0]), "--out", str(out), *sets]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["build", str(sources[0]), "--out", str(out), *sets, "--resume"]) == 0
    assert main(["build", str(sources[0]), "--out", str(tmp_path / "x"), "--set", "frames.hieght=3"]) == 2
    assert "frames.hieght" in capsys.readouterr().err
    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert summary["frames"] == info["counts"]["frames"] and summary["pairs"] == info["counts"]["pairs"]
    assert sum(summary["interval_histogram"].values()) == summary["pairs"]
    assert sum(s.get("frames", 0) for s in summary["splits"].values()) == summary["frames"]
    assert (out / "report.png").stat().st_size > 1000 and (out / "report.html").stat().st_size > 1000
    assert main(["validate", str(out)]) == 0  # the report files do not disturb validation
    assert main(["ls", "samplers"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("train-window", "cmft-test", "shi-seq", "shi-long"))


def test_cli_build_split_puts_every_shot_in_one_split(sources, tmp_path, capsys):
    out = tmp_path / "ds"
    sets = [arg for s in SMALL for arg in ("--set", s)]
    assert main(["build", *map(str, sources), "--out", str(out), *sets, "--split", "test"]) == 0
    summary = capsys.readouterr().out
    assert "{" not in summary and "units: " in summary and "done" in summary
    splits = set(table(out, "frames").column("split").to_pylist()) | set(table(out, "pairs").column("split").to_pylist())
    assert splits == {"test"}
    info = json.loads((out / "meta" / "info.json").read_text())
    assert (info["config"]["split"]["train"], info["config"]["split"]["val"], info["config"]["split"]["test"]) == (0, 0, 1)
    assert f"test {info['counts']['frames']} frames/{info['counts']['pairs']} pairs" in summary
    with pytest.raises(SystemExit) as exit_:
        main(["build", str(sources[0]), "--out", str(tmp_path / "x"), "--split", "tset"])
    assert exit_.value.code == 2 and "invalid choice: 'tset'" in capsys.readouterr().err


EVIL = "clip<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def two_sources(sources, tmp_path_factory):
    """A dataset of two sources (one named with HTML in it) over the three splits, and the report
    `dataprep info` writes for it (shared by the card and report tests)."""
    import shutil

    root = tmp_path_factory.mktemp("report")
    evil = root / EVIL
    shutil.copytree(sources[1], evil)
    patch = pytest.MonkeyPatch()
    patch.setattr(build_pipeline, "PIPELINE", "tests.dataset_fakes:FakePipeline")
    try:
        build([sources[0], evil], root / "ds", config())
    finally:
        patch.undo()
    assert main(["info", str(root / "ds"), "--samples", "2"]) == 0
    return root / "ds"


def test_report_is_a_page_to_send_a_colleague(two_sources):
    from html.parser import HTMLParser

    from dataprep.dataset.report import summarise

    page = (two_sources / "report.html").read_text()
    summary = summarise(two_sources)

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text, self.images = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "img":
                self.images.append(dict(attrs))

        def handle_data(self, data):
            self.text.append(data)

    parsed = Page()
    parsed.feed(page)
    text = " ".join(parsed.text)
    assert "<img src=x" not in page and EVIL in text  # the hostile source name is shown, as text
    assert parsed.tags.count("img") == 3  # histograms, then one sample grid per source
    assert all(img["src"].startswith("data:image/") for img in parsed.images)  # self-contained
    assert [img["alt"] for img in parsed.images][1:] == ["sample pairs of clip0", f"sample pairs of {EVIL}"]
    assert "celbench dataset: clip0, " + EVIL in text and "dataset dataset" not in text
    for heading in ("Summary", "Sources", "Pairs by kind", "Shot lengths and pair intervals", "Samples",
                    "Build config"):
        assert heading in text
    assert '"' not in text.split("Build config")[0].split("Summary")[1]  # tables, not JSON
    assert "frames:\n  size: 48" in text  # the config, as YAML
    by_source = summary["by_source"]
    assert len(by_source) == 2 and sum(v["frames"] for v in by_source.values()) == summary["frames"]
    assert sum(summary["shot_length_histogram"].values()) == sum(v["shots"] for v in by_source.values())
    assert sum(k * v for k, v in summary["shot_length_histogram"].items()) == summary["frames"]
    for video_id, counts in by_source.items():
        assert f"{video_id}</td>" in page and f'<td class="num">{counts["pairs"]}</td>' in page


CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(two_sources):
    import subprocess

    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          (two_sources / "report.html").as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert dom.count("<table>") == 3 and dom.count("<img") == 3
    assert 'onerror="alert(1)"' not in dom and "onerror=alert(1)&gt;" in dom  # the name stayed text


def test_pair_dataset_yields_tensors(sources, tmp_path):
    import torch
    from benchmark.data import PairDataset

    out = tmp_path / "ds"
    build(sources[:1], out, config("samplers.shi-seq.length=4", "samplers.shi-seq.stride=4"))
    dataset = PairDataset(out)
    assert len(dataset) == table(out, "pairs").num_rows
    item = dataset[0]
    k = len(dataset.pairs[0]["reference_keys"])
    assert item["reference_colour"].shape == (k, 3, 48, 64) and item["reference_colour"].dtype == torch.float32
    assert 0 <= float(item["reference_colour"].min()) and float(item["reference_colour"].max()) <= 1
    assert item["target_sketch"].shape == (1, 48, 64) and item["target_components"].dtype == torch.int64
    # one key per thing in every layer: the names bench evaluate gives models, hints as RGB + mask
    assert set(item) >= set(keys.MODEL_INPUTS) | {keys.TARGET_COLOUR, keys.CORRESPONDENCES, keys.INTERVAL}
    assert item["hints"].shape == (4, 48, 64) and set(item["hints"][3].unique().tolist()) <= {0.0, 1.0}
    assert float(item["hints"][:3][:, item["hints"][3] == 0].abs().sum()) == 0  # no colour where no hint
    frame = dataset.frame(dataset.pairs[0]["target_key"])
    assert torch.equal(item["target_colour"], torch.from_numpy(frame.colour).permute(2, 0, 1).float() / 255)
    assert torch.equal(item["target_components"], torch.from_numpy(frame.components.astype(np.int64)))
    from benchmark.data import collate_pairs

    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate_pairs)
    batch = next(iter(loader))
    assert batch["target_colour"].shape == (4, 3, 48, 64) and len(batch["pair_key"]) == 4
    shi = PairDataset(out, kinds=["shi-seq"])
    assert len(shi) > 0 and all(p["kind"] == "shi-seq" for p in shi.pairs)
    assert shi[0]["reference_colour"].shape[0] == 2  # first and last frame of the sequence
    assert len(PairDataset(out, kinds=["cmft-test"])) == sum(
        1 for p in dataset.pairs if p["kind"].startswith("cmft-test@"))
    # training cuts whole 64x48 frames to 48x48 squares: the centre for validation, anywhere for training, the
    # same box for every image of the pair
    from baselines.datasets import SquareCropDataset

    centre = SquareCropDataset(dataset, random=False)[0]
    assert torch.equal(centre["target_colour"], item["target_colour"][..., 8:56])
    assert torch.equal(centre["reference_components"], item["reference_components"][..., 8:56])
    assert torch.equal(centre["hints"], item["hints"][..., 8:56]) and centre["pair_key"] == item["pair_key"]
    torch.manual_seed(0)
    lefts = set()
    for _ in range(20):
        cut = SquareCropDataset(dataset, random=True)[0]
        left = next(x for x in range(17) if torch.equal(cut["target_colour"], item["target_colour"][..., x:x + 48]))
        assert torch.equal(cut["target_sketch"], item["target_sketch"][..., left:left + 48])
        lefts.add(left)
    assert len(lefts) > 3


def test_dataset_card_loads_each_table_and_split_with_datasets(two_sources, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed (pip install -e '.[hf]')")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = two_sources  # 6 shots over train/val/test
    validate(out)
    frames, pairs = table(out, "frames").to_pylist(), table(out, "pairs").to_pylist()
    splits = sorted({row["split"] for row in frames})
    assert len(splits) >= 2
    for name in (p.name for t in ("frames", "pairs") for p in (out / "data" / t).glob("*.parquet")):
        assert name.split(".")[-3] in splits  # one split per shard
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: frames" in card and "config_name: pairs" in card
    cache = str(tmp_path / "hf")
    loaded_pairs = datasets.load_dataset(str(out), "pairs", cache_dir=cache)
    assert sorted(loaded_pairs) == sorted({row["split"] for row in pairs})
    for split in splits:
        loaded = datasets.load_dataset(str(out), "frames", split=split, cache_dir=cache)
        expected = [row for row in frames if row["split"] == split]
        assert sorted(loaded["frame_key"]) == sorted(row["frame_key"] for row in expected)
        first = loaded[0]
        stored = next(row for row in expected if row["frame_key"] == first["frame_key"])
        assert first["colour"].size == (64, 48) and first["colour"].mode == "RGB"
        assert first["distance_field"].mode.startswith("I;16")
        assert np.array_equal(np.asarray(first["colour"]), decode_png(stored["colour"]["bytes"]))
        if split in loaded_pairs:
            assert sorted(loaded_pairs[split]["pair_key"]) == sorted(r["pair_key"] for r in pairs if r["split"] == split)
    default = datasets.load_dataset(str(out), split=splits[0], cache_dir=cache)  # the card's default: pairs
    assert "target_key" in default.column_names
    # docs/dataset.md's join recipes (datasets; pandas + pyarrow) run as written and agree with each other
    docs = (Path(__file__).resolve().parents[1] / "docs" / "dataset.md").read_text()
    recipes = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    assert len(recipes) == 2
    split = next(s for s in splits if any(r["split"] == s and r["kind"].startswith("cmft-test@") for r in pairs))
    monkeypatch.setenv("HF_DATASETS_CACHE", cache)
    # datasets reads the variable at import: without this the recipes hit the user's cache, which may hold an
    # older dataset built at this same temporary path
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", Path(cache))
    found = {}
    for recipe in recipes:
        namespace: dict = {}
        exec(recipe.replace('"DIR', f'"{out}').replace('"test"', f'"{split}"'), namespace)
        found[len(found)] = namespace
    hf, pandas_ = found[0], found[1]
    target_row = next(r for r in frames if r["frame_key"] == hf["pair"]["target_key"])
    assert np.array_equal(np.asarray(hf["target_sketch"]), decode_png(target_row["sketch"]["bytes"]))
    assert len(pandas_["joined"]) == sum(1 for r in pairs if r["split"] == split)
    assert decode_png(pandas_["png_bytes"]).shape == (48, 64, 3)


def test_shard_holding_another_split_fails_validation(sources, tmp_path):
    out = tmp_path / "ds"
    build(sources[:1], out, config())
    shard = sorted((out / "data" / "frames").glob("*.parquet"))[0]
    rows = pq.read_table(shard)
    other = next(s for s in ("train", "val", "test") if s != rows.column("split")[0].as_py())
    pq.write_table(rows.set_column(rows.schema.get_field_index("split"), rows.schema.field("split"),
                                   pa.array([other] * rows.num_rows)), shard)
    with pytest.raises(ValidationError, match=f"{shard.name}: holds rows of split '{other}'"):
        validate(out)


def test_resume_with_another_unit_size_replaces_the_old_units(sources, tmp_path):
    out = tmp_path / "ds"
    build(sources, out, config())
    keys = sorted(_frame_keys(out))
    build(sources, out, config("run.frames_per_unit=0"), resume=True)  # run settings: same dataset
    validate(out)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert len(info["units"]) == 2 and sorted(_frame_keys(out)) == keys


def test_a_dataset_recorded_in_the_older_config_spelling_resumes_with_the_new_one(sources, tmp_path):
    """Main f3cd2c2 wrote the shot detector as ``shots.detector`` and samplers as a name -> parameters mapping;
    the config below, in those spellings, hashed to PINNED there (computed by that commit's code). A dataset it
    built must resume when the config is written in the ``{name, params}`` shape."""
    pinned = "8d2e8a88a5ec4add1a5c62f51fce79ccba878f06ac40dc507e8f9b3b83383e0d"
    old = tmp_path / "old.yaml"
    old.write_text("shots:\n  detector: histogram-mse\n  params: {min_length: 4, threshold: 150}\n"
                   "samplers:\n  shi-seq: {length: 6, references: 2}\n  shi-long: null\n")
    new = tmp_path / "new.yaml"
    new.write_text("shots:\n  name: histogram-mse\n  params: {min_length: 4, threshold: 150}\n"
                   "samplers:\n  - {name: shi-seq, params: {length: 6, references: 2}}\n")
    out = tmp_path / "ds"
    first = build(sources[:1], out, load_config(old, SMALL + ["run.executor=serial"]))
    assert first.manifest["config_hash"] == pinned
    assert first.manifest["config"]["shots"] == {"detector": "histogram-mse",
                                                 "params": {"min_length": 4, "threshold": 150}}
    assert "shi-long" not in first.manifest["config"]["samplers"]
    info = json.loads((out / "meta" / "info.json").read_text())
    victim = sorted(info["units"])[0]  # an interrupted build: one unit to redo
    (out / "meta" / "units" / f"{victim}.done.json").unlink()
    info["units"][victim]["status"] = "pending"
    (out / "meta" / "info.json").write_text(json.dumps(info))
    resumed_config = load_config(new, SMALL + ["run.executor=serial", "samplers.shi-long=null"])
    resumed = build(sources[:1], out, resumed_config, resume=True)
    assert resumed.failed == [] and resumed.manifest["config_hash"] == pinned
    validate(out)
