"""bench compare: paired per-sample differences with a bootstrap interval, on records whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark import cli
from benchmark.compare import compare, paired_bootstrap
from benchmark.evaluate import evaluate, save
from benchmark.model import load_model
from benchmark.protocol import load_protocol
from dataprep.errors import CelbenchError
from benchmark_toys import local_metric_factory, one_torch_thread, toy_source

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Two real records of cmft-interval@1 on the toy clip (8 samples, intervals 1..4), plus one with a limit."""
    root = tmp_path_factory.mktemp("compare")
    threads = one_torch_thread()
    next(threads)
    source, protocol = toy_source(shots=2, frames=12), load_protocol("cmft-interval@1")
    for name, limit in (("copy-reference", None), ("flow-warp", None), ("limited", 3)):
        model = load_model("flow-warp" if name == "limited" else name)
        save(evaluate(model, name, source, protocol, limit=limit, metric_factory=local_metric_factory),
             root / f"{name}.json")
    next(threads, None)
    return root


def set_psnr(record, values):
    """Replace the per-sample PSNR of a record's parquet (the record's signature does not cover values)."""
    path = record.with_name(record.stem + ".samples.parquet")
    frame = pd.read_parquet(path)
    frame["psnr"] = values
    frame.to_parquet(path, index=False)
    return frame


def test_constant_difference_gives_a_point_interval_per_bucket_and_overall(records, tmp_path):
    a, b = tmp_path / "flow-warp.json", tmp_path / "copy-reference.json"
    for path in (a, b):
        for suffix in (".json", ".samples.parquet"):
            (tmp_path / f"{path.stem}{suffix}").write_bytes((records / f"{path.stem}{suffix}").read_bytes())
    frame = set_psnr(b, np.arange(8, dtype=float) + 20)
    set_psnr(a, frame["psnr"] + np.where(frame["interval"] <= 2, 2.0, -1.0))  # +2 dB at intervals 1-2, -1 dB at 3-4
    result = compare(a, b, resamples=500)
    rows = {r["group"]: r for r in result["rows"]}
    assert rows["all"]["count"] == 8 and rows["all"]["shots"] == 2
    assert rows["all"]["mean_difference"] == pytest.approx(0.5)
    for interval, diff in ((1, 2.0), (2, 2.0), (3, -1.0), (4, -1.0)):
        row = rows[f"interval={interval}"]
        assert row["count"] == 2 and row["low"] == pytest.approx(diff) and row["high"] == pytest.approx(diff)
        assert row["verdict"].startswith("too few samples")  # two samples: an interval, no verdict
    assert -1.0 <= rows["all"]["low"] < 0.5 < rows["all"]["high"] <= 2.0
    assert rows["all"]["a_better_share"] == 0.5 and rows["all"]["verdict"] == "no clear difference"
    # infinite PSNR (identical frames) is left out and counted
    set_psnr(a, [np.inf] + list(frame["psnr"][1:] + 1.0))
    rows = {r["group"]: r for r in compare(a, b, resamples=200)["rows"]}
    assert rows["all"]["count"] == 7 and rows["all"]["dropped"] == 1 and rows["all"]["mean_difference"] == 1.0
    assert rows["all"]["verdict"] == "A > B"


def test_bootstrap_interval_matches_the_normal_approximation():
    # independent reference: for n = 400 draws of N(1, 1) the 95% interval of the mean is mean +- 1.96 sd/sqrt(n)
    d = np.random.default_rng(7).normal(1.0, 1.0, 400)
    low, high = paired_bootstrap(d, resamples=20000, seed=1)
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert low == pytest.approx(d.mean() - half, abs=0.012) and high == pytest.approx(d.mean() + half, abs=0.012)
    assert paired_bootstrap(d, 1000, seed=3) == paired_bootstrap(d, 1000, seed=3)
    assert paired_bootstrap(np.array([0.7])) == (0.7, 0.7)


def test_cli_prints_table_or_json_and_refuses_records_of_different_signatures(records, capsys):
    assert cli.main(["compare", str(records / "flow-warp.json"), str(records / "copy-reference.json")]) == 0
    table = capsys.readouterr().out
    assert "flow-warp (A) vs copy-reference (B)" in table and "| interval=1 |" in table
    assert cli.main(["compare", str(records / "flow-warp.json"), str(records / "copy-reference.json"), "--json",
                     "--resamples", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    a = pd.read_parquet(records / "flow-warp.samples.parquet")["psnr"]
    b = pd.read_parquet(records / "copy-reference.samples.parquet")["psnr"]
    assert result["rows"][0]["mean_difference"] == pytest.approx(float((a - b).mean()))
    assert cli.main(["compare", str(records / "limited.json"), str(records / "copy-reference.json")]) == 2
    assert "not comparable, signatures differ" in capsys.readouterr().err
    with pytest.raises(CelbenchError, match="no per-sample column 'lpips'"):
        compare(records / "flow-warp.json", records / "copy-reference.json", metric="lpips")


def test_across_datasets_compares_the_samples_two_builds_share(records, tmp_path, capsys):
    """The same model on two builds of one video: refused by default (with the way out), compared on the common
    samples with --across-datasets, the samples of one build only counted."""
    other = tmp_path / "other.json"
    save(evaluate(load_model("copy-reference"), "copy-reference", toy_source(shots=3, frames=12),
                  load_protocol("cmft-interval@1"), metric_factory=local_metric_factory), other)
    with pytest.raises(CelbenchError, match="fields: dataset_manifest_sha256\\) \\(only the dataset differs: --across"):
        compare(other, records / "copy-reference.json")
    result = compare(other, records / "copy-reference.json", resamples=200, across_datasets=True)
    assert (result["only_a"], result["only_b"]) == (4, 0)  # the third shot's samples
    assert result["rows"][0]["count"] == 8 and result["rows"][0]["mean_difference"] == 0.0  # same frames, same copy
    with pytest.raises(CelbenchError, match="signatures differ"):  # a limit still differs: never comparable
        compare(other, records / "limited.json", across_datasets=True)
    assert cli.main(["compare", str(other), str(records / "copy-reference.json"), "--across-datasets"]) == 0
    assert "samples in A only: 4, in B only: 0 (left out)" in capsys.readouterr().out
