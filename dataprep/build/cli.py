"""Command line of the dataset builder: ``dataprep build``, ``validate``, ``info`` and ``ls samplers``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dataprep.cli_app import bounded
from dataprep.config import SPLITS


def run_build(args: argparse.Namespace) -> int:
    from dataprep.build import build
    from dataprep.config import load_config

    overrides = list(args.set or [])
    if args.workers is not None:
        overrides.append(f"run.workers={args.workers}")
    if args.executor is not None:
        overrides.append(f"run.executor={args.executor}")
    if args.split is not None:
        overrides.extend(single_split_overrides(args.split))
    config = load_config(args.config, overrides)
    report = build(args.inputs, args.out, config, resume=args.resume, overwrite=args.overwrite,
                   log=lambda message: print(f"dataprep build: {message}", file=sys.stderr))
    counts = report.manifest["counts"]
    print(f"{report.out}: {counts['frames']} frames, {counts['shots']} shot{'s' * (counts['shots'] != 1)}, "
          f"{counts['pairs']} pairs "
          f"({', '.join(f'{k} {v}' for k, v in counts['pairs_by_kind'].items()) or 'none'}); "
          f"units: {', '.join(f'{n} {status}' for status, n in sorted(counts['units'].items()))}; "
          f"splits: {split_counts(counts)}")
    if report.failed:
        print(f"dataprep build: {len(report.failed)} unit(s) failed ({', '.join(report.failed)}); "
              f"see {report.out}/meta/info.json, rerun with --resume", file=sys.stderr)
        return 1
    return 0


def split_counts(counts: dict) -> str:
    """'train 80 frames/60 pairs, test 20 frames/15 pairs' from the manifest's ``counts`` (empty splits left out)."""
    parts = [f"{split} {c.get('frames', 0)} frames/{c.get('pairs', 0)} pairs"
             for split, c in counts.get("splits", {}).items() if c.get("frames")]
    return ", ".join(parts) or "none"


def single_split_overrides(split: str) -> list[str]:
    """``--set`` overrides that put every shot in ``split`` (``dataprep build --split``)."""
    return [f"split.{name}={int(name == split)}" for name in SPLITS]


def run_validate(args: argparse.Namespace) -> int:
    from dataprep.dataset.validate import ValidationError, check_dataset_dir, validate

    out = check_dataset_dir(args.dir)
    try:
        totals = validate(out)
    except ValidationError as error:
        print(f"dataprep validate: invalid: {error}", file=sys.stderr)
        return 1
    print(f"{out}: valid ({totals.get('frames', 0)} frames, {totals.get('pairs', 0)} pairs)")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from dataprep.dataset.report import format_summary, summarise, write_report
    from dataprep.dataset.validate import check_dataset_dir

    out = check_dataset_dir(args.dir)
    summary = summarise(out)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(format_summary(summary))
    if not args.no_report:
        written = write_report(out, summary, rows=args.samples, seed=args.seed)
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def _key_value(text: str) -> str:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return text


def add_commands(commands) -> None:
    p = commands.add("build", "build a Parquet dataset (frames, sketches, fields, components, pairs, hints) "
                              "from videos, GIFs or frame folders", run_build)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video/GIF files or folders of frames")
    p.add_argument("--out", required=True,
                   help="dataset folder, or a URL: s3://bucket/ds, gs://..., file://... (docs/scale-out.md)")
    p.add_argument("--config", type=Path, help="YAML or TOML config (defaults: configs/default.yaml)")
    p.add_argument("--set", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="override one config key, e.g. --set frames.size=128 (repeatable)")
    p.add_argument("--workers", type=bounded(int, 1), help="worker processes (run.workers)")
    p.add_argument("--executor", help="executor name (run.executor: local, serial, ray)")
    p.add_argument("--split", choices=SPLITS,
                   help="put every shot in this split (e.g. test, to score a model on your own video), "
                        "instead of the split.* fractions (default 80/10/10 by shot)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted or partly failed build")
    p.add_argument("--overwrite", action="store_true", help="delete the dataset in --out and rebuild")

    p = commands.add("validate", "check a built dataset: schemas, PNG bytes, counts against the manifest",
                     run_validate)
    p.add_argument("dir", type=Path)

    p = commands.add("info", "summarise a dataset and write DIR/report.html + report.png", run_info)
    p.add_argument("dir", type=Path)
    p.add_argument("--samples", type=bounded(int, 1), default=6, help="random pairs in the report grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample draw")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-report", action="store_true", help="do not write report.html/png")
