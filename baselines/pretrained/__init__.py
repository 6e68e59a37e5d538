"""Weights shipped with celbench (safetensors + JSON run configs; see MODEL_CARD.md in this folder).

``shipped_weights("warp-refine")`` is the path of ``warp-refine.safetensors`` here; ``load_trained(name, None)``
uses it. Models in :data:`NOT_SHIPPED` are trainable but come without weights, for the reason given there.
"""

from __future__ import annotations

from pathlib import Path

from dataprep.errors import CelbenchError

FOLDER = Path(__file__).resolve().parent

_PAPER_ARCHITECTURE = ("the paper's full-size network; CPU-sized training of it (25 minutes at 128 px) scored below "
                       "copy-reference on real anime, so celbench bundles no weights for it (MODEL_CARD.md)")

#: Trainable models celbench deliberately ships without weights: name -> why (shown to the user).
_SHI_CPU = ("the paper's network; 150 CPU steps of it scored below copy-reference on real anime (shi-kref@1: "
            "lvcd_sample_1 14.5 dB, tre-net 12.6 dB vs copy-reference 17.1 / 19.3), so celbench bundles no weights for "
            "it (MODEL_CARD.md)")

NOT_SHIPPED = {"cmft": _PAPER_ARCHITECTURE, "cmft-nocmft": _PAPER_ARCHITECTURE,
               "shi": _SHI_CPU, "shi-nosim": _SHI_CPU}


def shipped_weights(model: str) -> Path:
    """Path of the shipped ``<model>.safetensors`` (e.g. "warp-refine", "cmft-warp"); CelbenchError, one
    line saying why and what to do instead, if this install does not have it."""
    path = FOLDER / f"{model}.safetensors"
    if model in NOT_SHIPPED:
        raise CelbenchError(f"{model}: no bundled weights: {NOT_SHIPPED[model]}; train it (bench train --model "
                            f"{model}; the paper preset wants a GPU) and pass --weights FILE, or --weights none "
                            f"for an untrained network; the bundled CPU-trained colourisers are warp-refine, "
                            f"cmft-warp and shi-warp")
    if not path.is_file():
        raise CelbenchError(f"{path}: no shipped weights for model {model!r} in this install "
                            f"(pass a weights file, or weights='none' for an untrained network)")
    return path
