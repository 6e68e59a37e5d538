"""``dataprep validate``: check a built dataset against its manifest and :mod:`dataprep.dataset.schemas`.

Checks, in order (the first problem found is reported): the manifest exists, has this schema version and says the
build is complete; every file of every done unit exists, has the sha256 the manifest records for it (so a repainted
frame, a valid PNG, is caught), is readable Parquet with exactly the table's schema;
every PNG cell decodes with the expected channels and bit depth at the row's width x height; row counts equal
the manifest's per-unit counts; frame keys are unique; every pair's references and target exist, in the pair's
shot and split; no file under data/ is unaccounted for.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from dataprep.dataset.manifest import Manifest, shard_split
from dataprep.dataset.reader import read_shard
from dataprep.errors import CelbenchError, file_error
from dataprep.hashing import sha256_file
from dataprep.imaging import decode_png
from dataprep.dataset.schemas import IMAGE_COLUMNS, IMAGE_FORMATS, READABLE_SCHEMAS, schema_version_of


class ValidationError(Exception):
    """The dataset is invalid; the message names the file and the problem."""


def _check_png(data: bytes | None, column: str, width: int, height: int, where: str) -> None:
    if data is None:
        raise ValidationError(f"{where}: {column} is empty")
    try:
        image = decode_png(data)
    except ValueError:
        raise ValidationError(f"{where}: {column} is not a decodable PNG") from None
    channels, depth = IMAGE_FORMATS[column]
    got_channels = 1 if image.ndim == 2 else image.shape[2]
    got_depth = 16 if image.dtype == np.uint16 else 8
    if (got_channels, got_depth) != (channels, depth):
        raise ValidationError(f"{where}: {column} has {got_channels} channel(s) at {got_depth} bit, "
                              f"expected {channels} at {depth}")
    if image.shape[:2] != (height, width):
        raise ValidationError(f"{where}: {column} is {image.shape[1]}x{image.shape[0]}, row says {width}x{height}")


def validate(out: str | Path) -> dict:
    """Validate the dataset in ``out``; returns the counts seen. Raises :class:`ValidationError`."""
    try:
        return _validate(Path(out))
    except (KeyError, TypeError, AttributeError) as error:  # a manifest or table of the right types but odd shape
        raise ValidationError(f"{out}: malformed dataset ({type(error).__name__}: {error})") from None


def _validate(out: Path) -> dict:
    manifest = Manifest.load(out)
    if manifest is None:
        raise ValidationError(f"{out}: not a celbench dataset (no meta/info.json)")
    data = manifest.data
    version = data.get("schema_version")
    if version not in READABLE_SCHEMAS:
        raise ValidationError(f"{out / 'meta/info.json'}: schema version {version}, "
                              f"this toolkit reads {', '.join(READABLE_SCHEMAS)}")
    bad = {k: u for k, u in data["units"].items() if u.get("status") != "done"}
    if bad:
        key, unit = sorted(bad.items())[0]
        raise ValidationError(f"{out}: build incomplete: unit {key} is {unit.get('status')}"
                              + (f" ({unit['error']})" if unit.get("error") else "")
                              + f"; {len(bad)} unit(s) not done, rerun dataprep build --resume")
    frame_split: dict[str, tuple[str, int, str]] = {}
    seen_files: set[Path] = set()
    totals: Counter = Counter()
    pair_rows = []
    for key, unit in sorted(data["units"].items()):
        counts = unit.get("counts", {})
        for table in ("frames", "pairs"):
            rows = 0
            for name in unit["files"][table]:
                path = out / "data" / table / name
                seen_files.add(path)
                if not path.exists():
                    raise ValidationError(f"{path}: missing (listed by unit {key})")
                try:
                    content = read_shard(path, table)
                    shard_version = schema_version_of(pq.read_schema(path))
                except CelbenchError as error:
                    raise ValidationError(str(error)) from None
                if shard_version != version:
                    raise ValidationError(f"{path}: schema version {shard_version}, the manifest says {version}")
                rows += content.num_rows
                columns = content.to_pydict()
                named_split = shard_split(name)
                if named_split is not None and set(columns["split"]) - {named_split}:
                    raise ValidationError(f"{path}: holds rows of split {sorted(set(columns['split']) - {named_split})[0]!r}, "
                                          f"its name says {named_split!r}")
                for i in range(content.num_rows):
                    if table == "frames":
                        where = f"{path} row {i} ({columns['frame_key'][i]})"
                        w, h = columns["width"][i], columns["height"][i]
                        fk = columns["frame_key"][i]
                        if fk in frame_split:
                            raise ValidationError(f"{where}: duplicate frame_key")
                        frame_split[fk] = (columns["video_id"][i], columns["shot_id"][i], columns["split"][i])
                        table_ids = [c["id"] for c in columns["component_table"][i]]
                        if len(set(table_ids)) != len(table_ids):
                            raise ValidationError(f"{where}: duplicate component ids")
                        parts = columns["component_parts"][i]
                        if parts is not None and len(parts) != len(table_ids):
                            raise ValidationError(f"{where}: {len(parts)} component parts for "
                                                  f"{len(table_ids)} components")
                    else:
                        where = f"{path} row {i} ({columns['pair_key'][i]})"
                        w = h = None
                        pair_rows.append((where, columns["reference_keys"][i], columns["target_key"][i],
                                          columns["video_id"][i], columns["shot_id"][i], columns["split"][i]))
                    for column in IMAGE_COLUMNS[table]:
                        cell = columns[column][i]
                        if table == "pairs" and w is None:
                            try:
                                first = decode_png(cell["bytes"]) if cell else None
                            except ValueError:
                                raise ValidationError(f"{where}: {column} is not a decodable PNG") from None
                            if first is None:
                                raise ValidationError(f"{where}: {column} is empty")
                            h, w = first.shape[:2]
                        _check_png(cell["bytes"] if cell else None, column, w, h, where)
            expected = (counts.get("frames", 0) if table == "frames"
                        else sum(v for k, v in counts.items() if k.startswith("pairs:")))
            if rows != expected:
                raise ValidationError(f"{out}: unit {key} has {rows} {table} rows, manifest says {expected}")
            # Last, so a broken file gets the more telling message above; a valid file changed since (a repainted
            # frame) is caught here.
            for name in unit["files"][table]:
                path = out / "data" / table / name
                expected_sha = unit.get("sha256", {}).get(f"{table}/{name}")
                if expected_sha is None:
                    raise ValidationError(f"{path}: the manifest records no sha256 for it (built by an older "
                                          "celbench, or edited; rebuild it)")
                if sha256_file(path) != expected_sha:
                    raise ValidationError(f"{path}: sha256 differs from the manifest's (changed after the build)")
            totals[table] += rows
    for where, refs, target, video, shot, split in pair_rows:
        for k in list(refs) + [target]:
            if k not in frame_split:
                raise ValidationError(f"{where}: refers to missing frame {k}")
            if frame_split[k] != (video, shot, split):
                raise ValidationError(f"{where}: frame {k} is in another shot or split")
    for table in ("frames", "pairs"):
        directory = out / "data" / table
        if directory.is_dir():
            for path in directory.iterdir():
                if path not in seen_files:
                    raise ValidationError(f"{path}: not listed by the manifest (leftover of an interrupted unit?)")
    counts = data.get("counts", {})
    for table in ("frames", "pairs"):
        if counts.get(table) != totals[table]:
            raise ValidationError(f"{out / 'meta/info.json'}: counts.{table} = {counts.get(table)}, "
                                  f"files hold {totals[table]}")
    return dict(totals)


def verify_shards(out: str | Path) -> None:
    """The quick check a reader makes before trusting a dataset (``bench train``): the manifest is sound, the
    build complete, and every shard it lists is there with its recorded sha256. Hashing only, no decoding: a
    truncated or changed shard is a one-line :class:`ValidationError` before any training step.
    """
    out = Path(out)
    manifest = Manifest.load(out)
    if manifest is None:
        raise ValidationError(f"{out}: not a celbench dataset (no meta/info.json)")
    for key, unit in sorted(manifest.data.get("units", {}).items()):
        if unit.get("status") != "done":
            raise ValidationError(f"{out}: build incomplete: unit {key} is {unit.get('status')}; "
                                  "rerun dataprep build --resume")
        for table, names in unit["files"].items():
            for name in names:
                path = out / "data" / table / name
                if not path.is_file():
                    raise ValidationError(f"{path}: missing (listed by unit {key})")
                if sha256_file(path) != unit.get("sha256", {}).get(f"{table}/{name}"):
                    raise ValidationError(f"{path}: sha256 differs from the manifest's (truncated or changed "
                                          "after the build; dataprep validate tells more)")


def check_dataset_dir(out: str | Path) -> Path:
    out = Path(out)
    if not out.is_dir():
        raise file_error(out, "no such dataset folder")
    return out
