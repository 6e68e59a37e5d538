"""Finding and loading metric weights files supplied by the user (nothing is ever downloaded).

Weights live in one folder given by ``weights_dir=`` (CLI ``--weights-dir``) or the environment variable
``CELBENCH_WEIGHTS_DIR``. A missing or unreadable file raises :class:`~benchmark.metric.MetricUnavailable`
naming the file, so the runner records the metric as unavailable. The public files are ``torch.save``
checkpoints; they are read with ``torch.load(weights_only=True)``, which refuses anything but tensors and
plain containers (no code is unpickled).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from benchmark.metric import MetricUnavailable

WEIGHTS_DIR_ENV = "CELBENCH_WEIGHTS_DIR"


def weights_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The weights folder: ``explicit`` if given, else ``$CELBENCH_WEIGHTS_DIR``, else None."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env) if env else None


def find_weights(metric: str, file_name: str, explicit_dir: str | os.PathLike | None = None) -> Path:
    """Path of ``file_name`` in the weights folder; MetricUnavailable (naming the file) when absent."""
    folder = weights_dir(explicit_dir)
    if folder is None:
        raise MetricUnavailable(f"{metric}: weights file {file_name} not found: no weights folder given "
                                f"(pass --weights-dir or set {WEIGHTS_DIR_ENV})")
    path = folder / file_name
    if not path.is_file():
        raise MetricUnavailable(f"{metric}: weights file {file_name} not found in {folder} "
                                f"(pass --weights-dir or set {WEIGHTS_DIR_ENV})")
    return path


def check_sha256_prefix(metric: str, path: Path, sha256: str, expected_prefix: str | None) -> None:
    """Refuse a file whose sha256 does not start with the published prefix (None disables the check).

    PyTorch hub files carry the first 8 hex digits of their sha256 in the name (``...-6726825d.pth``).
    """
    if expected_prefix and not sha256.startswith(expected_prefix):
        raise MetricUnavailable(f"{metric}: weights file {path} has sha256 {sha256[:16]}..., expected one "
                                f"starting with {expected_prefix} (wrong or corrupt file)")


def load_state_dict(metric: str, path: Path) -> dict[str, torch.Tensor]:
    """A flat tensor state dict from a ``torch.save`` file, read with ``weights_only=True`` (no unpickling)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is the same user problem
        raise MetricUnavailable(f"{metric}: weights file {path} could not be read ({type(error).__name__}: "
                                f"{str(error).splitlines()[0] if str(error) else 'no detail'})") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MetricUnavailable(f"{metric}: weights file {path} is not a state dict of tensors")
    return state


def load_into(metric: str, module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path,
              ignore_missing_suffixes: tuple[str, ...] = ("num_batches_tracked",)) -> None:
    """``module.load_state_dict`` that turns key/shape mismatches into one MetricUnavailable line.

    Missing ``num_batches_tracked`` buffers are tolerated: files ported from older PyTorch lack them and
    they do not affect evaluation-mode outputs.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(ignore_missing_suffixes)]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("wrong shapes", wrong_shape)):
            if keys:
                parts.append(f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})")
        raise MetricUnavailable(f"{metric}: weights file {path} does not fit the network: {'; '.join(parts)}")
    module.load_state_dict(state, strict=False)
