"""Mixed precision and torch.compile in ``bench train``, run on CPU.

On CUDA both are on by default; on CPU they run when asked for (``amp=bf16``/``fp16``, ``compile=on``), so
the code CUDA runs (autocast, GradScaler, the compiled forward, checkpoints of a compiled model) is
exercised here. ``docs/scripts/gpu_check.py`` repeats these checks on a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from baselines.datasets import ShapesPairs
from baselines.model import build_model
from baselines.model import load_model_file
from baselines.train import amp_dtype, model_config, resolve_config, select_device, train
from baselines.train_cli import parse_set
from benchmark_toys import one_torch_thread
from dataprep.errors import CelbenchError

single_thread = pytest.fixture(autouse=True)(one_torch_thread)

ROOT = Path(__file__).resolve().parents[1]
TINY = {"val_every": 0, "log_every": 1, "val_fraction": 0.0, "model_args.widths": [8, 8, 4, 4]}
CPU = torch.device("cpu")


def config(**overrides):
    return resolve_config("cmft", "tiny", overrides={**TINY, **overrides})


def initial_weights(cfg) -> dict[str, torch.Tensor]:
    """The weights ``train`` starts from (it seeds with ``cfg.seed`` just before building the model)."""
    torch.manual_seed(cfg.seed)
    return build_model(cfg.model, **model_config(cfg)).state_dict()


def train_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "train"]


def test_amp_settings_resolve_per_device():
    assert amp_dtype(config(amp="auto"), CPU) is None  # CPU stays full precision unless asked
    assert amp_dtype(config(amp="off"), CPU) is None
    assert amp_dtype(config(amp="bf16"), CPU) is torch.bfloat16
    assert amp_dtype(config(amp="fp16"), CPU) is torch.float16
    assert amp_dtype(config(amp="auto"), torch.device("mps")) is None
    with pytest.raises(CelbenchError, match="amp=bf16 runs on cuda and cpu, not mps"):
        amp_dtype(config(amp="bf16"), torch.device("mps"))
    with pytest.raises(CelbenchError, match="setting amp: expected auto, off, bf16, fp16, got 'fp8'"):
        config(amp="fp8")
    # --set values are YAML: on/off arrive as booleans and must still mean on/off
    cfg = resolve_config("cmft", "tiny", overrides=parse_set(["compile=on", "amp=off"]))
    assert (cfg.compile, cfg.amp) == ("on", "off")
    assert resolve_config("cmft", "tiny", overrides=parse_set(["compile=off"])).compile == "off"


def test_bare_cuda_device_gets_the_local_rank_index(monkeypatch):
    # torch.cuda.set_device and DDP's device_ids need an index; "cuda" alone used to reach them without one
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert select_device("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert select_device("cuda") == torch.device("cuda", 1)
    assert select_device("cuda:0") == torch.device("cuda", 0)
    assert select_device("cpu") == CPU
    with pytest.raises(CelbenchError, match="setting device: "):
        select_device("gpu")


def test_bf16_autocast_on_cpu_trains_in_bf16_with_a_float32_loss(tmp_path, monkeypatch):
    seen = {"sdpa": set(), "loss": set()}
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy_sdpa(query, key, value, **kwargs):
        out = sdpa(query, key, value, **kwargs)
        seen["sdpa"].add((query.dtype, key.dtype, value.dtype, out.dtype))
        return out

    from baselines.losses import ColorizationLoss

    loss_forward = ColorizationLoss.forward

    def spy_loss(self, output, target):
        total, parts = loss_forward(self, output, target)
        seen["loss"].add((output.dtype, total.dtype))
        return total, parts

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy_sdpa)
    monkeypatch.setattr(ColorizationLoss, "forward", spy_loss)
    data = ShapesPairs(n=4, size=16, seed=3)
    summary = train(config(amp="bf16", epochs=1), data, tmp_path / "bf16")
    assert summary["steps"] == 2 and summary["amp_dtype"] == "bfloat16" and summary["compiled"] is False
    stored = json.loads((tmp_path / "bf16/config.json").read_text())
    assert stored["amp"] == "bf16" and stored["amp_dtype"] == "bfloat16"
    # the correlation ran in bf16 (CPU autocast casts SDPA's inputs), the loss got float32 and gave float32
    assert seen["sdpa"] == {(torch.bfloat16,) * 4}
    assert seen["loss"] == {(torch.float32, torch.float32)}
    assert all(math.isfinite(r["loss"]) for r in train_rows(tmp_path / "bf16"))

    # The checkpoint holds float32 weights under plain names and loads into a fresh model.
    ckpt_file = tmp_path / "bf16/checkpoints/step_00000002.safetensors"
    model = load_model_file(ckpt_file)
    state = load_file(str(ckpt_file))
    assert all(state[f"model.{k}"].dtype == torch.float32 for k in model.state_dict())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    # Autocast really changed the arithmetic: same run in float32 ends close to, not equal to, bf16.
    monkeypatch.undo()
    train(config(amp="off", epochs=1), data, tmp_path / "fp32")
    fp32, bf16 = load_file(str(tmp_path / "fp32/model.safetensors")), load_file(str(tmp_path / "bf16/model.safetensors"))
    assert not all(torch.equal(fp32[k], bf16[k]) for k in fp32)
    assert all(torch.allclose(fp32[k], bf16[k], atol=1e-2) for k in fp32)
    assert json.loads((tmp_path / "fp32/config.json").read_text())["amp_dtype"] is None


def test_fp16_on_cpu_scales_the_loss_and_skips_overflowing_steps(tmp_path, monkeypatch):
    """fp16 on CPU uses GradScaler("cpu"); the CUDA scaler would switch itself off there with a warning
    and let fp16 gradients overflow into the weights."""
    import baselines.train as train_module

    # A huge initial scale makes every fp16 gradient overflow: the scaler must skip both steps.
    big = functools.partial(torch.amp.GradScaler, init_scale=2.0 ** 60)
    monkeypatch.setattr(train_module.torch.amp, "GradScaler", big)
    cfg = config(amp="fp16", epochs=1)
    summary = train(cfg, ShapesPairs(n=4, size=16, seed=3), tmp_path / "run")
    assert summary["steps"] == 2 and summary["amp_dtype"] == "float16"
    meta = json.loads((tmp_path / "run/checkpoints/step_00000002.json").read_text())
    assert meta["scaler"]["scale"] == 2.0 ** 58  # backed off once per skipped step
    start, end = initial_weights(cfg), load_file(str(tmp_path / "run/model.safetensors"))
    assert all(torch.equal(start[k], end[f"model.{k}"]) for k in start)


def test_fp16_on_cpu_resumes_bit_identically_with_its_scaler_state(tmp_path):
    data = ShapesPairs(n=6, size=16, seed=1)
    settings = dict(amp="fp16", epochs=2, checkpoint_every=4)
    train(config(**settings), data, tmp_path / "full")
    train(config(**settings, max_steps=4), data, tmp_path / "split")
    assert json.loads((tmp_path / "split/checkpoints/step_00000004.json").read_text())["scaler"]["_growth_tracker"] == 4
    assert train(config(**settings), data, tmp_path / "split", resume=True)["steps"] == 6
    full, split = (load_file(str(tmp_path / run / "checkpoints/step_00000006.safetensors")) for run in ("full", "split"))
    assert all(torch.equal(full[k], split[k]) for k in full if not k.startswith("rng."))
    assert json.loads((tmp_path / "split/checkpoints/step_00000006.json").read_text())["scaler"]["_growth_tracker"] == 6


@pytest.mark.slow  # inductor compiles forward and backward: about 60 s with a cold cache, 5 s warm
def test_compile_on_cpu_trains_and_checkpoints_plain_names_that_resume_uncompiled(tmp_path):
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    data = ShapesPairs(n=4, size=16, seed=3)  # 2 full batches: one graph, no recompilation
    try:
        # bf16 + compile is what CUDA runs by default
        summary = train(config(amp="bf16", compile="on", epochs=1), data, tmp_path / "run")
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    finally:
        torch._dynamo.reset()
    assert summary["compiled"] is True and summary["steps"] == 2 and graphs >= 1
    assert json.loads((tmp_path / "run/config.json").read_text())["compiled"] is True
    assert all(math.isfinite(r["loss"]) for r in train_rows(tmp_path / "run"))
    expected = {f"model.{k}" for k in build_model("cmft", **model_config(config())).state_dict()}
    for name in ("checkpoints/step_00000002.safetensors", "model.safetensors"):
        keys = {k for k in load_file(str(tmp_path / "run" / name)) if k.startswith("model.")}
        assert keys == expected, name  # no "_orig_mod." prefix
        load_model_file(tmp_path / "run" / name)
    # compile may change on resume; the uncompiled continuation loads the compiled run's checkpoint
    resumed = train(config(amp="bf16", compile="off", epochs=2), data, tmp_path / "run", resume=True)
    assert resumed["steps"] == 4 and resumed["compiled"] is False


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "docs/scripts/gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_gpu_check_script_dry_run_on_cpu(tmp_path, capsys):
    gpu_check = load_gpu_check()
    code = gpu_check.main(["--dry-run", "--out", str(tmp_path)])
    table = capsys.readouterr().out
    assert code == 0, table
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()
            if line.startswith("|") and not line.startswith("| check") and not line.startswith("| ---")}
    # every CPU-safe check passed; the CUDA-only ones say they were skipped, none silently missing
    assert set(rows) == set(gpu_check.CHECK_NAMES), rows
    assert rows["cuda device"] == "SKIP" and rows["ddp 2 gpus"] == "SKIP" and rows["compile on"] == "SKIP"
    assert all(status == "PASS" for name, status in rows.items() if name not in gpu_check.CUDA_ONLY | {"compile on"}), rows
