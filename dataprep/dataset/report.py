"""``dataprep info``: summary of a built dataset plus an HTML/PNG report with random samples.

The summary (counts, split sizes, per-source counts, pairs by kind, shot-length and interval histograms) comes
from the Parquet files, not only from the manifest. ``report.html`` is one self-contained page to send to a
colleague: summary, per-split and per-source tables, histograms with integer axes, a grid of seeded random pairs
per source (columns = reference colour, target colour, target sketch, target distance field, target components
(random colour per label), hints over the sketch), and the build config. ``report.png`` holds a sample grid
over all sources and the histograms.
"""

from __future__ import annotations

import base64
import html
import io
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.dataset.manifest import Manifest, shard_files
from dataprep.dataset.reader import DatasetReader, read_shard
from dataprep.errors import file_error
from dataprep.field import decode_field
from dataprep.imaging import decode_png
from dataprep.visual import as_rgb, colorize_labels, image_grid

COLUMNS = ["reference colour", "target colour", "target sketch", "distance field", "components", "hints"]


def summarise(out: Path) -> dict:
    """Counts, split sizes (frames, pairs, shots), per-source counts, pairs by kind, and histograms of
    shot length (frames per stored shot) and pair interval."""
    manifest = Manifest.load(out)
    if manifest is None:
        raise file_error(out, "not a celbench dataset (no meta/info.json)")
    frames = [read_shard(f, "frames", ["split", "video_id", "shot_id"]) for f in shard_files(out, "frames")]
    pairs = [read_shard(f, "pairs", ["split", "kind", "interval", "video_id"]) for f in shard_files(out, "pairs")]
    splits: dict[str, Counter] = {}
    shots: dict[str, set] = {}
    per_source: dict[str, Counter] = {}
    shot_frames: Counter = Counter()
    for table in frames:
        for split, video, shot in zip(*(table.column(c).to_pylist() for c in ("split", "video_id", "shot_id"))):
            splits.setdefault(split, Counter())["frames"] += 1
            shots.setdefault(split, set()).add((video, shot))
            per_source.setdefault(video, Counter())["frames"] += 1
            shot_frames[(video, shot)] += 1
    kinds: Counter = Counter()
    intervals: Counter = Counter()
    for table in pairs:
        for split, kind, interval, video in zip(*(table.column(c).to_pylist()
                                                  for c in ("split", "kind", "interval", "video_id"))):
            splits.setdefault(split, Counter())["pairs"] += 1
            per_source.setdefault(video, Counter())["pairs"] += 1
            kinds[kind] += 1
            intervals[interval] += 1
    for split, s in shots.items():
        splits[split]["shots"] = len(s)
    for video, _ in shot_frames:
        per_source[video]["shots"] += 1
    return {
        "status": manifest.data.get("status"), "config_hash": manifest.data.get("config_hash"),
        "schema_version": manifest.data.get("schema_version"),
        "sources": len(manifest.data.get("sources", [])),
        "frames": sum(t.num_rows for t in frames), "pairs": sum(t.num_rows for t in pairs),
        "splits": {k: dict(v) for k, v in sorted(splits.items())},
        "by_source": {k: dict(v) for k, v in sorted(per_source.items())},
        "pairs_by_kind": dict(sorted(kinds.items())),
        "interval_histogram": {int(k): v for k, v in sorted(intervals.items())},
        "shot_length_histogram": {int(k): v for k, v in sorted(Counter(shot_frames.values()).items())},
        "timings": manifest.data.get("timings", {}),
    }


