"""Random, meaningless weights files in the exact public layouts, for tests of the weight-loading metrics.

``write_random_weights(folder)`` writes ``pt_inception-2015-12-05-6726825d.pth``, ``alexnet-owt-7be5be79.pth``,
``alex.pth``, ``vgg16-397923af.pth`` and ``vgg.pth`` with the key names and shapes of the real files, filled
with seeded random values. Their sha256 do not match the published prefixes, so metrics must be created with
``verify_sha256=False``; the numbers they give
only exercise the pipeline and mean nothing. :func:`random_weights_kwargs` gives those arguments per metric.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from benchmark.metrics.inception import FID_WEIGHTS_FILE, FIDInceptionV3
from benchmark.metrics.lpips import BACKBONES, Backbone, LinearHeads


def _he_init(module: nn.Module, generator: torch.Generator) -> None:
    # He-normal convolutions keep activations from vanishing through 20+ random layers, so features vary
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            fan_in = sub.weight[0].numel()
            with torch.no_grad():
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)


def write_random_weights(folder: str | os.PathLike, seed: int = 0, include_vgg: bool = True) -> Path:
    """Write the random weights files into ``folder`` (created if needed) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    inception = FIDInceptionV3()
    _he_init(inception, generator)
    torch.save(inception.state_dict(), folder / FID_WEIGHTS_FILE)
    for net, spec in BACKBONES.items():
        if net == "vgg" and not include_vgg:
            continue
        backbone = Backbone(spec["layers"], spec["pool"], spec["taps"])
        _he_init(backbone, generator)
        state = dict(backbone.state_dict())
        # torchvision checkpoints carry the classifier too; the loader must ignore it
        state["classifier.1.weight"] = torch.randn(8, 4, generator=generator)
        torch.save(state, folder / spec["backbone_file"])
        heads = LinearHeads(spec["channels"])
        with torch.no_grad():
            for weight in heads.weights():
                weight.copy_(torch.rand(weight.shape, generator=generator))  # the real heads are >= 0
        torch.save(heads.state_dict(), folder / spec["heads_file"])
    return folder


def random_weights_kwargs(metric_class: type, folder: str | os.PathLike) -> dict:
    """Constructor arguments that make a metric class load the random weights in ``folder`` ({} if it needs none)."""
    if getattr(metric_class, "needs_weights", False):
        return {"weights_dir": folder, "verify_sha256": False}
    return {}
