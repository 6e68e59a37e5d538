"""Progress bars for long work: tqdm on stderr, off when stderr is not a TTY or when quiet."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence every progress bar of this process (the CLIs' ``--quiet``)."""
    global _quiet
    _quiet = quiet


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it") -> tqdm:
    """A tqdm bar on stderr that is disabled when quiet or when stderr is not a terminal."""
    disable = _quiet or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable,
                dynamic_ncols=True, leave=False)