def sample_grid(out: Path, rows: int = 6, seed: int = 0, video_id: str | None = None,
                reader: DatasetReader | None = None) -> tuple[np.ndarray, list[tuple[str, str, str]]] | None:
    """(H, W, 3) uint8 RGB grid of random pairs (of one source when ``video_id`` is given), one row each with
    the :data:`COLUMNS` (titled) and a row title naming the pair kind and its frames, and their
    (reference, target, kind) keys; None when there are no pairs. Frames come through ``reader`` (the
    dataset's one reader; opened here when not given)."""
    reader = reader or DatasetReader(out)
    index = []
    for f in reader.pair_files:
        videos = read_shard(f, "pairs", ["video_id"]).column("video_id").to_pylist()
        index += [(f, i) for i, video in enumerate(videos) if video_id is None or video == video_id]
    if not index:
        return None
    chosen = sorted(random.Random(seed).sample(index, min(rows, len(index))))
    tables = {f: read_shard(f, "pairs") for f in {f for f, _ in chosen}}  # each shard read once
    pairs = [tables[f].slice(i, 1).to_pylist()[0] for f, i in chosen]
    grid_rows, titles = [], []
    for pair in pairs:
        ref, tgt = reader.frame(pair["reference_keys"][0]), reader.frame(pair["target_key"])
        hints = decode_png(pair["hints"]["bytes"])
        mask = decode_png(pair["hint_mask"]["bytes"]) > 0
        over = as_rgb(tgt.sketch)
        over[mask] = hints[mask]
        grid_rows.append([ref.colour, tgt.colour, tgt.sketch, decode_field(tgt.field),
                          colorize_labels(tgt.components), over])
        frames = f"{int(pair['reference_keys'][0].split('/')[-1])}->{int(pair['target_key'].split('/')[-1])}"
        titles.append(f"{pair['kind']}  frames {frames}" + ("" if video_id else f"  {pair['video_id']}"))
    grid = image_grid(grid_rows, row_titles=titles, col_titles=COLUMNS)
    return grid, [(p["reference_keys"][0], p["target_key"], p["kind"]) for p in pairs]


