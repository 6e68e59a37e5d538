"""Parquet shards of a unit: rows streamed into files of bounded size, each committed whole."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from dataprep.storage import Storage


class ShardWriter:
    """Streams rows of one table into ``<folder>/<unit>.<nnn>.parquet`` shards of at most ``shard_size`` rows
    (``folder`` in ``storage``).

    Each shard is written as ``<name>.tmp`` and committed (renamed) when closed, so a reader never sees half a
    file.
    """

    ROW_GROUP = 64  # rows buffered before a row group is written: bounds memory, keeps reads efficient

    def __init__(self, storage: Storage, folder: str, unit: str, schema: pa.Schema, shard_size: int):
        self.storage, self.folder, self.unit, self.schema, self.shard_size = storage, folder, unit, schema, shard_size
        storage.makedirs(folder)
        self.files: list[str] = []
        self.rows = 0
        self._buffer: list[dict] = []
        self._writer: pq.ParquetWriter | None = None
        self._tmp: str | None = None
        self._in_shard = 0

    def add(self, row: dict) -> None:
        self._buffer.append(row)
        self.rows += 1
        self._in_shard += 1
        if len(self._buffer) >= self.ROW_GROUP or self._in_shard >= self.shard_size:
            self._flush()
        if self._in_shard >= self.shard_size:
            self._close_shard()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self._tmp = f"{self.folder}/{self.unit}.{len(self.files):03d}.parquet.tmp"
            self._writer = pq.ParquetWriter(self.storage.path(self._tmp), self.schema, compression="zstd",
                                            filesystem=self.storage.arrow_filesystem)
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        self._writer.write_table(table)
        self._buffer = []

    def _close_shard(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            final = self._tmp[: -len(".tmp")]
            self.storage.commit(self._tmp, final)
            self.files.append(final.rpartition("/")[2])
            self._writer, self._tmp = None, None
        self._in_shard = 0

    def close(self) -> list[str]:
        self._close_shard()
        return self.files

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
        if self._tmp is not None:
            self.storage.remove(self._tmp)


class SplitShardWriter:
    """A :class:`ShardWriter` per split: rows go to ``<folder>/<unit>.<split>.<nnn>.parquet``, so every shard
    holds one split and a split is a set of files (what the dataset card's ``data_files`` name for
    Hugging Face ``datasets``)."""

    def __init__(self, storage: Storage, folder: str, unit: str, schema: pa.Schema, shard_size: int):
        self.storage, self.folder, self.unit, self.schema, self.shard_size = storage, folder, unit, schema, shard_size
        self._writers: dict[str, ShardWriter] = {}

    def add(self, row: dict) -> None:
        split = row["split"]
        if split not in self._writers:
            self._writers[split] = ShardWriter(self.storage, self.folder, f"{self.unit}.{split}", self.schema,
                                               self.shard_size)
        self._writers[split].add(row)

    def close(self) -> list[str]:
        return sorted(name for writer in self._writers.values() for name in writer.close())

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.abort()

