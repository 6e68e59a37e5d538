"""Containment of paths that come from files a user may not control (a manifest, a result record, a config).

A dataset's manifest, a unit's completion marker or a result record names files relative to a root folder. A
tampered or careless value (``../../victim/thesis``, an absolute path) must never make celbench read, write or
delete outside that root, so every such name goes through :func:`safe_name` (one path component, no separators,
not ``.``/``..``) and every derived path through :func:`inside` (resolved, symlinks followed, still under the
root). Both raise :class:`~dataprep.errors.CelbenchError` naming the file the value came from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dataprep.errors import file_error

#: A name celbench writes itself: unit keys (``<video_id>.<first>-<last>``), shard and record file names,
#: protocol names. Letters, digits, ``_ - . @ +``; no separators, and not starting with a dot (so never ``..``).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*")


def safe_name(name: object, what: str, source: str | os.PathLike) -> str:
    """``name`` when it is a single, plain path component; else an error naming ``source`` (where it was read).

    ``what`` says what the name is ("unit key", "shard file name"); the message tells a tampered file apart from
    a bug: ``meta/info.json: unit key '../x' is not a plain name (tampered?)``.
    """
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise file_error(source, f"{what} {name!r} is not a plain file name (tampered or hand-edited?)")
    return name


def inside(root: str | os.PathLike, *parts: str, source: str | os.PathLike | None = None) -> Path:
    """``root / parts`` after resolving symlinks and ``..``, when it stays inside ``root``; else an error.

    Use for every path built from a value read out of a file; ``source`` names that file in the message.
    """
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise file_error(source or root, f"path {os.path.join(*parts)!r} leads outside {root} (tampered?)")
    return Path(root).joinpath(*parts)
