"""Checkpoints without pickle: one safetensors file of tensors plus one JSON file of everything else.

``<stem>.safetensors`` holds ``model.<param>``, ``optimizer.state.<param index>.<name>`` (Adam moments
and step counters), ``rng.torch`` and ``rng.cuda.<device>`` (byte tensors) and ``rng.numpy`` (MT19937 key).
Its metadata names the model (``celbench_model``, ``celbench_model_config``) so the file alone rebuilds
the model (``baselines.models.cmft.load_model_file``).
``<stem>.json`` holds the run config, progress (step, epoch, batch position), optimizer hyper-parameters,
scheduler and grad-scaler state, and the Python / NumPy RNG positions.
Both are written to temporary names and renamed, JSON last, so a checkpoint with a JSON file is complete.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from baselines.weights import load_state_dict
from dataprep.errors import file_error


def _atomic_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _atomic_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, os.fspath(tmp), metadata=metadata)
    os.replace(tmp, path)


def model_metadata(model_name: str, model_config: dict[str, Any]) -> dict[str, str]:
    return {"celbench_model": model_name, "celbench_model_config": json.dumps(model_config, sort_keys=True),
            "format": "pt"}


def save_model_file(path: str | os.PathLike, model: torch.nn.Module, model_name: str,
                    model_config: dict[str, Any]) -> None:
    """Weights only (``model.<param>``), with the metadata that rebuilds the model."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    _atomic_tensors(Path(path), tensors, model_metadata(model_name, model_config))


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py_version, py_state, py_gauss = random.getstate()
    meta = {"numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss}}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if states:
            torch.cuda.set_rng_state_all(states)
    n = meta["numpy"]
    np.random.set_state((n["kind"], tensors["rng.numpy"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = meta["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict -> (tensors named ``optimizer.state.<i>.<name>``, JSON-able rest)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer.state."):
            index, name = key[len("optimizer.state."):].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(stem: str | os.PathLike, *, model: torch.nn.Module, model_name: str,
                    model_config: dict[str, Any], optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any, progress: dict[str, Any], run_config: dict[str, Any]) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; returns the JSON path."""
    stem = Path(stem)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = flatten_optimizer(optimizer)
    rng_tensors, rng_meta = rng_state()
    tensors.update(opt_tensors)
    tensors.update(rng_tensors)
    _atomic_tensors(stem.with_suffix(".safetensors"), tensors, model_metadata(model_name, model_config))
    meta = {"format": "celbench-checkpoint/1", "model": model_name, "model_config": model_config,
            "run_config": run_config, "progress": progress, "optimizer": opt_meta,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
            "rng": rng_meta, "tensors": stem.with_suffix(".safetensors").name}
    json_path = stem.with_suffix(".json")
    _atomic_json(json_path, meta)
    return json_path


def load_checkpoint(json_path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON metadata, all tensors) of a checkpoint written by ``save_checkpoint``."""
    json_path = Path(json_path)
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise file_error(json_path, f"cannot read checkpoint ({error})") from None
    if meta.get("format") != "celbench-checkpoint/1":
        raise file_error(json_path, "not a celbench checkpoint")
    tensors = load_state_dict(json_path.with_name(meta["tensors"]))
    return meta, tensors


def restore(meta: dict[str, Any], tensors: dict[str, torch.Tensor], *, model: torch.nn.Module,
            optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any) -> None:
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer.load_state_dict(unflatten_optimizer(tensors, meta["optimizer"]))
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    if scaler is not None and meta.get("scaler") is not None:
        scaler.load_state_dict(meta["scaler"])
    set_rng_state(tensors, meta["rng"])


def file_has_pickle(path: str | os.PathLike) -> bool:
    """True when ``path`` looks like a pickle or a torch zip-pickle (used by tests and checks)."""
    head = Path(path).read_bytes()[:4]
    return head[:1] == b"\x80" or head[:2] == b"PK"


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    with safe_open(os.fspath(path), framework="pt") as handle:
        return dict(handle.metadata() or {})
