"""The interface every trainable baseline implements, and the ``MODELS`` registry.

A model maps a *batch dict* to colour frames. The keys, shapes and value ranges are the canonical ones of
:mod:`dataprep.dataset.keys` (the same for what ``bench evaluate`` passes and what ``benchmark.data.PairDataset``
yields for training), batch first.

``forward(batch)`` returns (B, 3, H, W) float RGB in [0, 1]. Adding a model is one class and one
decorator, which registers it in the one model registry (:data:`benchmark.model.MODELS`) for ``bench train``
and, through :func:`load_trained`, for ``bench evaluate`` and ``bench speed``::

    @register_trainable("my-model")
    class MyModel(ColorizationModel):
        presets = {"tiny": {...}, "paper": {...}}
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from baselines import DEFAULT_PRESET
from benchmark.model import MODELS, ModelFactory, ModelSpec
from dataprep.dataset import keys
from dataprep.errors import CelbenchError, file_error
from dataprep.hashing import sha256_file

# Short names for the canonical keys (dataprep.dataset.keys) used throughout the baselines.
REF_COLOR = keys.REFERENCE_COLOUR
REF_SKETCH = keys.REFERENCE_SKETCH
REF_DISTANCE = keys.REFERENCE_FIELD
TARGET_SKETCH = keys.TARGET_SKETCH
TARGET_DISTANCE = keys.TARGET_FIELD
TARGET_COLOR = keys.TARGET_COLOUR

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

    @classmethod
    def training_view(cls, dataset: Any, model_config: Mapping[str, Any], seed: int, train: bool) -> Any:
        """The items ``bench train`` feeds this model, made from a training source's items (``train``) or
        validation items (``not train``); ``model_config`` the constructor kwargs. Default: unchanged. A model
        whose inputs are simulated from the ground truth (the hint models) draws them here."""
        return dataset

    def auxiliary_loss(self, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The model's own training terms for its last training-mode forward (intermediate supervision,
        adversarial terms), added by the trainer to the shared loss; ``target`` (B, 3, H, W) RGB in [0, 1].
        Returns (scalar tensor, {name: float} for the log). Default: none."""
        return target.new_zeros(()), {}

    def optimizer_groups(self, lr: float) -> list[dict[str, Any]]:
        """Parameter groups of the trainer's Adam optimiser: every parameter at ``lr``; a model with a GAN
        discriminator (a ``discriminator`` submodule that is not None, and ``discriminator_lr_ratio``) trains
        the generator at ``lr`` and the discriminator at ``lr * discriminator_lr_ratio`` in a second group."""
        discriminator = getattr(self, "discriminator", None)
        if discriminator is None:
            return [{"params": list(self.parameters()), "lr": lr}]
        own = {id(p) for p in discriminator.parameters()}
        generator = [p for p in self.parameters() if id(p) not in own]
        return [{"params": generator, "lr": lr},
                {"params": list(discriminator.parameters()), "lr": lr * self.discriminator_lr_ratio}]

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
    """Stack dataset items into a batch dict, keeping only tensors present in every item with shapes that
    agree (PairDataset items also carry strings and variable-length correspondence lists, which models
    ignore; items of joined sources may lack optional keys such as ``target_components``)."""
    batch: dict[str, torch.Tensor] = {}
    for key, first in items[0].items():
        if not isinstance(first, torch.Tensor):
            continue
        values = [item.get(key) for item in items]  # sources joined by --data may lack a key
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


def register_trainable(name: str, load: ModelFactory | None = None,
                       preset: str = DEFAULT_PRESET) -> Callable[[type], type]:
    """Class decorator: register a :class:`ColorizationModel` subclass as model ``name`` of
    :data:`benchmark.model.MODELS`, trainable by ``bench train`` and scored through ``load``
    (default: :func:`load_trained` with this ``name``; an untrained network uses preset ``preset``)."""

    def decorator(cls: type) -> type:
        loader = load or functools.partial(load_trained, name, preset=preset)
        MODELS.register(name)(ModelSpec(loader, cls))
        return cls

    return decorator


