"""``bench train``: train a registered baseline (plugged into ``bench`` via the celbench.commands entry point)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from baselines import DEFAULT_PRESET
from dataprep.errors import CelbenchError, file_error


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["lr=1e-3", "betas=[0.5, 0.9]"]`` -> {"lr": 0.001, "betas": [0.5, 0.9]} (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CelbenchError(f"--set {item}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise CelbenchError(f"--set {item}: cannot parse value ({error.__class__.__name__})") from None
    return out


def read_config_file(path: str) -> dict[str, Any]:
    """A YAML or JSON mapping of training settings."""
    try:
        settings = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise file_error(path, f"cannot read ({error.strerror})") from None
    except yaml.YAMLError:
        raise file_error(path, "not valid YAML/JSON") from None
    if not isinstance(settings, dict):
        raise file_error(path, "must hold a mapping of settings")
    return settings


def run_train(args: argparse.Namespace) -> int:
    from baselines.datasets import open_many
    from baselines.train import TrainConfig, resolve_config, train

    file_settings = read_config_file(args.config) if args.config else {}
    preset = args.preset
    stored_path = Path(args.out) / "config.json"
    if args.resume and stored_path.is_file():
        # Resume from the run's own settings; --config/--set only change what they name.
        stored = json.loads(stored_path.read_text())
        if stored.get("model") != args.model:
            raise CelbenchError(f"{args.out}: run trains {stored.get('model')!r}, not {args.model!r}")
        fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "model_args"}
        base = {k: v for k, v in stored.items() if k in fields}
        base.update({f"model_args.{k}": v for k, v in stored.get("model_args", {}).items()})
        file_settings = {**base, **file_settings}
        preset = file_settings.pop("preset", preset)
    overrides = parse_set(args.set)
    if args.max_hours is not None:
        if args.max_hours <= 0:
            raise CelbenchError(f"--max-hours {args.max_hours}: must be > 0")
        overrides["max_seconds"] = args.max_hours * 3600.0
    config = resolve_config(args.model, preset, file_settings, overrides)
    train_set, val_set = open_many(args.data)
    summary = train(config, train_set, args.out, resume=args.resume, data_spec=" ".join(args.data),
                    val_dataset=val_set)
    if summary["rank"] == 0:  # one summary line per run, not per torchrun process
        print(json.dumps(summary))
    return 0


def add_commands(commands) -> None:
    p = commands.add("train", "train a baseline model (checkpoints: safetensors + JSON)", run_train)
    p.add_argument("--model", required=True, help="registered model name, e.g. cmft, cmft-nocmft")
    p.add_argument("--data", required=True, nargs="+", metavar="DATA",
                   help="dataset directory (Parquet) or NAME[:k=v,...] in-memory source, e.g. shapes:n=16,size=32; "
                        "several are trained on together (their val splits validate)")
    p.add_argument("--preset", default=DEFAULT_PRESET,
                   help=f"model preset: paper or tiny (default {DEFAULT_PRESET}); a resumed run keeps its own")
    p.add_argument("--config", help="YAML/JSON file of training settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (repeatable), e.g. --set lr=1e-3 --set model_args.widths=[8,8,8,8]")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--max-hours", type=float, default=None, metavar="H",
                   help="training wall-time budget of this process in hours (= --set max_seconds=H*3600); "
                        "the run saves a checkpoint and its final weights when it is spent, --resume continues")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint with its stored settings")
