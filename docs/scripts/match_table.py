"""The component matchers' table of the model card: every model on every set under ``components@2``.

    python docs/scripts/match_table.py --models match-hand,match-graph --sets generated,DATA/suneo,DATA/multigraph

``generated`` is the demo clip's ground truth (``benchmark.demo.synth_source``: the generator's region ids are
its parts, so the match metrics score against true correspondences), ``generated:seed=N`` the same kind of clip
with another generator seed (the demo is seed 4); any other set is a dataset folder built
by ``dataprep build`` (e.g. the clips of ``docs/scripts/real_line_art_clips.py``, whose ``label/`` part maps
give true correspondences too). Prints one line per (set, model): acc / acc_thres / pix_acc / match-acc /
valid-acc / invalid-acc and which ground truth the match metrics used (frame pairs scored against parts and
against colours). Same numbers as ``bench evaluate --model NAME --data DIR --protocol components@2``.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmark.evaluate import evaluate
from benchmark.model import load_model
from benchmark.protocol import load_protocol

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
    args = parser.parse_args()
    torch.set_num_threads(1)
    protocol = load_protocol(args.protocol)
    for set_name in args.sets.split(","):
        source = source_of(set_name)
        for model_name in args.models.split(","):
            started = time.perf_counter()
            record = evaluate(load_model(model_name), model_name, source, protocol, n_examples=0).record
            values = []
            for name in METRICS:
                value = record.metric(name).value
                values.append("-" if value is None else f"{value:.5f}")
            used = record.metric("match-acc").settings.get("ground_truth_pairs")
            print(f"{set_name} | {model_name} | {' / '.join(values)} | {record.samples_valid} pairs | "
                  f"ground truth {used} | {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
