"""Leaderboards: result records -> ``leaderboards/<protocol>.md``, ``.csv``, ``.html`` and plots.

Following CLIP_benchmark's build step, published tables are generated files: ``bench leaderboard
build`` rebuilds them from the records in ``leaderboards/results`` and ``--check`` fails when the
committed text files differ from what the records produce. Records with different signatures (see
:mod:`benchmark.record`) are never ranked together: each signature gets its own section and table.
Only ``complete`` records are ranked; invalid or incomplete ones are listed below with the reason.

Text outputs (Markdown, CSV, HTML) are byte-for-byte deterministic functions of the records. Plots
(PSNR/SSIM against the protocol's bucket, one line per model) and the qualitative grids copied from
``bench evaluate`` are PNG files; they are rebuilt too but not compared by ``--check``, because PNG
bytes depend on the matplotlib/libpng version.
"""

from __future__ import annotations

import csv
import html
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dataprep.errors import CelbenchError, file_error
from dataprep.paths import inside, safe_name

from benchmark.record import MetricResult, ResultRecord, atomic_write_bytes, read_record, verify_record

CHECKED_SUFFIXES = (".md", ".csv", ".html")
ARROW = {True: "↑", False: "↓"}
#: Metrics drawn against the bucket, in this order, when a protocol has them.
PLOT_METRICS = ("psnr", "ssim")


@dataclass
class Entry:
    record: ResultRecord
    path: Path  # where the record lies

    @property
    def primary(self) -> MetricResult:
        return self.record.metric(self.record.primary_metric)


def collect(results_dir: str | Path) -> list[Entry]:
    """Every result record under ``results_dir`` (recursively), in a stable order.

    Each record's content hash is checked against its values and companion files
    (:func:`benchmark.record.verify_record`), its protocol must be a plain name (it names output files) and no two
    records may be the same run (same content, or same model, weights and signature): an edited, copied or
    tampered record stops the build with a one-line error naming it.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise CelbenchError(f"{results_dir}: results folder not found")
    entries: list[Entry] = []
    seen: dict[tuple, Path] = {}
    for path in sorted(results_dir.rglob("*.json")):
        record = read_record(path)
        verify_record(path, record)
        safe_name(record.protocol_id, "protocol", path)
        for key in (("content", record.content_sha256),
                    ("run", record.signature, record.model, record.weights_sha256)):
            if key in seen:
                raise file_error(path, f"duplicate of {seen[key]} (same {key[0]}); keep one of them")
            seen[key] = path
        entries.append(Entry(record, path))
    if not entries:
        raise CelbenchError(f"{results_dir}: no result records (*.json) found; nothing to build")
    return entries


def _format(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ranked(entries: list[Entry]) -> list[Entry]:
    """Complete records, best first by the primary metric (its direction), ties by model name."""
    complete = [e for e in entries if e.record.status == "complete" and e.primary.value is not None]
    if not complete:
        return []
    higher = complete[0].primary.higher_is_better
    return sorted(complete, key=lambda e: ((-e.primary.value if higher else e.primary.value), e.record.model,
                                           str(e.path)))


def _sections(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Records of one protocol grouped by signature, sections in order of signature."""
    sections: dict[str, list[Entry]] = {}
    for entry in entries:
        sections.setdefault(entry.record.signature, []).append(entry)
    return dict(sorted(sections.items()))


@dataclass
class Table:
    """One signature's ranked table: header cells (with direction) and rows of display strings."""

    signature: str
    headers: list[tuple[str, bool | None]]  # (label, higher_is_better or None when not a score)
    rows: list[list[str]]
    sort_values: list[list[str]]  # numeric strings (or names) used by the HTML sorter
    record_links: list[str]
    excluded: list[tuple[str, str, str, str]]  # (model, status, reason, record link)
    example_images: list[tuple[str, str]]  # (model, image path relative to the output folder)
    plot: str | None
    entries: list[Entry]


