"""The interface every colourisation model implements, and the registry that finds them.

A model is any callable ``model(batch) -> colour`` where ``batch`` is a dict of tensors keyed, shaped and
scaled as in :mod:`dataprep.dataset.keys` (float images in [0, 1], integer component labels, batch first,
``K`` references; ``target_colour`` is never given), and the result is the target's colour,
``(B, 3, H, W)`` float RGB in [0, 1]. A protocol decides which keys a model receives (the ``hints`` protocol
gives no reference at all).

Models are created by a *factory* ``factory(weights: str | None, device: torch.device) -> model``.
:data:`MODELS` is the one model registry of celbench: ``bench evaluate``/``speed`` call an entry's factory,
and ``bench train`` builds a trainable entry's network (:attr:`ModelSpec.network`, registered with
``baselines.model.register_trainable``). The registry is filled through the ``celbench.models`` entry-point
group: the built-in packages (:mod:`benchmark.models`, :mod:`baselines.models`) and third-party factories.
A model may also be named on the command line as ``module:function``; ``NAME+vote`` wraps any model with
region voting (:mod:`benchmark.models.vote`). See ``docs/models.md``.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol, runtime_checkable

import torch

from dataprep.hashing import sha256_file
from dataprep.errors import CelbenchError, file_error
from dataprep.registry import Registry

Batch = Mapping[str, torch.Tensor]


@runtime_checkable
class Model(Protocol):
    """What ``bench`` calls: ``model(batch) -> (B, 3, H, W)`` float RGB in [0, 1] (see module docs).

    Optional attributes: ``requires`` (batch keys the model needs) and ``weights_sha256`` (hex SHA-256 of
    the weights file a factory loaded by itself, e.g. shipped default weights; recorded in the result when
    the user passed no ``--weights``, so every record names the exact weights behind its numbers).
    """

    def __call__(self, batch: Batch) -> torch.Tensor: ...


ModelFactory = Callable[..., Model]


@dataclass(frozen=True)
class ModelSpec:
    """One entry of :data:`MODELS`: how ``bench`` scores the model and, when it is trainable, what
    ``bench train`` builds.

    Attributes:
        load: the scoring factory ``load(weights=None, device=cpu) -> Model``.
        network: the trainable ``torch.nn.Module`` class (with ``presets``), or None for floors and
            third-party models that are only scored.
    """

    load: ModelFactory
    network: type | None = None

    def __call__(self, weights: str | None = None, device: torch.device | str = "cpu") -> Model:
        return self.load(weights=weights, device=device)


MODELS: Registry[Model] = Registry("model", entry_point_group="celbench.models")


def register_model(name: str, network: type | None = None) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register the scoring factory ``load(weights, device) -> Model`` as model ``name``
    (``network``: its trainable class, if any). Returns the factory unchanged."""

    def decorator(load: ModelFactory) -> ModelFactory:
        MODELS.register(name)(ModelSpec(load, network))
        return load

    return decorator

# torch.hub's convention: a checkpoint named ``name-<first hex digits of its sha256>.ext``.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})$")


def check_weights(path: str | os.PathLike, expected_sha256: str | None = None) -> str:
    """Hash a weights file and check it against what the user or its name promises.

    The expected hash comes from ``expected_sha256`` (a full hash or a prefix of at least 8 hex
    digits) or, as in torch.hub, from a file name ending ``-<hex prefix>`` (``flow-1a2b3c4d.safetensors``).
    Returns the full hex digest; a mismatch raises a one-line :class:`CelbenchError`.
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "weights file not found")
    actual = sha256_file(path)
    expected = expected_sha256
    if expected is None:
        match = _HASH_IN_NAME.search(path.name.split(".")[0])
        expected = match.group(1) if match else None
    if expected is not None:
        expected = expected.lower()
        if len(expected) < 8 or not actual.startswith(expected):
            raise file_error(path, f"sha256 {actual[:16]}... does not match the expected {expected[:16]}... "
                                   "(corrupt or wrong weights file)")
    return actual


#: ``NAME+vote``: model NAME with region voting on its output (:mod:`benchmark.models.vote`).
VOTE_SUFFIX = "+vote"


def resolve_model_factory(spec: str) -> tuple[str, ModelFactory]:
    """Find the factory for ``spec``: a registered name, ``package.module:function``, or either with
    ``+vote`` appended (region voting on the model's output).

    Returns ``(display name, factory)``. Unknown names raise :class:`CelbenchError` with suggestions.
    """
    if spec.endswith(VOTE_SUFFIX):
        from benchmark.models.vote import voting_factory

        inner_name, inner = resolve_model_factory(spec[: -len(VOTE_SUFFIX)])
        return f"{inner_name}{VOTE_SUFFIX}", voting_factory(inner)
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise CelbenchError(f"--model {spec}: cannot import module {module_name!r} ({error})") from None
        factory = getattr(module, attribute, None)
        if not callable(factory):
            raise CelbenchError(f"--model {spec}: module {module_name!r} has no callable {attribute!r}")
        return spec, factory
    return spec, MODELS.get(spec)


def load_model(spec: str, weights: str | None = None, device: torch.device | str = "cpu") -> Model:
    """Create the model named by ``spec`` (see :func:`resolve_model_factory`) on ``device``."""
    _, factory = resolve_model_factory(spec)
    try:
        model = factory(weights=weights, device=torch.device(device))
    except CelbenchError:
        raise
    except Exception as error:  # corrupt weights (SafetensorError), a plugin's own bug: name the model
        where = f" from {weights}" if weights else ""
        message = " ".join(str(error).split()) or "no message"
        raise CelbenchError(f"model {spec!r} could not be created{where}: {type(error).__name__}: {message}") from None
    if not callable(model):
        raise CelbenchError(f"model {spec!r}: its factory returned {type(model).__name__}, not a callable model")
    return model


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device (``cpu``, ``cuda:1``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise CelbenchError(f"--device {name}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CelbenchError(f"--device {name}: CUDA is not available on this machine")
    return device


def no_weights(name: str, weights: str | None) -> None:
    """Floors have nothing to load; passing weights to them is a user mistake worth reporting."""
    if weights is not None:
        raise CelbenchError(f"model {name!r} takes no weights (got --weights {weights})")
