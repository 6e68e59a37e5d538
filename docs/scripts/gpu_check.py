"""Check the CUDA paths of ``bench train`` / ``bench speed`` on a machine with a GPU, in one command.

    python docs/scripts/gpu_check.py [--out DIR] [--preset paper] [--size 64] [--steps 4]
    python docs/scripts/gpu_check.py --dry-run [--compile]     # the same checks on CPU (no GPU needed)

Needs celbench installed (``pip install -e .``) with a CUDA build of torch. Checks, each PASS / FAIL / SKIP:

=================== ==========================================================================================
cuda device         ``device=auto`` picks cuda:LOCAL_RANK (cuda:1 with LOCAL_RANK=1 on >= 2 GPUs); GPU name,
                    compute capability, bf16 support
train amp auto      a few CMFT steps with ``device=auto amp=auto`` (bf16, or fp16 without bf16), compile off:
                    finite losses, config.json records the dtype, the checkpoint loads into a fresh CPU model
train fp16+scaler   ``amp=fp16``: the GradScaler's state is in the checkpoint, finite losses, resume works
compile on          ``amp=auto`` + ``compile=on``: finite losses, checkpoint keys without ``_orig_mod.``,
                    resume with ``compile=off`` continues from it
exact resume        ``deterministic=true``, ``compile=off``: N + resume + M steps == N + M steps bit for bit
                    (what docs/cmft.md says CUDA needs for exact resume)
bench speed         ``bench speed --model cmft --weights none --device cuda`` (paper preset, 256 px): latency, peak memory
cmft3 memory        CMFT with CMFT^3 at 256x256 (65536 x 65536 correlation): peak CUDA memory of inference
                    (must stay < 2 GiB: the fused attention never materialises the matrix) and of one bf16
                    training step (reported)
ddp 2 gpus          with >= 2 GPUs: ``torchrun --nproc_per_node 2 -m benchmark train`` (NCCL, DDP, CUDA
                    defaults: bf16 + compile), then ``--resume`` for one more epoch
=================== ==========================================================================================

Prints a table (``| check | status | detail |``) and exits 1 if any check failed. ``--dry-run`` runs the checks
on CPU at toy sizes with ``amp=bf16`` in place of ``auto`` (which is off on CPU); the CUDA-only checks and
``compile on`` (a minute of inductor compilation on a small CPU; ``--compile`` runs it) are skipped.
Nothing CUDA-specific runs at import time, so the module imports anywhere (tests/test_train_precision.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: Table order.
CHECK_NAMES = ("cuda device", "train amp auto", "train fp16+scaler", "compile on", "exact resume", "bench speed",
               "cmft3 memory", "ddp 2 gpus")
#: Checks that mean nothing without CUDA (skipped by --dry-run).
CUDA_ONLY = {"cuda device", "ddp 2 gpus"}
#: CMFT^3 inference at 256 px must fit in this (docs/cmft.md's target: the 65536^2 matrix would be 16 GiB).
CMFT3_LIMIT_BYTES = 2 * 1024 ** 3


class CheckFailed(Exception):
    """A check's expectation did not hold (its message is the table's detail)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Settings:
    device: str  # "cuda" or "cpu" (dry run)
    out: Path
    preset: str
    size: int
    steps: int
    amp: str  # what "amp auto" asks for: auto on CUDA, bf16 on CPU (auto is off there)
    speed_size: int
    cmft3_size: int


def train_run(s: Settings, name: str, resume: bool = False, **overrides) -> tuple[dict, Path]:
    """``bench train``'s ``train()`` on an in-memory shapes set (``steps`` full batches of 2)."""
    from baselines.datasets import ShapesPairs
    from baselines.train import resolve_config, train

    settings = {"device": s.device, "val_fraction": 0.0, "val_every": 0, "log_every": 1, "checkpoint_every": 0,
                "batch_size": 2, "epochs": 1, "compile": "off", **overrides}
    config = resolve_config("cmft", s.preset, overrides=settings)
    run_dir = s.out / name
    data = ShapesPairs(n=2 * s.steps, size=s.size, seed=7)  # full batches: a compiled graph is not recompiled
    return train(config, data, run_dir, resume=resume), run_dir


def check_losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    expect(bool(losses) and all(math.isfinite(v) for v in losses), f"losses not all finite: {losses}")
    return losses


