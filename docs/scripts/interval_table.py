"""The model card's per-interval PSNR tables from result records (``bench evaluate --out``), best model first.

    python docs/scripts/interval_table.py runs/eval/lvcd_sample_1/*.json [--metric psnr]

Every record must come from the same protocol and dataset (same signature); prints one Markdown row per record:
the model, the metric over all samples and per bucket of the protocol's bucket key (frame interval under
``cmft-interval@1``), two decimals, as the records hold them (nothing is recomputed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path)
    parser.add_argument("--metric", default="psnr")
    args = parser.parse_args()
    rows, buckets, datasets = [], None, set()
    for path in args.records:
        record = json.loads(path.read_text())
        datasets.add((record["protocol"], record["dataset"]["manifest_sha256"]))
        metric = next(m for m in record["metrics"] if m["name"] == args.metric)
        keys = sorted(metric["buckets"], key=float)
        if buckets is not None and keys != buckets:
            print(f"interval_table: {path}: other buckets than the first record", file=sys.stderr)
            return 1
        buckets = keys
        rows.append((metric["value"], record["model"], [metric["buckets"][k] for k in keys], record["samples_valid"]))
    if len(datasets) > 1:
        print("interval_table: the records come from different protocols or datasets", file=sys.stderr)
        return 1
    print("| model | all | " + " | ".join(f"iv {k}" for k in buckets) + " |")
    print("|---" * (len(buckets) + 2) + "|")
    for value, model, per_bucket, _ in sorted(rows, key=lambda row: -row[0]):
        print(f"| {model} | {value:.2f} | " + " | ".join(f"{v:.2f}" for v in per_bucket) + " |")
    print(f"\n({rows[0][3]} samples per model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
