"""User-facing errors.

Raise :class:`CelbenchError` for anything the user can fix (bad path, bad parameter, corrupt file).
The CLIs print it as one line, ``error: <message>``, and exit with status 2, without a traceback.
Messages name the file and the problem, e.g. ``clip.mp4: not a video file (no video stream)``.
"""

from __future__ import annotations

import os


class CelbenchError(Exception):
    """An error caused by the user's input, reported as one line."""

    exit_code = 2


def file_error(path: str | os.PathLike, problem: str) -> CelbenchError:
    """Build the standard ``<path>: <problem>`` error."""
    return CelbenchError(f"{os.fspath(path)}: {problem}")
