"""Procedural cel animation: characters of flat-filled, outlined parts moving through shots.

Everything here is deterministic given :class:`SynthConfig.seed`. A *shot* owns a background, a few
props and 1-3 characters; each character is a set of *parts* (legs, body, arms, head, hair, eyes,
mouth) drawn as polygons in z-order. Every part has one region id for the whole shot, so the label
maps of two frames of a shot give the ground-truth correspondence of regions (same id = same part).

Drawings are held for ``hold`` frames (animation "on ones/twos/threes"): all frames with the same
drawing number are pixel-identical, camera pan included (the camera moves on the same beat, which
keeps held frames exact duplicates for the de-duplication tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

# Sub-pixel precision for cv2 drawing: coordinates are passed as fixed-point with this many
# fractional bits so slow motion is smooth rather than snapping to whole pixels.
_SHIFT = 4
_ONE = 1 << _SHIFT

LINE_RGB = (0, 0, 0)
EYE_WHITE = (246, 246, 242)
MOUTH_RGB = (150, 46, 58)
SKIN_TONES = [(255, 224, 196), (250, 210, 170), (236, 188, 150), (205, 150, 110), (160, 110, 80)]


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40,
             wobble: float = 0.0, phase: float = 0.0, lobes: int = 3) -> np.ndarray:
    """Polygon (n, 2) of an ellipse; ``wobble`` > 0 adds a travelling sinusoidal deformation."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1.0 + wobble * np.sin(lobes * theta + phase)
    return np.stack([cx + rx * r * np.cos(theta), cy + ry * r * np.sin(theta)], axis=1)


def _limb(x0: float, y0: float, length: float, width: float, angle: float) -> np.ndarray:
    """Rounded-rectangle polygon hanging from (x0, y0) at ``angle`` radians from straight down."""
    n = 10
    half = np.linspace(-np.pi / 2, np.pi / 2, n)
    cap_bottom = np.stack([width / 2 * np.sin(half), length + width / 2 * np.cos(half)], 1)[::-1]
    cap_top = np.stack([-width / 2 * np.sin(half), -width / 2 * np.cos(half)], 1)[::-1]
    pts = np.concatenate([cap_top, cap_bottom])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])
    return pts @ rot.T + np.array([x0, y0])


