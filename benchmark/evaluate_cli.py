"""``bench evaluate``: score one model under one protocol and write its result record."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import signal
import threading
from pathlib import Path

from dataprep.cli_app import bounded
from dataprep.errors import CelbenchError, file_error

from benchmark.evaluate import Terminated, evaluate, output_paths, save
from benchmark.model import check_weights, load_model, pick_device, resolve_model_factory
from benchmark.fit import FITS
from benchmark.protocol import Protocol, load_protocol
from benchmark.source import SampleSource

DEFAULT_PROTOCOL = "cmft-interval@1"


def open_source(path: str | Path) -> SampleSource:
    """Open a dataset folder written by ``dataprep build`` (validated; errors are one line)."""
    path = Path(path)
    if not path.is_dir():
        raise file_error(path, "dataset folder not found")
    if not (path / "meta" / "info.json").is_file():
        raise file_error(path, "not a celbench dataset (no meta/info.json); build one with `dataprep build`")
    from benchmark.parquet_source import ParquetSource  # needs the dataset branch (dataprep.build)

    return ParquetSource(path)


def default_out(model: str, protocol_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    return Path("leaderboards") / "results" / protocol_id / f"{safe}.json"


def check_out(out: Path) -> None:
    """Refuse an output that cannot take the record before any sample is scored: a folder, an unwritable place."""
    for path in output_paths(out).values():
        if path.is_dir():
            raise file_error(path, "is a folder; --out takes the record's file name, e.g. results/model.json")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise file_error(out, f"cannot write here ({parent} is not a writable folder)")


@contextlib.contextmanager
def sigterm_stops_gently():
    """SIGTERM raises :class:`~benchmark.evaluate.Terminated` (a SystemExit) while the block runs, so an evaluation
    that is terminated keeps its scored samples as Ctrl-C does (the default action would lose them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def with_fit(protocol: Protocol, fit: str | None) -> Protocol:
    """``protocol`` with its frame fit replaced by ``fit`` (None: unchanged); the record's signature names it."""
    if fit is None:
        return protocol
    if fit not in FITS:
        raise CelbenchError(f"--fit: {FITS.unknown_message(fit)}")
    if protocol.resolution is None:
        raise CelbenchError(f"--fit {fit}: protocol {protocol.id} scores frames at their stored size, nothing is fitted")
    return dataclasses.replace(protocol, fit=fit)


def run(args: argparse.Namespace) -> int:
    protocol = with_fit(load_protocol(args.protocol), args.fit)
    model_name, _ = resolve_model_factory(args.model)
    weights_sha256 = check_weights(args.weights, args.weights_sha256) if args.weights else None
    device = pick_device(args.device)
    out = Path(args.out) if args.out else default_out(model_name, protocol.id)
    check_out(out)
    source = open_source(args.data)
    try:
        model = load_model(args.model, args.weights, device)
        with sigterm_stops_gently():
            evaluation = evaluate(model, model_name, source, protocol, split=args.split, device=device,
                                  limit=args.limit, weights_sha256=weights_sha256)
    finally:
        source.close()
    try:
        paths = save(evaluation, out)
    except OSError as error:
        raise file_error(out, f"cannot write the record ({error.strerror or error})") from None
    record = evaluation.record
    if record.status != "complete":
        first = f" (first: {record.problems[0].sample_id}: {record.problems[0].problem})" if record.problems else ""
        reason = record.error or f"{len(record.problems)} of {record.samples_evaluated} outputs were invalid{first}"
        raise CelbenchError(f"{paths['record']}: result marked {record.status}: {reason}")
    primary = record.metric(record.primary_metric)
    # The result is printed even with --quiet, which hides progress bars only.
    print(f"{model_name} on {protocol.id} ({record.samples_valid} samples): {primary.name} = {primary.value:.4f}")
    print(f"signature {record.signature}")
    print(f"wrote {paths['record']}")
    return 0


def add_commands(commands) -> None:
    p = commands.add("evaluate", "score a colourisation model under a versioned protocol", run)
    p.add_argument("--model", required=True, help="registered model name or package.module:factory")
    p.add_argument("--weights", help="weights file handed to the model factory (hashed into the record)")
    p.add_argument("--weights-sha256", help="expected SHA-256 (or a prefix of at least 8 hex digits) of --weights")
    p.add_argument("--data", required=True, help="dataset folder written by `dataprep build`")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL, help=f"NAME@VERSION (default {DEFAULT_PROTOCOL})")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--out", help="result record FILE.json (default leaderboards/results/PROTOCOL/MODEL.json); "
                                 "per-sample values go to FILE.samples.parquet")
    p.add_argument("--limit", type=bounded(int, 1), help="score only the first N samples (recorded in the signature)")
    p.add_argument("--fit", help="how stored frames are fitted to the protocol's resolution: centre-crop (the "
                                 "protocol's default), pad or tiles (recorded in the signature; docs/benchmark.md)")


__all__ = ["add_commands", "open_source", "output_paths"]
