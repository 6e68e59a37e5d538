"""Seeded fuzzing: random byte-level corruptions of a small video, a PNG folder, a Parquet shard and a manifest
(plus structural edits of the manifest's JSON) fed to ``shots``, ``build``, ``build --resume``, ``validate`` and
``evaluate`` (issue 12). Every run must end in success or a failure told in words: no traceback, no internal error,
one stderr line for a user error, nothing outside the output folder touched. A corrupted shard is redone by
``build --resume`` into a valid dataset.

The commands run in-process through their CLI ``main`` (a few hundred cases in seconds); the seed makes every
case reproducible (``FUZZ_SEED``).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from benchmark import cli as bench_cli
from dataprep import cli as dataprep_cli
from dataprep.dataset.manifest import shard_files
from tests.hostile import TINY, assert_no_crash, make_victim, outcome, snapshot, tiny_clip, tiny_dataset

__all__ = ["tiny_clip", "tiny_dataset"]  # session fixtures used below

FUZZ_SEED = 20261203
dataprep = dataprep_cli.main
bench = bench_cli.main


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """One random byte-level corruption: flipped bytes, a truncation, a zeroed or random block, a repeated or
    deleted span."""
    data = bytearray(data)
    n = len(data)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del data[rng.randrange(n):]
    elif kind == 2:
        start = rng.randrange(n)
        data[start:start + rng.randint(1, 512)] = bytes(min(n - start, 512))
    elif kind == 3:
        start = rng.randrange(n)
        data[start:start] = rng.randbytes(rng.randint(1, 256))
    elif kind == 4:
        start = rng.randrange(n)
        data[start:start] = data[start:start + rng.randint(1, 1024)]
    else:
        start = rng.randrange(n)
        del data[start:start + rng.randint(1, 1024)]
    return bytes(data)


HOSTILE_VALUES = [None, -1, 0, 10**12, 1e308, "", "../../victim/thesis", "/etc/passwd", [], {}, True, "x" * 300,
                  {"frames": ["../../../victim/thesis.tex"], "pairs": []}]


def mutate_json(value, rng: random.Random):
    """Replace (or delete) one randomly chosen node of a JSON tree by a hostile value."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value, key=str))
        if rng.random() < 0.15:
            del value[key]
        else:
            value[key] = mutate_json(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        value[i] = mutate_json(value[i], rng)
        return value
    return rng.choice(HOSTILE_VALUES)


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory) -> Path:
    from tests.dataset_fakes import write_synth_frames

    folder = tmp_path_factory.mktemp("fuzz-frames") / "frames"
    write_synth_frames(folder, seed=2, shots=2, width=48, height=32, shot_length=(6, 8))
    (folder / "truth.json").unlink()
    return folder


@pytest.fixture(scope="module")
def area(tmp_path_factory):
    """A scratch folder with a victim beside it; the victim is checked unchanged after every test."""
    root = tmp_path_factory.mktemp("fuzz")
    victim = make_victim(root)
    before = snapshot(victim)
    yield root
    assert snapshot(victim) == before


def _fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


def test_fuzzed_video(tiny_clip, area, capfd):
    rng = random.Random(FUZZ_SEED)
    good = tiny_clip.read_bytes()
    video = area / "video" / "clip.mp4"
    video.parent.mkdir(exist_ok=True)
    for case in range(70):
        video.write_bytes(corrupt(good, rng))
        code, _, err = outcome(dataprep, ["shots", video, "--json", "-q"], capfd)
        assert_no_crash(code, err)
        if case % 10 == 0:  # the whole build on every tenth
            out = _fresh(area / "video-ds")
            code, _, err = outcome(dataprep, ["build", video, "--out", out, "-q", *TINY], capfd)
            assert_no_crash(code, err)
            assert code != 2 or not out.exists(), "a build that failed as a whole left output behind"


def test_fuzzed_png_folder(frames_folder, area, capfd):
    rng = random.Random(FUZZ_SEED + 1)
    folder = area / "png"
    for case in range(40):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(frames_folder, folder)
        for victim_png in rng.sample(sorted(folder.glob("*.png")), rng.randint(1, 3)):
            victim_png.write_bytes(corrupt(victim_png.read_bytes(), rng))
        code, _, err = outcome(dataprep, ["shots", folder, "--json", "-q"], capfd)
        assert_no_crash(code, err)
        if case % 8 == 0:
            out = _fresh(area / "png-ds")
            code, _, err = outcome(dataprep, ["build", folder, "--out", out, "-q", *TINY], capfd)
            assert_no_crash(code, err)


def test_fuzzed_shard(tiny_dataset, tiny_clip, area, capfd):
    rng = random.Random(FUZZ_SEED + 2)
    data = area / "shard-ds"
    shutil.copytree(tiny_dataset, _fresh(data))
    shards = shard_files(data, "frames") + shard_files(data, "pairs")
    originals = {path: path.read_bytes() for path in shards}
    for case in range(80):
        shard = rng.choice(shards)
        shard.write_bytes(corrupt(originals[shard], rng))
        code, _, err = outcome(dataprep, ["validate", data], capfd)
        assert_no_crash(code, err)
        assert code != 0, "a corrupted shard passed validation"
        if case % 16 == 8:
            code, _, err = outcome(bench, ["evaluate", "--model", "copy-reference", "--data", data, "--limit", "1",
                                           "--out", area / "r.json", "-q"], capfd)
            assert_no_crash(code, err)
            assert code == 2 and not (area / "r.json").exists()
        if case % 20 == 0:  # a resumed build redoes the damaged unit: the dataset is whole again
            code, _, err = outcome(dataprep, ["build", tiny_clip, "--out", data, "--resume", "-q", *TINY], capfd)
            assert code == 0, err
            assert outcome(dataprep, ["validate", data], capfd)[0] == 0
            shards = shard_files(data, "frames") + shard_files(data, "pairs")
            originals = {path: path.read_bytes() for path in shards}
        else:
            shard.write_bytes(originals[shard])


def test_fuzzed_manifest(tiny_dataset, tiny_clip, area, capfd):
    rng = random.Random(FUZZ_SEED + 3)
    data = area / "manifest-ds"
    shutil.copytree(tiny_dataset, _fresh(data))
    info = data / "meta" / "info.json"
    good = info.read_bytes()
    for case in range(120):
        if case % 2:
            info.write_bytes(corrupt(good, rng))
        else:
            info.write_text(json.dumps(mutate_json(json.loads(good), rng)))
        code, _, err = outcome(dataprep, ["validate", data], capfd)
        assert_no_crash(code, err)
        if case % 12 == 0:
            code, _, err = outcome(bench, ["evaluate", "--model", "copy-reference", "--data", data, "--limit", "1",
                                           "--out", area / "m.json", "-q"], capfd)
            assert_no_crash(code, err)
        if case % 12 == 6:
            code, _, err = outcome(dataprep, ["build", tiny_clip, "--out", data, "--resume", "-q", *TINY], capfd)
            assert_no_crash(code, err)
            shutil.copytree(tiny_dataset, _fresh(data))  # a resumed build may have redone units: start again
        info.write_bytes(good)
