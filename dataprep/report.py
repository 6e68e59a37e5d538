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

from dataprep.build import Manifest, shard_files
from dataprep.errors import file_error
from dataprep.imaging import decode_png

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


def _label_colours(labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    palette = rng.integers(40, 256, size=(int(labels.max()) + 1, 3), dtype=np.uint8)
    palette[0] = 0
    return palette[labels]


def _frame_row(out: Path, key: str, cache: dict) -> dict:
    if key not in cache:
        for path in shard_files(out, "frames"):
            table = pq.read_table(path, filters=[("frame_key", "==", key)])
            if table.num_rows:
                cache[key] = table.slice(0, 1).to_pylist()[0]
                break
    return cache[key]


def sample_grid(out: Path, rows: int = 6, seed: int = 0) -> tuple[np.ndarray, list[tuple[str, str, str]]] | None:
    """(rows*H, 6*W, 3) uint8 grid of random pairs (see module doc) and their (reference, target, kind) keys;
    None when there are no pairs."""
    pair_files = shard_files(out, "pairs")
    index = [(f, i) for f in pair_files for i in range(pq.ParquetFile(f).metadata.num_rows)]
    if not index:
        return None
    chosen = random.Random(seed).sample(index, min(rows, len(index)))
    cache: dict = {}
    tiles = []
    for path, i in chosen:
        pair = pq.read_table(path).slice(i, 1).to_pylist()[0]
        ref = _frame_row(out, pair["reference_keys"][0], cache)
        tgt = _frame_row(out, pair["target_key"], cache)
        sketch = decode_png(tgt["sketch"]["bytes"])
        field = decode_png(tgt["distance_field"]["bytes"])
        labels = decode_png(tgt["components"]["bytes"])
        hints = decode_png(pair["hints"]["bytes"])
        mask = decode_png(pair["hint_mask"]["bytes"]) > 0
        over = np.repeat(sketch[:, :, None], 3, axis=2)
        over[mask] = hints[mask]
        field8 = (field.astype(np.float32) / 65535 * 255).astype(np.uint8)
        images = [decode_png(ref["colour"]["bytes"]), decode_png(tgt["colour"]["bytes"]),
                  np.repeat(sketch[:, :, None], 3, axis=2), np.repeat(field8[:, :, None], 3, axis=2),
                  _label_colours(labels), over]
        h, w = images[1].shape[:2]
        tiles.append(np.concatenate([_fit(im, h, w) for im in images], axis=1))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    return np.concatenate(tiles, axis=0), [(p["reference_keys"][0], p["target_key"], p["kind"])
                                          for p in [pq.read_table(f).slice(i, 1).to_pylist()[0]
                                                    for f, i in chosen]]


def _fit(image: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    return image if image.shape[:2] == (h, w) else cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)


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
        image, labels = grid
        axes = fig.add_subplot(fig_rows, 1, 1)
        axes.imshow(image)
        width = image.shape[1] / len(COLUMNS)
        axes.set_xticks([width * (i + 0.5) for i in range(len(COLUMNS))], COLUMNS)
        height = image.shape[0] / len(labels)
        axes.set_yticks([height * (i + 0.5) for i in range(len(labels))],
                        [f"{k}\n{r.split('/')[-1]}->{t.split('/')[-1]}" for r, t, k in labels], fontsize=7)
        axes.set_title(f"{len(labels)} random pairs")
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
