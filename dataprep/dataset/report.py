"""``dataprep info``: summary of a built dataset plus an HTML/PNG report with random samples.

The summary (counts, split sizes, pairs by kind, interval histogram) comes from the Parquet files, not only from
the manifest. ``report.png`` is a grid: one row per randomly drawn pair (seeded), columns = reference colour,
target colour, target sketch, target distance field, target components (random colour per label), hints over the
sketch. ``report.html`` shows the tables and embeds the PNG.
"""

from __future__ import annotations

import html
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from dataprep.dataset.manifest import Manifest, shard_files
from dataprep.errors import file_error
from dataprep.field import decode_field
from dataprep.imaging import decode_png
from dataprep.visual import as_rgb, colorize_labels, image_grid

COLUMNS = ["reference colour", "target colour", "target sketch", "distance field", "components", "hints"]


def summarise(out: Path) -> dict:
    """Counts, split sizes (frames, pairs, shots), pairs by kind and interval histogram."""
    manifest = Manifest.load(out)
    if manifest is None:
        raise file_error(out, "not a celbench dataset (no meta/info.json)")
    frames = [pq.read_table(f, columns=["split", "video_id", "shot_id"]) for f in shard_files(out, "frames")]
    pairs = [pq.read_table(f, columns=["split", "kind", "interval"]) for f in shard_files(out, "pairs")]
    splits: dict[str, Counter] = {}
    shots: dict[str, set] = {}
    for table in frames:
        for split, video, shot in zip(*(table.column(c).to_pylist() for c in ("split", "video_id", "shot_id"))):
            splits.setdefault(split, Counter())["frames"] += 1
            shots.setdefault(split, set()).add((video, shot))
    kinds: Counter = Counter()
    intervals: Counter = Counter()
    for table in pairs:
        for split, kind, interval in zip(*(table.column(c).to_pylist() for c in ("split", "kind", "interval"))):
            splits.setdefault(split, Counter())["pairs"] += 1
            kinds[kind] += 1
            intervals[interval] += 1
    for split, s in shots.items():
        splits[split]["shots"] = len(s)
    return {
        "status": manifest.data.get("status"), "config_hash": manifest.data.get("config_hash"),
        "schema_version": manifest.data.get("schema_version"),
        "sources": len(manifest.data.get("sources", [])),
        "frames": sum(t.num_rows for t in frames), "pairs": sum(t.num_rows for t in pairs),
        "splits": {k: dict(v) for k, v in sorted(splits.items())},
        "pairs_by_kind": dict(sorted(kinds.items())),
        "interval_histogram": {int(k): v for k, v in sorted(intervals.items())},
        "timings": manifest.data.get("timings", {}),
    }


def _frame_row(out: Path, key: str, cache: dict) -> dict:
    if key not in cache:
        for path in shard_files(out, "frames"):
            table = pq.read_table(path, filters=[("frame_key", "==", key)])
            if table.num_rows:
                cache[key] = table.slice(0, 1).to_pylist()[0]
                break
    return cache[key]


def sample_grid(out: Path, rows: int = 6, seed: int = 0) -> tuple[np.ndarray, list[tuple[str, str, str]]] | None:
    """(H, W, 3) uint8 RGB grid of random pairs, one row each with the :data:`COLUMNS` (titled), and their
    (reference, target, kind) keys; None when there are no pairs."""
    pair_files = shard_files(out, "pairs")
    index = [(f, i) for f in pair_files for i in range(pq.ParquetFile(f).metadata.num_rows)]
    if not index:
        return None
    chosen = random.Random(seed).sample(index, min(rows, len(index)))
    tables = {f: pq.read_table(f) for f in {f for f, _ in chosen}}  # each shard read once
    pairs = [tables[f].slice(i, 1).to_pylist()[0] for f, i in chosen]
    cache: dict = {}
    grid_rows, titles = [], []
    for pair in pairs:
        ref = _frame_row(out, pair["reference_keys"][0], cache)
        tgt = _frame_row(out, pair["target_key"], cache)
        sketch = decode_png(tgt["sketch"]["bytes"])
        hints = decode_png(pair["hints"]["bytes"])
        mask = decode_png(pair["hint_mask"]["bytes"]) > 0
        over = as_rgb(sketch)
        over[mask] = hints[mask]
        grid_rows.append([decode_png(ref["colour"]["bytes"]), decode_png(tgt["colour"]["bytes"]), sketch,
                          decode_field(decode_png(tgt["distance_field"]["bytes"])),
                          colorize_labels(decode_png(tgt["components"]["bytes"])), over])
        titles.append(f"{pair['kind']} {pair['reference_keys'][0].split('/')[-1]}->{pair['target_key'].split('/')[-1]}")
    grid = image_grid(grid_rows, row_titles=titles, col_titles=COLUMNS)
    return grid, [(p["reference_keys"][0], p["target_key"], p["kind"]) for p in pairs]


def write_report(out: Path, summary: dict, rows: int = 6, seed: int = 0) -> list[Path]:
    """Write DIR/report.png (sample grid, with column titles) and DIR/report.html; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    grid = sample_grid(out, rows, seed)
    png = out / "report.png"
    fig_rows = 2 if grid is not None else 1
    fig = plt.figure(figsize=(14, 4 + (2.4 * min(rows, len(grid[1])) if grid else 0)))
    axes_hist = fig.add_subplot(fig_rows, 1, fig_rows) if grid else fig.add_subplot(1, 1, 1)
    hist = summary["interval_histogram"]
    axes_hist.bar(list(hist), list(hist.values()), color="#4477aa")
    axes_hist.set_xlabel("interval (frames, target - first reference)")
    axes_hist.set_ylabel("pairs")
    axes_hist.set_title("interval histogram")
    if grid is not None:
        image, keys = grid
        axes = fig.add_subplot(fig_rows, 1, 1)
        axes.imshow(image)
        axes.set_axis_off()
        axes.set_title(f"{len(keys)} random pairs")
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
    written.append(png)
    rows_html = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                        for k, v in summary.items())
    page = (f"<!doctype html><meta charset='utf-8'><title>celbench dataset {html.escape(out.name)}</title>"
            f"<h1>celbench dataset <code>{html.escape(str(out))}</code></h1><table border=1>{rows_html}</table>"
            f"<p><img src='report.png' alt='random samples and interval histogram'></p>")
    (out / "report.html").write_text(page)
    written.append(out / "report.html")
    return written


def format_summary(summary: dict) -> str:
    lines = [f"status {summary['status']}  schema {summary['schema_version']}  config {summary['config_hash'][:12]}",
             f"sources {summary['sources']}  frames {summary['frames']}  pairs {summary['pairs']}", "splits:"]
    for split, counts in summary["splits"].items():
        lines.append(f"  {split:5s} " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    lines.append("pairs by kind:")
    lines += [f"  {k:14s} {v}" for k, v in summary["pairs_by_kind"].items()]
    hist = summary["interval_histogram"]
    if hist:
        top = max(hist.values())
        lines.append("interval histogram (frames: pairs):")
        lines += [f"  {k:4d} {v:6d} {'#' * max(1, round(30 * v / top))}" for k, v in hist.items()]
    return "\n".join(lines)
