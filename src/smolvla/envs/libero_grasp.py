"""Grasp candidates for LIBERO's Panda and the room its open hand needs. Pure numpy, no simulator.

A grasp is a grip point float64[3] (world, m) and a horizontal finger axis float64[3] (the direction the
fingers close along). Around the grip point the open hand takes three boxes, from robosuite's collision
geometry of the Panda gripper (fingers fully open): two fingers either side along the finger axis and
the palm above, 21 cm long along that axis. The boxes reach APPROACH_SWEEP higher than the hand at the
grip point, since the hand comes straight down onto it. `hand_points` samples these boxes; a scene counts
how many of them lie inside other things (`Scene.blocked`), and the grasp with the fewest wins.

Candidates:
    rim (bowls, plates): the rim pinched at RIM_ANGLES directions around the centre, fingers radial
    box (anything else): across its narrow side, at its centre or shifted along its long side, or turned
                         a little while the turned width still fits between the open fingers
"""

from __future__ import annotations

import numpy as np

# (centre, half size) in the hand frame: x along the finger axis, y across it, z up from the grip point.
_FINGER_HALF = np.array([0.018, 0.0125, 0.031])
_PALM_CENTRE, _PALM_HALF = np.array([0.0, 0.0, 0.075]), np.array([0.104, 0.035, 0.05])
FINGER_OFFSET = 0.05  # finger centres from the grip point along the finger axis, fully open (m)
FINGER_Z = 0.018  # finger centres above the grip point (m)
APPROACH_SWEEP = 0.08  # the boxes reach this much higher: the hand's way down onto the grip point (m)
SAMPLE_SPACING = 0.01  # m
RIM_ANGLES = 16  # directions around a rim
BOX_SHIFT_MARGIN = 0.015  # a box grasp shifted along its long side stays this far inside its end (m)
BOX_TURNS = (0.0, 0.35, -0.35)  # rad, turns of the finger axis away from across the narrow side
MAX_GRASP_WIDTH = 0.07  # the open fingers are 8 cm apart; leave 1 cm (m)


def _grid(centre: np.ndarray, half: np.ndarray) -> np.ndarray:
    """float64[N, 3] points filling the box centre +- half at about SAMPLE_SPACING."""
    axes = [
        np.linspace(c - h, c + h, max(2, int(round(2 * h / SAMPLE_SPACING)) + 1))
        for c, h in zip(centre, half, strict=True)
    ]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _hand_local() -> np.ndarray:
    boxes = []
    for side in (1.0, -1.0):
        centre = np.array([side * FINGER_OFFSET, 0.0, FINGER_Z])
        boxes.append((centre, _FINGER_HALF))
    boxes.append((_PALM_CENTRE, _PALM_HALF))
    points = []
    for centre, half in boxes:
        # stretch each box upward by the approach sweep
        c = centre + [0.0, 0.0, APPROACH_SWEEP / 2]
        h = half + [0.0, 0.0, APPROACH_SWEEP / 2]
        points.append(_grid(c, h))
    return np.concatenate(points)


_HAND_LOCAL = _hand_local()


def hand_points(point: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """float64[N, 3] world points sampling the open hand (and its way down) at grip point `point` with
    fingers closing along the horizontal `axis`."""
    x = np.array([axis[0], axis[1], 0.0])
    x /= np.linalg.norm(x)
    y = np.array([-x[1], x[0], 0.0])
    rot = np.stack([x, y, [0.0, 0.0, 1.0]], axis=1)  # columns: hand axes in the world
    return np.asarray(point, dtype=np.float64) + _HAND_LOCAL @ rot.T


def unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle), 0.0])


def rim_candidates(center: np.ndarray, rim_radius: float, z: float, first: float) -> list[tuple[np.ndarray, float]]:
    """(grip point float64[3], finger-axis angle) around a rim of radius `rim_radius` at height `z`, the
    first at angle `first`, then its opposite, then the rest nearest-first."""
    steps = [0, RIM_ANGLES // 2] + [k for d in range(1, RIM_ANGLES // 2) for k in (d, -d, RIM_ANGLES // 2 + d)]
    angles = [first + 2 * np.pi * k / RIM_ANGLES for k in dict.fromkeys(s % RIM_ANGLES for s in steps)]
    out = []
    for a in angles:
        p = np.asarray(center, dtype=np.float64) + unit(a) * rim_radius
        p[2] = z
        out.append((p, float(a)))
    return out


def box_candidates(center: np.ndarray, half: np.ndarray, yaw: float, z: float) -> list[tuple[np.ndarray, float]]:
    """(grip point float64[3], finger-axis angle) for a box: across its narrow side at its centre first,
    then shifted along its long side, then turned by BOX_TURNS where the turned width still fits."""
    narrow = yaw + (0.0 if half[0] <= half[1] else np.pi / 2)
    short, long_ = float(min(half[0], half[1])), float(max(half[0], half[1]))
    along = unit(narrow + np.pi / 2)
    shift = max(long_ - BOX_SHIFT_MARGIN, 0.0)
    out = []
    for turn in BOX_TURNS:
        width = 2 * (short * abs(np.cos(turn)) + long_ * abs(np.sin(turn)))
        if turn and width > MAX_GRASP_WIDTH:
            continue
        for s in (0.0, shift, -shift) if shift > 0.005 else (0.0,):
            p = np.asarray(center, dtype=np.float64) + along * s
            p[2] = z
            out.append((p, float(narrow + turn)))
    return out
