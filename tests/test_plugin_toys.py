"""Adding a component of each pluggable kind is a class (or function) and a decorator: one toy per kind,
registered the way docs/architecture.md says, then run through the real entry point that users reach.

Each test registers into a copy of the registry's table so the toy does not leak into other tests.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from benchmark import protocol as protocol_module
from benchmark.evaluate import evaluate
from benchmark.metric import METRICS, PerSampleMetric
from benchmark.model import MODELS, load_model, register_model
from benchmark.protocol import load_protocol, select_samples
from benchmark.source import SampleSource, Shot
from baselines.model import ColorizationModel, build_model, register_trainable, trainable_models
from benchmark_toys import toy_source
from dataprep.pairs import SAMPLERS, PairSpec, Sampler, ShotView, create_samplers
from dataprep.registry import Registry
from dataprep.shots.detect import detect_shots
from dataprep.shots.detector import DETECTORS, ShotDetector
from dataprep.sketch.extractor import EXTRACTORS, SketchExtractor


@pytest.fixture
def scratch(monkeypatch):
    """``scratch(REGISTRY)``: later registrations in REGISTRY vanish after the test."""

    def isolate(registry: Registry) -> Registry:
        registry.names()  # load the entry points first, so the copy holds the built-ins
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        return registry

    return isolate


def test_a_toy_detector_splits_a_frame_folder(scratch, tmp_path):
    scratch(DETECTORS)

    @DETECTORS.register("toy-every-n")
    class EveryN(ShotDetector):
        """Cut every ``n`` frames (a toy)."""

        def __init__(self, n: int = 10):
            self.n = n

        def process(self, index, features):
            return [index] if index and index % self.n == 0 else []

    rng = np.random.default_rng(0)
    for i in range(25):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    result = detect_shots(tmp_path, detector="toy-every-n", n=10)
    assert result.cuts == [10, 20]


def test_a_toy_extractor_is_created_by_name_and_checked(scratch):
    scratch(EXTRACTORS)

    @EXTRACTORS.register("toy-dark")
    class Dark(SketchExtractor):
        """Pixels darker than ``level`` in every channel are line (a toy)."""

        def __init__(self, level: int = 64):
            self.level = level

        @property
        def params(self):
            return {"level": self.level}

        def extract(self, rgb):
            return np.where(rgb.max(axis=2) < self.level, 0, 255).astype(np.uint8)

    rgb = np.full((4, 5, 3), 200, np.uint8)
    rgb[1, 2] = 10
    sketch = EXTRACTORS.create("toy-dark")(rgb)
    assert sketch.dtype == np.uint8 and sketch[1, 2] == 0 and (sketch == 0).sum() == 1


def test_a_toy_sampler_mines_pairs_and_selects_protocol_samples(scratch):
    scratch(SAMPLERS)

    @SAMPLERS.register("toy-first-last")
    class FirstLast(Sampler):
        """The shot's first frame references its last (a toy)."""

        kind = "toy-first-last"

        def sample(self, shot: ShotView) -> list[PairSpec]:
            frames = shot.frames(collapse_held=True)
            return [PairSpec(self.kind, f"{shot.video_id}/{shot.shot_id}", 0, (frames[0],), frames[-1])]

    (sampler,) = create_samplers({"toy-first-last": {}})
    shot = ShotView("clip", 0, [3, 4, 5, 6], [3, 3, 5, 6])
    assert [(p.references, p.target, p.interval) for p in sampler.sample(shot)] == [((3,), 6, 3)]

    # the same class selects a protocol's samples ("sampler": {"kind": "toy-first-last"}) from a dataset's shots,
    # held drawings given as drawing numbers
    class Shots(SampleSource):
        def shots(self, split):
            return [Shot("clip/7", ("a", "b", "c", "d"), (1, 1, 2, 3)), Shot("clip/8", ("e", "f"), None)]

        def frame(self, frame_id):
            raise KeyError(frame_id)

    samples = select_samples(Shots(), "test", "toy-first-last")
    assert [(s.sample_id, s.reference_ids, s.target_id) for s in samples] == [
        ("clip/7/0/d", ("a",), "d"), ("clip/8/0/f", ("e",), "f")]


def test_a_toy_metric_protocol_and_model_evaluate_end_to_end(scratch, tmp_path, monkeypatch):
    scratch(METRICS)
    scratch(MODELS)

    @METRICS.register("toy-mae")
    class ToyMAE(PerSampleMetric):
        """Mean absolute error over RGB uint8 values (a toy)."""

        name = "toy-mae"
        higher_is_better = False

        def settings(self):
            return {"colour_space": "rgb", "data_range": 255}

        def score_batch(self, preds, targets, **extra):
            return np.abs(preds.astype(np.float64) - targets.astype(np.float64)).mean(axis=(1, 2, 3))

    @register_model("toy-grey")
    def toy_grey(weights=None, device="cpu"):
        """Paints every pixel mid grey (a toy)."""
        return lambda batch: torch.full_like(batch["reference_colour"][:, 0], 0.5)

    # a protocol is a versioned JSON file in benchmark/protocols/ (here a copy of the folder plus one file)
    protocols = tmp_path / "protocols"
    protocols.mkdir()
    for path in protocol_module.PROTOCOL_DIR.glob("*.json"):
        (protocols / path.name).write_bytes(path.read_bytes())
    (protocols / "toy@1.json").write_text(json.dumps({
        "name": "toy", "version": 1, "description": "one reference, the next frame (a toy)",
        "sampler": {"kind": "pairs", "gap": 1, "pairs_per_shot": 2, "seed": 0, "collapse_held": False},
        "inputs": ["reference_colour", "target_sketch"], "resolution": [64, 64],
        "metrics": [{"name": "toy-mae", "settings": {}}], "primary_metric": "toy-mae"}))
    monkeypatch.setattr(protocol_module, "PROTOCOL_DIR", protocols)

    source = toy_source(shots=1, frames=6)
    evaluation = evaluate(load_model("toy-grey"), "toy-grey", source, load_protocol("toy"))
    record = evaluation.record
    # the model's 0.5 is 128 in uint8 (0.5 * 255 rounded half to even)
    expected = np.mean([np.abs(source.frame(s.target_id).colour.astype(np.float64) - 128).mean()
                        for s in load_protocol("toy").select(source, "test")])
    assert record.metric("toy-mae").value == pytest.approx(expected, abs=1e-9)
    assert record.protocol == "toy" and record.samples_valid == 2


def test_a_toy_trainable_model_is_built_trained_and_scored_by_name(scratch):
    scratch(MODELS)

    @register_trainable("toy-bias")
    class ToyBias(ColorizationModel):
        """The reference colour plus a learned per-channel bias (a toy)."""

        presets = {"tiny": {"model": {}, "train": {}}, "paper": {"model": {}, "train": {}}}

        def __init__(self, **config):
            super().__init__(**config)
            self.bias = torch.nn.Parameter(torch.zeros(1, 3, 1, 1))

        def forward(self, batch):
            return (batch["reference_colour"][:, 0] + self.bias).clamp(0, 1)

    assert "toy-bias" in trainable_models()
    network = build_model("toy-bias")
    batch = {"reference_colour": torch.rand(2, 1, 3, 8, 8)}
    assert torch.equal(network(batch), batch["reference_colour"][:, 0])
    scorer = load_model("toy-bias", weights="none")  # the same entry gives bench evaluate its scorer
    assert scorer(batch).shape == (2, 3, 8, 8)