def check_checkpoint_loads(run_dir: Path) -> None:
    """The latest checkpoint rebuilds an uncompiled model on CPU under its plain parameter names."""
    from safetensors.torch import load_file

    from baselines.model import load_model_file

    pointer = json.loads((run_dir / "checkpoints/latest.json").read_text())
    tensors = run_dir / "checkpoints" / pointer["checkpoint"].replace(".json", ".safetensors")
    bad = [k for k in load_file(str(tensors)) if "_orig_mod." in k or k.startswith("model.module.")]
    expect(not bad, f"wrapper prefixes in checkpoint keys: {bad[:2]}")
    load_model_file(tensors, "cpu")


def expected_amp(s: Settings) -> str:
    import torch

    if s.device == "cpu":
        return "bfloat16"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


# --- checks: each returns its detail text or raises CheckFailed ------------------------------------------


def check_cuda_device(s: Settings) -> str:
    import torch

    from baselines.train import select_device
    from benchmark.model import pick_device

    expect(torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device (CPU-only build?)")
    saved = os.environ.get("LOCAL_RANK")
    try:
        os.environ.pop("LOCAL_RANK", None)
        device = select_device("auto")
        expect(device == torch.device("cuda", 0), f"device=auto picked {device}, not cuda:0")
        if torch.cuda.device_count() >= 2:
            os.environ["LOCAL_RANK"] = "1"
            expect(select_device("auto") == torch.device("cuda", 1), "LOCAL_RANK=1 did not pick cuda:1")
    finally:
        os.environ.pop("LOCAL_RANK", None)
        if saved is not None:
            os.environ["LOCAL_RANK"] = saved
    expect(pick_device("auto").type == "cuda", "bench's --device auto did not pick CUDA")
    props = torch.cuda.get_device_properties(0)
    return (f"{torch.cuda.device_count()} x {props.name}, sm_{props.major}{props.minor}, "
            f"{props.total_memory / 2 ** 30:.0f} GiB, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}, "
            f"torch {torch.__version__}, CUDA {torch.version.cuda}")


def check_train_amp(s: Settings) -> str:
    started = time.perf_counter()
    # bench train's defaults on a GPU machine: device auto (-> cuda:0), amp auto
    summary, run_dir = train_run(s, "amp", amp=s.amp, device="auto" if s.device == "cuda" else s.device)
    losses = check_losses(run_dir)
    stored = json.loads((run_dir / "config.json").read_text())
    expect(summary["amp_dtype"] == expected_amp(s) == stored["amp_dtype"],
           f"amp={s.amp} gave {summary['amp_dtype']} (config.json {stored['amp_dtype']}), expected {expected_amp(s)}")
    expect(summary["device"].startswith(s.device), f"trained on {summary['device']}")
    check_checkpoint_loads(run_dir)
    return (f"amp={s.amp} -> {summary['amp_dtype']} on {summary['device']}, {summary['steps']} steps, "
            f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, {time.perf_counter() - started:.1f} s")


def check_train_fp16(s: Settings) -> str:
    summary, run_dir = train_run(s, "fp16", amp="fp16")
    check_losses(run_dir)
    expect(summary["amp_dtype"] == "float16", f"amp=fp16 gave {summary['amp_dtype']}")
    meta = json.loads(Path(summary["checkpoint"]).read_text())
    expect(meta["scaler"] is not None and meta["scaler"]["scale"] > 0, f"no GradScaler state: {meta['scaler']}")
    resumed, _ = train_run(s, "fp16", resume=True, amp="fp16", epochs=2)
    expect(resumed["steps"] == 2 * summary["steps"], f"resume reached step {resumed['steps']}")
    check_losses(run_dir)
    return f"scale {meta['scaler']['scale']:g}, growth tracker {meta['scaler']['_growth_tracker']}, resumed to step {resumed['steps']}"


def check_compile(s: Settings) -> str:
    import torch._dynamo

    torch._dynamo.reset()
    started = time.perf_counter()
    try:
        summary, run_dir = train_run(s, "compile", amp=s.amp, compile="on")
    finally:
        torch._dynamo.reset()
    seconds = time.perf_counter() - started
    expect(summary["compiled"] is True, "compile=on did not compile")
    losses = check_losses(run_dir)
    check_checkpoint_loads(run_dir)
    resumed, _ = train_run(s, "compile", resume=True, amp=s.amp, compile="off", epochs=2)
    expect(resumed["steps"] == 2 * summary["steps"] and not resumed["compiled"], f"resume gave {resumed}")
    return (f"{summary['steps']} steps incl. compilation in {seconds:.1f} s ({summary['amp_dtype']}), "
            f"loss {losses[-1]:.3f}; resumed uncompiled to step {resumed['steps']}")


def check_exact_resume(s: Settings) -> str:
    import torch
    from safetensors.torch import load_file

    try:
        train_run(s, "exact-full", amp=s.amp, deterministic=True, epochs=2)
        train_run(s, "exact-split", amp=s.amp, deterministic=True, epochs=2, max_steps=s.steps + 1)
        summary, _ = train_run(s, "exact-split", resume=True, amp=s.amp, deterministic=True, epochs=2)
    finally:
        torch.use_deterministic_algorithms(False)  # train() turns it on for the whole process
    full = load_file(str(s.out / "exact-full/model.safetensors"))
    split = load_file(str(s.out / "exact-split/model.safetensors"))
    differing = [k for k in full if not torch.equal(full[k], split[k])]
    expect(not differing, f"{len(differing)} of {len(full)} tensors differ after resume, e.g. {differing[:1]}")
    return f"{s.steps + 1} + {summary['steps'] - s.steps - 1} steps == {summary['steps']} steps, {len(full)} tensors equal"


def check_bench_speed(s: Settings) -> str:
    from benchmark.cli import main as bench_main

    repeats = "10" if s.device == "cuda" else "2"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = bench_main(["speed", "--model", "cmft", "--weights", "none", "--device", s.device,
                           "--size", str(s.speed_size),
                           "--repeats", repeats, "--warmup", "2" if s.device == "cuda" else "1", "--quiet"])
    lines = dict(line.strip().split(": ", 1) for line in buffer.getvalue().splitlines() if ": " in line)
    expect(code == 0 and "latency_ms_median" in lines, f"bench speed exit {code}: {buffer.getvalue()[-200:]}")
    expect(lines["device"].startswith(s.device), f"bench speed ran on {lines['device']}")
    return (f"{s.speed_size} px: {float(lines['latency_ms_median']):.1f} ms median, "
            f"{float(lines['frames_per_second']):.1f} frames/s, peak {int(lines['peak_memory_bytes']) / 2 ** 20:.0f} MiB")


def check_cmft3_memory(s: Settings) -> str:
    import torch

    from baselines.model import TARGET_COLOR, build_model, model_preset
    from benchmark.speed import synthetic_batch
    from benchmark.timing import measure

    device = torch.device(s.device)
    torch.manual_seed(0)
    margs = {**model_preset("cmft", "paper")["model"], "cmft_full_resolution": True}
    model = build_model("cmft", **margs).to(device)
    batch = synthetic_batch(s.cmft3_size, device=device)
    model.colorize(batch)  # warm-up (kernel selection, allocator)
    output, seconds, peak = measure(model.colorize, batch, device=device)
    expect(bool(torch.isfinite(output).all()), "non-finite output")
    n = s.cmft3_size ** 2
    detail = f"{s.cmft3_size} px ({n} x {n} correlation): inference {seconds * 1e3:.0f} ms, peak {peak / 2 ** 20:.0f} MiB"
    if device.type == "cuda":
        expect(peak < CMFT3_LIMIT_BYTES, detail + f" >= {CMFT3_LIMIT_BYTES / 2 ** 30:.0f} GiB")
        # One bf16 training step (forward + backward), the AMP path bench train takes; reported, not judged.
        batch[TARGET_COLOR] = torch.rand(1, 3, s.cmft3_size, s.cmft3_size, device=device)
        torch.cuda.reset_peak_memory_stats(device)
        model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = (model(batch).float() - batch[TARGET_COLOR]).abs().mean()
        loss.backward()
        torch.cuda.synchronize(device)
        expect(math.isfinite(float(loss)), "training step loss not finite")
        detail += f"; bf16 train step peak {torch.cuda.max_memory_allocated(device) / 2 ** 20:.0f} MiB"
    return detail


def check_ddp(s: Settings) -> str:
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 2:
        raise SkipCheck(f"{gpus} GPU(s); needs 2")
    out = s.out / "ddp"
    common = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
              "benchmark", "train", "--model", "cmft", "--preset", "tiny", "--data", "shapes:n=16,size=32",
              "--out", str(out), "--quiet"]
    summaries = []
    for extra in (["--set", "epochs=1"], ["--set", "epochs=2", "--resume"]):
        done = subprocess.run(common + extra, capture_output=True, text=True, timeout=900)
        expect(done.returncode == 0, f"torchrun exit {done.returncode}: {done.stderr.strip()[-300:]}")
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        expect(len(lines) == 1, f"expected one summary line (rank 0), got {len(lines)}")
        summaries.append(json.loads(lines[0]))
    first, second = summaries
    expect(first["world_size"] == 2 and first["device"].startswith("cuda"), f"first run: {first}")
    expect(second["steps"] == 2 * first["steps"], f"resume: {first['steps']} -> {second['steps']} steps")
    return (f"world size 2 on {first['device']} (rank 0), {first['amp_dtype']}, compiled {first['compiled']}, "
            f"{first['steps']} steps, resumed to {second['steps']}")


class SkipCheck(Exception):
    """The check does not apply here (its message says why)."""


CHECKS: dict[str, Callable[[Settings], str]] = {
    "cuda device": check_cuda_device, "train amp auto": check_train_amp, "train fp16+scaler": check_train_fp16,
    "compile on": check_compile, "exact resume": check_exact_resume, "bench speed": check_bench_speed,
    "cmft3 memory": check_cmft3_memory, "ddp 2 gpus": check_ddp,
}
assert tuple(CHECKS) == CHECK_NAMES


def run_checks(s: Settings, skip: dict[str, str]) -> list[tuple[str, str, str]]:
    rows = []
    for name in CHECK_NAMES:
        if name in skip:
            rows.append((name, "SKIP", skip[name]))
            continue
        started = time.perf_counter()
        try:
            rows.append((name, "PASS", CHECKS[name](s)))
        except SkipCheck as reason:
            rows.append((name, "SKIP", str(reason)))
        except CheckFailed as failure:
            rows.append((name, "FAIL", str(failure)))
        except Exception as error:  # noqa: BLE001  (a crash is a failed check; the others still run)
            where = traceback.extract_tb(error.__traceback__)[-1]
            rows.append((name, "FAIL", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
                                       f"({Path(where.filename).name}:{where.lineno})"))
        print(f"{name}: {rows[-1][1]} ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/scripts/gpu_check.py",
                                     description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder for the check runs (default: a temporary folder, removed)")
    parser.add_argument("--preset", default="paper", help="model preset of the training checks (default paper)")
    parser.add_argument("--size", type=int, default=64, help="frame side of the training checks (default 64)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per training check (default 4)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run the checks on CPU at toy sizes (tiny preset, 16 px); CUDA-only checks skipped")
    parser.add_argument("--compile", action="store_true", help="with --dry-run: run 'compile on' too (slow on CPU)")
    args = parser.parse_args(argv)

    import torch

    from dataprep.progress import set_quiet

    set_quiet(True)
    # cuBLAS reads this when its first handle is made; "exact resume" needs it, so set it before any CUDA work.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    skip: dict[str, str] = {}
    if args.dry_run:
        torch.set_num_threads(min(torch.get_num_threads(), 2))
        skip.update({name: "dry run (CPU)" for name in CUDA_ONLY})
        if not args.compile:
            skip["compile on"] = "dry run (CPU compilation takes a minute; --compile runs it)"
    elif not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device; use --dry-run to run the checks on CPU",
              file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        out = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu_check_")))
        out.mkdir(parents=True, exist_ok=True)
        existing = [name for name in ("amp", "fp16", "compile", "exact-full", "exact-split", "ddp") if (out / name).exists()]
        if existing:
            print(f"gpu_check: {out} already holds check runs ({', '.join(existing)}); choose an empty --out",
                  file=sys.stderr)
            return 2
        if args.dry_run:
            s = Settings("cpu", out, "tiny", 16, 2, "bf16", speed_size=32, cmft3_size=32)
        else:
            s = Settings("cuda", out, args.preset, args.size, args.steps, "auto", speed_size=256, cmft3_size=256)
        rows = run_checks(s, skip)
    width = max(len(name) for name in CHECK_NAMES)
    print(f"| {'check':<{width}} | status | detail |")
    print(f"| {'-' * width} | ------ | ------ |")
    for name, status, detail in rows:
        print(f"| {name:<{width}} | {status:<6} | {detail} |")
    return 1 if any(status == "FAIL" for _, status, _ in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
