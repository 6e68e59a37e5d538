"""bench leaderboard build: tables from records, signatures kept apart, escaping, --check, Chromium."""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark import cli
from benchmark.evaluate import evaluate, save
from benchmark.leaderboard import build, check
from benchmark.model import load_model
from benchmark.protocol import load_protocol
from benchmark_toys import local_metric_factory, toy_source, one_torch_thread

EVIL = '<script>alert("x")</script>'
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


class EvilModel:
    """copy-reference with a hostile name, dimmed so it ranks between the floors."""

    def __call__(self, batch):
        return batch["reference_colour"][:, 0] * 0.97


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Records for shi-kref@1: two floors, a hostile name, a limited run (another signature), an invalid run."""
    root = tmp_path_factory.mktemp("leaderboards")
    threads = one_torch_thread()
    next(threads)
    source, protocol = toy_source(shots=1, frames=10), load_protocol("shi-kref@1")
    runs = {"flow-warp": (load_model("flow-warp"), None), "copy-reference": (load_model("copy-reference"), None),
            EVIL: (EvilModel(), None), "flow-warp-limited": (load_model("flow-warp"), 12),
            "nan-model": (lambda batch: batch["reference_colour"][:, 0] * float("nan"), None)}
    for index, (name, (model, limit)) in enumerate(runs.items()):
        result = evaluate(model, name, source, protocol, limit=limit, metric_factory=local_metric_factory)
        save(result, root / "results" / "shi-kref@1" / f"run{index}.json")
    next(threads, None)
    return root


def test_tables_rank_by_primary_metric_and_keep_signatures_apart(results):
    out = results / "board"
    build(results / "results", out)
    text = (out / "shi-kref@1.md").read_text()
    sections = re.split(r"^## Signature ", text, flags=re.M)[1:]
    assert len(sections) == 2  # the --limit run has its own signature, hence its own table
    full = next(s for s in sections if "flow-warp-limited" not in s)
    limited = next(s for s in sections if "flow-warp-limited" in s)
    ranking = re.findall(r"^\| (\d) \| ([^|]+) \|", full, flags=re.M)
    assert [name.strip() for _, name in ranking] == ["flow-warp", html.escape(EVIL, quote=False), "copy-reference"]
    assert "flow-warp |" not in limited.replace("flow-warp-limited", "")
    assert "nan-model: **invalid**" in full  # listed, never ranked
    assert "psnr ↑" in text and "s/frame ↓" in text
    # the CSV carries the same numbers as the records
    rows = list(csv.DictReader((out / "shi-kref@1.csv").open()))
    record = json.loads((results / "results" / "shi-kref@1" / "run0.json").read_text())
    psnr_k3 = next(r for r in rows if r["model"] == "flow-warp" and r["metric"] == "psnr" and r["bucket"] == "3")
    assert float(psnr_k3["value"]) == record["metrics"][1]["buckets"]["3"]
    assert (out / "shi-kref@1.csv").read_text().count(record["signature"]) > 0
    pngs = sorted(p.name for p in (out / "shi-kref@1").glob("*.png"))
    assert sum(p.endswith("-curves.png") for p in pngs) == 2 and sum(p.endswith("-examples.png") for p in pngs) == 4


def test_html_escapes_everything_from_records(results):
    out = results / "escaped"
    build(results / "results", out)
    page = (out / "shi-kref@1.html").read_text()
    assert EVIL not in page and html.escape(EVIL) in page
    assert page.count("<script>") == 1  # only the sorter
    assert EVIL not in (out / "shi-kref@1.md").read_text()


def test_check_passes_when_up_to_date_and_fails_on_any_difference(results, capsys):
    out = results / "checked"
    assert cli.main(["leaderboard", "build", "--results", str(results / "results"), "--out", str(out), "-q"]) == 0
    assert check(results / "results", out) == []
    assert cli.main(["leaderboard", "build", "--results", str(results / "results"), "--out", str(out),
                     "--check"]) == 0
    table = out / "shi-kref@1.md"
    table.write_text(table.read_text().replace("flow-warp", "flow-warp (edited)", 1))
    (out / "stale@1.csv").write_text("old\n")
    assert cli.main(["leaderboard", "build", "--results", str(results / "results"), "--out", str(out),
                     "--check"]) == 2
    err = capsys.readouterr().err
    assert "shi-kref@1.md: differs" in err and "stale@1.csv: no result record produces it" in err
    assert err.count("\n") == 1


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_html_renders_and_sorts_in_headless_chromium(results, tmp_path):
    out = results / "browser"
    build(results / "results", out)
    page = out / "shi-kref@1.html"
    # Click the "model" header once after load, so the dumped DOM shows the sorter ran.
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.read_text().replace(
        "</body>", "<script>document.querySelectorAll('table.sortable th.model').forEach(function (th) { th.click(); });"
        "</script></body>"))
    shutil.copytree(out / "shi-kref@1", tmp_path / "shi-kref@1")
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          clicked.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert "<table" in dom
    assert dom.count("<script>") == 2  # the sorter and the click: the model name stayed text
    assert "&lt;script&gt;alert" in dom
    bodies = [body.split("</tbody>")[0] for body in dom.split("<tbody>")[1:]]
    runs = [re.findall(r'href="[^"]*/(run\d)\.json"', body) for body in bodies]
    # ranked run0 (flow-warp), run2 (EVIL), run1 (copy-reference); by name: EVIL ('<' first), copy, flow
    assert ["run2", "run1", "run0"] in runs and ["run3"] in runs
    assert 'data-order="asc"' in dom


def test_committed_leaderboards_match_their_records():
    """The repository's leaderboards/ (floors on the demo dataset, written by `bench demo`) are up to date."""
    root = Path(__file__).resolve().parents[1] / "leaderboards"
    assert (root / "results").is_dir()
    assert check(root / "results", root) == []