def _table(signature: str, entries: list[Entry], out_dir: Path, protocol_id: str) -> Table:
    ranked = _ranked(entries)
    reference = (ranked or entries)[0].record
    metric_names = [m.name for m in reference.metrics]
    primary = reference.primary_metric
    bucket_keys = list(reference.metric(primary).buckets) if reference.bucket_key else []
    higher = {m.name: m.higher_is_better for m in reference.metrics}
    headers: list[tuple[str, bool | None]] = [("rank", None), ("model", None)]
    headers += [(f"{name}", higher[name]) for name in metric_names]
    headers += [(f"{primary} {reference.bucket_key}={key}", higher[primary]) for key in bucket_keys]
    headers += [("samples", None), ("s/frame", False), ("weights", None)]
    rows, sort_values, links = [], [], []
    for rank, entry in enumerate(ranked, start=1):
        record = entry.record
        cells, values = [str(rank), record.model], [str(rank), record.model]
        for name in metric_names:
            metric = record.metric(name)
            if metric.unavailable:
                cells.append("n/a")
                values.append("")
            else:
                error = f" ± {_format(metric.stderr)}" if metric.stderr is not None else ""
                cells.append(_format(metric.value) + error)
                values.append(repr(metric.value) if metric.value is not None else "")
        for key in bucket_keys:
            value = record.metric(primary).buckets.get(key)
            cells.append(_format(value))
            values.append(repr(value) if value is not None else "")
        speed = record.speed.seconds_per_frame
        cells += [str(record.samples_valid), _format(speed, 5), (record.weights_sha256 or "none")[:12]]
        values += [str(record.samples_valid), repr(speed) if speed is not None else "", record.weights_sha256 or ""]
        rows.append(cells)
        sort_values.append(values)
        links.append(os.path.relpath(entry.path, out_dir).replace(os.sep, "/"))
    excluded = []
    for entry in entries:
        if entry in ranked:
            continue
        record = entry.record
        reason = record.error or (f"{len(record.problems)} invalid outputs, first {record.problems[0].sample_id}: "
                                  f"{record.problems[0].problem}" if record.problems else "no valid samples")
        excluded.append((record.model, record.status, reason,
                         os.path.relpath(entry.path, out_dir).replace(os.sep, "/")))
    return Table(signature, headers, rows, sort_values, links, excluded, [], None, ranked)


def _asset_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _plot(table: Table, path: Path) -> bool:
    """PSNR/SSIM (or the primary metric) against the bucket, one line per ranked model."""
    entries = table.entries
    if not entries or not entries[0].record.bucket_key:
        return False
    names = [n for n in PLOT_METRICS if any(m.name == n for m in entries[0].record.metrics)] \
        or [entries[0].record.primary_metric]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        for entry in entries:
            buckets = entry.record.metric(name).buckets
            points = [(float(k), v) for k, v in buckets.items() if v is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=entry.record.model)
        metric = entries[0].record.metric(name)
        axis.set_xlabel(entries[0].record.bucket_key)
        axis.set_ylabel(f"{name} {ARROW[metric.higher_is_better]}")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(table.signature, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)
    return True


