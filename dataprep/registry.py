"""Named registries of pluggable components (detectors, extractors, metrics, protocols, models, ...).

Adding a component is one class and one decorator::

    DETECTORS = Registry("detector")

    @DETECTORS.register("histogram-mse")
    class HistogramMSE(ShotDetector): ...

    DETECTORS.create("histogram-mse", threshold=200)

An unknown name is an error that suggests the closest registered names (:func:`did_you_mean`, the one
place celbench spells suggestions); there is no silent fallback.

A registry is filled by the packages that register into it, never by the interface module that defines it
(which would import its own implementations and make import cycles): an entry-point group
(``celbench.models`` ...) names them. An entry point whose value is a *module* (``floors = "benchmark.models"``)
is imported on the first lookup and registers what it defines; one whose value is ``module:attribute`` is a
single factory registered under the entry point's name, which is how third-party packages plug in without
touching celbench.
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from dataprep.errors import CelbenchError

T = TypeVar("T")


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.5) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the candidates closest to ``name``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), sorted(candidates), n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """A name -> factory mapping with did-you-mean errors.

    Args:
        kind: what the entries are, used in messages ("detector", "metric", ...).
        entry_point_group: optional entry-point group whose entries are loaded on first lookup;
            each entry point must resolve to a factory (class or function).
    """

    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Callable[..., T]] = {}
        self._entry_points_loaded = entry_point_group is None

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name``; duplicate names are a programming error."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries and self._entries[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            try:
                factory.registered_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return factory

        return decorator

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group):
            if ep.attr is None:  # a plug-in package: importing it registers its entries
                importlib.import_module(ep.module)
            elif ep.name not in self._entries:
                self._entries[ep.name] = ep.load()

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; unknown names raise CelbenchError with suggestions."""
        self._load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            raise CelbenchError(self.unknown_message(name)) from None

    def create(self, name: str, **kwargs: Any) -> T:
        """Instantiate the component registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def unknown_message(self, name: str) -> str:
        return f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())} (known: {', '.join(self.names()) or 'none'})"
