"""Hostile and careless input, command by command (issue 12; promises in docs/reliability.md).

Every case asserts the exit status, a single stderr line without a traceback, and, where a path could escape,
that a sibling folder (``victim/``) is byte-for-byte unchanged. Commands run in-process through their ``main``;
the cases about processes (kill -9 of a build, SIGTERM) use real ones.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark import cli as bench_cli
from dataprep import cli as dataprep_cli
from dataprep.dataset.manifest import shard_files
from tests.hostile import (PYTHON, TINY, assert_one_line_error, make_victim, outcome, python_env, rehash, snapshot,
                           tiny_clip, tiny_dataset)

__all__ = ["tiny_clip", "tiny_dataset"]  # session fixtures used below

dataprep = dataprep_cli.main
bench = bench_cli.main


@pytest.fixture
def victim(tmp_path):
    folder = make_victim(tmp_path)
    before = snapshot(folder)
    yield folder
    assert snapshot(folder) == before, "a file outside the output folder was changed"


@pytest.fixture
def dataset(tiny_dataset, tmp_path) -> Path:
    """A private copy of the tiny dataset, next to ``victim/``."""
    out = tmp_path / "ds"
    shutil.copytree(tiny_dataset, out)
    return out


@pytest.fixture(scope="module")
def results(tiny_dataset, tmp_path_factory) -> Path:
    """Two result records (copy-reference, flow-warp on cmft-interval@1, 4 samples) with their files."""
    folder = tmp_path_factory.mktemp("results") / "results"
    for model in ("copy-reference", "flow-warp"):
        assert bench(["evaluate", "--model", model, "--data", str(tiny_dataset), "--limit", "4", "-q",
                      "--out", str(folder / "cmft-interval@1" / f"{model}.json")]) == 0
    return folder


@pytest.fixture
def records(results, tmp_path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    return copy


def edit_record(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# ------------------------------------------------------------------------------ 1. synth --overwrite
def test_synth_overwrite_refuses_a_folder_it_did_not_write(tmp_path, victim, capfd, monkeypatch):
    code, _, err = outcome(dataprep, ["synth", "--out", victim, "--overwrite", "--shots", "1"], capfd)
    assert_one_line_error(code, err, "not a folder written by dataprep synth")
    monkeypatch.chdir(victim)  # `--out .` in someone's source tree
    code, _, err = outcome(dataprep, ["synth", "--out", ".", "--overwrite", "--shots", "1"], capfd)
    assert_one_line_error(code, err, "refusing to overwrite")


def test_synth_overwrite_replaces_its_own_folder(tmp_path, capfd):
    args = ["synth", "--out", tmp_path / "clip", "--shots", "1", "--width", "32", "--height", "32",
            "--shot-length", "4,4", "--no-truth-images", "-q"]
    assert outcome(dataprep, args, capfd)[0] == 0
    assert outcome(dataprep, args + ["--overwrite", "--seed", "1"], capfd)[0] == 0
    assert json.loads((tmp_path / "clip" / "truth.json").read_text())["n_frames"] == 4


# ------------------------------------------------------------------------- 2. tampered manifests
def test_tampered_unit_key_cannot_delete_outside_out(dataset, victim, tiny_clip, capfd):
    info = dataset / "meta" / "info.json"
    manifest = json.loads(info.read_text())
    manifest["units"]["../../victim/thesis"] = {"status": "pending", "video_id": "x"}
    info.write_text(json.dumps(manifest))
    code, _, err = outcome(dataprep, ["build", tiny_clip, "--out", dataset, "--resume", "-q", *TINY], capfd)
    assert_one_line_error(code, err, "info.json", "not a plain file name")
    code, _, err = outcome(dataprep, ["validate", dataset], capfd)
    assert_one_line_error(code, err, "not a plain file name")


def test_tampered_shard_names_and_markers_stay_inside_out(dataset, victim, tiny_clip, capfd):
    info = dataset / "meta" / "info.json"
    manifest = json.loads(info.read_text())
    key = next(iter(manifest["units"]))
    good = json.dumps(manifest)
    manifest["units"][key]["files"]["frames"] = ["../../../victim/thesis.tex"]
    info.write_text(json.dumps(manifest))
    code, _, err = outcome(dataprep, ["validate", dataset], capfd)
    assert_one_line_error(code, err, "shard file name")
    code, _, err = outcome(bench, ["evaluate", "--model", "copy-reference", "--data", dataset,
                                   "--out", dataset.parent / "r.json"], capfd)
    assert_one_line_error(code, err, "shard file name")
    # a marker naming files outside: the unit is redone, nothing outside is touched, the dataset is valid again
    info.write_text(good)
    marker = dataset / "meta" / "units" / f"{key}.done.json"
    done = json.loads(marker.read_text())
    done["files"]["frames"] = ["../../../victim/thesis.tex"]
    marker.write_text(json.dumps(done))
    manifest = json.loads(good)
    manifest["units"][key]["status"] = "pending"
    info.write_text(json.dumps(manifest))
    code, _, err = outcome(dataprep, ["build", tiny_clip, "--out", dataset, "--resume", "-q", *TINY], capfd)
    assert code == 0, err
    assert outcome(dataprep, ["validate", dataset], capfd)[0] == 0


# ------------------------------------------------------------------------------- 3. leaderboards
def test_leaderboard_protocol_with_dotdot_is_refused(records, tmp_path, victim, capfd):
    path = records / "cmft-interval@1" / "copy-reference.json"
    edit_record(path, lambda d: d.update(protocol="../../victim/x"))
    rehash(path)
    code, _, err = outcome(bench, ["leaderboard", "build", "--results", records, "--out", tmp_path / "lb"], capfd)
    assert_one_line_error(code, err, "protocol", "not a plain file name")
    assert not (tmp_path / "lb").exists()


def test_leaderboard_copies_only_the_records_own_example_grid(records, tmp_path, victim, capfd):
    path = records / "cmft-interval@1" / "copy-reference.json"
    edit_record(path, lambda d: d["files"].update(examples="../../victim/thesis.tex"))
    rehash(path)
    code, _, err = outcome(bench, ["leaderboard", "build", "--results", records, "--out", tmp_path / "lb"], capfd)
    assert_one_line_error(code, err, "files.examples")
    assert not (tmp_path / "lb").exists()


def test_leaderboard_check_writes_nothing(records, tmp_path, capfd):
    out = tmp_path / "lb"
    assert outcome(bench, ["leaderboard", "build", "--results", records, "--out", out, "-q"], capfd)[0] == 0
    (out / "cmft-interval@1.md").write_text("stale\n")
    before = snapshot(tmp_path)
    code, _, err = outcome(bench, ["leaderboard", "build", "--results", records, "--out", out, "--check"], capfd)
    assert_one_line_error(code, err, "out of date")
    assert snapshot(tmp_path) == before


def test_leaderboard_refuses_edited_copied_and_empty_results(records, tmp_path, capfd):
    path = records / "cmft-interval@1" / "copy-reference.json"
    args = ["leaderboard", "build", "--results", records, "--out", tmp_path / "lb"]
    good = path.read_text()
    edit_record(path, lambda d: d["metrics"][0].update(value=99.0))  # "an edited 99.0 dB ranked first"
    assert_one_line_error(*outcome(bench, args, capfd)[::2], "copy-reference.json", "content hash")
    path.write_text(good)
    samples = records / "cmft-interval@1" / "copy-reference.samples.parquet"
    frame = pd.read_parquet(samples)
    frame.loc[0, "psnr"] = 99.0
    frame.to_parquet(samples, index=False)
    assert_one_line_error(*outcome(bench, args, capfd)[::2], "content hash", "samples.parquet")
    samples.unlink()
    assert_one_line_error(*outcome(bench, args, capfd)[::2], "missing")
    assert not (tmp_path / "lb").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = outcome(bench, ["leaderboard", "build", "--results", empty, "--out", tmp_path / "lb"], capfd)
    assert_one_line_error(code, err, "nothing to build")


def test_leaderboard_refuses_duplicates(records, tmp_path, capfd):
    folder = records / "cmft-interval@1"
    for suffix in (".json", ".samples.parquet", ".examples.png"):
        shutil.copy(folder / f"flow-warp{suffix}", folder / f"flow-warp-copy{suffix}")
    edit_record(folder / "flow-warp-copy.json",
                lambda d: d["files"].update(samples="flow-warp-copy.samples.parquet",
                                            examples="flow-warp-copy.examples.png"))
    rehash(folder / "flow-warp-copy.json")
    code, _, err = outcome(bench, ["leaderboard", "build", "--results", records, "--out", tmp_path / "lb"], capfd)
    assert_one_line_error(code, err, "duplicate of")


def test_leaderboard_csv_neutralises_formulas(records, tmp_path, capfd):
    path = records / "cmft-interval@1" / "copy-reference.json"
    edit_record(path, lambda d: d.update(model='=HYPERLINK("http://x","y")'))
    rehash(path)
    assert outcome(bench, ["leaderboard", "build", "--results", records, "--out", tmp_path / "lb", "-q"], capfd)[0] == 0
    cells = [line.split(",")[2] for line in (tmp_path / "lb" / "cmft-interval@1.csv").read_text().splitlines()[1:]]
    assert any(c.startswith("'=HYPERLINK") or c.startswith("\"'=HYPERLINK") for c in cells)
    assert not any(c.startswith("=") or c.startswith("\"=") for c in cells)
    values = pd.read_csv(tmp_path / "lb" / "cmft-interval@1.csv")["value"]
    assert values.dtype.kind == "f"  # numbers (negative ones too) stay numbers


def test_leaderboard_out_is_a_file(records, tmp_path, capfd):
    (tmp_path / "file").write_text("x")
    code, _, err = outcome(bench, ["leaderboard", "build", "--results", records, "--out", tmp_path / "file"], capfd)
    assert_one_line_error(code, err, "not a folder")


# ------------------------------------------------------------------ 4. config checked before deleting
@pytest.mark.parametrize("setting, message", [
    ("sketch.name=xdg", "did you mean 'xdog'"), ("sketch.params.bogus=1", "sketch.params"),
    ("shots.detector=nope", "unknown detector 'nope'"), ("shots.params.bogus=1", "shots.params"),
    ("components.params.bogus=1", "components.params"), ("hints.name=nope", "hints.name"),
])
def test_overwrite_with_a_bad_config_keeps_the_dataset(dataset, tiny_clip, setting, message, capfd):
    before = snapshot(dataset)
    code, _, err = outcome(dataprep, ["build", tiny_clip, "--out", dataset, "--overwrite", *TINY,
                                      "--set", setting], capfd)
    assert_one_line_error(code, err, message)
    assert snapshot(dataset) == before


def test_overwrite_that_builds_nothing_gives_the_old_dataset_back(dataset, tmp_path, capfd):
    before = snapshot(dataset)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 4096)
    code, _, err = outcome(dataprep, ["build", bad, "--out", dataset, "--overwrite", *TINY], capfd)
    assert_one_line_error(code, err, "no frames were built", "bad.mp4")
    assert snapshot(dataset) == before


# --------------------------------------------------------------------- 5. evaluate stopped early
STOPPING_MODEL = """
import os, signal, sys
calls = 0
def create(weights=None, device=None):
    def model(batch):
        global calls
        calls += 1
        if calls == 2:
            {stop}
        return batch["reference_colour"][:, 0]
    return model
