"""Training machinery: exact resume, overfitting one pair, NaN stop, pickle-free checkpoints, bench train CLI."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from baselines import checkpoint as ckpt
from baselines.datasets import ListDataset, ShapesPairs
from baselines.train import NonFiniteLoss, resolve_config, train
from benchmark.cli import main as bench_main
from dataprep.errors import CelbenchError
from benchmark_toys import one_torch_thread



single_thread = pytest.fixture(autouse=True)(one_torch_thread)


TINY = {"val_every": 0, "log_every": 1, "model_args.widths": [8, 8, 4, 4]}


def config(**overrides):
    return resolve_config("cmft", "tiny", overrides={**TINY, **overrides})


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def test_resume_is_bit_identical_to_uninterrupted_run(tmp_path):
    data = ShapesPairs(n=6, size=16, seed=1)
    settings = dict(epochs=2, val_fraction=0.0, checkpoint_every=4)  # 3 batches/epoch: resume mid-epoch 2
    train(config(**settings), data, tmp_path / "full")
    train(config(**settings, max_steps=4), data, tmp_path / "split")
    summary = train(config(**settings), data, tmp_path / "split", resume=True)
    assert summary["steps"] == 6
    full, split = weights(tmp_path / "full"), weights(tmp_path / "split")
    assert full.keys() == split.keys()
    assert all(torch.equal(full[k], split[k]) for k in full)
    # the optimizer state matches too
    a = load_file(str(tmp_path / "full/checkpoints/step_00000006.safetensors"))
    b = load_file(str(tmp_path / "split/checkpoints/step_00000006.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("optimizer."))
    # and the run without resume differs from a 4-step run (the test can fail)
    four = load_file(str(tmp_path / "split/checkpoints/step_00000004.safetensors"))
    assert not all(torch.equal(four[k], full[k]) for k in full)


def test_init_weights_starts_a_new_run_from_a_model_file(tmp_path):
    data = ShapesPairs(n=4, size=16, seed=1)
    train(config(epochs=1, val_fraction=0.0), data, tmp_path / "first")
    first = tmp_path / "first/model.safetensors"
    # lr 0: the fine-tuning run's weights stay where they started, so they show what it started from
    train(config(epochs=1, val_fraction=0.0, lr=0.0, init_weights=str(first)), data, tmp_path / "tuned")
    train(config(epochs=1, val_fraction=0.0, lr=0.0), data, tmp_path / "fresh")
    trained, tuned, fresh = weights(tmp_path / "first"), weights(tmp_path / "tuned"), weights(tmp_path / "fresh")
    assert all(torch.equal(trained[k], tuned[k]) for k in trained)
    assert not all(torch.equal(trained[k], fresh[k]) for k in trained)
    # another width does not fit: one line naming the file, no run directory left behind
    wide = resolve_config("cmft", "tiny", overrides={**TINY, "model_args.widths": [8, 8, 8, 4], "epochs": 1,
                                                    "val_fraction": 0.0, "init_weights": str(first)})
    with pytest.raises(CelbenchError, match="model.safetensors.*model config"):
        train(wide, data, tmp_path / "wide")
    assert not (tmp_path / "wide/checkpoints").exists()
    with pytest.raises(CelbenchError, match="no such weights file"):
        train(config(epochs=1, init_weights=str(tmp_path / "absent.safetensors")), data, tmp_path / "absent")


def test_bench_train_refuses_a_foreign_init_weights_file_in_one_line(tmp_path, capsys):
    foreign = tmp_path / "not-weights.safetensors"
    foreign.write_bytes(b"\x80\x04 not a safetensors file")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = bench_main(["train", "--model", "cmft", "--preset", "tiny", "--data", "synth:n=4,size=32",
                       "--out", str(tmp_path / "run"), "--set", "epochs=1",
                       "--set", f"init_weights={foreign}", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "not-weights.safetensors" in err[0] and "Traceback" not in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run directory, nothing else touched


def test_tiny_model_overfits_one_pair(tmp_path):
    pair = ShapesPairs(n=1, size=32, seed=2)
    cfg = resolve_config("cmft", "tiny", overrides={"epochs": 300, "val_fraction": 0.0, "log_every": 1,
                                                   "checkpoint_every": 0, "val_every": 0, "lr": 1e-2,
                                                   "lr_schedule": "cosine", "batch_size": 1})
    train(cfg, pair, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    l1 = [r["l1"] for r in rows if r["split"] == "train"]
    assert len(l1) == 300
    final = sum(l1[-10:]) / 10
    assert final < l1[0] / 10, (l1[0], final)


class NaNAfter(ListDataset):
    """Yields NaN targets once ``bad_now`` is set (simulates a diverging run)."""

    def __init__(self, base):
        super().__init__([base[i] for i in range(len(base))])
        self.bad_now = False

    def __getitem__(self, index):
        item = dict(super().__getitem__(index))
        if self.bad_now:
            item["target_colour"] = torch.full_like(item["target_colour"], float("nan"))
        return item


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    data = NaNAfter(ShapesPairs(n=2, size=16))
    train(config(epochs=2, val_fraction=0.0, checkpoint_every=1, batch_size=1), data, tmp_path / "run")
    good = load_file(str(tmp_path / "run/model.safetensors"))
    data.bad_now = True
    with pytest.raises(NonFiniteLoss, match=r"loss became nan at step 5 .*last good checkpoint: .*step_00000004.json"):
        train(config(epochs=4, val_fraction=0.0, checkpoint_every=1, batch_size=1), data, tmp_path / "run",
              resume=True)
    pointer = json.loads((tmp_path / "run/checkpoints/latest.json").read_text())
    assert pointer["step"] == 4
    kept = load_file(str(tmp_path / "run/checkpoints/step_00000004.safetensors"))
    assert all(torch.isfinite(v).all() for k, v in kept.items() if k.startswith("model."))
    assert all(torch.equal(kept["model." + k[len("model."):]], good[k]) for k in good)


def test_checkpoint_files_contain_no_pickle(tmp_path):
    train(config(epochs=1, val_fraction=0.0, checkpoint_every=1), ShapesPairs(n=2, size=16), tmp_path / "run")
    files = sorted((tmp_path / "run").rglob("*.*"))
    assert any(f.suffix == ".safetensors" for f in files)
    for path in files:
        assert not ckpt.file_has_pickle(path), path
        assert path.suffix in {".safetensors", ".json", ".csv", ".jsonl", ".png"} or "tfevents" in path.name, path
        if path.suffix == ".json":
            json.loads(path.read_text())
    meta = ckpt.safetensors_metadata(tmp_path / "run/model.safetensors")
    assert meta["celbench_model"] == "cmft"


def test_bench_train_cli_end_to_end_on_synth_clip(tmp_path, capsys):
    out = tmp_path / "run"
    code = bench_main(["train", "--model", "cmft", "--preset", "tiny", "--data", "synth:n=4,size=32", "--out", str(out),
                       "--set", "epochs=1", "--set", "val_fraction=0.25", "--set", "model_args.widths=[8,8,4,4]",
                       "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and (out / "model.safetensors").is_file()
    assert "val" in (out / "metrics.csv").read_text()
    # --resume keeps the stored settings (preset, widths); only what --set names changes
    code = bench_main(["train", "--model", "cmft", "--data", "synth:n=4,size=32", "--out", str(out), "--resume",
                       "--set", "epochs=2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["steps"] == 4
    # a second run into the same directory without --resume is a user error, not an overwrite
    code = bench_main(["train", "--model", "cmft", "--preset", "tiny", "--data", "synth:n=4,size=32", "--out", str(out),
                       "--quiet"])
    assert code == 2 and "already holds a run" in capsys.readouterr().err
    assert bench_main(["train", "--model", "cmft", "--data", "shapes", "--out", str(tmp_path / "x"),
                       "--set", "lr_rate=1"]) == 2
    assert "unknown training setting 'lr_rate'" in capsys.readouterr().err


def test_resume_refuses_changed_settings(tmp_path):
    train(config(epochs=1, val_fraction=0.0), ShapesPairs(n=2, size=16), tmp_path / "run")
    with pytest.raises(CelbenchError, match=r"changed settings \['lr'\]"):
        train(config(epochs=2, val_fraction=0.0, lr=0.5), ShapesPairs(n=2, size=16), tmp_path / "run", resume=True)


def test_distributed_path_with_gloo_world_size_one_matches_single_process(tmp_path):
    import socket

    import torch.distributed as dist

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = ShapesPairs(n=4, size=16, seed=4)
    cfg = config(epochs=1, val_fraction=0.0)
    train(cfg, data, tmp_path / "single")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        summary = train(cfg, data, tmp_path / "ddp")
    finally:
        dist.destroy_process_group()
    assert summary["world_size"] == 1 and summary["steps"] == 2
    single, ddp = weights(tmp_path / "single"), weights(tmp_path / "ddp")
    assert all(torch.allclose(single[k], ddp[k], atol=1e-6) for k in single)


def test_settings_are_typed_and_layered():
    cfg = resolve_config("cmft", "tiny", file_settings={"lr": "1e-3", "epochs": 3, "preset": "paper"},
                         overrides={"epochs": "5", "betas": [0.9, 0.99], "vgg_weights": None})
    assert cfg.preset == "paper" and cfg.lr == 1e-3 and cfg.epochs == 5 and cfg.betas == [0.9, 0.99]
    assert cfg.l1_weight == 10.0 and cfg.batch_size == 2  # from the paper preset
    with pytest.raises(CelbenchError, match="setting epochs: expected int"):
        resolve_config("cmft", "tiny", overrides={"epochs": "many"})
    with pytest.raises(CelbenchError, match="unknown preset 'huge'"):
        resolve_config("cmft", "huge")


def test_non_finite_weights_are_never_checkpointed(tmp_path, monkeypatch):
    original_step = torch.optim.Adam.step
    calls = {"n": 0}

    def step_then_corrupt(self, *args, **kwargs):
        result = original_step(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:  # finite loss, but the update made weights inf
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_corrupt)
    with pytest.raises(NonFiniteLoss, match=r"weights became non-finite by step 3.*step_00000002.json"):
        train(config(epochs=4, val_fraction=0.0, checkpoint_every=1, batch_size=1), ShapesPairs(n=2, size=16),
              tmp_path / "run")
    assert json.loads((tmp_path / "run/checkpoints/latest.json").read_text())["step"] == 2


def test_perceptual_loss_enters_training_when_vgg_weights_are_given(tmp_path):
    from safetensors.torch import save_file

    from baselines.losses import PAPER_LAYERS, vgg19_features

    torch.manual_seed(0)
    vgg = vgg19_features(PAPER_LAYERS[-1] + 1)
    save_file({f"features.{k}": v * 0.1 for k, v in vgg.state_dict().items()}, str(tmp_path / "vgg.safetensors"))
    train(config(epochs=1, val_fraction=0.0, perceptual_weight=0.02, vgg_weights=str(tmp_path / "vgg.safetensors")),
          ShapesPairs(n=2, size=16), tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert all(r["vgg"] > 0 and r["loss"] == pytest.approx(10 * r["l1"] + 0.02 * r["vgg"], rel=1e-5) for r in rows)
    assert json.loads((tmp_path / "run/config.json").read_text())["losses"] == "l1+vgg19"
    with pytest.raises(CelbenchError, match="perceptual_weight is 0.0"):
        train(config(epochs=1, perceptual_weight=0.0, vgg_weights=str(tmp_path / "vgg.safetensors")),
              ShapesPairs(n=2, size=16), tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


def test_bench_train_reads_a_dataset_built_by_dataprep(tmp_path, capsys):
    """`bench train --data DIR` trains on the folder's CMFT window pairs (its other pair kinds are for evaluation)."""
    from dataprep.build import build
    from dataprep.config import load_config
    from tests.dataset_fakes import write_synth_frames

    write_synth_frames(tmp_path / "clip", seed=5, shots=2, width=64, height=48, shot_length=(44, 46))
    settings = ["frames.size=32", "run.executor=serial", "split.by=video",
                "split.train=1", "split.val=0", "split.test=0"]
    report = build([tmp_path / "clip"], tmp_path / "ds", load_config(None, settings))
    assert report.failed == []
    out = tmp_path / "run"
    code = bench_main(["train", "--model", "cmft", "--preset", "tiny", "--data", str(tmp_path / "ds"),
                       "--out", str(out), "--set", "max_steps=2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["steps"] == 2 and (out / "model.safetensors").is_file()
    # the `shots` source pairs every two frames of a shot up to max_interval apart, both directions
    import pandas as pd

    from baselines.datasets import open_datasets
    from dataprep.dataset.manifest import shard_files

    pairs, _ = open_datasets(f"shots:root={tmp_path / 'ds'},max_interval=3")
    frames = pd.concat([pd.read_parquet(p, columns=["frame_key", "video_id", "shot_id", "frame_index", "split"])
                        for p in shard_files(tmp_path / "ds", "frames")])
    expected = 0
    for _, shot in frames[frames.split == "train"].groupby(["video_id", "shot_id"]):
        index = shot.frame_index.to_numpy()
        gaps = index[None, :] - index[:, None]
        expected += 2 * int(((gaps >= 1) & (gaps <= 3)).sum())
    assert len(pairs) == expected > 0
    reference_key, target_key = pairs.pairs[0]
    item, stored = pairs[0], pairs.reader.frame(target_key)
    # whole 40x32 frames come out as 32x32 squares cut at one random place for every image of the pair
    assert stored.colour.shape == (32, 40, 3)
    components = torch.from_numpy(stored.components.astype("int64"))
    left = next(x for x in range(9) if torch.equal(item["target_components"], components[:, x:x + 32]))
    colour = torch.from_numpy(stored.colour).permute(2, 0, 1)[:, :, left:left + 32]
    assert torch.equal((item["target_colour"] * 255).round().byte(), colour)
    assert item["reference_colour"].shape == (1, 3, 32, 32) and item["reference_field"].shape == (1, 1, 32, 32)
    # refs=2: a target strictly between two references of its shot at most max_interval frames apart
    triples, _ = open_datasets(f"shots:root={tmp_path / 'ds'},max_interval=3,refs=2")
    index_of = dict(zip(frames.frame_key, frames.frame_index))
    expected = 0
    for _, shot in frames[frames.split == "train"].groupby(["video_id", "shot_id"]):
        index = sorted(shot.frame_index)
        expected += sum(1 for a in index for t in index for b in index if a < t < b and b - a <= 3)
    assert len(triples) == expected > 0
    assert all(index_of[a] < index_of[t] < index_of[b] <= index_of[a] + 3 for a, b, t in triples.pairs)
    (first_key, second_key, target_key), item = triples.pairs[0], triples[0]
    assert item["reference_colour"].shape == (2, 3, 32, 32) and item["reference_field"].shape == (2, 1, 32, 32)
    stored = torch.from_numpy(triples.reader.frame(second_key).colour).permute(2, 0, 1)
    second = (item["reference_colour"][1] * 255).round().byte()
    assert any(torch.equal(second, stored[:, :, x:x + 32]) for x in range(9))  # a 32x32 window of the whole frame


def test_a_run_from_before_a_setting_existed_resumes_when_the_setting_keeps_its_default(tmp_path):
    data = ShapesPairs(n=4, size=16, seed=1)
    train(config(epochs=1, val_fraction=0.0, max_steps=1, checkpoint_every=1), data, tmp_path / "run")
    pointer = json.loads((tmp_path / "run/checkpoints/latest.json").read_text())
    meta_path = tmp_path / "run/checkpoints" / pointer["checkpoint"]
    meta = json.loads(meta_path.read_text())
    del meta["run_config"]["repalette"]  # as written by a celbench without that setting
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CelbenchError, match=r"changed settings \['repalette'\]"):
        train(config(epochs=1, val_fraction=0.0, repalette=0.5), data, tmp_path / "run", resume=True)
    assert train(config(epochs=1, val_fraction=0.0), data, tmp_path / "run", resume=True)["steps"] == 2


def test_model_args_and_data_parameters_are_checked_against_their_signatures():
    from baselines.datasets import open_datasets

    with pytest.raises(CelbenchError, match=r"model_args\.widht: model 'cmft' takes no parameter 'widht'; "
                                            r"did you mean 'widths'"):
        resolve_config("cmft", "tiny", overrides={"model_args.widht": [8, 8, 4, 4]})
    with pytest.raises(CelbenchError, match=r"config key model_args\.widths: expected Sequence\[int\], got str"):
        resolve_config("cmft", "tiny", overrides={"model_args.widths": "wide"})
    with pytest.raises(CelbenchError, match=r"--data parameter shapes\.nn: .* did you mean 'n'"):
        open_datasets("shapes:nn=3")
    with pytest.raises(CelbenchError, match=r"--data parameter shapes\.size: expected int, got str 'big'"):
        open_datasets("shapes:size=big")


def test_a_config_file_may_name_the_model_in_the_name_params_shape():
    cfg = resolve_config("cmft", "tiny", file_settings={"model": {"name": "cmft", "params": {"widths": [8, 8, 4, 4],
                                                                                            "use_cmft": False}}},
                         overrides={"model_args.use_cmft": True})
    assert cfg.model_args == {"widths": [8, 8, 4, 4], "use_cmft": True}  # --set beats the file
    with pytest.raises(CelbenchError, match="setting model: the config names 'shi', the command line 'cmft'"):
        resolve_config("cmft", "tiny", file_settings={"model": {"name": "shi"}})
    with pytest.raises(CelbenchError, match=r"model_args\.widht: .*did you mean 'widths'"):
        resolve_config("cmft", "tiny", file_settings={"model": {"name": "cmft", "params": {"widht": [8]}}})