def _random_colour(rng: np.random.Generator, min_value: float = 0.5) -> tuple[int, int, int]:
    """A saturated-enough, bright-enough RGB colour (never close to the black line colour)."""
    h = rng.uniform(0, 180)
    s = rng.uniform(0.25, 0.85) * 255
    v = rng.uniform(min_value, 1.0) * 255
    hsv = np.uint8([[[h, s, v]]])
    return tuple(int(x) for x in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


@dataclass
class Part:
    """One region of a character or prop; ``region_id`` is constant across the shot."""

    name: str
    region_id: int
    rgb: tuple[int, int, int]
    z: float
    line_width: int


@dataclass
class Pose:
    x: float
    y: float
    angle: float  # radians
    scale: float

    def lerp(self, other: "Pose", t: float) -> "Pose":
        return Pose(*(a + (b - a) * t for a, b in
                      zip((self.x, self.y, self.angle, self.scale), (other.x, other.y, other.angle, other.scale))))


@dataclass
class Character:
    size: float  # pixels from feet to top of head at scale 1
    start: Pose
    end: Pose
    parts: dict[str, Part]
    swing: float  # arm swing amplitude (radians)
    swing_speed: float
    talk_period: int  # mouth open every other ``talk_period`` drawings
    blink_at: float  # fraction of the shot at which the eyes close for one drawing
    z_base: float
    strokes: list = field(default_factory=list)  # line-only strokes of the last posed drawing

    def polygons(self, t: float, drawing: int, n_drawings: int) -> list[tuple[Part, np.ndarray]]:
        """Screen-space polygons of the visible parts at shot time ``t`` in [0, 1].

        Returns (part, polygon (n, 2) float) pairs. Line-only strokes (closed eyes) are left in
        ``self.strokes`` as (segment (2, 2), width, z) triples.
        """
        pose = self.start.lerp(self.end, t * t * (3 - 2 * t))  # smoothstep easing
        swing = self.swing * math.sin(2 * math.pi * self.swing_speed * t)
        phase = 2 * math.pi * t * 1.5
        local: list[tuple[str, np.ndarray]] = [
            ("leg_l", _limb(-0.1, -0.05, 0.42, 0.13, 0.6 * swing)),
            ("leg_r", _limb(0.1, -0.05, 0.42, 0.13, -0.6 * swing)),
            ("arm_back", _limb(0.2, -0.6, 0.42, 0.1, -0.35 - swing)),
            ("body", _ellipse(0.0, -0.33, 0.24, 0.33, wobble=0.04, phase=phase)),
            ("arm_front", _limb(-0.2, -0.6, 0.42, 0.1, 0.35 + swing)),
            ("head", _ellipse(0.0, -0.92, 0.25, 0.27, wobble=0.015, phase=phase, lobes=2)),
            ("hair", self._hair(phase)),
        ]
        blink = abs(t - self.blink_at) * n_drawings < 0.5
        if not blink:
            local += [("eye_l", _ellipse(-0.1, -0.9, 0.055, 0.075, n=24)),
                      ("eye_r", _ellipse(0.1, -0.9, 0.055, 0.075, n=24))]
        if (drawing // max(self.talk_period, 1)) % 2 == 1:
            local.append(("mouth", _ellipse(0.0, -0.77, 0.06, 0.035, n=20)))
        c, s = math.cos(pose.angle), math.sin(pose.angle)
        rot = np.array([[c, -s], [s, c]]) * (self.size * pose.scale)
        out = []
        for name, pts in local:
            out.append((self.parts[name], pts @ rot.T + np.array([pose.x, pose.y])))
        self.strokes = []
        if blink:  # closed eyes are a line only, as in real cels
            for ex in (-0.1, 0.1):
                seg = np.array([[ex - 0.06, -0.9], [ex + 0.06, -0.9]]) @ rot.T + np.array([pose.x, pose.y])
                self.strokes.append((seg, self.parts["head"].line_width, self.parts["head"].z + 0.5))
        return out

    @staticmethod
    def _hair(phase: float) -> np.ndarray:
        """A cap over the top of the head with a spiky fringe that sways a little."""
        theta = np.linspace(np.pi, 2 * np.pi, 24)
        cap = np.stack([0.29 * np.cos(theta), -0.95 + 0.31 * np.sin(theta)], 1)
        xs = np.linspace(0.29, -0.29, 9)
        fringe = np.stack([xs, np.where(np.arange(9) % 2 == 0, -0.9, -0.8)], 1)
        fringe[:, 0] += 0.015 * math.sin(phase)
        return np.concatenate([cap, fringe])


@dataclass
class Prop:
    """A static background object in world coordinates (moves only with the camera)."""

    part: Part
    polygon: np.ndarray


@dataclass
class ShotPlan:
    """Everything random about one shot, drawn once from the seed."""

    index: int
    start: int  # first frame (global index)
    length: int
    hold: int  # frames per drawing: 1, 2 or 3
    pan: tuple[float, float]  # camera displacement in pixels over the whole shot
    background: Part
    gradient: tuple[tuple[int, int, int], tuple[int, int, int]] | None
    props: list[Prop]
    characters: list[Character]
    regions: dict[int, dict] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + self.length

    def drawing_of(self, frame_in_shot: int) -> int:
        return frame_in_shot // self.hold

    @property
    def n_drawings(self) -> int:
        return (self.length + self.hold - 1) // self.hold

    def render(self, frame_in_shot: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render one frame of the shot.

        Returns:
            image: (H, W, 3) uint8 RGB, flat fills and black outlines.
            line_art: (H, W) uint8, 0 on outline pixels, 255 elsewhere.
            labels: (H, W) uint16 region ids, 0 on outline pixels.
        """
        drawing = self.drawing_of(frame_in_shot)
        t = (drawing * self.hold) / max(self.length - 1, 1)
        cam = np.array(self.pan) * t
        labels = np.full((height, width), self.background.region_id, np.uint16)
        line = np.zeros((height, width), np.uint8)
        items: list[tuple[float, Part, np.ndarray, int]] = []
        for prop in self.props:
            items.append((prop.part.z, prop.part, prop.polygon - cam, prop.part.line_width))
        strokes = []
        for character in self.characters:
            for part, poly in character.polygons(t, drawing, self.n_drawings):
                items.append((part.z, part, poly - cam, part.line_width))
            strokes += [(z, seg - cam, w) for seg, w, z in character.strokes]
        items.sort(key=lambda item: item[0])
        stroke_iter = sorted(strokes, key=lambda s: s[0])
        for z, part, poly, width_px in items:
            while stroke_iter and stroke_iter[0][0] <= z:
                _, seg, w = stroke_iter.pop(0)
                cv2.polylines(line, [np.round(seg * _ONE).astype(np.int32)], False, 255, w, cv2.LINE_8, _SHIFT)
            pts = [np.round(poly * _ONE).astype(np.int32)]
            cv2.fillPoly(labels, pts, int(part.region_id), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(line, pts, 0, cv2.LINE_8, _SHIFT)
            cv2.polylines(line, pts, True, 255, width_px, cv2.LINE_8, _SHIFT)
        for _, seg, w in stroke_iter:
            cv2.polylines(line, [np.round(seg * _ONE).astype(np.int32)], False, 255, w, cv2.LINE_8, _SHIFT)
        is_line = line > 0
        labels[is_line] = 0
        lut = np.zeros((max(self.regions) + 1, 3), np.uint8)
        for rid, info in self.regions.items():
            lut[rid] = info["rgb"]
        image = lut[labels]
        if self.gradient is not None:
            top, bottom = (np.array(c, np.float32) for c in self.gradient)
            ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None]
            sky = np.round(top + (bottom - top) * ramp).astype(np.uint8)  # (H, 3)
            bg = labels == self.background.region_id
            image[bg] = np.broadcast_to(sky[:, None, :], (height, width, 3))[bg]
        image[is_line] = LINE_RGB
        line_art = np.where(is_line, 0, 255).astype(np.uint8)
        return image, line_art, labels


def plan_shots(config, rng: np.random.Generator) -> list[ShotPlan]:
    """Draw every shot's layout from ``rng``; region ids are unique across the whole video."""
    w, h = config.width, config.height
    unit = min(w, h)
    plans: list[ShotPlan] = []
    next_id = 1
    start = 0

    def new_part(name, rgb, z, lw, shot_regions, shot_index, flat=True):
        nonlocal next_id
        part = Part(name, next_id, tuple(int(c) for c in rgb), z, lw)
        shot_regions[next_id] = {"name": name, "rgb": list(part.rgb), "shot": shot_index, "flat": flat}
        next_id += 1
        return part

    lo, hi = config.shot_length
    for shot_index in range(config.shots):
        length = int(rng.integers(lo, hi + 1))
        hold = int(rng.choice(config.holds))
        regions: dict[int, dict] = {}
        base_lw = max(1, round(unit / 128))
        gradient = None
        bg_rgb = _random_colour(rng, 0.6)
        if rng.random() < 0.5:
            gradient = (_random_colour(rng, 0.7), _random_colour(rng, 0.6))
            bg_rgb = gradient[0]
        background = new_part("background", bg_rgb, -1000, base_lw, regions, shot_index, flat=gradient is None)
        pan = (0.0, 0.0)
        if config.pan and rng.random() < 0.5:
            pan = (float(rng.uniform(-0.3, 0.3) * w), float(rng.uniform(-0.08, 0.08) * h))
        props = []
        floor_y = h * rng.uniform(0.7, 0.85)
        margin = unit  # props extend beyond the frame so a pan never reveals their edge
        floor = np.array([[-margin, floor_y], [w + margin, floor_y], [w + margin, h + margin], [-margin, h + margin]])
        props.append(Prop(new_part("floor", _random_colour(rng, 0.5), -900, base_lw + 1, regions, shot_index), floor))
        for k in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.4) * h
                r = rng.uniform(0.05, 0.12) * unit
                poly = _ellipse(cx, cy, r, r)
            else:
                x0 = rng.uniform(-0.1, 0.9) * w
                bw, bh = rng.uniform(0.1, 0.25) * w, rng.uniform(0.2, 0.5) * h
                poly = np.array([[x0, floor_y], [x0 + bw, floor_y], [x0 + bw, floor_y - bh], [x0, floor_y - bh]])
            props.append(Prop(new_part(f"prop{k}", _random_colour(rng, 0.55), -800 + k, base_lw,
                                       regions, shot_index), poly))
        characters = []
        n_chars = int(rng.integers(config.characters[0], config.characters[1] + 1))
        for c in range(n_chars):
            size = rng.uniform(0.38, 0.62) * h
            lw_outer = max(1, round(size / 40))
            lw_inner = max(1, lw_outer - 1)
            skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
            hair, clothes, clothes2, pants = (_random_colour(rng, 0.45) for _ in range(4))
            z0 = c * 100.0
            spec = [("leg_l", pants, 1, lw_outer), ("leg_r", pants, 1, lw_outer), ("arm_back", clothes2, 2, lw_outer),
                    ("body", clothes, 3, lw_outer), ("arm_front", clothes2, 4, lw_outer), ("head", skin, 5, lw_outer),
                    ("hair", hair, 6, lw_outer), ("eye_l", EYE_WHITE, 7, lw_inner),
                    ("eye_r", EYE_WHITE, 7, lw_inner), ("mouth", MOUTH_RGB, 7, lw_inner)]
            parts = {name: new_part(f"char{c}/{name}", rgb, z0 + z, lw, regions, shot_index)
                     for name, rgb, z, lw in spec}
            x = rng.uniform(0.2, 0.8) * w
            y = floor_y + rng.uniform(-0.02, 0.1) * h
            start_pose = Pose(x, y, rng.uniform(-0.15, 0.15), rng.uniform(0.85, 1.1))
            end_pose = Pose(x + rng.uniform(-0.3, 0.3) * w, y + rng.uniform(-0.05, 0.05) * h,
                            start_pose.angle + rng.uniform(-0.35, 0.35), start_pose.scale * rng.uniform(0.8, 1.25))
            characters.append(Character(size=size, start=start_pose, end=end_pose, parts=parts,
                                        swing=rng.uniform(0.2, 0.7), swing_speed=rng.uniform(0.5, 2.0),
                                        talk_period=int(rng.integers(2, 5)), blink_at=rng.uniform(0.2, 0.8),
                                        z_base=z0))
        plans.append(ShotPlan(shot_index, start, length, hold, pan, background, gradient, props, characters, regions))
        start += length
    return plans
