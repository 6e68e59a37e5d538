"""File fingerprints recorded in manifests and result records (sources, weights, checkpoints)."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks so large videos and checkpoints are fine."""
    return sha256_stream(open(path, "rb"))


def sha256_stream(handle: BinaryIO) -> str:
    """Hex SHA-256 of what an open binary file (local or an fsspec file) holds from here on; closes it."""
    digest = hashlib.sha256()
    with handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
