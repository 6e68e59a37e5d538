"""The dataset folder's manifest and shard listing: what every reader and the builder agree on.

Layout of a dataset folder (see ``docs/dataset.md``; the tables' columns are in :mod:`dataprep.dataset.schemas`)::

    meta/info.json                      the manifest: schema version, config + hash, sources, units, counts
    meta/lock.json                      while a build writes: who runs it (dataprep.storage.BuildLock)
    meta/shots/<video_id>.json          shot detection result per source (cached for resumed builds)
    meta/units/<unit>.done.json         completion marker of a unit: its files and counts
    data/frames/<unit>.<nnn>.parquet    frames table shards
    data/pairs/<unit>.<nnn>.parquet     pairs table shards

A shard belongs to the dataset only when the manifest lists it under a unit whose status is ``done``.
The builder reads and writes the manifest through :class:`dataprep.storage.Storage`, so the folder may be a URL.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from dataprep.errors import file_error
from dataprep.storage import Storage

MANIFEST = "meta/info.json"
TABLES = ("frames", "pairs")
#: Manifest entries that describe a build run, not the data: left out of the dataset hash so that
#: rebuilding the same inputs with the same config gives the same hash (and signature).
VOLATILE_MANIFEST_KEYS = ("created", "updated", "timings", "run")
VOLATILE_UNIT_KEYS = ("timings", "seconds")


class Manifest:
    """``meta/info.json``, rewritten atomically after every change so an interrupted build leaves a valid one."""

    def __init__(self, out: str | os.PathLike | Storage, data: dict):
        self.out, self.data = out, data
        self.storage = Storage(out)

    @classmethod
    def load(cls, out: str | os.PathLike | Storage) -> "Manifest | None":
        """The manifest of dataset folder (or URL) ``out``; None when it has none; one-line error when unreadable."""
        storage = Storage(out)
        if not storage.exists(MANIFEST):
            return None
        try:
            return cls(out, json.loads(storage.read_text(MANIFEST)))
        except (OSError, json.JSONDecodeError) as error:
            raise file_error(storage / MANIFEST, f"unreadable manifest ({error})") from None

    def save(self) -> None:
        self.data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.storage.write_text(MANIFEST, json.dumps(self.data, indent=1, sort_keys=False))


def shard_files(out: Path, table: str) -> list[Path]:
    """The finished shards of ``table`` ('frames' or 'pairs') listed by the manifest's done units, sorted."""
    manifest = Manifest.load(out)
    if manifest is None:
        raise file_error(out, "not a celbench dataset (no meta/info.json)")
    files = []
    for unit in manifest.data["units"].values():
        if unit.get("status") == "done":
            files += [out / "data" / table / f for f in unit["files"][table]]
    return sorted(files)


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
