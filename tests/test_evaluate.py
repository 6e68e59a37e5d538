"""bench evaluate: numbers by hand, determinism, signatures, bad inputs, records and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

import benchmark.evaluate
import benchmark.evaluate_cli
from benchmark import cli
from benchmark.evaluate import evaluate, save
from benchmark.model import check_weights, load_model
from benchmark.protocol import load_protocol
from dataprep.pairs import kref_positions
from benchmark.record import read_record
from benchmark.source import Frame, MemorySource, Shot
from benchmark_toys import local_metric_factory, one_torch_thread, toy_source
from dataprep.errors import CelbenchError

SMALL_PROTOCOL = {
    "name": "tiny-interval", "version": 1, "description": "two strides, two targets", "paper": "test",
    "sampler": {"kind": "interval", "strides": [1, 2], "targets_per_reference": 2, "seed": 0},
    "inputs": ["reference_colour", "reference_sketch", "reference_field", "target_sketch", "target_field"],
    "resolution": [16, 16], "metrics": [{"name": "psnr", "settings": {}}], "primary_metric": "psnr",
    "bucket": "interval", "batch_size": 3,
}

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def write_protocol(tmp_path, **changes):
    data = {**SMALL_PROTOCOL, **changes}
    path = tmp_path / f"{data['name']}-{abs(hash(json.dumps(data, sort_keys=True)))}.json"
    path.write_text(json.dumps(data))
    return load_protocol(str(path))


def flat_source(steps=(10, 20), frames=8, size=16) -> MemorySource:
    """Grey frames whose value grows by ``step`` per frame: copy-reference's error depends only on
    the interval, so every bucket's PSNR is known in closed form."""
    frame_map, shots = {}, []
    for s, step in enumerate(steps):
        ids = []
        for t in range(frames):
            frame_map[f"{s}/{t}"] = Frame(colour=np.full((size, size, 3), step * t, np.uint8),
                                          sketch=np.full((size, size), 255, np.uint8),
                                          field=np.zeros((size, size), np.float32))
            ids.append(f"{s}/{t}")
        shots.append(Shot(f"shot{s}", tuple(ids)))
    return MemorySource({"test": shots}, frame_map, manifest={"steps": list(steps)})


@pytest.fixture
def local_metrics(monkeypatch):
    """Protocol metrics resolved to the test's own PSNR/MAE (the metric package is tested on its own)."""
    monkeypatch.setattr(benchmark.evaluate, "create_metric", local_metric_factory)


def test_per_bucket_means_match_hand_computation(tmp_path):
    protocol = write_protocol(tmp_path)
    result = evaluate(load_model("copy-reference"), "copy-reference", flat_source(), protocol,
                      metric_factory=local_metric_factory)
    record = result.record
    # Each shot: stride 1 gives iv 1, 2; stride 2 gives iv 2, 4 -> per shot iv 1 x1, iv 2 x2, iv 4 x1.
    def psnr(step, interval):
        return 20 * math.log10(255 / (step * interval))
    expected = {iv: [psnr(step, iv) for step in (10, 20) for _ in range(2 if iv == 2 else 1)] for iv in (1, 2, 4)}
    buckets = record.metric("psnr").buckets
    assert list(buckets) == ["1", "2", "4"]
    for iv, values in expected.items():
        assert buckets[str(iv)] == pytest.approx(np.mean(values), abs=1e-9)
    everything = [v for values in expected.values() for v in values]
    assert record.metric("psnr").value == pytest.approx(np.mean(everything), abs=1e-9)
    assert record.metric("psnr").stderr == pytest.approx(np.std(everything, ddof=1) / math.sqrt(8), abs=1e-9)
    assert record.bucket_counts == {"1": 2, "2": 4, "4": 2}
    assert record.status == "complete" and record.samples_valid == 8
    # the per-sample values agree with scikit-image's PSNR on the same images
    row = result.rows[0]
    target = np.full((16, 16, 3), 10 * int(row["target_id"].split("/")[1]), np.uint8)
    reference = np.full((16, 16, 3), 10 * int(row["reference_ids"].split("/")[1]), np.uint8)
    assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(target, reference, data_range=255), abs=1e-9)


