"""Weights shipped with celbench (safetensors + JSON run configs; see MODEL_CARD.md in this folder).

``shipped_weights("cmft")`` is the path of ``cmft.safetensors`` here; ``load_cmft(None)`` uses it.
"""

from __future__ import annotations

from pathlib import Path

from dataprep.errors import CelbenchError

FOLDER = Path(__file__).resolve().parent


def shipped_weights(model: str) -> Path:
    """Path of the shipped ``<model>.safetensors`` (e.g. "cmft", "cmft-nocmft"); CelbenchError if this
    install does not have it."""
    path = FOLDER / f"{model}.safetensors"
    if not path.is_file():
        raise CelbenchError(f"{path}: no shipped weights for model {model!r} in this install "
                            f"(pass a weights file, or weights='none' for an untrained network)")
    return path
