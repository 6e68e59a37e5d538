"""``dataprep shots``, ``dataprep speed`` and ``dataprep ls detectors``: shot detection from the command line."""

from __future__ import annotations

import json
import os
import sys
import time

from dataprep.detector import DETECTORS, load_detectors
from dataprep.errors import CelbenchError
from dataprep.shots import detect_shots, load_truth, score_cuts
from dataprep.video import open_video, parse_crop, scaled_size


def add_commands(commands) -> None:
    p = commands.add("shots", "split a video into shots (Shi et al. Sec. 4.1) and mark the shots to drop", run_shots)
    p.add_argument("input", help="video file, animated GIF or folder of numbered images")
    p.add_argument("--detector", default="histogram-mse", help="cut detector (see `dataprep ls detectors`)")
    p.add_argument("--threshold", type=float,
                   help="the detector's main threshold (histogram-mse: paper's 200; adaptive: adaptive_threshold)")
    p.add_argument("--crop", type=parse_crop, help="analyse only the box x0,y0,x1,y1 (pixels, x1/y1 exclusive)")
    p.add_argument("--min-length", type=int, help="drop shots shorter than this (paper: 8)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--truth", help="cuts file {\"hard_cuts\": [...]} to score against (+/-1 frame)")

    p = commands.add("speed", "frames per second of decoding and of every registered detector on one video",
                     run_speed)
    p.add_argument("input", help="video file or animated GIF")
    p.add_argument("--crop", type=parse_crop, help="analyse only the box x0,y0,x1,y1")
    p.add_argument("--detectors", help="comma-separated subset (default: all registered)")
    p.add_argument("--repeat", type=int, default=3, help="runs per row; the fastest counts (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")


def run_shots(args) -> int:
    params = {}
    if args.threshold is not None:
        load_detectors()
        params[DETECTORS.get(args.detector).threshold_param] = args.threshold
    if args.min_length is not None:
        params["min_length"] = args.min_length
    truth = load_truth(args.truth, os.path.basename(args.input)) if args.truth else None
    result = detect_shots(args.input, detector=args.detector, crop=args.crop, **params)
    out = result.to_json()
    if truth is not None:
        out["score"] = score_cuts(result.cuts, truth)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        kept = result.kept_shots()
        print(f"{result.input}: {result.n_frames} frames at {result.fps:.3f} fps, detector {result.detector}")
        print(f"cuts: {result.cuts}")
        print(f"shots: {len(result.shots)} ({len(kept)} kept)")
        for shot in result.shots:
            status = "kept" if shot.kept else f"dropped ({shot.reason})"
            print(f"  {shot.start:6d} - {shot.end - 1:6d}  {shot.end - shot.start:5d} frames  {status}")
        if truth is not None:
            s = out["score"]
            print(f"vs truth: precision {s['precision']:.3f} recall {s['recall']:.3f} F1 {s['f1']:.3f}"
                  f" (false positives {s['false_positives']}, missed {s['missed']})")
    if result.error:
        raise CelbenchError(f"{result.input}: {result.error}; the {result.n_frames} decoded frames were processed")
    return 0


def _timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    frames = fn()
    return time.perf_counter() - start, frames


def _decode_pyav(path, crop, size):
    return lambda: sum(1 for _ in open_video(path, crop=crop, size=size))


def _decode_opencv(path):
    import cv2

    def run():
        capture = cv2.VideoCapture(path)
        n = 0
        while True:
            ok, _ = capture.read()
            if not ok:
                break
            n += 1
        capture.release()
        return n

    return run


def _scenedetect_native(path, name):
    """PySceneDetect's own pipeline (OpenCV decoding, auto downscale) for detector ``name``."""
    import scenedetect

    classes = {"content": "ContentDetector", "adaptive": "AdaptiveDetector", "histogram": "HistogramDetector",
               "hash": "HashDetector"}

    def run():
        video = scenedetect.open_video(path)
        manager = scenedetect.SceneManager()
        manager.add_detector(getattr(scenedetect.detectors, classes[name])())
        manager.detect_scenes(video)
        return video.frame_number

    return run


def run_speed(args) -> int:
    load_detectors()
    source = open_video(args.input, crop=args.crop)
    full = (source.width, source.height)
    names = args.detectors.split(",") if args.detectors else DETECTORS.names()
    for name in names:
        DETECTORS.get(name)
    rows = []

    def add(label, fn):
        # Fastest of several runs: on a shared machine the slower runs measure the neighbours.
        seconds, frames = min(_timed(fn) for _ in range(max(1, args.repeat)))
        rows.append({"what": label, "frames": frames, "seconds": seconds, "fps": frames / seconds})
        print(f"  {label}: {frames / seconds:.1f} fps", file=sys.stderr)

    add(f"decode PyAV native {full[0]}x{full[1]}", _decode_pyav(args.input, args.crop, None))
    add(f"decode PyAV to {scaled_size(*full, 256)} (analysis)", _decode_pyav(args.input, args.crop,
                                                                              scaled_size(*full, 256)))
    if args.crop is None:
        add("decode OpenCV native", _decode_opencv(args.input))
    for name in names:
        try:
            add(f"detect {name} (celbench)", lambda: detect_shots(args.input, name, crop=args.crop).n_frames)
        except CelbenchError as error:
            print(f"  {name}: skipped ({error})", file=sys.stderr)
    if args.crop is None:
        for name in ["content", "adaptive", "histogram", "hash"]:
            if name in names:
                add(f"detect {name} (PySceneDetect's own pipeline)", _scenedetect_native(args.input, name))
    by = {r["what"]: r["fps"] for r in rows}
    decode = by[f"decode PyAV to {scaled_size(*full, 256)} (analysis)"]
    hist = by.get("detect histogram-mse (celbench)")
    for r in rows:
        r["vs_decode_only"] = r["fps"] / decode
        r["histogram_mse_speedup"] = hist / r["fps"] if hist else None
    if args.json:
        print(json.dumps({"input": args.input, "size": full, "rows": rows}, indent=1))
    else:
        print(f"{args.input} ({full[0]}x{full[1]}, {rows[0]['frames']} frames)")
        print(f"{'':52s} {'fps':>8s} {'/decode':>8s} {'hist-mse x':>10s}")
        for r in rows:
            speedup = f"{r['histogram_mse_speedup']:.2f}" if r["histogram_mse_speedup"] else "-"
            print(f"{r['what']:52s} {r['fps']:8.1f} {r['vs_decode_only']:8.2f} {speedup:>10s}")
    return 0