def _histogram_png(histograms: list[tuple[str, str, dict[int, int]]]) -> bytes:
    """PNG of bar charts side by side, (title, x label, {value: count}) each; both axes in integers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(1, len(histograms), figsize=(5.2 * len(histograms), 3.0), squeeze=False)
    for axis, (title, label, counts) in zip(axes[0], histograms):
        axis.bar(list(counts), list(counts.values()), width=0.8, color="#4477aa")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel(label)
        axis.set_ylabel("count")
        if 0 < len(counts) <= 12:  # few values: a tick at each (also keeps one bar from getting fractional ticks)
            axis.set_xticks(sorted(counts))
            axis.set_xlim(min(counts) - 1, max(counts) + 1)
        else:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _table_html(headers: list[str], rows: list[list[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="{"num" if isinstance(c, (int, float)) else "text"}">{e(str(c))}</td>'
                                     for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}"
          "h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}"
          "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:3px 10px}"
          "th{background:#f4f4f4}td.num{text-align:right}td.text{text-align:left}"
          "img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:1em;overflow:auto}"
          ".muted{color:#666}")


def report_html(out: Path, summary: dict, manifest: dict, histograms_png: bytes,
                grids: list[tuple[str, bytes]]) -> str:
    """The self-contained report page (images embedded): summary, per-split and per-source tables, pairs by
    kind, histograms, a sample grid per source and the build config. Everything from the dataset is
    HTML-escaped."""
    import yaml

    e = html.escape
    sources = manifest.get("sources", [])
    names = [Path(str(s.get("path") or s.get("video_id"))).name for s in sources]
    title = "celbench dataset: " + (", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                                    if names else out.name)
    shots = sum(v.get("shots", 0) for v in summary["splits"].values())
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{e(title)}</h1>",
             f'<p class="muted">Built by <code>dataprep build</code> (celbench {e(str(manifest.get("toolkit_version")))}, '
             f"schema {e(str(summary['schema_version']))}) on {e(str(manifest.get('created', '?')))}; status "
             f"<b>{e(str(summary['status']))}</b>; config hash <code>{e(str(summary['config_hash'])[:12])}</code>. "
             f"Folder <code>{e(str(out))}</code>.</p>",
             "<h2>Summary</h2>",
             f"<p>{summary['sources']} source{'s' * (summary['sources'] != 1)}, {shots} shot{'s' * (shots != 1)}, "
             f"{summary['frames']} frames, {summary['pairs']} reference/target pairs.</p>",
             _table_html(["split", "shots", "frames", "pairs"],
                         [[k, v.get("shots", 0), v.get("frames", 0), v.get("pairs", 0)]
                          for k, v in summary["splits"].items()]),
             "<h2>Sources</h2>"]
    by_source = summary.get("by_source", {})
    rows = []
    for source, name in zip(sources, names):
        counts = by_source.get(source.get("video_id"), {})
        dropped = ", ".join(f"{reason} {n}" for reason, n in (source.get("dropped_shots") or {}).items()) or "none"
        rows.append([name, source.get("video_id"), str(source.get("sha256"))[:16], source.get("n_frames", "-"),
                     source.get("shots", "-"), dropped, counts.get("shots", 0), counts.get("frames", 0),
                     counts.get("pairs", 0)])
    parts.append(_table_html(["source", "video id", "sha256 (start)", "frames decoded", "shots detected",
                              "shots dropped (reason)", "shots stored", "frames stored", "pairs"], rows))
    parts += ["<h2>Pairs by kind</h2>",
              _table_html(["kind", "pairs"], [[k, v] for k, v in summary["pairs_by_kind"].items()]),
              "<h2>Shot lengths and pair intervals</h2>",
              f'<p><img src="{_data_uri(histograms_png, "image/png")}" alt="histograms of shot length and pair '
              'interval"></p>']
    if grids:
        parts.append("<h2>Samples</h2><p>Random pairs per source (seeded): reference colour, target colour, target "
                     "sketch, distance field, components (a random colour per label), hints over the sketch. Row "
                     "titles give the pair kind and the reference and target frame numbers.</p>")
        for name, jpeg in grids:
            parts.append(f"<h3>{e(name)}</h3>"
                         f'<p><img src="{_data_uri(jpeg, "image/jpeg")}" alt="sample pairs of {e(name)}"></p>')
    parts += ["<h2>Build config</h2>",
              f"<pre>{e(yaml.safe_dump(manifest.get('config', {}), sort_keys=False))}</pre>", "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(out: Path, summary: dict, rows: int = 6, seed: int = 0) -> list[Path]:
    """Write DIR/report.html (self-contained: see :func:`report_html`; ``rows`` sample pairs per source) and
    DIR/report.png (the histograms and a sample grid over all sources); returns the paths."""
    import cv2

    manifest = Manifest.load(out).data
    histograms = _histogram_png([("shot length", "frames per shot", summary["shot_length_histogram"]),
                                 ("pair interval", "frames from the first reference to the target",
                                  summary["interval_histogram"])])
    grids = []
    reader = DatasetReader(out)
    for source in manifest.get("sources", []):
        grid = sample_grid(out, rows, seed, video_id=source.get("video_id"), reader=reader)
        if grid is not None:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(grid[0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
            grids.append((Path(str(source.get("path") or source.get("video_id"))).name, jpeg.tobytes()))
    page = out / "report.html"
    tmp = page.with_name(page.name + ".tmp")
    tmp.write_text(report_html(out, summary, manifest, histograms, grids))
    tmp.replace(page)
    png = out / "report.png"
    overall = sample_grid(out, rows, seed, reader=reader)
    hist_image = cv2.cvtColor(cv2.imdecode(np.frombuffer(histograms, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if overall is not None:
        width = max(overall[0].shape[1], hist_image.shape[1])
        pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
        hist_image = np.concatenate([pad(overall[0]), pad(hist_image)], axis=0)
    cv2.imwrite(str(png), cv2.cvtColor(hist_image, cv2.COLOR_RGB2BGR))
    return [png, page]


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
