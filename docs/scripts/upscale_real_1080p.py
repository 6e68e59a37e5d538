"""Make 1920 x 1080 H.264 clips from the real anime clips, a proxy for real 1080p TV material.

    python docs/scripts/upscale_real_1080p.py --out /tmp/real1080 [--real ../shared/data/real] [--only NAME ...]

``../shared/data/real`` holds no real 1080p TV clip, so the build's 1080p target is measured on real clips
upscaled to 1080p: the One Piece TV clip (640 x 480), the four eisai shots cropped to their ``Input`` panel
(``panels.json``) and the six TRE-Net shots cropped to their left panel (x 0-409), the inputs of
``bench_build.py``. Each frame is scaled with Lanczos (``cv2.INTER_LANCZOS4``) to cover 1920 x 1080, keeping
its aspect ratio, and centre-cropped to 1920 x 1080 (a 4:3 or portrait panel loses its top and bottom, as
when such material is reframed for 16:9), then encoded with ``dataprep.synth``'s H.264 writer (libx264, CRF
16, yuv420p) at the source frame rate, one output clip per input clip, same frame count.

The result has real line art and paint at broadcast size, but it is not broadcast material: upscaled
strokes are smooth and wide, without the fine detail, grain and subtitles of a native 1080p master, so the
build's sketch and components stages see about the content of the source at 256 px. Use it as a stand-in
and say so. The frames are written only under ``--out`` (outside the repository; never commit them).
``--only`` keeps the clips whose file name contains one of the given strings.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from dataprep.synth.video_writer import VideoWriter  # noqa: E402

WIDTH, HEIGHT = 1920, 1080


def real_clips(real: Path) -> list[tuple[Path, tuple[int, int, int, int] | None]]:
    """(clip, crop box (x0, y0, x1, y1) or None) of the real clips ``bench_build.py`` builds."""
    clips: list[tuple[Path, tuple[int, int, int, int] | None]] = [(real / "cut-clips" / "onepiece_demo.mp4", None)]
    eisai = real / "shot-clips" / "eisai"
    panels = json.loads((eisai / "panels.json").read_text())
    clips += [(eisai / name, tuple(panel["input_panel_box_xyxy"])) for name, panel in sorted(panels.items())]
    clips += [(path, (0, 0, 409, 512)) for path in sorted((real / "shot-clips" / "tre-net").glob("*.mp4"))]
    return clips


def to_1080p(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB -> (1080, 1920, 3): Lanczos scale to cover 1920 x 1080, then a centre crop."""
    height, width = rgb.shape[:2]
    scale = max(WIDTH / width, HEIGHT / height)
    size = (max(WIDTH, round(width * scale)), max(HEIGHT, round(height * scale)))
    big = cv2.resize(rgb, size, interpolation=cv2.INTER_LANCZOS4)
    top, left = (size[1] - HEIGHT) // 2, (size[0] - WIDTH) // 2
    return np.ascontiguousarray(big[top:top + HEIGHT, left:left + WIDTH])


def upscale(source: Path, crop: tuple[int, int, int, int] | None, out: Path) -> int:
    """Writes ``out``; returns the number of frames."""
    count = 0
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate or 24)
        with VideoWriter(out, "h264", WIDTH, HEIGHT, fps) as writer:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                if crop is not None:
                    x0, y0, x1, y1 = crop
                    rgb = rgb[y0:y1, x0:x1]
                writer.write(to_1080p(rgb))
                count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REPO.parent / "shared" / "data" / "real")
    parser.add_argument("--out", type=Path, required=True, help="folder for the 1080p clips (outside the repo)")
    parser.add_argument("--only", nargs="*", help="keep clips whose file name contains one of these")
    args = parser.parse_args()
    if not args.real.is_dir():
        print(f"upscale_real_1080p: {args.real}: real-data folder not found", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for source, crop in real_clips(args.real):
        if args.only and not any(part in source.name for part in args.only):
            continue
        target = args.out / f"{source.parent.name}_{source.stem}_1080p.mp4"
        frames = upscale(source, crop, target)
        print(f"{target.name}: {frames} frames from {source.name}" + (f" crop {list(crop)}" if crop else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