def trainable_models() -> list[str]:
    """Names of the registered models ``bench train`` can train (those with a network class), sorted."""
    return [n for n in MODELS.names() if getattr(MODELS.get(n), "network", None) is not None]


def trainable_network(name: str) -> type:
    """The network class of registered model ``name``; CelbenchError for models that cannot be trained."""
    network = getattr(MODELS.get(name), "network", None)
    if network is None:
        raise CelbenchError(f"model {name!r} is not trainable (trainable: {', '.join(trainable_models())})")
    return network


def model_preset(name: str, preset: str) -> dict[str, dict[str, Any]]:
    """The ``{"model": ..., "train": ...}`` preset ``preset`` of registered model ``name``."""
    presets = getattr(trainable_network(name), "presets", {})
    if preset not in presets:
        raise CelbenchError(f"model {name!r}: unknown preset {preset!r} (known: {', '.join(sorted(presets))})")
    return {"model": dict(presets[preset].get("model", {})), "train": dict(presets[preset].get("train", {}))}


def build_model(name: str, **kwargs: Any) -> ColorizationModel:
    """Instantiate the network of registered model ``name`` with constructor ``kwargs``."""
    return trainable_network(name)(**kwargs)


class Colorizer:
    """What ``bench`` gets from :func:`load_trained`: ``colorizer(batch)`` -> (B, 3, H, W) float RGB in
    [0, 1] on the model's device (the :class:`benchmark.model.Model` protocol).

    Attributes:
        requires: batch keys the network reads (its class attribute ``requires``).
        weights_sha256: hex SHA-256 of the weights file loaded (None for an untrained network).
    """

    def __init__(self, model: ColorizationModel, name: str):
        self.model = model.eval()
        self.name = name
        self.weights_sha256: str | None = None
        self.config = model.config
        self.requires = tuple(getattr(model, "requires", ()))

    def colorize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.model.colorize(batch)

    __call__ = colorize


def load_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> ColorizationModel:
    """Rebuild a model from a weights file written by ``baselines.checkpoint`` (safetensors whose metadata
    holds ``celbench_model`` (registered name) and ``celbench_model_config`` (JSON constructor kwargs))."""
    from safetensors import safe_open

    from baselines.weights import load_state_dict

    if not os.path.isfile(path):
        raise file_error(path, "no such weights file")
    with safe_open(os.fspath(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if "celbench_model" not in meta:
        raise file_error(path, "not a celbench model file (no celbench_model metadata)")
    model = build_model(meta["celbench_model"], **json.loads(meta["celbench_model_config"]))
    model.celbench_model = meta["celbench_model"]
    model.load_state_dict(load_state_dict(path, prefix="model."))
    return model.to(device).eval()


#: ``weights`` value that asks for an untrained network (seed 0) instead of the shipped weights.
UNTRAINED = "none"


def load_trained(name: str, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 preset: str = DEFAULT_PRESET) -> Colorizer:
    """The scoring factory of every trainable model (see :func:`register_trainable`).

    ``weights``: a model/checkpoint safetensors file from ``bench train``; None uses the weights shipped in
    ``baselines/pretrained/NAME.safetensors`` (see its MODEL_CARD.md); ``"none"`` gives an *untrained*
    network of preset ``preset`` (seed 0) so pipelines and tests run without weights. A file holding
    another model's network is refused.
    """
    if weights is None:
        from baselines.pretrained import shipped_weights

        weights = shipped_weights(name)
    if os.fspath(weights) == UNTRAINED:
        torch.manual_seed(0)
        return Colorizer(build_model(name, **model_preset(name, preset)["model"]).to(device), name)
    model = load_model_file(weights, device)
    if model.celbench_model != name:
        raise file_error(weights, f"holds a {model.celbench_model} network, not {name}")
    colorizer = Colorizer(model, name)
    colorizer.weights_sha256 = sha256_file(weights)  # the result record names the weights, shipped ones too
    return colorizer
