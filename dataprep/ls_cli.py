"""``dataprep ls KIND``: list the registered components of each pluggable kind.

Kinds come from one table, :data:`LISTABLE`, mapping the sub-command to ``"module:REGISTRY"``; modules are
imported only when their kind is listed. Adding a kind is one line there.
"""

from __future__ import annotations

import importlib
import inspect

from dataprep.cli_app import Commands
from dataprep.registry import Registry

LISTABLE: dict[str, str] = {
    "detectors": "dataprep.shots.detectors:DETECTORS",
    "extractors": "dataprep.sketch.extractors:EXTRACTORS",
    "fields": "dataprep.field:FIELDS",
    "hints": "dataprep.hints:HINTS",
    "samplers": "dataprep.pairs:SAMPLERS",
    "executors": "dataprep.build.executor:EXECUTORS",
}


def load_registry(spec: str) -> Registry:
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def describe(factory) -> tuple[str, str]:
    """(one-line summary, ``name=default`` list) of a registered class or function."""
    summary = getattr(factory, "summary", "") or (inspect.getdoc(factory) or "").split("\n")[0]
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        parameters = []
    defaults = ", ".join(f"{p.name}={p.default!r}" for p in parameters
                         if p.default is not inspect.Parameter.empty)
    return summary, defaults


def list_registry(spec: str) -> int:
    """Print ``name<TAB>summary<TAB>parameters`` for every entry of the registry at ``spec`` (module:NAME).

    An entry that wraps its factory (a model's ``ModelSpec``) is described by its trainable network when it
    has one, else by its ``load`` factory."""
    registry = load_registry(spec)
    for name in registry.names():
        entry = registry.get(name)
        summary, defaults = describe(getattr(entry, "network", None) or getattr(entry, "load", entry))
        print(f"{name}\t{summary}\t{defaults}")
    return 0


def add_listings(commands: Commands, listable: dict[str, str]) -> Commands:
    """Add ``ls KIND`` for each ``KIND -> "module:REGISTRY"`` of ``listable``; returns the ``ls`` group."""
    group = commands.group("ls", "list registered components")
    for kind, spec in listable.items():
        group.add(kind, f"list registered {kind} (name, summary, parameters with defaults)",
                  lambda args, spec=spec: list_registry(spec))
    return group


def add_commands(commands: Commands) -> None:
    add_listings(commands, LISTABLE)
