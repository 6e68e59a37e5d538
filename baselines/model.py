"""The interface every trainable baseline implements, and the ``MODELS`` registry.

A model maps a *batch dict* to colour frames. The keys are those of ``benchmark.model`` (what ``bench``
passes) and ``benchmark.data.PairDataset`` (what training reads); float tensors with values in [0, 1]:

======================== ================= ==========================================================
key                      shape             meaning
======================== ================= ==========================================================
``reference_colour``     (B, K, 3, H, W)   K reference colour frames, RGB
``reference_sketch``     (B, K, 1, H, W)   their line art (0 = line, 1 = paper)
``reference_field``      (B, K, 1, H, W)   their distance fields (optional for models that ignore it)
``target_sketch``        (B, 1, H, W)      line art to colourise (0 = line, 1 = paper)
``target_field``         (B, 1, H, W)      its distance field (optional)
``hints``                (B, 4, H, W)      optional colour hints (RGB + mask)
``target_components``    (B, H, W) int64   optional component labels (0 = line pixels)
``target_colour``        (B, 3, H, W)      ground truth, training and validation only
======================== ================= ==========================================================

``forward(batch)`` returns (B, 3, H, W) float RGB in [0, 1]. Adding a model is one class and one
decorator::

    @MODELS.register("my-model")
    class MyModel(ColorizationModel):
        presets = {"tiny": {...}, "paper": {...}}
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from dataprep.errors import CelbenchError
from dataprep.registry import Registry

REF_COLOR = "reference_colour"
REF_SKETCH = "reference_sketch"
REF_DISTANCE = "reference_field"
TARGET_SKETCH = "target_sketch"
TARGET_DISTANCE = "target_field"
TARGET_COLOR = "target_colour"
HINTS = "hints"
COMPONENTS = "components"

#: Keys a model needs at inference time (the rest are optional).
REQUIRED_INPUT_KEYS = (REF_COLOR, REF_SKETCH, TARGET_SKETCH)


class ColorizationModel(nn.Module):
    """Base class: a reference-based line-art colouriser.

    Subclasses define ``presets`` (name -> {"model": constructor kwargs, "train": training settings})
    and ``forward(batch) -> (B, 3, H, W)`` RGB in [0, 1]. Constructor kwargs must be JSON-able so a
    checkpoint can rebuild the model from its stored config.
    """

    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}

    def __init__(self, **config: Any):
        super().__init__()
        self.config = dict(config)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def colorize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Inference: ``batch`` as in the module docstring (tensors or ndarrays, no ``target_colour``
        needed); returns (B, 3, H, W) float32 RGB in [0, 1] on the model's device."""
        was_training = self.training
        self.eval()
        try:
            return self(to_device(batch, next(self.parameters()).device)).clamp(0, 1)
        finally:
            self.train(was_training)


def to_device(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, torch.Tensor]:
    """Tensors (or float ndarrays) of ``batch`` moved to ``device`` as float32; other values kept."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if isinstance(value, torch.Tensor):
            value = value.to(device=device, dtype=torch.float32 if value.is_floating_point() else value.dtype,
                             non_blocking=True)
        out[key] = value
    return out


def collate_batch(items: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack dataset items into a batch dict, keeping only tensors whose shapes agree across items
    (PairDataset items also carry strings and variable-length correspondence lists, which models ignore)."""
    batch: dict[str, torch.Tensor] = {}
    for key, first in items[0].items():
        if not isinstance(first, torch.Tensor):
            continue
        values = [item[key] for item in items]
        if all(isinstance(v, torch.Tensor) and v.shape == first.shape for v in values):
            batch[key] = torch.stack(values)
    return batch


def check_batch(batch: Mapping[str, Any]) -> None:
    """Raise CelbenchError naming the first missing or mis-shaped key."""
    for key in REQUIRED_INPUT_KEYS:
        if key not in batch:
            raise CelbenchError(f"batch: missing key {key!r} (has {sorted(batch)})")
    if batch[REF_COLOR].ndim != 5 or batch[TARGET_SKETCH].ndim != 4:
        raise CelbenchError(f"batch: {REF_COLOR} must be (B,K,3,H,W) and {TARGET_SKETCH} (B,1,H,W); got "
                            f"{tuple(batch[REF_COLOR].shape)} and {tuple(batch[TARGET_SKETCH].shape)}")


MODELS: Registry[ColorizationModel] = Registry("model")


def model_preset(name: str, preset: str) -> dict[str, dict[str, Any]]:
    """The ``{"model": ..., "train": ...}`` preset ``preset`` of registered model ``name``."""
    _register_builtin_models()
    factory = MODELS.get(name)
    presets = getattr(factory, "presets", {})
    if preset not in presets:
        raise CelbenchError(f"model {name!r}: unknown preset {preset!r} (known: {', '.join(sorted(presets))})")
    return {"model": dict(presets[preset].get("model", {})), "train": dict(presets[preset].get("train", {}))}


def build_model(name: str, **kwargs: Any) -> ColorizationModel:
    """Instantiate registered model ``name`` (importing the built-in models first)."""
    _register_builtin_models()
    return MODELS.create(name, **kwargs)


def _register_builtin_models() -> None:
    import baselines.models  # noqa: F401  (its import registers the built-in models)
