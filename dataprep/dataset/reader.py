"""The one reader of built datasets: frame index, lazy image decode, a small LRU of shards.

``bench evaluate`` (:class:`benchmark.parquet_source.ParquetSource`), ``bench train``
(:class:`benchmark.data.PairDataset`) and ``dataprep info`` read a dataset folder through
:class:`DatasetReader`; none of them lists shards or decodes columns itself. ``dataprep validate`` and the dataset
report read whole shards through :func:`read_shard`, the reader's own shard access, which checks each shard's
schema against the contract (:data:`dataprep.dataset.schemas.SCHEMAS`).

Frames are found through an index of frame keys -> (shard, row) built from the small metadata columns only;
image columns are read shard by shard on demand and the last ``cache_shards`` kept as Arrow tables (still
PNG-encoded), so memory stays bounded for large datasets while consecutive samples, which refer to frames of
one unit, hit the same shard. No torch here: images come back as the stored numpy arrays.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.dataset.manifest import Manifest, manifest_hash, shard_files
from dataprep.dataset.schemas import READABLE_SCHEMAS, SCHEMAS, same_fields, schema_version_of
from dataprep.errors import CelbenchError, file_error
from dataprep.imaging import decode_png

#: Frames-table columns that describe a frame (read for the index); the rest are images, read lazily.
FRAME_META = ("frame_key", "video_id", "shot_id", "frame_index", "split", "held_group", "width", "height")
FRAME_IMAGES = ("colour", "sketch", "distance_field", "components")
#: Read with the images: each component's part, when the source gave part maps (null otherwise and before 1.1).
FRAME_PARTS = "component_parts"


def read_shard(path: str | Path, table: str, columns: Sequence[str] | None = None) -> pa.Table:
    """One shard of ``table`` ('frames' or 'pairs'): its ``columns`` (default all) as an Arrow table, image cells
    still PNG-encoded (``{"bytes": ...}``).

    The shard's schema must equal the table's schema of the version its metadata names, one of
    :data:`dataprep.dataset.schemas.READABLE_SCHEMAS` (the current one: :data:`~dataprep.dataset.schemas.SCHEMAS`);
    a mismatch or an unreadable file is a one-line :class:`~dataprep.errors.CelbenchError` naming the file. A
    column added since the shard's version comes back as nulls, so the result always has the current schema's
    columns (all of them when ``columns`` is None).
    """
    try:
        parquet = pq.ParquetFile(path)
        version = schema_version_of(parquet.schema_arrow)
        expected = READABLE_SCHEMAS.get(version or "", {}).get(table)
        if expected is None or not same_fields(parquet.schema_arrow, expected):
            raise file_error(path, f"schema differs from dataprep.dataset.schemas.{table.upper()}"
                             + (f" (schema version {version}; readable: {', '.join(READABLE_SCHEMAS)})"
                                if expected is None else ""))
        wanted = list(columns) if columns is not None else SCHEMAS[table].names
        present = [name for name in wanted if name in expected.names]
        cells = parquet.read(columns=present)
        for name in wanted:
            if name not in expected.names:  # added after the shard's version: nulls, at the current position
                field = SCHEMAS[table].field(name)
                cells = cells.add_column(wanted.index(name), field, pa.nulls(cells.num_rows, field.type))
        return cells
    except CelbenchError:
        raise
    except Exception as error:
        raise file_error(path, f"unreadable Parquet ({str(error).splitlines()[0]})") from None


@dataclass(frozen=True)
class StoredFrame:
    """One frame's images as stored (PNG-decoded, no rescaling).

    Attributes:
        colour: (H, W, 3) uint8 sRGB.
        sketch: (H, W) uint8 line art, 255 = paper, 0 = line.
        field: (H, W) uint16 distance field as stored; :func:`dataprep.field.decode_field` gives [0, 1].
        components: (H, W) uint16 component labels, 0 = line pixels.
        parts: None, or (N + 1,) int64 from ``component_parts``: entry ``c`` = the part of component ``c``
            (-1 = background; entry 0, the line label, is -2 = no part), the layout of
            :func:`dataprep.video.line_art.region_parts`. None when the frame has no part map (and in datasets
            of schema 1.0).
    """

    colour: np.ndarray
    sketch: np.ndarray
    field: np.ndarray
    components: np.ndarray
    parts: np.ndarray | None = None


class DatasetReader:
    """Read access to a dataset folder written by ``dataprep build``.

    Args:
        root: the dataset folder (holding ``meta/info.json``).
        cache_shards: frames shards kept in memory as Arrow tables (PNG bytes, not decoded pixels).

    Attributes:
        manifest: the parsed ``meta/info.json``.
        manifest_hash: :func:`dataprep.dataset.manifest.manifest_hash` of it (the dataset's identity).
        frames: one dict per frame row with the :data:`FRAME_META` columns, in shard order.
    """

    def __init__(self, root: str | Path, cache_shards: int = 2):
        self.root = Path(root)
        manifest = Manifest.load(self.root)
        if manifest is None:
            raise file_error(self.root, "not a celbench dataset (no meta/info.json); build one with `dataprep build`")
        self.manifest = manifest.data
        try:
            self.manifest_hash = manifest_hash(self.manifest)
        except (TypeError, ValueError, AttributeError) as error:
            raise file_error(self.root / "meta" / "info.json", f"unreadable manifest ({error})") from None
        self.cache_shards = cache_shards
        self._tables: OrderedDict[tuple[Path, tuple[str, ...]], Any] = OrderedDict()
        self._frame_rows: dict[str, tuple[Path, int]] = {}
        self.frames: list[dict[str, Any]] = []
        for path in shard_files(self.root, "frames"):
            for row, cells in enumerate(read_shard(path, "frames", FRAME_META).to_pylist()):
                self._frame_rows[cells["frame_key"]] = (path, row)
                self.frames.append(cells)
        self.pair_files = shard_files(self.root, "pairs")

    def _table(self, path: Path, table: str, columns: Sequence[str]):
        key = (path, tuple(columns))
        if key in self._tables:
            self._tables.move_to_end(key)
            return self._tables[key]
        cells = read_shard(path, table, columns)
        self._tables[key] = cells
        while len(self._tables) > self.cache_shards:
            self._tables.popitem(last=False)
        return cells

    def __contains__(self, frame_key: str) -> bool:
        return frame_key in self._frame_rows

    def frame(self, frame_key: str) -> StoredFrame:
        """The decoded images of frame ``frame_key``; a one-line error names a missing frame."""
        try:
            path, row = self._frame_rows[frame_key]
        except KeyError:
            raise file_error(self.root, f"missing frame {frame_key}") from None
        cells = self._table(path, "frames", (*FRAME_IMAGES, FRAME_PARTS)).slice(row, 1).to_pylist()[0]
        parts = cells[FRAME_PARTS]
        return StoredFrame(colour=decode_png(cells["colour"]["bytes"]), sketch=decode_png(cells["sketch"]["bytes"]),
                           field=decode_png(cells["distance_field"]["bytes"]),
                           components=decode_png(cells["components"]["bytes"]),
                           parts=None if parts is None else np.array([-2, *parts], dtype=np.int64))

    def pairs(self, columns: Sequence[str]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
        """``(shard, row, cells)`` for every row of the pairs table, reading only ``columns``."""
        for path in self.pair_files:
            for row, cells in enumerate(read_shard(path, "pairs", columns).to_pylist()):
                yield path, row, cells

    def pair_hints(self, path: Path, row: int) -> np.ndarray:
        """(H, W, 4) float32 hints of one pair: RGB hint colours in [0, 1] and the mask (1 = hint)."""
        cells = self._table(path, "pairs", ("hints", "hint_mask")).slice(row, 1).to_pylist()[0]
        colour = decode_png(cells["hints"]["bytes"]).astype(np.float32) / 255.0
        mask = (decode_png(cells["hint_mask"]["bytes"]) > 0).astype(np.float32)
        return np.concatenate([colour, mask[..., None]], axis=-1)

    def close(self) -> None:
        self._tables.clear()