"""


@pytest.mark.parametrize("name, stop, reason", [
    ("exits", "sys.exit(3)", "SystemExit(3)"),
    ("terminated", "os.kill(os.getpid(), signal.SIGTERM)", "terminated by SIGTERM"),
])
def test_evaluate_stopped_keeps_the_scored_samples(tiny_dataset, tmp_path, monkeypatch, capfd, name, stop, reason):
    (tmp_path / f"stop_{name}.py").write_text(STOPPING_MODEL.replace("{stop}", stop))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r.json"
    handler_before = signal.getsignal(signal.SIGTERM)
    # shi-kref@1 batches by number of references, so the tiny dataset gives several batches whatever its size
    code, _, err = outcome(bench, ["evaluate", "--model", f"stop_{name}:create", "--data", tiny_dataset, "--out", out,
                                   "--protocol", "shi-kref@1", "-q"], capfd)
    assert_one_line_error(code, err, "marked incomplete", reason)
    record = json.loads(out.read_text())
    scored = len(pd.read_parquet(tmp_path / "r.samples.parquet"))
    assert record["status"] == "incomplete" and 0 < record["samples_evaluated"] == scored <= 8  # the first batch
    assert signal.getsignal(signal.SIGTERM) is handler_before  # evaluate puts back the handler it found


# ------------------------------------------------------------------ 6. workers die with their parent
def test_a_worker_exits_when_its_parent_is_killed(tmp_path):
    from dataprep.build.executor import LocalExecutor, exit_with_parent

    pool = LocalExecutor(workers=1)._new_pool(1)
    assert pool._initializer is exit_with_parent  # every pool of the local executor watches its parent
    pool.shutdown()
    # parent -> child that runs exit_with_parent; kill -9 the parent; the child must end by itself
    child_code = ("import os, time; from dataprep.build.executor import exit_with_parent; "
                  "exit_with_parent(os.getppid()); print('ready', flush=True); time.sleep(120)")
    parent_code = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', {child_code!r}], "
                   "stdout=subprocess.PIPE, text=True); p.stdout.readline(); print(p.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([PYTHON, "-c", parent_code], stdout=subprocess.PIPE, text=True, env=python_env())
    try:
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the worker outlived its parent"
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


# --------------------------------------------------------------------- 10. one line, exit 2, always
@pytest.mark.parametrize("argv, needle", [
    (["shots", "CLIP", "--crop", "1,2,3"], "four integers"),
    (["shots", "CLIP", "--workers", "0"], ">= 1"),
    (["shots", "CLIP", "--min-length", "-5"], ">= 1"),
    (["shots", "CLIP", "--threshold", "nan"], "finite"),
    (["shots", "CLIP", "--threshold", "inf"], "finite"),
    (["build", "CLIP", "--out", "OUT", "--workers", "-3"], ">= 1"),
    (["build", "CLIP", "--out", "OUT", "--workers", "0"], ">= 1"),
    (["info", "DATA", "--samples", "0"], ">= 1"),
    (["synth", "--out", "OUT", "--shot-length", "5,2"], "MIN <= MAX"),
])
def test_dataprep_user_errors_are_one_line(tiny_clip, tiny_dataset, tmp_path, capfd, argv, needle):
    names = {"CLIP": tiny_clip, "DATA": tiny_dataset, "OUT": tmp_path / "out"}
    code, _, err = outcome(dataprep, [names.get(a, a) for a in argv], capfd)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, needle", [
    (["speed", "--model", "copy-reference", "--size", "-5"], ">= 8"),
    (["speed", "--model", "copy-reference", "--size", "0"], ">= 8"),
    (["speed", "--model", "copy-reference", "--repeats", "0"], ">= 1"),
    (["speed", "--model", "copy-reference", "--batch-size", "0"], ">= 1"),
    (["speed", "--model", "copy-reference", "--references", "0"], ">= 1"),
    (["evaluate", "--model", "copy-reference", "--data", "DATA", "--limit", "-3"], ">= 1"),
    (["evaluate", "--model", "copy-reference", "--data", "DATA", "--out", "DIR"], "is a folder"),
    (["evaluate", "--model", "copy-reference", "--data", "DATA", "--out", "UNWRITABLE"], "cannot write"),
    (["evaluate", "--model", "cmft", "--data", "DATA", "--out", "R", "--weights", "CORRUPT"], "model 'cmft'"),
    (["evaluate", "--model", "raising_model:create", "--data", "DATA", "--out", "R"], "RuntimeError: no GPU here"),
    (["train", "--model", "cmft", "--data", "shapes:n=4,size=16", "--out", "R", "--set", "lr=-1"], "setting lr"),
    (["train", "--model", "cmft", "--data", "shapes:n=4,size=16", "--out", "R", "--set", "lr=nan"], "setting lr"),
    (["train", "--model", "cmft", "--data", "shapes:n=4,size=16", "--out", "R", "--set", "batch_size=0"],
     "setting batch_size"),
    (["train", "--model", "cmft", "--data", "shapes:n=4,size=16", "--out", "R", "--set", "model_args.bogus=1"],
     "model_args.bogus"),
])
def test_bench_user_errors_are_one_line(tiny_dataset, tmp_path, capfd, monkeypatch, argv, needle):
    (tmp_path / "dir").mkdir()
    (tmp_path / "a-file").write_text("x")  # a path through a file cannot be written, not even by root
    (tmp_path / "corrupt.safetensors").write_bytes(b"\xff" * 64)
    (tmp_path / "raising_model.py").write_text("def create(weights=None, device=None):\n"
                                               "    raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = {"DATA": tiny_dataset, "DIR": tmp_path / "dir", "UNWRITABLE": tmp_path / "a-file" / "sub" / "r.json",
             "R": tmp_path / "run" / "r.json", "CORRUPT": tmp_path / "corrupt.safetensors"}
    code, _, err = outcome(bench, [names.get(a, a) for a in argv], capfd)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "run").exists() and not list((tmp_path / "dir").iterdir())


def test_full_disk_when_the_manifest_is_written(dataset, tiny_clip, capfd, monkeypatch):
    import uuid

    from dataprep import storage

    # files are written to "<name>.<8 hex>.tmp" and renamed; pin the hex so the manifest's temporary is known
    fixed = uuid.UUID(int=0xABCDEF12 << 96)
    monkeypatch.setattr(storage.uuid, "uuid4", lambda: fixed)
    tmp = dataset / "meta" / f"info.json.{fixed.hex[:8]}.tmp"
    tmp.symlink_to("/dev/full")  # every write to it fails with ENOSPC, like a full disk
    before = (dataset / "meta" / "info.json").read_bytes()
    code, _, err = outcome(dataprep, ["build", tiny_clip, "--out", dataset, "--resume", "-q", *TINY], capfd)
    assert_one_line_error(code, err, "info.json", "No space left")
    assert not tmp.exists() and not tmp.is_symlink()
    assert (dataset / "meta" / "info.json").read_bytes() == before


# -------------------------------------------------------------------------- 13. builds of nothing
def test_builds_of_nothing_fail_and_leave_nothing(tmp_path, tiny_clip, capfd):
    import cv2
    from PIL import Image

    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(tmp_path / "one.gif")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    for i in range(12):
        cv2.imwrite(str(tiny / f"{i:04d}.png"), np.random.default_rng(i // 6).integers(0, 255, (8, 8, 3), np.uint8))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 4096)
    out = tmp_path / "out"
    for source, reason in ((tmp_path / "one.gif", "0 of 1 shot(s) kept"), (tiny, "0 of"), (bad, "not a video")):
        code, _, err = outcome(dataprep, ["build", source, "--out", out, *TINY], capfd)
        assert_one_line_error(code, err, "no frames were built", reason)
        assert not out.exists()
    # the failed first build left nothing that blocks the next one
    assert outcome(dataprep, ["build", tiny_clip, "--out", out, "-q", *TINY], capfd)[0] == 0


def test_mixed_frame_sizes_are_handled_alike_by_shots_and_build(tmp_path, capfd):
    import cv2

    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(16):
        shape = (48 if i % 2 else 40, 64, 3)
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.random.default_rng(i // 8).integers(0, 255, shape, np.uint8))
    code, out, err = outcome(dataprep, ["shots", folder, "--json", "--min-length", "1"], capfd)
    assert code == 0, err
    result = json.loads(out)
    assert result["n_frames"] == 16 and "mixed sizes" in result["note"]
    code, _, err = outcome(dataprep, ["build", folder, "--out", tmp_path / "ds", "-q", *TINY,
                                      "--set", "shots.params.min_length=1"], capfd)
    assert code == 0, err
    detection = json.loads(next((tmp_path / "ds" / "meta" / "shots").glob("*.json")).read_text())
    assert detection["n_frames"] == 16 and "mixed sizes" in detection["note"]


# --------------------------------------------------------------------------------- 14. quiet, empty
def test_evaluate_quiet_still_prints_the_result(tiny_dataset, tmp_path, capfd):
    code, out, err = outcome(bench, ["evaluate", "--model", "copy-reference", "--data", tiny_dataset, "--limit", "2",
                                     "--out", tmp_path / "r.json", "-q"], capfd)
    assert code == 0 and "psnr = " in out and "signature" in out and not err


# ----------------------------------------------------------------------- 7. tamper-evident datasets
def _repaint_one_frame(dataset: Path) -> None:
    """Paint a block of one ground-truth frame: the shard stays valid Parquet holding a valid PNG."""
    from dataprep.imaging import decode_png, encode_png

    shard = shard_files(dataset, "frames")[0]
    table = pq.read_table(shard)
    rows = table.to_pylist()
    colour = decode_png(rows[-1]["colour"]["bytes"]).copy()
    colour[:8, :8] = 255 - colour[:8, :8]
    rows[-1]["colour"]["bytes"] = encode_png(colour, 1, "colour")
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard, compression="zstd")


def test_repainted_ground_truth_is_caught(dataset, tmp_path, capfd):
    _repaint_one_frame(dataset)
    code, _, err = outcome(dataprep, ["validate", dataset], capfd)
    assert_one_line_error(code, err, "sha256 differs", status=1)
    code, _, err = outcome(bench, ["evaluate", "--model", "copy-reference", "--data", dataset,
                                   "--out", tmp_path / "r.json"], capfd)
    assert_one_line_error(code, err, "sha256 differs")
    assert not (tmp_path / "r.json").exists()


def test_dataset_hash_in_the_signature_covers_content(dataset):
    from dataprep.dataset.manifest import manifest_hash

    manifest = json.loads((dataset / "meta" / "info.json").read_text())
    before = manifest_hash(manifest)
    unit = next(iter(manifest["units"].values()))
    key = next(iter(unit["sha256"]))
    unit["sha256"][key] = "0" * 64  # the same settings, another content
    assert manifest_hash(manifest) != before


# ---------------------------------------------------------------------- 12. bench train checks data
def test_train_on_a_truncated_shard_is_one_line(dataset, tmp_path, capfd):
    shard = shard_files(dataset, "pairs")[0]
    shard.write_bytes(shard.read_bytes()[:100])
    code, _, err = outcome(bench, ["train", "--model", "cmft", "--preset", "tiny", "--data", dataset,
                                   "--out", tmp_path / "run"], capfd)
    assert_one_line_error(code, err, "sha256 differs", shard.name)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------- real processes, end to end
@pytest.mark.parametrize("module, argv, needle", [
    ("dataprep", ["shots", "missing.mp4", "--threshold", "nan"], "finite"),
    ("dataprep", ["shots", "CLIP", "--crop", "1,2,3"], "four integers"),
    ("dataprep", ["build", "EMPTY", "--out", "out"], "no image frames"),
])
def test_a_real_process_prints_one_line_and_exits_2(tmp_path, tiny_clip, module, argv, needle):
    (tmp_path / "empty").mkdir()
    names = {"CLIP": str(tiny_clip), "EMPTY": str(tmp_path / "empty")}
    done = subprocess.run([PYTHON, "-m", module, *[names.get(a, a) for a in argv]], capture_output=True, text=True,
                          env=python_env(), cwd=tmp_path, timeout=120)
    assert_one_line_error(done.returncode, done.stderr, needle)


# -------------------------------------------------------------------------- commands added this session
def test_compare_and_ls_refuse_bad_input_with_one_line(records, tmp_path, victim, capfd):
    before = snapshot(victim)
    a, b = records / "cmft-interval@1" / "copy-reference.json", records / "cmft-interval@1" / "flow-warp.json"
    assert a.is_file() and b.is_file()
    not_a_record = tmp_path / "notes.json"
    not_a_record.write_text("[1, 2]")
    cases = [
        (["compare", str(tmp_path / "missing.json"), str(b)], ("missing.json",)),
        (["compare", str(not_a_record), str(b)], ("notes.json",)),
        (["compare", str(a), str(b), "--resamples", "0"], ("--resamples", ">= 1")),
        (["compare", str(a), str(b), "--confidence", "2"], ("--confidence",)),
        (["ls", "modles"], ("modles",)),
    ]
    for argv, needles in cases:
        code, _, err = outcome(bench_cli.main, argv, capfd)
        assert_one_line_error(code, err, *needles)
    assert snapshot(victim) == before
