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

import collections.abc
import difflib
import importlib
import inspect
import types
import typing
from importlib import metadata
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, TypeVar

from dataprep.errors import CelbenchError

T = TypeVar("T")


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.5) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the candidates closest to ``name``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), sorted(candidates), n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def type_ok(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as YAML, TOML or JSON give it: lists, not tuples) fits the annotation ``hint``.

    An int fits ``float``; a bool fits neither ``int`` nor ``float``; a list fits ``Sequence[X]``, ``list[X]`` and
    ``tuple[X, ...]`` when its items fit ``X`` (a string is no sequence here). Annotations it cannot judge
    (a class of its own, a protocol) accept anything: the component's constructor checks those itself.
    """
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, (str, typing.TypeVar)):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple, collections.abc.Sequence):
        items = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if not isinstance(value, (list, tuple)):
            return False
        return len(items) != 1 or all(type_ok(v, items[0]) for v in value)
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        args = typing.get_args(hint)
        return isinstance(value, dict) and (not args or all(type_ok(k, args[0]) and type_ok(v, args[1])
                                                            for k, v in value.items()))
    if isinstance(hint, type) and hint.__module__ == "builtins":
        return isinstance(value, hint)
    return True


def type_name(hint: Any) -> str:
    """``hint`` as a reader writes it: ``int``, ``float | None``, ``Sequence[int]``."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "").replace("NoneType", "None")


def parameter_types(factory: Callable) -> dict[str, Any]:
    """``factory``'s keyword parameters (a class: its constructor's, without ``self``) -> their annotation
    (``Any`` where there is none or it cannot be resolved), in signature order."""
    parameters = inspect.signature(factory).parameters
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation naming what only a type checker imports: judge no types
        hints = {}
    return {name: hints.get(name, Any) for name, p in parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def parameter_defaults(factory: Callable) -> dict[str, Any]:
    """``factory``'s keyword parameters that have a default -> that default (tuples as lists, as a config file
    writes them), in signature order."""
    return {name: list(p.default) if isinstance(p.default, tuple) else p.default
            for name, p in inspect.signature(factory).parameters.items()
            if p.default is not inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def check_params(factory: Callable, params: Mapping[str, Any], key: str, owner: str, given: Iterable[str] = (),
                 extra: Mapping[str, Any] | None = None, label: str = "config key") -> None:
    """Check the keyword ``params`` of ``factory`` against its signature: the one check of every pluggable part's
    parameters (build config, ``bench train``, ``--data NAME:k=v``).

    Args:
        factory: a registered class or function.
        params: parameter name -> value, as read from a config file, ``--set`` or a command line.
        key: the config key holding ``params`` (``sketch.params``, ``samplers.cmft-test``, ``model_args``):
            messages name ``KEY.PARAM``.
        owner: what takes them, for messages (``extractor 'xdog'``).
        given: parameters the caller passes itself (a stage's input), never settings.
        extra: further accepted parameters -> their annotation (the shot filters beside a detector's own).
        label: what ``key`` is, for messages (``config key``; ``--data parameter`` on a command line).

    Raises:
        CelbenchError: one line: an unknown parameter (with the closest known names), a value whose type does
            not fit the parameter's annotation, or a parameter without a default that is not set.
    """
    if not isinstance(params, Mapping):
        raise CelbenchError(f"{label} {key}: expected a mapping of parameters, got {type(params).__name__}")
    given = set(given)
    parameters = inspect.signature(factory).parameters
    types_ = {name: hint for name, hint in parameter_types(factory).items() if name not in given}
    types_.update(extra or {})
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name, value in params.items():
        if name not in types_:
            if open_ended:  # **kwargs passed on to a library that checks them
                continue
            raise CelbenchError(f"unknown {label} {key}.{name}: {owner} takes no parameter {name!r}"
                                f"{did_you_mean(name, types_, n=2, cutoff=0.6)} (known: {', '.join(types_) or 'none'})")
        if not type_ok(value, types_[name]):
            raise CelbenchError(f"{label} {key}.{name}: expected {type_name(types_[name])}, "
                                f"got {type(value).__name__} {value!r}")
    required = [name for name, p in parameters.items()
                if p.default is inspect.Parameter.empty and name in types_ and name not in params]
    if required:
        raise CelbenchError(f"{label} {key}: {owner} needs {', '.join(required)}")


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
        if name not in self._entries:
            self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; unknown names raise CelbenchError with suggestions.
        Entry points are loaded only for a name not registered in-tree: plug-ins may import torch, and a build
        that names only built-in parts should not pay for that."""
        if name not in self._entries:
            self._load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            raise CelbenchError(self.unknown_message(name)) from None

    def create(self, name: str, **kwargs: Any) -> T:
        """Instantiate the component registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def check(self, name: str, params: Mapping[str, Any], name_key: str, params_key: str,
              **options: Any) -> Callable[..., T]:
        """The factory registered as ``name`` once ``params`` are checked against its signature
        (:func:`check_params`, which ``options`` go to). Errors name the config keys: ``name_key`` for an unknown
        name (``sketch.name``), ``params_key.PARAM`` for a parameter (``sketch.params.sigma``)."""
        try:
            factory = self.get(name)
        except CelbenchError as error:
            raise CelbenchError(f"{options.get('label', 'config key')} {name_key}: {error}") from None
        check_params(factory, params, params_key, f"{self.kind} {name!r}", **options)
        return factory

    def unknown_message(self, name: str) -> str:
        return f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())} (known: {', '.join(self.names()) or 'none'})"