def test_cmft_sampler_follows_the_paper(tmp_path):
    protocol = write_protocol(tmp_path, sampler={"kind": "interval", "strides": [1, 5, 10], "seed": 0})
    samples = protocol.select(toy_source(shots=2, frames=45), "test")
    assert sorted({s.attributes["interval"] for s in samples}) == [1, 2, 3, 4, 5, 10, 15, 20, 30, 40]
    by_shot_stride: dict = {}
    for s in samples:
        by_shot_stride.setdefault((s.sample_id.split("/s")[0], s.attributes["stride"]), []).append(s)
    assert len(by_shot_stride) == 6 and all(len(v) == 4 for v in by_shot_stride.values())
    for group in by_shot_stride.values():  # one reference, continuous frames at stride S
        assert len({s.reference_ids for s in group}) == 1
        start = int(group[0].reference_ids[0].rsplit("/", 1)[1])
        assert [int(s.target_id.rsplit("/", 1)[1]) - start for s in group] == [s.attributes["interval"] for s in group]


def test_cmft_protocol_takes_the_mined_pairs_by_kind():
    source = toy_source(shots=2, frames=45)
    samples = load_protocol("cmft-interval@1").select(source, "test")
    assert {s.attributes["kind"] for s in samples} == {"cmft-test@1", "cmft-test@5", "cmft-test@10"}
    assert len(samples) == 24
    with pytest.raises(CelbenchError, match="no mined pairs"):
        load_protocol("cmft-interval@1").select(flat_source(), "test")


def test_kref_references_divide_the_sequence():
    assert kref_positions(8, 1) == [0]
    assert kref_positions(8, 2) == [0, 7]  # Shi et al.: first and last frame
    assert kref_positions(8, 3) == [0, 4, 7]
    samples = load_protocol("shi-kref@1").select(toy_source(shots=1, frames=10), "test")
    assert {k: sum(s.attributes["k"] == k for s in samples) for k in range(1, 6)} == {1: 7, 2: 6, 3: 5, 4: 4, 5: 3}
    assert all(len(s.reference_ids) == s.attributes["k"] for s in samples)


def test_two_runs_give_identical_numbers(tmp_path):
    source, protocol = toy_source(shots=1, frames=10), load_protocol("shi-kref@1")
    runs = [evaluate(load_model("flow-warp"), "flow-warp", source, protocol, metric_factory=local_metric_factory)
            for _ in range(2)]
    assert runs[0].rows == runs[1].rows
    assert [m.__dict__ for m in runs[0].record.metrics] == [m.__dict__ for m in runs[1].record.metrics]
    assert runs[0].record.signature == runs[1].record.signature
    # flow-warp really beats copying when the shapes move
    copy = evaluate(load_model("copy-reference"), "copy-reference", source, protocol,
                    metric_factory=local_metric_factory)
    assert runs[0].record.metric("psnr").value > copy.record.metric("psnr").value + 3


def test_signature_changes_with_every_number_changing_setting(tmp_path):
    source = flat_source()

    def signature(protocol, source=source, limit=None, factory=local_metric_factory):
        return evaluate(load_model("copy-reference"), "m", source, protocol, limit=limit,
                        metric_factory=factory).record.signature

    base = write_protocol(tmp_path)
    reference = signature(base)
    assert signature(write_protocol(tmp_path)) == reference  # same settings, same signature
    assert signature(load_protocol(str(next(tmp_path.glob("*.json"))))) == reference
    changed = {
        "resolution": signature(write_protocol(tmp_path, resolution=[8, 8])),
        "sampler seed": signature(write_protocol(tmp_path, sampler={**SMALL_PROTOCOL["sampler"], "seed": 1})),
        "metric setting": signature(write_protocol(tmp_path, metrics=[{"name": "psnr", "settings": {"data_range": 254.0}}])),
        "limit": signature(base, limit=3),
        "dataset": signature(base, source=flat_source(steps=(10, 21))),
        "frame fit": signature(write_protocol(tmp_path, fit="pad")),
    }
    assert all(sig != reference for sig in changed.values()), changed
    assert len(set(changed.values())) == len(changed)
    assert signature(base).startswith("tiny-interval@1+")


