"""The dataset folder's manifest and shard listing: what every reader and the builder agree on.

Layout of a dataset folder (see ``docs/dataset.md``; the tables' columns are in :mod:`dataprep.dataset.schemas`)::

    meta/info.json                      the manifest: schema version, config + hash, sources, units, counts
    meta/lock.json                      while a build writes: who runs it (dataprep.storage.BuildLock)
    meta/shots/<video_id>.json          shot detection result per source (cached for resumed builds)
    meta/units/<unit>.done.json         completion marker of a unit: its files, their sha256 and counts
    data/frames/<unit>.<nnn>.parquet    frames table shards
    data/pairs/<unit>.<nnn>.parquet     pairs table shards

A shard belongs to the dataset only when the manifest lists it under a unit whose status is ``done``, with its
sha256. Unit keys and shard names are plain file names (:func:`check_manifest_structure`), so a tampered manifest
cannot lead a reader or the builder outside the folder. The builder reads and writes the manifest through
:class:`dataprep.storage.Storage`, so the folder may be a URL.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dataprep.errors import CelbenchError, file_error
from dataprep.hashing import sha256_stream
from dataprep.paths import safe_name
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
            data = json.loads(storage.read_text(MANIFEST))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise file_error(storage / MANIFEST, f"unreadable manifest ({error})") from None
        check_manifest_structure(storage / MANIFEST, data)
        return cls(out, data)

    def save(self) -> None:
        self.data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.storage.write_text(MANIFEST, json.dumps(self.data, indent=1, sort_keys=False))


def check_manifest_structure(path: str | os.PathLike, data: Any) -> None:
    """Refuse a manifest whose shape is wrong or whose unit keys / shard names are not plain file names.

    Those names become paths (``data/<table>/<name>``, ``meta/units/<key>.done.json``) that are read and deleted;
    checking them here, where every reader loads the manifest, keeps a tampered manifest inside ``out``.
    """
    def bad(problem: str) -> CelbenchError:
        return file_error(path, f"malformed manifest: {problem}")

    if not isinstance(data, dict):
        raise bad("top level is not a JSON object")
    for key, kind in (("units", dict), ("sources", list), ("counts", dict), ("config", dict)):
        if key in data and not isinstance(data[key], kind):
            raise bad(f"{key} is not a JSON {'object' if kind is dict else 'array'}")
    if not all(isinstance(s, dict) and isinstance(s.get("sha256"), str) for s in data.get("sources", [])):
        raise bad("every source needs a sha256")
    for key, unit in data.get("units", {}).items():
        safe_name(key, "unit key", path)
        if not isinstance(unit, dict):
            raise bad(f"unit {key} is not a JSON object")
        files = unit.get("files", {} if unit.get("status") != "done" else None)
        if not isinstance(files, dict) or (unit.get("status") == "done" and set(files) != set(TABLES)):
            raise bad(f"unit {key} lists no frames/pairs files")
        for table, names in files.items():
            if table not in TABLES or not isinstance(names, list):
                raise bad(f"unit {key}: files.{table} is not a list of shard names")
            for name in names:
                safe_name(name, "shard file name", path)
        if not isinstance(unit.get("counts", {}), dict):
            raise bad(f"unit {key}: counts is not a JSON object")
        hashes = unit.get("sha256", {})
        if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
            raise bad(f"unit {key}: sha256 is not a JSON object of hex digests")


def shard_hashes(out: str | os.PathLike | Storage, files: dict[str, list[str]]) -> dict[str, str]:
    """``{"<table>/<shard name>": sha256}`` of a unit's shards (in a folder or under a URL): stored in its marker
    and the manifest, checked by ``dataprep validate`` (so an edited frame is caught) and part of the dataset hash
    in result signatures."""
    storage = Storage(out)
    return {f"{table}/{name}": sha256_stream(storage.open(f"data/{table}/{name}")) for table, names in files.items()
            for name in names}


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