def _markdown(protocol_id: str, tables: list[Table]) -> str:
    lines = [f"# {protocol_id}", "", "Generated by `bench leaderboard build` from the result records; do not edit.",
             "Rows are ranked by the primary metric; ↑ higher is better, ↓ lower is better; ± is the standard error.",
             ""]
    for table in tables:
        lines += [f"## Signature `{table.signature}`", ""]
        if table.rows:
            header = [f"{label} {ARROW[h]}" if h is not None else label for label, h in table.headers] + ["record"]
            lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            for cells, link in zip(table.rows, table.record_links):
                lines.append("| " + " | ".join(_md_escape(c) for c in cells) + f" | [json]({_md_link(link)}) |")
            lines.append("")
        lines += _paper_view(table)
        if table.plot:
            lines += [f"![{_md_escape(table.signature)} curves]({_md_link(table.plot)})", ""]
        for model, image in table.example_images:
            lines += [f"Examples of {_md_escape(model)} (reference, target sketch, prediction, ground truth):", "",
                      f"![{_md_escape(model)}]({_md_link(image)})", ""]
        if table.excluded:
            lines += ["Not ranked:", ""]
            for model, status, reason, link in table.excluded:
                lines.append(f"- {_md_escape(model)}: **{status}** ({_md_escape(reason)}) [json]({_md_link(link)})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _strides(protocol_id: str) -> list[int]:
    """Strides S of a CMFT-style protocol (``cmft-test@S`` kinds or an ``interval`` sampler), else []."""
    from benchmark.protocol import load_protocol

    try:
        sampler = load_protocol(protocol_id).sampler
    except Exception:  # a protocol this checkout does not ship: no paper view, the main table stays
        return []
    if sampler.get("kind") == "interval":
        return list(sampler.get("strides", []))
    kinds = sampler.get("kinds", []) if sampler.get("kind") == "dataset-pairs" else []
    return [int(k.partition("@")[2]) for k in kinds if k.startswith("cmft-test@") and k.partition("@")[2].isdigit()]


def _paper_view(table: Table) -> list[str]:
    """CMFT Tables 1-3 layout: per stride S, PSNR/SSIM of frames 1..4 (iv = S, 2S, 3S, 4S)."""
    if not table.entries or table.entries[0].record.bucket_key != "interval":
        return []
    record = table.entries[0].record
    if not {"psnr", "ssim"} <= {m.name for m in record.metrics}:
        return []
    lines = []
    for stride in _strides(record.protocol_id):
        intervals = [stride * j for j in range(1, 5)]
        lines += [f"PSNR/SSIM at stride {stride} (CMFT Tables 1-3 layout):", "",
                  "| model | " + " | ".join(f"frame{j} (iv:{iv})" for j, iv in enumerate(intervals, 1)) + " |",
                  "|---|" + "---|" * len(intervals)]
        for entry in table.entries:
            psnr, ssim = entry.record.metric("psnr").buckets, entry.record.metric("ssim").buckets
            cells = [f"{_format(psnr.get(str(iv)), 2)}/{_format(ssim.get(str(iv)), 4)}" for iv in intervals]
            lines.append(f"| {_md_escape(entry.record.model)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _md_escape(text: str) -> str:
    # Markdown renderers pass raw HTML through, so escape it as well as the table separator.
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_link(link: str) -> str:
    return link.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


#: A spreadsheet runs a cell starting with one of these as a formula (``=HYPERLINK(...)``); such text cells get a
#: leading apostrophe (OWASP's CSV-injection advice). Numbers (``-0.5``) are left alone.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(_FORMULA_PREFIXES):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def _csv(tables: list[Table]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["signature", "rank", "model", "status", "metric", "bucket", "value", "stderr", "samples",
                     "seconds_per_frame", "weights_sha256", "record"])
    for table in tables:
        for rank, (entry, link) in enumerate(zip(table.entries, table.record_links), start=1):
            record = entry.record
            for metric in record.metrics:
                rows = [("all", metric.value, metric.stderr)] + [(k, v, None) for k, v in metric.buckets.items()]
                for bucket, value, stderr in rows:
                    writer.writerow([_csv_cell(c) for c in (
                        table.signature, rank, record.model, record.status, metric.name, bucket,
                        "" if value is None else repr(value), "" if stderr is None else repr(stderr),
                        record.samples_valid, record.speed.seconds_per_frame or "", record.weights_sha256 or "",
                        link)])
        for model, status, reason, link in table.excluded:
            writer.writerow([_csv_cell(c) for c in (table.signature, "", model, status, "", "", "", "", "", "", "",
                                                    link)])
    return buffer.getvalue()


