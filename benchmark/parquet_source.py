"""The :class:`~benchmark.source.SampleSource` for datasets written by ``dataprep build``.

A thin adapter over the dataset contract (``dataprep/schemas.py``, ``docs/dataset.md``): shots are
the frames table grouped by ``(video_id, shot_id)`` in ``frame_index`` order (held frames share a
``held_group``), frames are decoded from the PNG columns, and mined pairs come from the pairs table.
The dataset is validated with ``dataprep validate``'s checks when opened, so a broken or unfinished
build is a one-line error before any model runs. Conventions converted here: the 16-bit distance
field PNG is divided by 65535 (``benchmark.data``'s encoding), sketches stay uint8 (255 = paper).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow.parquet as pq

from dataprep.errors import file_error

from benchmark.source import Frame, SampleSource, SampleSpec, Shot, empty_split_hint, kind_matches

_FRAME_META = ["frame_key", "video_id", "shot_id", "frame_index", "split", "held_group"]
_FRAME_IMAGES = ["colour", "sketch", "distance_field", "components"]
_PAIR_COLUMNS = ["pair_key", "split", "kind", "position", "reference_keys", "target_key", "interval"]
#: Distance fields are stored as 16-bit PNG; dividing by this gives benchmark.data's [0, 1] encoding.
FIELD_SCALE = 65535.0
#: Manifest entries that describe a build run, not the data: left out of the dataset hash so that
#: rebuilding the same inputs with the same config gives the same hash (and signature).
VOLATILE_MANIFEST_KEYS = ("created", "updated", "timings", "run")
VOLATILE_UNIT_KEYS = ("timings", "seconds")


def manifest_hash(manifest: dict) -> str:
    """SHA-256 of the canonical JSON of ``meta/info.json`` without its run-specific entries
    (dates, timings, executor, input paths), i.e. of the schema, config, sources' hashes, units, files
    and counts."""
    content = {k: v for k, v in manifest.items() if k not in VOLATILE_MANIFEST_KEYS}
    # where the inputs lay on the building machine is not content; their sha256 and ids are
    content["sources"] = [{k: v for k, v in source.items() if k != "path"} if isinstance(source, dict) else source
                          for source in manifest.get("sources", [])]
    content["units"] = {name: {k: v for k, v in unit.items() if k not in VOLATILE_UNIT_KEYS}
                        for name, unit in manifest.get("units", {}).items()}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ParquetSource(SampleSource):
    """Frames, shots and mined pairs of a built dataset folder (validated on open).

    Args:
        root: the dataset folder (holding ``meta/info.json``).
        validate: run the full dataset validation first (default); turn off only for datasets
            validated before, since it decodes every image once.
        cache_shards: decoded-free Arrow tables of frames shards kept in memory.
    """

    def __init__(self, root: str | Path, validate: bool = True, cache_shards: int = 2):
        from dataprep.build import shard_files
        from dataprep.validate import ValidationError, validate as validate_dataset

        self.root = Path(root)
        self.location = str(self.root)
        manifest = self.root / "meta" / "info.json"
        if not manifest.is_file():
            raise file_error(self.root, "not a celbench dataset (no meta/info.json); build one with `dataprep build`")
        if validate:
            try:
                validate_dataset(self.root)
            except ValidationError as error:
                raise file_error(self.root, f"dataset failed validation: {error}") from None
        try:
            self.manifest_hash = manifest_hash(json.loads(manifest.read_text()))
        except (ValueError, AttributeError) as error:
            raise file_error(manifest, f"unreadable manifest ({error})") from None
        self._cache_shards = cache_shards
        self._tables: OrderedDict[Path, Any] = OrderedDict()
        self._frame_rows: dict[str, tuple[Path, int]] = {}
        by_shot: dict[tuple[str, str, int], list[tuple[int, str, int]]] = defaultdict(list)
        for path in shard_files(self.root, "frames"):
            meta = pq.read_table(path, columns=_FRAME_META).to_pylist()
            for row, cells in enumerate(meta):
                self._frame_rows[cells["frame_key"]] = (path, row)
                by_shot[(cells["split"], cells["video_id"], cells["shot_id"])].append(
                    (cells["frame_index"], cells["frame_key"], cells["held_group"]))
        self._shots: dict[str, list[Shot]] = defaultdict(list)
        for (split, video_id, shot_id), frames in sorted(by_shot.items()):
            frames.sort()
            self._shots[split].append(Shot(f"{video_id}/{shot_id}", tuple(f[1] for f in frames),
                                           tuple(f[2] for f in frames)))
        self._pair_files = shard_files(self.root, "pairs")

    def shots(self, split: str) -> list[Shot]:
        if split not in self._shots:
            raise file_error(self.root, f"no frames in split {split!r}{empty_split_hint(self, split)}")
        return list(self._shots[split])

    def split_sizes(self) -> dict[str, int]:
        return {name: len(shots) for name, shots in self._shots.items()}

    def _table(self, path: Path):
        if path in self._tables:
            self._tables.move_to_end(path)
            return self._tables[path]
        table = pq.read_table(path, columns=_FRAME_IMAGES)
        self._tables[path] = table
        while len(self._tables) > self._cache_shards:
            self._tables.popitem(last=False)
        return table

    def frame(self, frame_id: str) -> Frame:
        from dataprep.imaging import decode_png

        try:
            path, row = self._frame_rows[frame_id]
        except KeyError:
            raise file_error(self.root, f"missing frame {frame_id}") from None
        cells = self._table(path).slice(row, 1).to_pylist()[0]
        field = decode_png(cells["distance_field"]["bytes"]).astype(np.float32) / FIELD_SCALE
        return Frame(colour=decode_png(cells["colour"]["bytes"]), sketch=decode_png(cells["sketch"]["bytes"]),
                     field=field, components=decode_png(cells["components"]["bytes"]))

    def pairs(self, split: str, kinds: Sequence[str]) -> list[SampleSpec]:
        samples = []
        for path in self._pair_files:
            for row in pq.read_table(path, columns=_PAIR_COLUMNS).to_pylist():
                if row["split"] != split or not kind_matches(row["kind"], kinds):
                    continue
                attributes: dict[str, Any] = {"kind": row["kind"], "interval": row["interval"],
                                              "position": row["position"]}
                stride = row["kind"].partition("@")[2]
                if stride.isdigit():
                    attributes["stride"] = int(stride)
                samples.append(SampleSpec(row["pair_key"], tuple(row["reference_keys"]), row["target_key"],
                                          attributes))
        return samples

    def close(self) -> None:
        self._tables.clear()
