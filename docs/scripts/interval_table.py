"""The model card's per-interval PSNR tables from result records (``bench evaluate --out``), best model first.

    python docs/scripts/interval_table.py runs/eval/lvcd_sample_1/*.json [--metric psnr]

The compact Markdown layout of the model card (two decimals, ``iv N`` columns); ``bench leaderboard build``
gives the same numbers with standard errors. Records are read and validated by
:func:`benchmark.record.read_record` and must share one signature (same protocol and dataset, as a leaderboard
table requires); one row per record: the metric over all samples and per bucket of the protocol's bucket key
(frame interval under ``cmft-interval@1``), as the records hold them (nothing is recomputed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.record import read_record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path)
    parser.add_argument("--metric", default="psnr")
    args = parser.parse_args()
    records = [read_record(path) for path in args.records]
    if len({record.signature for record in records}) > 1:
        print("interval_table: the records have different signatures (protocols or datasets)", file=sys.stderr)
        return 1
    metrics = [record.metric(args.metric) for record in records]
    buckets = sorted(metrics[0].buckets, key=float)
    print("| model | all | " + " | ".join(f"iv {key}" for key in buckets) + " |")
    print("|---" * (len(buckets) + 2) + "|")
    for record, metric in sorted(zip(records, metrics), key=lambda pair: -pair[1].value):
        print(f"| {record.model} | {metric.value:.2f} | "
              + " | ".join(f"{metric.buckets[key]:.2f}" for key in buckets) + " |")
    print(f"\n({records[0].samples_valid} samples per model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
