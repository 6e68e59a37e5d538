"""bench demo end to end on a small clip; protocol details (held drawings; hints: tests/test_hint_protocol.py)."""

from __future__ import annotations

import numpy as np
import pytest

import benchmark.demo
from benchmark import cli
from benchmark.leaderboard import check
from benchmark.protocol import load_protocol
from benchmark.record import read_record
from benchmark.source import Frame, MemorySource, Shot
from benchmark_toys import one_torch_thread
from dataprep.synth import SynthConfig

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def test_demo_runs_end_to_end_and_says_where_to_look(tmp_path, monkeypatch, capsys):
    small = SynthConfig(width=64, height=64, shots=2, shot_length=(16, 18), holds=(1,), seed=1)
    monkeypatch.setattr(benchmark.demo, "demo_config", lambda: small)
    # stored at the clip's own 64 px (the demo stores 256): the build's stages cost 16x less; protocols resize
    monkeypatch.setattr(benchmark.demo, "BUILD_OVERRIDES", (*benchmark.demo.BUILD_OVERRIDES, "frames.size=64"))
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    board = tmp_path / "demo" / "leaderboards"
    assert f"{board / 'shi-kref@1.html'}" in out
    assert "skip flow-warp on hints@1" in out
    dataset = tmp_path / "demo" / "dataset"
    assert f"dataset report (open the .html in a browser): {dataset / 'report.png'}" in out
    assert (dataset / "report.html").is_file() and (dataset / "report.png").stat().st_size > 0
    for protocol in ("shi-kref@1", "components@1", "hints@1", "hints@2"):
        assert (board / f"{protocol}.md").is_file()
    records = [read_record(r) for r in sorted((board / "results").rglob("*.json"))]
    assert len(records) >= 5 and all(r.status == "complete" for r in records)
    shi = next(r for r in records if r.protocol == "shi-kref")
    assert shi.metric("fid").unavailable and shi.metric("fid").value is None  # no weights here: said, not faked
    assert set(shi.metric("ssim").buckets) == {"1", "2", "3", "4", "5"}
    budgets = {r.model: r for r in records if (r.protocol, r.protocol_version) == ("hints", 2)}
    assert {"copy-reference", "hint-flood", "yuan"} <= set(budgets)
    assert set(budgets["yuan"].metric("psnr").buckets) == {"0", "1", "2", "4", "8", "16", "32"}
    assert check(board / "results", board) == []
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed (pip install -e '.[hf]')")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    pairs = datasets.load_dataset(str(dataset), "pairs", split="test", cache_dir=str(tmp_path / "hf"))
    frames = datasets.load_dataset(str(dataset), "frames", split="test", cache_dir=str(tmp_path / "hf"))
    assert set(pairs["target_key"]) <= set(frames["frame_key"]) and frames[0]["colour"].size == (64, 64)


def test_kref_counts_held_frames_once():
    colour = np.zeros((8, 8, 3), np.uint8)
    frame = Frame(colour, np.full((8, 8), 255, np.uint8), np.zeros((8, 8), np.float32))
    ids = tuple(f"f{i}" for i in range(16))
    drawings = tuple(i // 2 for i in range(16))  # on twos: 8 distinct drawings
    source = MemorySource({"test": [Shot("s", ids, drawings)]}, {i: frame for i in ids})
    samples = load_protocol("shi-kref@1").select(source, "test")
    used = {s.target_id for s in samples} | {r for s in samples for r in s.reference_ids}
    assert used == {f"f{i}" for i in range(0, 16, 2)}  # first frame of each drawing only


def test_generated_ground_truth_leaves_out_the_frames_a_fade_or_flash_recolours():
    """A paint-bucket ground truth must be the paint: every flat region of every frame the source keeps has
    exactly its colour in the generator's region table; the fade and flash frames, which do not, are left out
    (and kept with ``paint_only=False``, where the same check fails)."""
    from dataprep.synth import SynthClip

    clip = SynthClip(SynthConfig(width=64, height=64, shots=2, shot_length=(18, 18), holds=(1,), seed=3,
                                 fade=True, flash=True))
    table = {int(rid): tuple(info["rgb"]) for rid, info in clip.truth["regions"].items() if info["flat"]}
    effects = benchmark.demo.effect_frames(clip)
    assert len(effects) >= 7  # a fade of at least 3 frames each side, and a flash

    def off_table_frames(source) -> set[int]:
        wrong = set()
        for key, frame in source.frames.items():
            colour, labels = np.asarray(frame.colour), np.asarray(frame.components)
            for rid, rgb in table.items():
                pixels = colour[labels == rid]
                if len(pixels) and not (pixels == rgb).all():
                    wrong.add(int(key.split("/")[1]))
        return wrong

    kept = benchmark.demo.synth_source(clip)
    everything = benchmark.demo.synth_source(clip, paint_only=False)
    assert {int(key.split("/")[1]) for key in kept.frames} == set(range(clip.n_frames)) - effects
    assert off_table_frames(kept) == set()
    assert off_table_frames(everything) == effects
    shot_frames = [key for shot in kept.shots("test") for key in shot.frame_ids]
    assert sorted(shot_frames) == sorted(kept.frames)
