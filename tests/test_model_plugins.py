"""Models: the docs/models.md plugin example runs as written; every registered model honours the contract."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import benchmark.evaluate
import benchmark.evaluate_cli
import benchmark.models  # noqa: F401  (registers the built-in models)
from benchmark import cli
from baselines.pretrained import NOT_SHIPPED
from benchmark.model import MODELS, load_model
from benchmark.record import read_record
from benchmark.speed import measure_speed, synthetic_batch
from benchmark_toys import local_metric_factory, toy_source, one_torch_thread

ROOT = Path(__file__).resolve().parents[1]

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def docs_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "models.md").read_text(), flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_docs_plugin_example_evaluates_with_and_without_weights(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_models.py").write_text(docs_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(benchmark.evaluate, "create_metric", local_metric_factory)
    monkeypatch.setattr(benchmark.evaluate_cli, "open_source", lambda path: toy_source(shots=1, frames=12))
    plain = tmp_path / "plain.json"
    assert cli.main(["evaluate", "--model", "my_models:create", "--data", "toy", "--protocol", "shi-kref@1",
                     "--out", str(plain)]) == 0
    assert "my_models:create on shi-kref@1 (25 samples): psnr = " in capsys.readouterr().out
    weights = tmp_path / "mean.safetensors"
    save_file({"strength": torch.tensor(0.5)}, str(weights))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    named = tmp_path / f"mean-{digest[:8]}.safetensors"  # torch.hub-style name: the hash is checked
    weights.rename(named)
    dimmed = tmp_path / "dimmed.json"
    assert cli.main(["evaluate", "--model", "my_models:create", "--weights", str(named), "--data", "toy",
                     "--protocol", "shi-kref@1", "--out", str(dimmed), "-q"]) == 0
    plain_record, dimmed_record = read_record(plain), read_record(dimmed)
    assert plain_record.weights_sha256 is None and dimmed_record.weights_sha256 == digest
    assert dimmed_record.signature == plain_record.signature  # same protocol and data: comparable
    assert dimmed_record.metric("psnr").value != plain_record.metric("psnr").value


@pytest.mark.parametrize("name", MODELS.names())
def test_registered_models_honour_the_contract(name):
    model = load_model(name, "none" if name in NOT_SHIPPED else None)  # shipped weights where there are some
    for references in (1, 3):
        batch = synthetic_batch(32, batch_size=2, references=references)
        out = model(batch)
        assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    report = measure_speed(model, name, size=32, warmup=1, repeats=2)
    assert report.latency_ms_median > 0 and report.peak_memory_bytes > 0 and report.cpu_ms_median > 0


def test_bench_speed_prints_the_machine_and_torch_build_first(capsys, monkeypatch):
    import os

    from benchmark.cli import main
    from benchmark.speed import cpu_model, machine_description

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    threads = torch.get_num_threads()
    try:
        assert main(["speed", "--model", "flow-warp", "--size", "16", "--warmup", "0", "--repeats", "1",
                     "--threads", "1"]) == 0
        described = machine_description()
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.splitlines()
    keys = [line.split(":", 1)[0].strip() for line in lines]
    assert keys[:5] == ["cpu", "load average", "torch", "threads", "environment"] and "latency_ms_median" in keys
    printed = dict(line.split(": ", 1) for line in (l.strip() for l in lines))
    assert printed["cpu"].startswith(cpu_model()) and f"{os.cpu_count()} logical cores" in printed["cpu"]
    assert printed["threads"].startswith("1 intra-op")  # --threads took effect before the run
    assert torch.__version__ in printed["torch"] and torch.backends.cpu.get_cpu_capability() in printed["torch"]
    assert "OMP_WAIT_POLICY=PASSIVE" in printed["environment"] == described["environment"]


def test_flow_warp_recovers_a_translation():
    """A shifted drawing is warped back: the warped reference equals the target away from borders."""
    frame0, frame1 = toy_source(shots=1, frames=2, size=64).frames.values()
    batch = {}
    for key, f in (("reference", frame0), ("target", frame1)):
        sketch = torch.from_numpy(f.sketch).float()[None] / 255
        field = torch.from_numpy(f.field)[None]
        colour = torch.from_numpy(f.colour).permute(2, 0, 1).float() / 255
        if key == "reference":
            batch.update(reference_colour=colour[None, None], reference_sketch=sketch[None, None],
                         reference_field=field[None, None])
        else:
            batch.update(target_sketch=sketch[None], target_field=field[None])
            truth = colour
    warped = load_model("flow-warp")(batch)[0]
    copied = load_model("copy-reference")(batch)[0]
    assert (warped - truth).abs().mean() < 0.5 * (copied - truth).abs().mean()


def test_speed_command_reports_latency_throughput_memory(capsys):
    assert cli.main(["speed", "--model", "flow-warp", "--size", "32", "--repeats", "2", "--warmup", "1",
                     "--references", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    values = dict(line.split(":", 1) for line in out.strip().splitlines())
    values = {k.strip(): v.strip() for k, v in values.items()}
    assert values["model"] == "flow-warp" and values["device"] == "cpu" and values["references"] == "2"
    assert float(values["latency_ms_median"]) > 0 and float(values["frames_per_second"]) > 0
    assert int(values["peak_memory_bytes"]) > 0
