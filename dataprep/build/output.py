"""The output folder before and after a build: refuse to mix datasets, set aside what ``--overwrite`` replaces,
give it back when the rebuild fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dataprep.build.sources import Source
from dataprep.config import BuildConfig, config_hash
from dataprep.dataset.manifest import Manifest
from dataprep.dataset.schemas import SCHEMA_VERSION
from dataprep.errors import file_error
from dataprep.storage import BuildLock, Storage


def dataset_identity(config: BuildConfig, sources: Sequence[Source]) -> dict:
    """What makes two builds the same dataset (``config_hash``, ``sources``), plus what explains a mismatch."""
    return {"config_hash": config_hash(config), "sources": sorted(s.sha256 for s in sources),
            "config": config.to_dict(), "source_names": {s.sha256: Path(s.path).name for s in sources}}


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def difference(existing: dict, identity: dict) -> str:
    """How the existing dataset (its manifest) differs from the requested build, in words:
    the config keys that differ (existing value -> requested), or the sources on one side only."""
    old_sources = {s.get("sha256"): Path(str(s.get("path", s.get("video_id")))).name
                   for s in existing.get("sources", [])}
    new_sources = identity["source_names"]
    if set(old_sources) != set(new_sources):
        parts = []
        if only_old := [old_sources[k] for k in old_sources if k not in new_sources]:
            parts.append(f"only the existing dataset has {', '.join(sorted(only_old))}")
        if only_new := [new_sources[k] for k in new_sources if k not in old_sources]:
            parts.append(f"only this build has {', '.join(sorted(only_new))}")
        return "its sources differ (" + "; ".join(parts) + ")"
    old_config = _flatten({k: v for k, v in existing.get("config", {}).items() if k != "run"})
    new_config = _flatten({k: v for k, v in identity["config"].items() if k != "run"})
    changed = [f"{key} {old_config.get(key, '(unset)')!r} -> {new_config.get(key, '(unset)')!r}"
               for key in sorted(set(old_config) | set(new_config)) if old_config.get(key) != new_config.get(key)]
    if not changed:  # same settings but another config hash: written by another toolkit version
        changed = [f"config hash {str(existing.get('config_hash'))[:12]} -> {identity['config_hash'][:12]}"]
    return "its config differs (existing -> this build: " + ", ".join(changed) + ")"


#: Where ``--overwrite`` keeps the dataset it replaces until the new build has produced frames.
REPLACED = ".celbench-replaced"


def check_output(out: Storage, identity: dict, resume: bool, overwrite: bool) -> Manifest | None:
    """Refuse to mix datasets: returns the existing manifest to resume, or None for a fresh build (the caller
    then sets an existing dataset aside when ``overwrite``, :func:`set_aside`). Reads only."""
    if out.exists() and not out.isdir():
        raise file_error(str(out), "output exists and is not a folder")
    existing = Manifest.load(out)
    # what is there besides the lock of this build
    occupied = ([n for n in out.listdir() if n != REPLACED] not in ([], ["meta"])
                or out.listdir("meta") not in ([], ["lock.json"]))
    if overwrite:
        if existing is None and occupied:
            raise file_error(str(out), "refusing to overwrite a non-empty folder that is not a celbench dataset")
        return None
    if existing is None:
        if occupied:
            raise file_error(str(out), "output folder is not empty and holds no celbench dataset (meta/info.json)")
        return None
    if existing.data.get("schema_version") != SCHEMA_VERSION:
        # Not upgraded in place: a 1.0 unit lacks what 1.1 computes (frames.component_parts from label/ maps), so
        # finishing it with 1.1 units would mix two kinds of frames in one dataset. It stays readable as it is.
        raise file_error(str(out), f"holds a dataset of schema version {existing.data.get('schema_version')}, "
                                   f"this toolkit writes {SCHEMA_VERSION} and does not mix versions in one dataset"
                                   f"{' (--resume cannot finish it)' if resume else ''}: rebuild it with "
                                   "--overwrite, or build into another --out (as it is, it stays readable)")
    old = {"config_hash": existing.data.get("config_hash"),
           "sources": sorted(s["sha256"] for s in existing.data.get("sources", []))}
    if old != {key: identity[key] for key in old}:
        raise file_error(str(out), f"holds a different dataset: {difference(existing.data, identity)}; "
                                   "use another --out, or --overwrite to replace it")
    if not resume:
        raise file_error(str(out), "already holds this dataset; use --resume to finish it or --overwrite to rebuild")
    return existing


def set_aside(out: Storage) -> None:
    """``--overwrite``: move the dataset in ``out`` (all but the lock this build holds) into :data:`REPLACED`.

    It is deleted once the new build has produced frames and put back by :func:`restore` if the rebuild fails,
    so a failing rebuild never costs the dataset it was to replace.
    """
    out.remove_tree(REPLACED)  # left by an earlier --overwrite that was killed: the dataset it replaced
    names = [name for name in ("data", "report.html", "report.png", "README.md") if out.exists(name)]
    names += [f"meta/{name}" for name in (out.listdir("meta") if out.isdir("meta") else [])
              if f"meta/{name}" != BuildLock.NAME]
    for name in names:
        out.move(name, f"{REPLACED}/{name}")


def restore(out: Storage) -> None:
    """Undo a fresh build that failed as a whole: delete what it wrote, give back a dataset it was to replace."""
    for name in ("data", "report.html", "report.png", "README.md"):
        out.remove_tree(name)
    for name in out.listdir("meta") if out.isdir("meta") else []:
        if f"meta/{name}" != BuildLock.NAME:
            out.remove_tree(f"meta/{name}")
    if out.isdir(REPLACED):
        for top in out.listdir(REPLACED):
            inner = out.listdir(f"{REPLACED}/{top}") if top == "meta" else [None]
            for name in inner:
                relative = top if name is None else f"{top}/{name}"
                out.move(f"{REPLACED}/{relative}", relative)
        out.remove_tree(REPLACED)

