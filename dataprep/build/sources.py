"""A build's inputs: a video/GIF file or a folder of frames, identified by the sha256 of its content."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataprep.errors import file_error
from dataprep.hashing import sha256_file, sha256_stream
from dataprep.storage import Storage, local_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Source:
    """One input: a video/GIF file or a folder of frames."""

    path: str
    video_id: str
    sha256: str
    kind: str  # 'video' or 'frames'

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "video_id": self.video_id, "sha256": self.sha256, "kind": self.kind}


def resolve_source(path: str | os.PathLike) -> Source:
    """Hash a source; a folder's hash covers its image files' names and contents (sorted). ``path`` may be a URL
    (:mod:`dataprep.storage`): its bytes are read here once to hash them, and workers copy it to their cache."""
    local = local_path(path)
    where = Storage(path)
    name = Path(local).name if local is not None else str(path).rstrip("/").rpartition("/")[2]
    if where.isdir():
        images = [f for f in where.listdir() if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise file_error(path, "folder holds no image frames (.png, .jpg, ...)")
        digest = hashlib.sha256()
        for image in images:
            digest.update(f"{image}\0{hashlib.sha256(where.read_bytes(image)).hexdigest()}\n".encode())
        sha, kind = digest.hexdigest(), "frames"
    elif local is not None and Path(local).is_file():
        sha, kind = sha256_file(local), "video"
    elif local is None and where.exists():
        sha, kind = sha256_stream(where.fs.open(where.path())), "video"
    else:
        raise file_error(path, "no such file or folder")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem if kind == "video" else name).strip("_") or "source"
    location = str(Path(local).resolve()) if local is not None else where.location
    return Source(location, f"{stem}-{sha[:8]}", sha, kind)

