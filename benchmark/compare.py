"""``bench compare A.json B.json``: is model A better than model B, with an interval, not two means.

Both result records must have the same signature (protocol, dataset, split, limit, metric settings: the
same samples scored the same way). Their per-sample Parquet files (``FILE.samples.parquet``, written by
``bench evaluate``) are joined on ``sample_id``; for every sample valid in both, the difference
``d = metric_A - metric_B`` is taken (PSNR by default: the protocol's primary metric when it is per-sample).

The interval is a **paired percentile bootstrap** (Efron & Tibshirani 1993, ch. 13; Koehn 2004 for system
comparison): ``resamples`` times, draw n samples with replacement from the n differences and take their
mean; the 2.5th and 97.5th percentiles of those means bound the 95% interval. Pairing removes the
difficulty shared by both models on a sample (hard frames are hard for both), so the interval is far
narrower than one built from two separate means. Reported overall and per bucket (the protocol's bucket
key, e.g. the frame interval). ``A > B`` is a statement when the interval's lower bound is above 0 and at
least :data:`MIN_SAMPLES_FOR_VERDICT` samples back it.

Samples are treated as independent. Samples drawn from one shot are correlated, so with few shots the
interval is optimistic; the ``shots`` column says how many shots the differences come from.
Samples whose value is not finite for either model (PSNR of a pixel-identical frame is +inf) are left out
and counted in ``dropped``.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dataprep.cli_app import bounded
from dataprep.errors import CelbenchError, file_error

from benchmark.record import ResultRecord, read_record

DEFAULT_RESAMPLES = 10000
DEFAULT_CONFIDENCE = 0.95
#: Fewer paired samples than this get an interval but no verdict: a bootstrap of 1-4 values mostly
#: reproduces them (one sample gives a zero-width interval), which says nothing about the next sample.
MIN_SAMPLES_FOR_VERDICT = 5


@dataclass
class PairedDifference:
    """Mean per-sample difference A - B over one group of samples, with its bootstrap interval."""

    group: str
    count: int
    shots: int
    mean_a: float
    mean_b: float
    mean_difference: float
    low: float
    high: float
    a_better_share: float  # share of samples where A > B
    dropped: int

    @property
    def verdict(self) -> str:
        if self.count < MIN_SAMPLES_FOR_VERDICT:
            return f"too few samples (< {MIN_SAMPLES_FOR_VERDICT})"
        if self.low > 0:
            return "A > B"
        if self.high < 0:
            return "A < B"
        return "no clear difference"


def paired_bootstrap(differences: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                     confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``differences`` (1-D float array of paired differences).

    Returns (low, high); (mean, mean) for a single sample, NaN for none. Seeded: the same input gives the
    same interval."""
    differences = np.asarray(differences, dtype=np.float64)
    n = differences.size
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(differences[0]), float(differences[0])
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)  # bounded memory: at most ~16 MB of indices at a time
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        means[start:stop] = differences[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _samples(record: ResultRecord, path: Path, metric: str) -> "Any":
    import pandas as pd

    name = record.files.get("samples")
    if not name:
        raise file_error(path, "record has no per-sample file (files.samples); rerun bench evaluate")
    samples_path = path.parent / name
    if not samples_path.is_file():
        raise file_error(samples_path, "per-sample file of the record not found")
    try:
        frame = pd.read_parquet(samples_path)
    except Exception as error:  # corrupt file: one line for the user
        raise file_error(samples_path, f"cannot read ({type(error).__name__})") from None
    if metric not in frame.columns:
        raise file_error(samples_path, f"has no per-sample column {metric!r} (columns: {', '.join(frame.columns)})")
    return frame


#: Signature fields ``--across-datasets`` lets differ: the same protocol scored on two builds of the same video.
DATASET_FIELDS = ("dataset_manifest_sha256",)


def compare(path_a: str | Path, path_b: str | Path, metric: str | None = None,
            resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
            seed: int = 0, across_datasets: bool = False) -> dict[str, Any]:
    """Compare two result records sample by sample (see the module docstring).

    With ``across_datasets`` the records may come from two datasets (e.g. two builds of one video with
    different frame settings): their signatures may differ in :data:`DATASET_FIELDS` only, and the samples
    present in both (same ``sample_id``) are compared; how many were only in A or only in B is reported
    (``only_a``, ``only_b``).

    Returns {"a": model A, "b": model B, "metric", "protocol", "signature", "bucket_key", "confidence",
    "resamples", "only_a", "only_b", "rows": [PairedDifference as dict, overall first ("all"), then each
    bucket]}. Raises CelbenchError when the records are not comparable or their sample files are missing."""
    path_a, path_b = Path(path_a), Path(path_b)
    record_a, record_b = read_record(path_a), read_record(path_b)
    differing = sorted(k for k in set(record_a.signature_fields) | set(record_b.signature_fields)
                       if record_a.signature_fields.get(k) != record_b.signature_fields.get(k))
    allowed = DATASET_FIELDS if across_datasets else ()
    if record_a.signature != record_b.signature and (not differing or set(differing) - set(allowed)):
        hint = "" if across_datasets or set(differing) - set(DATASET_FIELDS) else \
            " (only the dataset differs: --across-datasets compares the samples both hold)"
        raise CelbenchError(f"{path_a} and {path_b}: not comparable, signatures differ "
                            f"({record_a.signature} vs {record_b.signature}; fields: {', '.join(differing)}){hint}")
    metric = metric or record_a.primary_metric
    if not 0 < confidence < 1:
        raise CelbenchError(f"--confidence {confidence}: must be between 0 and 1")
    frame_a, frame_b = _samples(record_a, path_a, metric), _samples(record_b, path_b, metric)
    bucket = record_a.bucket_key
    keep = ["sample_id", "target_id", metric, "valid"] + ([bucket] if bucket and bucket in frame_a.columns else [])
    joined = frame_a[keep].merge(frame_b[["sample_id", metric, "valid"]], on="sample_id", suffixes=("_a", "_b"))
    only_a, only_b = len(frame_a) - len(joined), len(frame_b) - len(joined)
    if (only_a or only_b) and not (across_datasets and len(joined)):
        raise CelbenchError(f"{path_a} and {path_b}: per-sample files hold different samples "
                            f"({len(frame_a)} and {len(frame_b)}, {len(joined)} in common)")
    joined = joined[joined["valid_a"].astype(bool) & joined["valid_b"].astype(bool)]
    values_a, values_b = joined[f"{metric}_a"].to_numpy(float), joined[f"{metric}_b"].to_numpy(float)
    finite = np.isfinite(values_a) & np.isfinite(values_b)
    # shot of a sample: the target frame id's prefix up to the last separator (ids are SHOT/FRAME-like)
    shots = joined["target_id"].astype(str).str.rsplit("/", n=1).str[0].to_numpy()

    def row(group: str, mask: np.ndarray) -> PairedDifference:
        use = mask & finite
        a, b = values_a[use], values_b[use]
        low, high = paired_bootstrap(a - b, resamples, confidence, seed)
        return PairedDifference(group=group, count=int(use.sum()), shots=len(set(shots[use])),
                                mean_a=float(a.mean()) if a.size else math.nan,
                                mean_b=float(b.mean()) if b.size else math.nan,
                                mean_difference=float((a - b).mean()) if a.size else math.nan,
                                low=low, high=high, a_better_share=float((a > b).mean()) if a.size else math.nan,
                                dropped=int((mask & ~finite).sum()))

    everything = np.ones(len(joined), bool)
    rows = [row("all", everything)]
    if bucket and bucket in joined.columns:
        groups = joined[bucket].to_numpy()
        for value in sorted(set(groups.tolist()), key=lambda v: (isinstance(v, str), v)):
            rows.append(row(f"{bucket}={value}", groups == value))
    return {"a": record_a.model, "b": record_b.model, "metric": metric, "protocol": record_a.protocol_id,
            "signature": record_a.signature, "bucket_key": bucket, "confidence": confidence,
            "resamples": resamples, "only_a": only_a, "only_b": only_b, "rows": [asdict(r) | {"verdict": r.verdict} for r in rows]}


def format_table(result: dict[str, Any]) -> str:
    """The comparison as a Markdown table."""
    pct = round(result["confidence"] * 100)
    lines = [f"{result['a']} (A) vs {result['b']} (B), {result['metric']} per sample, {result['protocol']} "
             f"({result['signature']}); paired bootstrap, {result['resamples']} resamples",
             *([f"samples in A only: {result['only_a']}, in B only: {result['only_b']} (left out)"]
               if result.get("only_a") or result.get("only_b") else []),
             "",
             f"| group | n | shots | A | B | A - B | {pct}% CI | A better on | verdict |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for r in result["rows"]:
        dropped = f" ({r['dropped']} not finite, left out)" if r["dropped"] else ""
        lines.append(f"| {r['group']}{dropped} | {r['count']} | {r['shots']} | {r['mean_a']:.3f} | {r['mean_b']:.3f} | "
                     f"{r['mean_difference']:+.3f} | [{r['low']:+.3f}, {r['high']:+.3f}] | "
                     f"{100 * r['a_better_share']:.0f}% | {r['verdict']} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    result = compare(args.a, args.b, args.metric, args.resamples, args.confidence, args.seed, args.across_datasets)
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0


def add_commands(commands) -> None:
    p = commands.add("compare", "per-sample difference of two models on one protocol, with a paired "
                                "bootstrap confidence interval", run)
    p.add_argument("a", metavar="A.json", help="result record of model A (bench evaluate)")
    p.add_argument("b", metavar="B.json", help="result record of model B, same protocol and data")
    p.add_argument("--metric", help="per-sample metric column (default: the protocol's primary metric)")
    p.add_argument("--resamples", type=bounded(int, 1), default=DEFAULT_RESAMPLES, help=f"bootstrap resamples (default {DEFAULT_RESAMPLES})")
    p.add_argument("--confidence", type=bounded(float, 0.5, 0.999), default=DEFAULT_CONFIDENCE, help="interval level (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--across-datasets", action="store_true",
                   help="allow records of two datasets (e.g. two builds of one video): compare the samples both hold")


__all__: Sequence[str] = ("compare", "paired_bootstrap", "format_table", "add_commands")
