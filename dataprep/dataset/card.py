"""The dataset card: ``README.md`` at the root of every built dataset.

Its YAML front matter is the Hugging Face ``configs:`` block (one config per table, ``data_files`` per split),
so ``datasets.load_dataset(DIR, "pairs")`` and ``datasets.load_dataset(DIR, "frames", split="test")`` load one
table each; without it ``datasets`` would read every Parquet file as one table and stop at the first column
that differs. A split is a set of files because every shard holds one split (``<unit>.<split>.<nnn>.parquet``,
:class:`dataprep.build.shards.SplitShardWriter`). Image columns need no feature block here: the Parquet schema
metadata carries the ``Image`` features (:mod:`dataprep.dataset.schemas`). The body says what the dataset holds
(counts per split, sources with their SHA-256, the config hash), how to load it, and lists every field with
its meaning.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from dataprep.config import SPLITS
from dataprep.dataset.manifest import shard_split
from dataprep.dataset.schemas import IMAGE, SCHEMAS
from dataprep.storage import Storage

CARD = "README.md"
#: The config ``load_dataset(DIR)`` picks when none is named.
DEFAULT_CONFIG = "pairs"


def card_configs(manifest: dict) -> list[dict]:
    """The ``configs:`` entries: per table, a ``data_files`` glob for each split that has shards (a split
    without files would make ``datasets`` fail on an empty pattern)."""
    files: dict[str, set[str]] = {table: set() for table in SCHEMAS}
    for unit in manifest.get("units", {}).values():
        if unit.get("status") != "done":
            continue
        for table, names in unit.get("files", {}).items():
            files[table].update(split for split in map(shard_split, names) if split is not None)
    configs = []
    for table in SCHEMAS:
        data_files = [{"split": split, "path": f"data/{table}/*.{split}.*.parquet"}
                      for split in SPLITS if split in files[table]]
        if data_files:
            configs.append({"config_name": table, "data_files": data_files,
                            **({"default": True} if table == DEFAULT_CONFIG else {})})
    return configs


def _yaml(configs: list[dict]) -> str:
    # Written by hand (not yaml.dump) so the block reads like the examples in the Hub's documentation.
    lines = ["configs:"]
    for config in configs:
        lines.append(f"- config_name: {config['config_name']}")
        if config.get("default"):
            lines.append("  default: true")
        lines.append("  data_files:")
        for entry in config["data_files"]:
            lines += [f"  - split: {entry['split']}", f"    path: \"{entry['path']}\""]
    return "\n".join(lines)


def _type_name(field: pa.Field) -> str:
    return "image (PNG)" if field.type == IMAGE else str(field.type).replace("|", "\\|")


def card_text(manifest: dict) -> str:
    """The card (Markdown with YAML front matter) for a dataset with this manifest (``meta/info.json``)."""
    configs = card_configs(manifest)
    counts = manifest.get("counts", {})
    sources = manifest.get("sources", [])
    names = ", ".join(Path(str(s.get("path") or s.get("video_id"))).name for s in sources) or "no sources"
    lines = ["---", "pretty_name: celbench line-art colourisation dataset", "tags:", "- anime", "- line-art",
             "- colorization", "- celbench", _yaml(configs) if configs else "configs: []", "---", "",
             f"# celbench dataset: {names}", "",
             f"Built by `dataprep build` (celbench {manifest.get('toolkit_version', '?')}, schema "
             f"{manifest.get('schema_version')}, config hash `{str(manifest.get('config_hash'))[:12]}`; the full "
             "config and per-unit records are in `meta/info.json`). Status: "
             f"**{manifest.get('status', '?')}**. Format: `docs/dataset.md` of celbench.", "",
             "| split | frames | pairs |", "|---|---|---|"]
    for split, values in counts.get("splits", {}).items():
        if values.get("frames") or values.get("pairs"):
            lines.append(f"| {split} | {values.get('frames', 0)} | {values.get('pairs', 0)} |")
    lines += ["", "Pairs by kind: " + (", ".join(f"`{k}` {v}" for k, v in counts.get("pairs_by_kind", {}).items())
                                       or "none") + ".", "", "## Sources", "",
              "| source | video_id | sha256 | frames decoded | shots kept |", "|---|---|---|---|---|"]
    for s in sources:
        lines.append(f"| {Path(str(s.get('path') or '')).name or '-'} | `{s.get('video_id')}` | "
                     f"`{str(s.get('sha256'))[:16]}...` | {s.get('n_frames', '-')} | {s.get('kept_shots', '-')} |")
    first = configs[0]["data_files"][0]["split"] if configs else "test"
    lines += ["", "## Load it", "", "```python", "import datasets", "",
              f'pairs = datasets.load_dataset("DIR", "pairs", split="{first}")',
              f'frames = datasets.load_dataset("DIR", "frames", split="{first}")',
              'row_of = {key: i for i, key in enumerate(frames["frame_key"])}',
              "pair = pairs[0]",
              'reference = frames[row_of[pair["reference_keys"][0]]]["colour"]  # PIL image, RGB',
              'target_sketch = frames[row_of[pair["target_key"]]]["sketch"]',
              "```", "",
              "A pair names its frames by key (`reference_keys`, `target_key` = `frame_key` of `frames`); "
              "celbench's `docs/dataset.md` shows the same join in pandas and pyarrow, and "
              "`benchmark.data.PairDataset(DIR)` gives ready PyTorch tensors.", ""]
    for table, schema in SCHEMAS.items():
        lines += [f"## `{table}` fields", "", "| field | type | meaning |", "|---|---|---|"]
        for f in schema:
            doc = (f.metadata or {}).get(b"doc", b"").decode()
            lines.append(f"| `{f.name}` | `{_type_name(f)}` | {doc} |")
        lines.append("")
    return "\n".join(lines)


def write_card(out: "str | os.PathLike | Storage", manifest: dict) -> str:
    """Write ``out/README.md`` (a folder or a URL; through a temporary file, so a reader never sees half a
    card); returns where."""
    storage = Storage(out)
    storage.write_text(CARD, card_text(manifest))
    return storage / CARD


__all__ = ["CARD", "card_configs", "card_text", "write_card"]