class FaultyModel:
    """Copies the reference but breaks the given sample indices (counted over the whole run)."""

    def __init__(self, fault, broken=(1,)):
        self.fault, self.broken, self.seen = fault, set(broken), 0

    def __call__(self, batch):
        out = batch["reference_colour"][:, 0].clone()
        hit = any(self.seen + i in self.broken for i in range(out.shape[0]))
        for i in range(out.shape[0]):
            if self.seen + i in self.broken:
                if self.fault == "nan":
                    out[i, 0, 0, 0] = float("nan")
                elif self.fault == "range":
                    out[i] *= 255
                elif self.fault == "raise":
                    raise RuntimeError("CUDA out of memory (simulated)")
        self.seen += out.shape[0]
        if self.fault == "shape" and hit:
            return out[:, :, :8]
        return out


@pytest.mark.parametrize("fault, status, problem", [
    ("nan", "invalid", "NaN"), ("range", "invalid", "expected [0, 1]"), ("shape", "invalid", "output shape"),
    ("raise", "incomplete", None)])
def test_misbehaving_model_is_recorded_not_fatal(tmp_path, fault, status, problem):
    protocol = write_protocol(tmp_path)
    result = evaluate(FaultyModel(fault, broken=(4,)), "faulty", flat_source(), protocol,
                      metric_factory=local_metric_factory)
    record = result.record
    assert record.status == status
    if status == "invalid":
        bad = {p.sample_id for p in record.problems}
        assert all(problem in p.problem for p in record.problems)
        # a NaN or range fault hits one sample, a wrong shape the whole batch of 3
        assert len(bad) == (3 if fault == "shape" else 1)
        assert record.samples_evaluated == 8 and record.samples_valid == 8 - len(bad)
        assert record.metric("psnr").count == 8 - len(bad)
        assert all(not math.isnan(r["psnr"]) for r in result.rows if r["valid"])
    else:  # the model raised in the second batch: the first batch is kept
        assert "RuntimeError" in record.error and record.samples_evaluated == 3
    paths = save(result, tmp_path / "out" / "faulty.json")
    assert read_record(paths["record"]).status == status
    assert len(pd.read_parquet(paths["samples"])) == record.samples_evaluated


def test_record_round_trips_and_rejects_tampering(tmp_path):
    result = evaluate(load_model("copy-reference"), "copy-reference", flat_source(), write_protocol(tmp_path),
                      metric_factory=local_metric_factory)
    paths = save(result, tmp_path / "r.json")
    data = json.loads(paths["record"].read_text())
    assert read_record(paths["record"]).to_dict() == data
    assert data["signature_fields"]["metrics"]["psnr"] == {"data_range": 255.0, "colour_space": "rgb", "max_db": None}
    assert data["speed"]["seconds_per_frame"] > 0 and data["environment"]["torch"] == torch.__version__
    data["signature_fields"]["limit"] = 3  # numbers claimed for other settings
    paths["record"].write_text(json.dumps(data))
    with pytest.raises(CelbenchError, match="r.json: not a valid celbench result record.*signature"):
        read_record(paths["record"])
    assert not list(tmp_path.glob(".*.tmp"))  # temp files were renamed, none left behind


def test_unknown_protocol_or_version_suggests_the_closest():
    with pytest.raises(CelbenchError, match="did you mean 'cmft-interval@1'"):
        load_protocol("cmft-intervals@1")
    with pytest.raises(CelbenchError, match="unknown version '7' of protocol 'shi-kref'; did you mean 'shi-kref@1'"):
        load_protocol("shi-kref@7")
    assert load_protocol("components").id == "components@2"


def test_weights_hash_is_checked(tmp_path):
    weights = tmp_path / "model-00000000.safetensors"
    weights.write_bytes(b"not really weights")
    with pytest.raises(CelbenchError, match="does not match the expected 00000000"):
        check_weights(weights)
    digest = check_weights(weights, None if False else __import__("hashlib").sha256(b"not really weights").hexdigest()[:8])
    assert len(digest) == 64


