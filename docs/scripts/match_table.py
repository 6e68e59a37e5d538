"""The component matchers' table of the model card: every model on every set under ``components@2``.

    python docs/scripts/match_table.py --models match-hand,match-graph --sets generated,DATA/suneo,DATA/multigraph

``generated`` is the demo clip's ground truth (``benchmark.demo.synth_source``: the generator's region ids are
its parts, so the match metrics score against true correspondences), ``generated:seed=N`` the same kind of clip
with another generator seed (the demo is seed 4); any other set is a dataset folder built
by ``dataprep build`` (e.g. the clips of ``docs/scripts/real_line_art_clips.py``, whose ``label/`` part maps
give true correspondences too). Prints one line per (set, model): acc / acc_thres / pix_acc / match-acc /
valid-acc / invalid-acc and which ground truth the match metrics used (frame pairs scored against parts and
against colours). Same numbers as ``bench evaluate --model NAME --data DIR --protocol components@2``.

``--records DIR`` also saves each result record as ``bench evaluate --out`` does (``DIR/SET.MODEL.json`` and its
per-sample Parquet), so two models on one set can be compared with an interval:
``bench compare DIR/SET.match-graph.json DIR/SET.match-hand.json --metric component-acc``.
``--compare A:B,...`` prints that comparison for every set and for all sets pooled: the mean per-pair
difference A - B of acc and pix_acc with its 95 % paired bootstrap interval
(:func:`benchmark.compare.paired_bootstrap`; per-pair means, so they differ a little from the table's per-clip
averages).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch

from benchmark.compare import PairedDifference, paired_bootstrap
from benchmark.evaluate import evaluate, save
from benchmark.model import load_model
from benchmark.protocol import load_protocol

COMPARED = ("component-acc", "component-pix-acc")
METRICS = ("component-acc", "component-acc-thres", "component-pix-acc", "match-acc", "match-valid-acc",
           "match-invalid-acc")


def source_of(name: str):
    if name == "generated" or name.startswith("generated:seed="):
        from dataclasses import replace

        from benchmark.demo import synth_source
        from dataprep.synth import SynthClip, demo_config

        config = demo_config()
        if name != "generated":  # another clip of the demo's kind (the shipped match-unet saw seeds >= 1000)
            config = replace(config, seed=int(name.split("=", 1)[1]))
        return synth_source(SynthClip(config))
    from benchmark.parquet_source import ParquetSource

    return ParquetSource(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="copy-reference,flow-warp,match-hand,match-graph,match-unet,"
                                            "match-graph-unet")
    parser.add_argument("--sets", default="generated")
    parser.add_argument("--protocol", default="components@2")
    parser.add_argument("--records", type=Path, help="also save every result record into this folder")
    parser.add_argument("--compare", default="", help="pairs A:B of models to compare, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    protocol = load_protocol(args.protocol)
    pairs = [tuple(pair.split(":", 1)) for pair in args.compare.split(",") if pair]
    unknown = {name for pair in pairs for name in pair} - set(args.models.split(","))
    if any(len(pair) != 2 for pair in pairs) or unknown:
        parser.error(f"--compare {args.compare!r}: pairs A:B of models given to --models")
    per_pair: dict[tuple[str, str], dict[str, dict[str, float]]] = {}  # (set, model) -> metric -> sample -> value
    for set_name in args.sets.split(","):
        source = source_of(set_name)
        for model_name in args.models.split(","):
            started = time.perf_counter()
            evaluation = evaluate(load_model(model_name), model_name, source, protocol, n_examples=0)
            record = evaluation.record
            if args.records:
                args.records.mkdir(parents=True, exist_ok=True)
                set_label = re.sub(r"[^A-Za-z0-9_.-]+", "_", set_name.rstrip("/")).strip("_")
                save(evaluation, args.records / f"{set_label}.{model_name}.json")
            rows = [row for row in evaluation.rows if row["valid"]]
            per_pair[set_name, model_name] = {metric: {row["sample_id"]: float(row[metric]) for row in rows}
                                              for metric in COMPARED}
            values = []
            for name in METRICS:
                value = record.metric(name).value
                values.append("-" if value is None else f"{value:.5f}")
            used = record.metric("match-acc").settings.get("ground_truth_pairs")
            print(f"{set_name} | {model_name} | {' / '.join(values)} | {record.samples_valid} pairs | "
                  f"ground truth {used} | {time.perf_counter() - started:.0f} s", flush=True)
    for first, second in pairs:
        for metric in COMPARED:
            pooled = []
            for set_name in args.sets.split(","):
                a, b = per_pair[set_name, first][metric], per_pair[set_name, second][metric]
                samples = sorted(a.keys() & b.keys())
                values = np.array([[a[sample], b[sample]] for sample in samples]).reshape(-1, 2)
                pooled.append(values)
                print(compared(set_name, first, second, metric, values))
            print(compared("all sets pooled", first, second, metric, np.concatenate(pooled)))


def compared(group: str, first: str, second: str, metric: str, values: np.ndarray) -> str:
    """One line of ``bench compare``'s row (:class:`benchmark.compare.PairedDifference`) for ``values``, (n, 2)
    float: per pair the metric of ``first`` and of ``second``."""
    a, b = values[:, 0], values[:, 1]
    low, high = paired_bootstrap(a - b)
    row = PairedDifference(group=group, count=len(a), shots=0, mean_a=float(a.mean()), mean_b=float(b.mean()),
                           mean_difference=float((a - b).mean()), low=low, high=high,
                           a_better_share=float((a > b).mean()), dropped=0)
    return (f"{group} | {first} - {second} | {metric} | {row.mean_difference:+.5f} [{low:+.5f}, {high:+.5f}] | "
            f"{row.count} pairs | {row.verdict}")


if __name__ == "__main__":
    main()