def test_example_rows_span_best_median_worst_from_different_shots():
    from benchmark.evaluate import pick_examples

    # 30 samples over 3 videos x 2 shots; psnr = 30 - i, so rank i + 1 is sample i
    rows = [{"sample_id": f"s{i:02d}", "target_id": f"f{i}", "valid": True, "psnr": 30.0 - i} for i in range(30)]
    rows.append({"sample_id": "bad", "target_id": "f0", "valid": False, "psnr": float("nan")})
    shot_of = {f"f{i}": f"video{i % 3}/{i % 2}" for i in range(30)}
    picked = pick_examples(rows, "psnr", True, shot_of, 5)
    captions = [caption for caption, _ in picked]
    assert captions[0] == "best, rank 1 of 30, psnr 30: s00" and captions[-1] == "worst, rank 30 of 30, psnr 1: s29"
    assert any(c.startswith("median, rank 15 of 30") for c in captions)
    shots = [shot_of[row["target_id"]] for _, row in picked]
    assert len(set(shots)) == 5 and len({s.split("/")[0] for s in shots[:3]}) == 3
    ranks = [int(c.split("rank ")[1].split(" ")[0]) for c in captions]
    assert ranks == sorted(ranks) and all(abs(r - t) <= 3 for r, t in zip(ranks, (1, 8, 15, 23, 30)))
    # lower-is-better metrics rank the other way
    low = pick_examples(rows, "psnr", False, shot_of, 3)
    assert low[0][0].startswith("best, rank 1 of 30, psnr 1: s29")


def test_example_grid_has_titled_columns_error_map_and_captions():
    import cv2
    import numpy as np

    from benchmark.evaluate import EXAMPLE_TILE, EXAMPLE_COLUMNS, error_map, examples_png

    truth = np.full((32, 48, 3), 100, np.uint8)
    prediction = truth.copy()
    prediction[:, 24:] = 200
    example = {"reference": truth, "sketch": truth, "prediction": prediction, "truth": truth, "caption": "best: s0"}
    grid = cv2.imdecode(np.frombuffer(examples_png([example, example]), np.uint8), cv2.IMREAD_COLOR)
    tile_width = round(48 * EXAMPLE_TILE / 32)
    assert grid.shape[1] == len(EXAMPLE_COLUMNS) * tile_width + (len(EXAMPLE_COLUMNS) - 1) * 2
    assert grid.shape[0] > 2 * EXAMPLE_TILE + 16 * 3  # a header strip and a caption strip per row
    heat = error_map(prediction, truth)
    assert (heat[:, :24] == heat[0, 0]).all() and heat[0, 0].max() < 10  # no error: black
    assert heat[0, 40].sum() > 500  # error 100 of 255 (above ERROR_MAP_MAX): the bright end of the scale


def test_protocol_without_buckets_gets_a_bar_chart(tmp_path):
    source, protocol = toy_source(shots=1, frames=12), load_protocol("hints@1")
    for name in ("copy-reference",):
        result = evaluate(load_model(name), name, source, protocol, metric_factory=local_metric_factory)
        save(result, tmp_path / "results" / "hints@1" / f"{name}.json")
    build(tmp_path / "results", tmp_path / "board")
    pngs = [p.name for p in (tmp_path / "board" / "hints@1").glob("*.png")]
    assert any(p.endswith("-bars.png") for p in pngs) and not any(p.endswith("-curves.png") for p in pngs)
    assert "psnr per model" in (tmp_path / "board" / "hints@1.md").read_text()


def test_examples_come_from_the_run_or_one_more_model_call(monkeypatch):
    import numpy as np

    import benchmark.evaluate as evaluate_module

    class Counting:
        calls = 0

        def __call__(self, batch):
            Counting.calls += 1
            return batch["reference_colour"][:, 0] * 0.9

    source, protocol = toy_source(shots=1, frames=10), load_protocol("shi-kref@1")  # 25 samples
    kept = evaluate(Counting(), "counting", source, protocol, metric_factory=local_metric_factory)
    batches = Counting.calls
    monkeypatch.setattr(evaluate_module, "KEEP_ALL_EXAMPLES", 0)
    Counting.calls = 0
    rerun = evaluate(Counting(), "counting", source, protocol, metric_factory=local_metric_factory)
    assert Counting.calls > batches  # the picked samples ran again ...
    assert len(kept.examples) == len(rerun.examples) == 5
    for a, b in zip(kept.examples, rerun.examples):  # ... and gave the images kept during the run
        assert a["caption"] == b["caption"] and all(np.array_equal(a[k], b[k]) for k in ("reference", "prediction"))
