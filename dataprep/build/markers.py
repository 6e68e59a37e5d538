"""Completion markers of units (datatrove-style): what makes a build resumable.

A unit's marker ``meta/units/<unit>.done.json`` is written after its last shard, listing its files, their sha256,
counts and timings; a unit without a valid marker (missing, unreadable, tampered, or a listed shard missing or
changed) is redone from scratch, its leftovers deleted first, so a resumed build neither loses nor duplicates rows.
"""

from __future__ import annotations

import json
from typing import Any

from dataprep.dataset.manifest import check_manifest_structure, shard_hashes
from dataprep.errors import CelbenchError
from dataprep.paths import safe_name
from dataprep.storage import Storage

#: What a marker holds besides the unit's name; the same keys go into the manifest's entry of a done unit.
MARKER_KEYS = ("files", "sha256", "counts", "timings", "seconds")


def marker_name(unit: str) -> str:
    """The marker's path inside the dataset folder."""
    return f"meta/units/{unit}.done.json"


def write_marker(out: Storage, unit: str, done: dict[str, Any]) -> None:
    """Mark ``unit`` complete (its shards are all committed): ``done`` holds ``unit`` and :data:`MARKER_KEYS`."""
    out.write_text(marker_name(unit), json.dumps(done, indent=1))


def read_marker(out: Storage, unit: str) -> dict[str, Any] | None:
    """The marker of a complete unit, or None when the unit must be redone.

    The marker is the truth: it is written after the unit's last shard, so a unit whose marker exists is
    complete even when the build was killed before recording it in the manifest. Its shards are hashed again:
    one missing, changed or truncated since (disk fault, an edit) makes the unit redone.
    """
    marker = marker_name(unit)
    if not out.exists(marker):
        return None
    try:
        done = json.loads(out.read_text(marker))
        if not isinstance(done, dict) or not set(MARKER_KEYS) <= set(done):
            return None
        check_manifest_structure(out / marker, {"units": {unit: {**done, "status": "done"}}})
        if shard_hashes(out, done["files"]) != done["sha256"]:
            return None
    except (OSError, ValueError, CelbenchError):
        return None  # unreadable or tampered marker or shard: the unit is redone (its files deleted first)
    return done


def remove_unit_files(out: Storage, unit: str) -> None:
    """Delete every shard, temporary file and marker a unit may have left.

    ``unit`` may come from a manifest: it is checked to be a plain name first, so a tampered key cannot reach
    ``glob``/``remove`` outside ``out``.
    """
    safe_name(unit, "unit key", out / "meta/info.json")
    for name in (out.glob("data/frames", f"{unit}.") + out.glob("data/pairs", f"{unit}.")
                 + out.glob("meta/units", f"{unit}.done.json")):
        out.remove(name)