_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var column = th.cellIndex;
    var body = th.closest('table').tBodies[0];
    var ascending = th.dataset.order !== 'asc';
    th.closest('tr').querySelectorAll('th').forEach(function (h) { delete h.dataset.order; });
    th.dataset.order = ascending ? 'asc' : 'desc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _html(protocol_id: str, tables: list[Table]) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>celbench leaderboard: {e(protocol_id)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}td{white-space:nowrap}td.model,th.model{text-align:left}"
             "th{cursor:pointer;background:#f4f4f4}th[data-order=asc]::after{content:' ▲'}"
             "th[data-order=desc]::after{content:' ▼'}code{font-size:90%}</style></head><body>",
             f"<h1>{e(protocol_id)}</h1>",
             "<p>Generated by <code>bench leaderboard build</code> from the result records. Click a column to sort. "
             "↑ higher is better, ↓ lower is better; ± is the standard error.</p>"]
    for table in tables:
        parts.append(f"<h2>Signature <code>{e(table.signature)}</code></h2>")
        if table.rows:
            parts.append(f'<table class="sortable" data-signature="{e(table.signature)}"><thead><tr>')
            for label, higher in table.headers:
                arrow = f" {ARROW[higher]}" if higher is not None else ""
                css = ' class="model"' if label == "model" else ""
                parts.append(f"<th{css}>{e(label)}{arrow}</th>")
            parts.append("<th>record</th></tr></thead><tbody>")
            for cells, values, link in zip(table.rows, table.sort_values, table.record_links):
                parts.append("<tr>")
                for (label, _), cell, value in zip(table.headers, cells, values):
                    css = ' class="model"' if label == "model" else ""
                    parts.append(f'<td{css} data-value="{e(value)}">{e(cell)}</td>')
                parts.append(f'<td data-value="{e(link)}"><a href="{e(link)}">json</a></td></tr>')
            parts.append("</tbody></table>")
        if table.plot:
            parts.append(f'<p><img src="{e(table.plot)}" alt="{e(table.signature)} curves"></p>')
        for model, image in table.example_images:
            parts.append(f"<h3>Examples: {e(model)}</h3><p>reference, target sketch, prediction, ground truth</p>"
                         f'<p><img src="{e(image)}" alt="{e(model)} examples"></p>')
        if table.excluded:
            parts.append("<h3>Not ranked</h3><ul>")
            for model, status, reason, link in table.excluded:
                parts.append(f'<li>{e(model)}: <b>{e(status)}</b> ({e(reason)}) <a href="{e(link)}">json</a></li>')
            parts.append("</ul>")
    parts.append(f"<script>{_SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def render(results_dir: str | Path, out_dir: str | Path) -> tuple[dict[str, str], list[tuple[Table, str]],
                                                                  list[tuple[Path, str]]]:
    """Everything a build publishes, computed without writing: text files (name -> text), plots to draw
    ``(table, relative path)`` and example grids to copy ``(record's grid, relative path)``; links are relative
    to ``out_dir``."""
    out_dir = Path(out_dir)
    entries = collect(results_dir)
    by_protocol: dict[str, list[Entry]] = {}
    for entry in entries:
        by_protocol.setdefault(entry.record.protocol_id, []).append(entry)
    texts: dict[str, str] = {}
    plots: list[tuple[Table, str]] = []
    copies: list[tuple[Path, str]] = []
    for protocol_id, protocol_entries in sorted(by_protocol.items()):
        tables = []
        for signature, section in _sections(protocol_entries).items():
            table = _table(signature, section, out_dir, protocol_id)
            assets = f"{protocol_id}/{_asset_name(signature.partition('+')[2])}"
            if table.entries and table.entries[0].record.bucket_key:
                table.plot = f"{assets}-curves.png"
                plots.append((table, table.plot))
            for entry in table.entries:
                examples = entry.record.files.get("examples")
                if not examples:
                    continue
                # only the grid bench evaluate wrote beside the record (checked by its content hash)
                if examples != f"{entry.path.stem}.examples.png":
                    raise file_error(entry.path, f"files.examples {examples!r} is not the record's own grid "
                                                 f"{entry.path.stem}.examples.png (tampered?)")
                grid = inside(entry.path.parent, examples, source=entry.path)
                if not grid.is_file():
                    continue
                image = f"{assets}-{_asset_name(entry.record.model)}-examples.png"
                table.example_images.append((entry.record.model, image))
                copies.append((grid, image))
            tables.append(table)
        for suffix, text in ((".md", _markdown(protocol_id, tables)), (".csv", _csv(tables)),
                             (".html", _html(protocol_id, tables))):
            texts[f"{protocol_id}{suffix}"] = text
    return texts, plots, copies


def build(results_dir: str | Path, out_dir: str | Path, *, images: bool = True) -> list[Path]:
    """Write every protocol's Markdown, CSV and HTML (and plots/example grids when ``images``) to
    ``out_dir``; returns the text files written. Nothing is written when a record is refused."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise file_error(out_dir, "--out exists and is not a folder")
    texts, plots, copies = render(results_dir, out_dir)
    if images:
        for table, relative in plots:
            _plot(table, inside(out_dir, relative))
        for grid, relative in copies:
            target = inside(out_dir, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(grid, target)
    written = []
    for name, text in texts.items():
        path = inside(out_dir, name)
        atomic_write_bytes(path, text.encode())
        written.append(path)
    return written


def check(results_dir: str | Path, out_dir: str | Path) -> list[str]:
    """Differences between the committed text tables in ``out_dir`` and a fresh build (empty: up to date).
    Writes nothing."""
    out_dir = Path(out_dir)
    expected = {name: text.encode() for name, text in render(results_dir, out_dir)[0].items()}
    actual = {p.name: p.read_bytes() for p in out_dir.glob("*") if p.suffix in CHECKED_SUFFIXES} \
        if out_dir.is_dir() else {}
    problems = [f"{out_dir / name}: missing (run bench leaderboard build)" for name in sorted(set(expected) - set(actual))]
    problems += [f"{out_dir / name}: no result record produces it" for name in sorted(set(actual) - set(expected))]
    problems += [f"{out_dir / name}: differs from what the records produce"
                 for name in sorted(set(expected) & set(actual)) if expected[name] != actual[name]]
    return problems