# ---- the command line ------------------------------------------------------------------------------

@pytest.fixture
def toy_cli(monkeypatch, local_metrics):
    """`--data toy` opens the in-memory toy clip (the Parquet reader is tested with the dataset)."""
    real_open = benchmark.evaluate_cli.open_source
    monkeypatch.setattr(benchmark.evaluate_cli, "open_source",
                        lambda path: toy_source(shots=1, frames=10) if str(path) == "toy" else real_open(path))


def test_cli_writes_record_and_per_sample_parquet(tmp_path, toy_cli, capsys):
    out = tmp_path / "res" / "flow.json"
    code = cli.main(["evaluate", "--model", "flow-warp", "--data", "toy", "--protocol", "shi-kref@1",
                     "--out", str(out), "--quiet"])
    assert code == 0
    record = read_record(out)
    samples = pd.read_parquet(tmp_path / "res" / "flow.samples.parquet")
    assert record.samples_valid == len(samples) == 25 and record.status == "complete"
    for k in range(1, 6):
        assert record.metric("psnr").buckets[str(k)] == pytest.approx(samples[samples.k == k].psnr.mean())
    assert (tmp_path / "res" / "flow.examples.png").is_file()
    # deterministic through the CLI too (the record differs only in date and timings)
    again = tmp_path / "res" / "again.json"
    cli.main(["evaluate", "--model", "flow-warp", "--data", "toy", "--protocol", "shi-kref@1",
              "--out", str(again), "--quiet"])
    first, second = json.loads(out.read_text()), json.loads(again.read_text())
    for data in (first, second):
        del data["date"], data["speed"], data["files"], data["content_sha256"]
    assert first == second
    assert pd.read_parquet(tmp_path / "res" / "again.samples.parquet").equals(samples)


@pytest.mark.parametrize("argv, message", [
    (["--protocol", "cmft-intrval@1"], "did you mean 'cmft-interval@1'"),
    (["--protocol", "cmft-interval@2"], "unknown version '2' of protocol 'cmft-interval'"),
    (["--model", "flow-wrap"], "did you mean 'flow-warp'"),
    (["--weights", "WEIGHTS"], "takes no weights"),
    (["--weights", "BADHASH"], "does not match the expected deadbeef"),
    (["--data", "NODATA"], "dataset folder not found"),
    (["--data", "EMPTYDATA"], "not a celbench dataset"),
])
def test_cli_bad_input_is_one_line_error(tmp_path, toy_cli, capsys, argv, message):
    (tmp_path / "w.safetensors").write_bytes(b"x")
    (tmp_path / "m-deadbeef.safetensors").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    replace = {"WEIGHTS": str(tmp_path / "w.safetensors"), "BADHASH": str(tmp_path / "m-deadbeef.safetensors"),
               "NODATA": str(tmp_path / "missing"), "EMPTYDATA": str(tmp_path / "empty")}
    args = {"--model": "copy-reference", "--data": "toy", "--out": str(tmp_path / "r.json")}
    for key, value in zip(argv[::2], argv[1::2]):
        args[key] = replace.get(value, value)
    code = cli.main(["evaluate", *[x for kv in args.items() for x in kv], "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("bench: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def test_cli_invalid_model_output_saves_marked_record_and_fails(tmp_path, toy_cli, capsys, monkeypatch):
    module = tmp_path / "broken_models.py"
    module.write_text("import torch\n"
                      "def create(weights=None, device=None):\n"
                      "    return lambda batch: batch['reference_colour'][:, 0] * float('nan')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "broken.json"
    code = cli.main(["evaluate", "--model", "broken_models:create", "--data", "toy", "--out", str(out),
                     "--protocol", "shi-kref@1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "marked invalid" in err and "NaN" in err and err.count("\n") == 1
    record = read_record(out)
    assert record.status == "invalid" and len(record.problems) == record.samples_evaluated == 25
    assert record.metric("psnr").value is None
