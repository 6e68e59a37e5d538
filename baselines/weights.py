"""Loading tensors by path without unpickling: safetensors, or ``torch.load(weights_only=True)`` for .pth."""

from __future__ import annotations

import os

import torch

from dataprep.errors import file_error


def load_state_dict(path: str | os.PathLike, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pth``/``.pt`` state dict loaded with
    ``weights_only=True`` (never arbitrary pickle). With ``prefix`` only keys starting with it are kept,
    the prefix removed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise file_error(path, "no such weights file")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt or foreign files: one line for the user
        raise file_error(path, f"cannot read weights ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict):
        raise file_error(path, "weights file does not hold a state dict")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, torch.Tensor)}
