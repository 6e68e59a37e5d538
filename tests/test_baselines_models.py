"""Every registered baseline: tiny config forward, one optimiser step, colorize; CMFT maths (equation 4)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from baselines.datasets import ShapesPairs
from baselines.losses import ColorizationLoss, VGGPerceptualLoss, vgg19_features
from baselines.model import build_model, model_preset, trainable_models
from baselines.models.cmft import correlation_transfer, load_cmft, windowed_correlation_transfer
from baselines import checkpoint as ckpt
from dataprep.errors import CelbenchError

from benchmark_toys import one_torch_thread

SIZE = 32


single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def make_batch(b=2, k=1, size=SIZE, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"reference_colour": torch.rand(b, k, 3, size, size, generator=g),
            "reference_sketch": torch.rand(b, k, 1, size, size, generator=g),
            "reference_field": torch.rand(b, k, 1, size, size, generator=g),
            "target_sketch": torch.rand(b, 1, size, size, generator=g),
            "target_field": torch.rand(b, 1, size, size, generator=g),
            "target_colour": torch.rand(b, 3, size, size, generator=g)}


def test_registry_lists_cmft_and_ablation():
    assert {"cmft", "cmft-nocmft"} <= set(trainable_models())
    with pytest.raises(CelbenchError, match="did you mean 'cmft'"):
        build_model("cmtf")


@pytest.mark.parametrize("name", trainable_models())
def test_tiny_config_forward_step_colorize(name):
    torch.manual_seed(0)
    model = build_model(name, **model_preset(name, "tiny")["model"])
    batch = make_batch()
    out = model(batch)
    assert out.shape == (2, 3, SIZE, SIZE)
    loss, _ = ColorizationLoss(10.0, 0.0)(out, batch["target_colour"])
    auxiliary, _ = model.auxiliary_loss(batch["target_colour"])  # what the trainer adds (latent losses ...)
    loss = loss + auxiliary
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss.backward()
    opt.step()
    # every trainable parameter is used (DistributedDataParallel rejects unused ones) and finite
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, unused
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    colours = model.colorize({k: v.numpy() for k, v in batch.items() if k != "target_colour"})
    assert colours.shape == (2, 3, SIZE, SIZE) and torch.isfinite(colours).all()
    assert colours.min() >= 0 and colours.max() <= 1
    # two references per target also work (keys over all K references)
    assert model.colorize(make_batch(b=1, k=2)).shape == (1, 3, SIZE, SIZE)


def equation4_direct(q, k, v):
    """chi_i = sum_j exp(q_i.k_j) v_j / sum_j exp(q_i.k_j), in float64 with the explicit HW x HW matrix."""
    q, k, v = q.double(), k.double(), v.double()
    c = torch.exp(torch.einsum("bic,bjc->bij", q, k))
    w = c / c.sum(-1, keepdim=True)
    return torch.einsum("bij,bjd->bid", w, v)


@pytest.mark.parametrize("cq,dv", [(6, 6), (8, 3), (3, 7)])
def test_sdpa_correlation_equals_equation_4(cq, dv):
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(2, 20, cq, generator=g) * 0.7, torch.randn(2, 30, cq, generator=g) * 0.7, torch.randn(2, 30, dv, generator=g)
    got = correlation_transfer(q, k, v, scale=1.0)
    assert got.shape == (2, 20, dv)
    torch.testing.assert_close(got.double(), equation4_direct(q, k, v), rtol=1e-5, atol=1e-5)


def test_cmft_warps_reference_features_to_matching_positions():
    # One-hot keys: query i matches key perm[i] strongly, so chi_i ~= v_perm[i] (the transfer of eq. 2).
    perm = torch.tensor([3, 0, 2, 1])
    keys = torch.eye(4)[None] * 10
    values = torch.arange(8.0).view(1, 4, 2)
    out = correlation_transfer(keys[:, perm], keys, values)
    torch.testing.assert_close(out, values[:, perm], atol=1e-3, rtol=0)


def windowed_equation4_direct(q, k, v, window, tile):
    """Equation 4 per query position in float64, the sum over j limited to the window x window key positions
    centred on the query's tile (tile // 2 + tile * index), shifted inside the map."""
    b, kk, c, h, w = k.shape
    out = torch.zeros(b, v.shape[2], h, w, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            y0 = min(max((y // tile) * tile + tile // 2 - window // 2, 0), h - window)
            x0 = min(max((x // tile) * tile + tile // 2 - window // 2, 0), w - window)
            keys = k[..., y0:y0 + window, x0:x0 + window].permute(0, 1, 3, 4, 2).reshape(b, -1, c)
            values = v[..., y0:y0 + window, x0:x0 + window].permute(0, 1, 3, 4, 2).reshape(b, -1, v.shape[2])
            out[:, :, y, x] = equation4_direct(q[:, :, y, x][:, None], keys, values)[:, 0]
    return out


@pytest.mark.parametrize("cq,dv", [(5, 3), (2, 4)])
def test_windowed_correlation_equals_equation_4_over_the_window(cq, dv):
    g = torch.Generator().manual_seed(2)
    b, k, h, w = 2, 2, 11, 14  # sides not multiples of the tile (3): padded query tiles
    q, keys = torch.randn(b, cq, h, w, generator=g), torch.randn(b, k, cq, h, w, generator=g)
    values = torch.randn(b, k, dv, h, w, generator=g)
    got = windowed_correlation_transfer(q, keys, values, window=6)
    assert got.shape == (b, dv, h, w)
    torch.testing.assert_close(got.double(), windowed_equation4_direct(q, keys, values, 6, 2), rtol=1e-5, atol=1e-5)
    # a window covering the map is the global equation 4 (every position of both references is a key)
    flat = lambda x: x.permute(0, 1, 3, 4, 2).reshape(b, -1, x.shape[2])  # noqa: E731
    everything = equation4_direct(q.flatten(2).transpose(1, 2), flat(keys), flat(values))
    torch.testing.assert_close(windowed_correlation_transfer(q, keys, values, window=14).double(),
                               everything.transpose(1, 2).reshape(b, dv, h, w), rtol=1e-5, atol=1e-5)


def test_attention_window_bounds_what_cmft_reads():
    # cmft with a 16 px window on a 64 px frame: changing the reference in one corner cannot change the
    # output in the opposite corner, beyond the window plus the convolutions' reach (the global network's
    # output changes there).
    torch.manual_seed(0)
    config = model_preset("cmft", "tiny")["model"]
    windowed = build_model("cmft", **config, attention_window=16).eval()
    full = build_model("cmft", **config).eval()
    full.load_state_dict(windowed.state_dict())
    batch = make_batch(b=1, size=64)
    other = dict(batch, reference_colour=batch["reference_colour"].clone())
    other["reference_colour"][..., :8, :8] = 1 - other["reference_colour"][..., :8, :8]
    with torch.no_grad():
        change_windowed = (windowed(batch) - windowed(other)).abs()[..., 48:, 48:].max()
        change_full = (full(batch) - full(other)).abs()[..., 48:, 48:].max()
    assert change_windowed == 0 and change_full > 0
    assert windowed.config["attention_window"] == 16


def test_ablation_ignores_correlation_and_full_resolution_option_runs():
    batch = make_batch(b=1)
    full = build_model("cmft", **{**model_preset("cmft", "tiny")["model"], "cmft_full_resolution": True})
    assert full(batch).shape == (1, 3, SIZE, SIZE)
    ablation = build_model("cmft-nocmft", **model_preset("cmft-nocmft", "tiny")["model"])
    assert ablation.use_cmft is False and ablation.config["use_cmft"] is False and ablation.encoder_s is None
    # the ablation's output does not depend on the sketches' correlation: changing the reference sketch
    # changes nothing, while it does change the full model's output
    other = dict(batch, reference_sketch=torch.rand_like(batch["reference_sketch"]))
    torch.testing.assert_close(ablation(batch), ablation(other))
    assert not torch.allclose(full(batch), full(other))


def test_frame_sizes_not_divisible_by_8_are_padded_and_cropped():
    torch.manual_seed(0)
    model = build_model("cmft", **model_preset("cmft", "tiny")["model"])
    batch = make_batch(b=1, size=36)
    out = model.colorize(batch)
    assert out.shape == (1, 3, 36, 36)
    # the 36x36 result is the top-left of the result on the edge-padded 40x40 frame
    padded = {k: torch.nn.functional.pad(v.flatten(0, -4), (0, 4, 0, 4), mode="replicate").reshape(*v.shape[:-2], 40, 40)
              for k, v in batch.items()}
    torch.testing.assert_close(out, model.colorize(padded)[..., :36, :36])


def test_vgg19_loads_torchvision_layout_and_matches_manual_features(tmp_path):
    torch.manual_seed(0)
    reference = vgg19_features()
    path = tmp_path / "vgg19-test.pth"
    torch.save({f"features.{k}": v for k, v in reference.state_dict().items()} | {"classifier.0.weight": torch.zeros(2, 2)}, path)
    loss = VGGPerceptualLoss(str(path), layers=(1, 6))
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    def manual(img):  # conv1_1 relu (index 1) and conv2_1 relu (index 6), computed by hand
        z = (img - mean) / std
        w = reference.state_dict()
        a = torch.relu(torch.nn.functional.conv2d(z, w["0.weight"], w["0.bias"], padding=1))
        b = torch.relu(torch.nn.functional.conv2d(a, w["2.weight"], w["2.bias"], padding=1))
        b = torch.nn.functional.max_pool2d(b, 2)
        c = torch.relu(torch.nn.functional.conv2d(b, w["5.weight"], w["5.bias"], padding=1))
        return a, c
    (a1, c1), (a2, c2) = manual(x), manual(y)
    expected = ((a1 - a2) ** 2).mean() + ((c1 - c2) ** 2).mean()
    torch.testing.assert_close(loss(x, y), expected, rtol=1e-5, atol=1e-6)
    # safetensors copy loads the same; a wrong file is a one-line user error
    from safetensors.torch import save_file
    save_file({f"features.{k}": v for k, v in reference.state_dict().items()}, str(tmp_path / "vgg.safetensors"))
    torch.testing.assert_close(VGGPerceptualLoss(str(tmp_path / "vgg.safetensors"), layers=(1, 6))(x, y), expected,
                               rtol=1e-5, atol=1e-6)
    torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CelbenchError, match="bad.pth: not VGG-19 weights"):
        VGGPerceptualLoss(str(tmp_path / "bad.pth"))


def test_load_cmft_from_model_file(tmp_path):
    torch.manual_seed(3)
    margs = model_preset("cmft", "tiny")["model"]
    model = build_model("cmft", **margs)
    ckpt.save_model_file(tmp_path / "m.safetensors", model, "cmft", model.config)
    assert not ckpt.file_has_pickle(tmp_path / "m.safetensors")
    colorizer = load_cmft(str(tmp_path / "m.safetensors"), "cpu")
    batch = make_batch(b=1)
    torch.testing.assert_close(colorizer.colorize(batch), model.colorize(batch))
    with pytest.raises(CelbenchError, match="no such weights file"):
        load_cmft(str(tmp_path / "missing.safetensors"))


def test_shapes_dataset_sketch_marks_region_boundaries():
    item = ShapesPairs(n=2, size=32, seed=5)[1]
    sketch = item["target_sketch"][0].numpy()
    colour = item["target_colour"].numpy()
    # every pixel next to a colour change (away from lines) is a line pixel
    assert set(np.unique(sketch)) <= {0.0, 1.0} and (sketch == 0).any()
    assert np.all(colour[:, sketch == 0] == 0)
    assert item["target_field"].min() == 0 and item["target_field"].max() <= 1


def test_illustration2vec_encoder_loads_by_path_and_feeds_cmft0(tmp_path):
    from safetensors.torch import save_file

    from baselines.models.cmft import Illustration2VecTrunk

    g = torch.Generator().manual_seed(0)
    state = {}
    for spec in Illustration2VecTrunk.LAYERS:
        if spec != "pool":
            name, cin, cout = spec
            state[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.01
            state[f"{name}.bias"] = torch.zeros(cout)
    save_file(state, str(tmp_path / "i2v.safetensors"))
    model = build_model("cmft", **{**model_preset("cmft", "tiny")["model"],
                                   "illustration2vec": str(tmp_path / "i2v.safetensors")})
    trunk = model.encoder_i
    assert trunk(torch.rand(1, 1, SIZE, SIZE)).shape == (1, 512, SIZE // 8, SIZE // 8)
    assert not any(p.requires_grad for p in trunk.parameters())
    assert model(make_batch(b=1)).shape == (1, 3, SIZE, SIZE)
    save_file({"conv1_1.weight": torch.zeros(64, 3, 3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CelbenchError, match="not Illustration2Vec weights"):
        Illustration2VecTrunk(str(tmp_path / "bad.safetensors"))


def test_colorizer_is_the_callable_bench_expects_and_collate_keeps_only_stackable_tensors():
    from baselines.model import collate_batch

    colorizer = load_cmft("none", torch.device("cpu"))
    batch = make_batch(b=1)
    assert colorizer(batch).shape == (1, 3, SIZE, SIZE)
    items = [{"target_sketch": torch.zeros(1, 4, 4), "kind": "train-window", "correspondences": torch.zeros(m, 2)}
             for m in (2, 3)]
    collated = collate_batch(items)
    assert set(collated) == {"target_sketch"} and collated["target_sketch"].shape == (2, 1, 4, 4)
